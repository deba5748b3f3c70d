"""Who may send: the organization allow-list, and how an Outbound Message sender proves itself.

An Outbound Message carries no signature, and its OrganizationId is no secret (it shows in URLs and
e-mail headers), so the org check alone authenticates nothing. A message is accepted only from a sender
that proves itself in one of two ways:

- a token of the intake secret in the `token` query parameter of the endpoint URL
  (`outbound_message_tokens`, plus the single `outbound_message_token` of earlier versions; any of them
  counts, so a token can be replaced without dropping messages), or
- the trusted client certificate, verified by API Gateway's mutual TLS and matched by the intake
  (see `sfintacct.intake.client_certificate`).

An intake configured with neither refuses to work (`check_outbound_authentication_configured`).

Comparisons are constant-time (hmac.compare_digest) so timing does not reveal allowed values. Tokens are
compared as HMAC-SHA256 digests under a key drawn at start-up, so every comparison is over 32 bytes
whatever the lengths, and every configured token is compared, so neither a token's length nor which
token matched shows in the time taken.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from pydantic import SecretStr

from sfintacct.intake.client_certificate import ClientCertificate, TrustedClientCertificate
from sfintacct.intake.errors import IntakeMisconfigured, SenderNotAllowed
from sfintacct.intake.settings import CLIENT_CERT_SUBJECT_VARIABLE, OUTBOUND_TOKEN_KEY, OUTBOUND_TOKENS_KEY
from sfintacct.salesforce_ids import ORGANIZATION_KEY_PREFIX, InvalidSalesforceId, to_case_safe_id_with_prefix

OUTBOUND_TOKEN_PARAMETER = "token"  # noqa: S105 - the query parameter name, not a secret
CLIENT_CERTIFICATE = "client_certificate"  # how a sender proved itself, when not by a token
NO_AUTHENTICATION_CONFIGURED = (
    f"the intake accepts no Outbound Message: the intake secret has no {OUTBOUND_TOKENS_KEY} "
    f"(or {OUTBOUND_TOKEN_KEY}) and {CLIENT_CERT_SUBJECT_VARIABLE} is not set; configure a token "
    "(then end the Outbound Message URL with ?token=<token>) or mutual TLS"
)

# Drawn once per process: token digests are comparable only inside it and never leave it.
_DIGEST_KEY = secrets.token_bytes(32)


def check_org_allowed(org_id: str, allowed_org_ids: Sequence[str]) -> str:
    """The 18-character form of `org_id` when it is on the allow-list (18-character ids)."""
    try:
        case_safe = to_case_safe_id_with_prefix(org_id, ORGANIZATION_KEY_PREFIX, "an organization")
    except InvalidSalesforceId:
        case_safe = ""
    allowed = False
    for candidate in allowed_org_ids:
        # No early exit: every candidate is compared.
        allowed |= hmac.compare_digest(case_safe.encode("ascii"), candidate.encode("ascii"))
    if not case_safe or not allowed:
        shown = "".join(character if character.isalnum() else "?" for character in org_id[:40])
        raise SenderNotAllowed(f"organization {shown} is not allowed to send to this endpoint")
    return case_safe


def check_outbound_authentication_configured(
    tokens: Sequence[tuple[str, SecretStr]], trusted_certificate: TrustedClientCertificate | None
) -> None:
    """Raise `IntakeMisconfigured` naming the missing secret key when no sender could ever prove itself."""
    if not tokens and trusted_certificate is None:
        raise IntakeMisconfigured(NO_AUTHENTICATION_CONFIGURED)


def check_outbound_sender(
    token: str | None,
    certificate: ClientCertificate | None,
    tokens: Sequence[tuple[str, SecretStr]],
    trusted_certificate: TrustedClientCertificate | None,
) -> str:
    """How the sender proved itself: the secret key of its token, or `CLIENT_CERTIFICATE`.

    `token` is the `token` query parameter (None when absent); `certificate` what API Gateway verified
    (None without mutual TLS). Raises `SenderNotAllowed` saying what is missing or wrong, never a value.
    """
    check_outbound_authentication_configured(tokens, trusted_certificate)
    certificate_problem = None
    if trusted_certificate is not None and certificate is not None:
        certificate_problem = trusted_certificate.problem_with(certificate)
        if certificate_problem is None:
            return CLIENT_CERTIFICATE
    if tokens and token:
        key = matching_token_key(token, tokens)
        if key is not None:
            return key
    raise SenderNotAllowed(_refusal(token, certificate, certificate_problem, tokens, trusted_certificate))


def matching_token_key(provided: str, tokens: Sequence[tuple[str, SecretStr]]) -> str | None:
    """The key of the configured token equal to `provided`, or None; constant-time over all tokens."""
    provided_digest = _digest(provided)
    # A list, not a generator with any(): every token is compared, whichever matches.
    matches = [
        hmac.compare_digest(provided_digest, _digest(expected.get_secret_value())) for _, expected in tokens
    ]
    for (key, _), matched in zip(tokens, matches, strict=True):
        if matched:
            return key
    return None


def _digest(token: str) -> bytes:
    # surrogatepass: two different strings never give the same bytes (errors="replace" could).
    return hmac.digest(_DIGEST_KEY, token.encode("utf-8", "surrogatepass"), hashlib.sha256)


def _refusal(
    token: str | None,
    certificate: ClientCertificate | None,
    certificate_problem: str | None,
    tokens: Sequence[tuple[str, SecretStr]],
    trusted_certificate: TrustedClientCertificate | None,
) -> str:
    problems = []
    if tokens:
        if token:
            problems.append(f"the {OUTBOUND_TOKEN_PARAMETER} query parameter is wrong")
        else:
            problems.append(
                f"the {OUTBOUND_TOKEN_PARAMETER} query parameter is missing from the endpoint URL"
            )
    if trusted_certificate is not None:
        if certificate is None:
            problems.append("no client certificate was presented")
        else:
            problems.append(f"the client certificate is not trusted: {certificate_problem}")
    return " and ".join(problems)
