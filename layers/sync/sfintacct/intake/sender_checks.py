"""Who may send: the organization allow-list and the optional Outbound Message URL token.

Comparisons are constant-time (hmac.compare_digest) so timing does not reveal allowed values.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from pydantic import SecretStr

from sfintacct.intake.errors import SenderNotAllowed
from sfintacct.salesforce_ids import ORGANIZATION_KEY_PREFIX, InvalidSalesforceId, to_case_safe_id_with_prefix

OUTBOUND_TOKEN_PARAMETER = "token"  # noqa: S105 - the query parameter name, not a secret


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


def check_outbound_token(provided: str | None, expected: SecretStr | None) -> None:
    """Require `?token=<expected>` when a token is configured; ignore the parameter otherwise."""
    if expected is None:
        return
    if not provided:
        raise SenderNotAllowed(
            f"the {OUTBOUND_TOKEN_PARAMETER} query parameter is missing from the endpoint URL"
        )
    if not hmac.compare_digest(
        provided.encode("utf-8", "replace"), expected.get_secret_value().encode("utf-8", "replace")
    ):
        raise SenderNotAllowed(f"the {OUTBOUND_TOKEN_PARAMETER} query parameter is wrong")
