"""Who may send an Outbound Message: a token of the intake secret, or the trusted client certificate.

Token rules (missing, wrong, the old single key, the new list, both during a rotation, constant-time
comparison), the cold-start check that refuses an intake with no way to authenticate Salesforce, and
mutual TLS (the client certificate API Gateway verified, matched against the configured one).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

import pytest
from intake_support import (
    FIXTURES,
    ORDER_QUEUE_URL,
    ORG_ID,
    StaticSecret,
    make_service,
)
from pydantic import SecretStr, ValidationError

from sfintacct.intake import runtime, sender_checks
from sfintacct.intake.client_certificate import (
    ClientCertificate,
    InvalidDistinguishedName,
    TrustedClientCertificate,
    client_certificate_from_identity,
    normalise_serial_number,
    parse_distinguished_name,
)
from sfintacct.intake.errors import IntakeMisconfigured, SecretUnavailable, SenderNotAllowed
from sfintacct.intake.settings import MAX_OUTBOUND_TOKENS, IntakeSecret, load_intake_settings

SOAP = "text/xml; charset=utf-8"
OLD_TOKEN = secrets.token_urlsafe(24)
NEW_TOKEN = secrets.token_urlsafe(32)
SUBJECT = "C=US,ST=California,L=San Francisco,O=Salesforce\\, Inc.,CN=proxy.salesforce.test"
ISSUER = "C=US,O=Example Trust,CN=Example Client CA G2"
SERIAL = "0a:1b:2c:3d:4e:5f"


def _message() -> str:
    return (FIXTURES / "valid/opportunity_closed_won.xml").read_text(encoding="utf-8")


def _certificate(
    subject: str = SUBJECT,
    issuer: str = ISSUER,
    serial: str = SERIAL,
    not_after: str = "Aug  5 09:36:04 2031 GMT",
) -> ClientCertificate:
    return ClientCertificate(subject_dn=subject, issuer_dn=issuer, serial_number=serial, not_after=not_after)


class Notes:
    """Collects what the service notes while it checks a message."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}

    def __call__(self, **keys: Any) -> None:
        self.keys.update(keys)


# ---------------------------------------------------------------- tokens


def test_a_message_without_a_token_is_refused_with_403_and_nothing_is_parsed_or_sent() -> None:
    service, sender = make_service(secret=StaticSecret(token=None, tokens=[NEW_TOKEN]))
    notes = Notes()

    with pytest.raises(SenderNotAllowed, match="token query parameter is missing") as refused:
        service.accept_outbound_message("<not even xml", SOAP, None, note=notes)

    assert refused.value.http_status == 403
    assert "action_id" not in notes.keys  # refused before the body was parsed
    assert sender.attempts == 0


@pytest.mark.parametrize(
    "token",
    [
        "",
        "guess-7f3a",
        NEW_TOKEN[:-1],
        NEW_TOKEN + "x",
        NEW_TOKEN.upper(),
        " " + NEW_TOKEN,
        OLD_TOKEN,
        "\ud800",
    ],
)
def test_a_wrong_token_is_refused_with_403_without_echoing_any_token(token: str) -> None:
    service, sender = make_service(secret=StaticSecret(token=None, tokens=[NEW_TOKEN]))

    with pytest.raises(SenderNotAllowed, match=r"token query parameter is (wrong|missing)") as refused:
        service.accept_outbound_message(_message(), SOAP, token)

    assert NEW_TOKEN not in refused.value.message
    assert (token or "-") not in refused.value.message
    assert sender.attempts == 0


def test_the_single_token_of_earlier_versions_is_still_accepted() -> None:
    service, sender = make_service(secret=StaticSecret(token=OLD_TOKEN))
    notes = Notes()

    service.accept_outbound_message(_message(), SOAP, OLD_TOKEN, note=notes)

    assert notes.keys["auth"] == "outbound_message_token"
    assert len(sender.requests(ORDER_QUEUE_URL)) == 1


def test_a_token_of_the_list_is_accepted_and_named_by_its_place() -> None:
    service, sender = make_service(secret=StaticSecret(token=None, tokens=[NEW_TOKEN]))
    notes = Notes()

    service.accept_outbound_message(_message(), SOAP, NEW_TOKEN, note=notes)

    assert notes.keys["auth"] == "outbound_message_tokens[0]"
    assert notes.keys["action_id"] == "04k5g000000Ab1CAAS"
    assert len(sender.requests()) == 1


@pytest.mark.parametrize(
    "secret",
    [
        StaticSecret(token=OLD_TOKEN, tokens=[NEW_TOKEN]),  # the old key beside the new list
        StaticSecret(token=None, tokens=[NEW_TOKEN, OLD_TOKEN]),  # both in the list
    ],
)
def test_during_a_rotation_the_old_and_the_new_token_are_both_accepted(secret: StaticSecret) -> None:
    service, sender = make_service(secret=secret)
    seen = []

    for token in (OLD_TOKEN, NEW_TOKEN, OLD_TOKEN):
        notes = Notes()
        service.accept_outbound_message(_message(), SOAP, token, note=notes)
        seen.append(notes.keys["auth"])

    assert len(sender.requests()) == 3
    assert seen[0] == seen[2] != seen[1]


def test_after_the_rotation_only_the_new_token_is_accepted() -> None:
    service, sender = make_service(secret=StaticSecret(token=None, tokens=[NEW_TOKEN]))

    with pytest.raises(SenderNotAllowed, match="wrong"):
        service.accept_outbound_message(_message(), SOAP, OLD_TOKEN)
    service.accept_outbound_message(_message(), SOAP, NEW_TOKEN)

    assert len(sender.requests()) == 1


def test_tokens_are_compared_in_constant_time_every_one_of_them_over_digests_of_one_length(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real_compare = hmac.compare_digest

    def recording_compare(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(sender_checks.hmac, "compare_digest", recording_compare)
    tokens = (
        ("outbound_message_tokens[0]", SecretStr(NEW_TOKEN)),
        ("outbound_message_token", SecretStr(OLD_TOKEN)),
    )

    for provided, expected in (("short", None), (NEW_TOKEN, tokens[0][0]), (OLD_TOKEN + "-longer", None)):
        calls.clear()
        assert sender_checks.matching_token_key(provided, tokens) == expected
        # Every token is compared (no early exit on the first match), always 32 bytes against 32 bytes,
        # so neither the provided length nor which token matched changes what is compared.
        assert len(calls) == len(tokens)
        assert all(len(a) == len(b) == 32 for a, b in calls)
        assert all(provided.encode() not in (a, b) for a, b in calls)


def test_a_token_in_the_url_does_not_count_when_the_secret_has_none() -> None:
    service, sender = make_service(secret=StaticSecret(token=None), client_cert_subject=SUBJECT)

    with pytest.raises(SenderNotAllowed, match="no client certificate was presented"):
        service.accept_outbound_message(_message(), SOAP, "any-token-at-all")

    assert sender.attempts == 0


def test_the_secret_takes_a_list_of_non_empty_strings_and_at_most_ten() -> None:
    secret = IntakeSecret.model_validate(
        {"outbound_message_tokens": [NEW_TOKEN, OLD_TOKEN], "outbound_message_token": OLD_TOKEN}
    )
    assert [key for key, _ in secret.outbound_tokens()] == [
        "outbound_message_tokens[0]",
        "outbound_message_tokens[1]",
        "outbound_message_token",
    ]
    assert IntakeSecret.model_validate({"outbound_message_tokens": None}).outbound_tokens() == ()
    for wrong in (NEW_TOKEN, [NEW_TOKEN, ""], [NEW_TOKEN, 7], ["t"] * (MAX_OUTBOUND_TOKENS + 1)):
        with pytest.raises(ValidationError) as invalid:
            IntakeSecret.model_validate({"outbound_message_tokens": wrong})
        assert NEW_TOKEN not in str(invalid.value)


# ---------------------------------------------------------------- the cold-start check


def _environment(**extra: str) -> dict[str, str]:
    return {"SALESFORCE_ORG_IDS": ORG_ID, "CUSTOMER_QUEUE_URL": "c", "ORDER_QUEUE_URL": "o", **extra}


def test_an_intake_without_token_and_without_mutual_tls_refuses_to_start_naming_the_secret_key() -> None:
    with pytest.raises(IntakeMisconfigured) as refused:
        runtime.intake_service(_environment(ORDER_QUEUE_URL="cold-start-check"))

    message = refused.value.message
    assert "outbound_message_tokens" in message
    assert "outbound_message_token" in message
    assert "OUTBOUND_CLIENT_CERT_SUBJECT" in message
    assert refused.value.http_status == 500


def test_a_failed_cold_start_check_keeps_nothing_so_a_fixed_configuration_is_used_at_once() -> None:
    broken = _environment(ORDER_QUEUE_URL="kept-nothing")
    with pytest.raises(IntakeMisconfigured):
        runtime.intake_service(broken)
    with pytest.raises(IntakeMisconfigured):
        runtime.intake_service(broken)  # checked again, not a cached broken service

    fixed = runtime.intake_service({**broken, "OUTBOUND_CLIENT_CERT_SUBJECT": SUBJECT})

    assert fixed.settings.trusted_client_certificate() is not None


@pytest.mark.parametrize(
    ("secret", "subject", "passes"),
    [
        (StaticSecret(token=None), None, False),
        (StaticSecret(token=OLD_TOKEN), None, True),
        (StaticSecret(token=None, tokens=[NEW_TOKEN]), None, True),
        (StaticSecret(token=None), SUBJECT, True),
    ],
)
def test_the_check_passes_with_a_token_of_either_key_or_mutual_tls(
    secret: StaticSecret, subject: str | None, passes: bool
) -> None:
    service, _ = make_service(secret=secret, client_cert_subject=subject)

    if passes:
        service.check_outbound_authentication()
    else:
        with pytest.raises(IntakeMisconfigured, match="outbound_message_tokens"):
            service.check_outbound_authentication()
    assert secret.reads == 1


def test_a_secret_that_cannot_be_read_at_cold_start_is_a_retryable_503() -> None:
    service, _ = make_service(secret=StaticSecret(unavailable=True))

    with pytest.raises(SecretUnavailable) as failed:
        service.check_outbound_authentication()

    assert failed.value.http_status == 503


def test_tokens_removed_from_the_secret_later_make_requests_fail_as_misconfigured_not_open() -> None:
    secret = StaticSecret(token=OLD_TOKEN)
    service, sender = make_service(secret=secret)
    service.check_outbound_authentication()
    secret.secret = IntakeSecret()  # the refreshed secret has no token any more

    with pytest.raises(IntakeMisconfigured, match="outbound_message_tokens"):
        service.accept_outbound_message(_message(), SOAP, OLD_TOKEN)

    assert sender.attempts == 0


# ---------------------------------------------------------------- mutual TLS


def test_the_trusted_client_certificate_is_accepted_without_a_token() -> None:
    service, sender = make_service(secret=StaticSecret(token=None), client_cert_subject=SUBJECT)
    notes = Notes()

    service.accept_outbound_message(_message(), SOAP, None, _certificate(), note=notes)

    assert notes.keys["auth"] == "client_certificate"
    assert len(sender.requests()) == 1


@pytest.mark.parametrize(
    "configured",
    [
        SUBJECT,
        "CN=proxy.salesforce.test, O=Salesforce\\, Inc., L=San Francisco, ST=California, C=US",  # RFC 4514
        "/C=US/ST=California/L=San Francisco/O=Salesforce, Inc./CN=proxy.salesforce.test",  # OpenSSL legacy
        'commonName=PROXY.salesforce.test,organizationName="Salesforce, Inc.",countryName=US,'
        "stateOrProvinceName=California,localityName=San  Francisco",
    ],
)
def test_a_subject_matches_however_it_is_written(configured: str) -> None:
    trusted = TrustedClientCertificate.from_settings(configured)

    assert trusted.problem_with(_certificate()) is None


@pytest.mark.parametrize(
    ("settings", "certificate", "problem"),
    [
        ({}, _certificate(subject=SUBJECT.replace("proxy", "proxy2")), "its subject is not the trusted one"),
        ({}, _certificate(subject=SUBJECT + ",OU=extra"), "its subject is not the trusted one"),
        ({}, _certificate(subject="not a dn"), "its subject is not a distinguished name"),
        ({"issuer": "CN=Other CA"}, _certificate(), "its issuer is not the trusted one"),
        ({"serial_numbers": ["0b"]}, _certificate(), "its serial number is not a trusted one"),
        ({"serial_numbers": ["0b"]}, _certificate(serial="zz"), "its serial number is not hexadecimal"),
    ],
)
def test_an_untrusted_client_certificate_is_refused_with_what_differs(
    settings: dict[str, Any], certificate: ClientCertificate, problem: str
) -> None:
    service, sender = make_service(
        secret=StaticSecret(token=None),
        client_cert_subject=SUBJECT,
        client_cert_issuer=settings.get("issuer"),
        client_cert_serials=settings.get("serial_numbers", ()),
    )

    with pytest.raises(SenderNotAllowed) as refused:
        service.accept_outbound_message(_message(), SOAP, None, certificate)

    assert refused.value.message == f"the client certificate is not trusted: {problem}"
    assert refused.value.http_status == 403
    assert sender.attempts == 0


def test_issuer_and_serial_numbers_pin_the_certificate_and_either_of_two_serials_passes() -> None:
    trusted = TrustedClientCertificate.from_settings(
        SUBJECT, issuer="CN=Example Client CA G2,O=Example Trust,C=US", serial_numbers=["0A1B2C3D4E5F", "ff"]
    )

    assert trusted.problem_with(_certificate()) is None
    assert trusted.problem_with(_certificate(serial="FF")) is None
    assert trusted.problem_with(_certificate(serial="00:ff")) is None
    assert trusted.problem_with(_certificate(serial="fe")) == "its serial number is not a trusted one"


def test_a_client_certificate_counts_only_when_mutual_tls_is_configured() -> None:
    service, sender = make_service(secret=StaticSecret(token=OLD_TOKEN))

    with pytest.raises(SenderNotAllowed, match="token query parameter is missing"):
        service.accept_outbound_message(_message(), SOAP, None, _certificate())

    assert sender.attempts == 0


def test_with_mutual_tls_a_right_token_still_passes_without_a_certificate_and_refusals_name_both() -> None:
    service, sender = make_service(secret=StaticSecret(token=OLD_TOKEN), client_cert_subject=SUBJECT)

    with pytest.raises(SenderNotAllowed) as refused:
        service.accept_outbound_message(_message(), SOAP, None)
    service.accept_outbound_message(_message(), SOAP, OLD_TOKEN)

    assert refused.value.message == (
        "the token query parameter is missing from the endpoint URL and no client certificate was presented"
    )
    assert len(sender.requests()) == 1


def test_the_certificate_comes_from_the_request_context_identity_only() -> None:
    identity = {
        "sourceIp": "203.0.113.10",
        "clientCert": {
            "clientCertPem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            "subjectDN": SUBJECT,
            "issuerDN": ISSUER,
            "serialNumber": SERIAL,
            "validity": {"notBefore": "May 28 12:30:02 2025 GMT", "notAfter": "Aug  5 09:36:04 2031 GMT"},
        },
    }

    certificate = client_certificate_from_identity(identity)

    assert certificate == _certificate()
    assert client_certificate_from_identity({"sourceIp": "203.0.113.10"}) is None
    assert client_certificate_from_identity({"clientCert": None}) is None
    assert client_certificate_from_identity(None) is None
    assert client_certificate_from_identity({"clientCert": {"subjectDN": 7}}) == ClientCertificate(
        "", "", "", ""
    )


def test_distinguished_names_and_serials_are_parsed_strictly_enough() -> None:
    assert parse_distinguished_name("CN=a\\,b,O=c") == frozenset({("CN", "a,b"), ("O", "c")})
    assert parse_distinguished_name("CN=\\41") == frozenset({("CN", "a")})
    assert parse_distinguished_name("E=x@example.com") == parse_distinguished_name(
        "emailAddress=X@example.com"
    )
    for wrong in ("", "CN", "=x", "just text"):
        with pytest.raises(InvalidDistinguishedName):
            parse_distinguished_name(wrong)
    assert normalise_serial_number("00:0A:ff") == "aff"
    assert normalise_serial_number("0") == "0"
    with pytest.raises(ValueError, match="hexadecimal"):
        normalise_serial_number("12g4")


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"OUTBOUND_CLIENT_CERT_ISSUER": "CN=x"}, "OUTBOUND_CLIENT_CERT_SUBJECT"),
        ({"OUTBOUND_CLIENT_CERT_SERIALS": "0a"}, "OUTBOUND_CLIENT_CERT_SUBJECT"),
        ({"OUTBOUND_CLIENT_CERT_SUBJECT": "no dn here"}, "distinguished name"),
        ({"OUTBOUND_CLIENT_CERT_SUBJECT": SUBJECT, "OUTBOUND_CLIENT_CERT_SERIALS": "0a,xyz"}, "hexadecimal"),
        ({"INTAKE_SECRET_CACHE_SECONDS": "0"}, "INTAKE_SECRET_CACHE_SECONDS"),
    ],
)
def test_mutual_tls_settings_that_cannot_be_used_are_refused_by_name(
    variables: dict[str, str], named: str
) -> None:
    with pytest.raises(IntakeMisconfigured, match=named):
        load_intake_settings(_environment(**variables))


def test_mutual_tls_settings_are_read_from_the_environment() -> None:
    settings = load_intake_settings(
        _environment(
            OUTBOUND_CLIENT_CERT_SUBJECT=f" {SUBJECT} ",
            OUTBOUND_CLIENT_CERT_ISSUER=ISSUER,
            OUTBOUND_CLIENT_CERT_SERIALS="0a:1b:2c:3d:4e:5f, 77",
            INTAKE_SECRET_CACHE_SECONDS="5",
        )
    )

    trusted = settings.trusted_client_certificate()
    assert trusted is not None
    assert trusted.serial_numbers == frozenset({"a1b2c3d4e5f", "77"})
    assert trusted.problem_with(_certificate()) is None
    assert settings.secret_cache_seconds == 5
    assert load_intake_settings(_environment()).trusted_client_certificate() is None
