"""Every intake log line of an HTTP request is traceable: who sent it, API Gateway's request id, the
ActionId once known, and for a refusal the reason. No token and no signature ever reaches a log line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from intake_support import (
    AUTHORIZED,
    FIXTURES,
    NOW,
    OUTBOUND_TOKEN,
    SIGNING_KEY,
    LambdaContext,
    StaticSecret,
    api_gateway_event,
    load_intake_app,
    make_service,
    sign,
)

SOAP = "text/xml; charset=utf-8"
SOURCE_IP = "203.0.113.10"
SUBJECT = "C=US,O=Salesforce\\, Inc.,CN=proxy.salesforce.test"
REQUEST_KEYS = ("source_ip", "user_agent", "api_request_id")


class Collected(logging.Handler):
    """The intake logger's lines as the Powertools formatter writes them (raw text and parsed)."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(text) for text in self.texts]

    def line(self, message: str) -> dict[str, Any]:
        [line] = [line for line in self.lines if line["message"] == message]
        return line


@pytest.fixture(scope="module")
def app_module() -> ModuleType:
    return load_intake_app("intake_app_logging")


@pytest.fixture
def logs(app_module: ModuleType) -> Iterator[Collected]:
    handler = Collected(app_module.logger.registered_formatter)
    app_module.logger.addHandler(handler)
    try:
        yield handler
    finally:
        app_module.logger.removeHandler(handler)


def _use(app_module: ModuleType, monkeypatch: pytest.MonkeyPatch, **service_options: Any) -> None:
    service, _ = make_service(**service_options)
    monkeypatch.setattr(app_module, "intake_service", lambda: service)


def _outbound(fixture: str, query: dict[str, str] | None, **identity: Any) -> dict[str, Any]:
    body = (FIXTURES / fixture).read_text(encoding="utf-8")
    event = api_gateway_event("apigw_outbound_message.json", body, {"Content-Type": SOAP}, query=query or {})
    event["requestContext"]["identity"].update(identity)
    return event


def _signed_event(signature: str) -> dict[str, Any]:
    body = b'{"EventUuid": "e-1", "OpportunityId__c": "0065g00000Bq3RTAAZ"}'
    timestamp = int(NOW.timestamp())
    headers = {"X-Signature-Timestamp": str(timestamp), "X-Signature": signature or sign(body, timestamp)}
    return api_gateway_event("apigw_platform_event.json", body.decode(), headers)


def _assert_no_secret_in(logs: Collected, *secrets: str) -> None:
    text = "\n".join(logs.texts)
    for secret in (OUTBOUND_TOKEN, SIGNING_KEY, *secrets):
        assert secret not in text


def test_an_accepted_outbound_message_logs_sender_request_id_action_id_and_how_it_was_authenticated(
    app_module: ModuleType, logs: Collected, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(app_module, monkeypatch)

    response = app_module.lambda_handler(
        _outbound("valid/opportunity_closed_won.xml", AUTHORIZED), LambdaContext()
    )

    assert response["statusCode"] == 200
    line = logs.line("outbound message accepted")
    assert line["source_ip"] == SOURCE_IP
    assert line["user_agent"] == "Jakarta Commons-HttpClient/3.1"
    assert line["api_request_id"] == "5b0e9c4e-6f1d-4d3a-9a57-2f1c2b7e8a01"
    assert line["action_id"] == "04k5g000000Ab1CAAS"
    assert line["auth"] == "outbound_message_token"
    assert line["http_path"] == "/salesforce/outbound"
    assert line["record_ids"] == ["0065g00000Bq3RTAAZ"]  # what "what happened to a record" looks for
    _assert_no_secret_in(logs)


def test_a_refusal_before_parsing_logs_the_reason_and_what_is_known_and_never_the_token(
    app_module: ModuleType, logs: Collected, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(app_module, monkeypatch)
    forged = "forged-" + OUTBOUND_TOKEN[:10]

    response = app_module.lambda_handler(
        _outbound("valid/opportunity_closed_won.xml", {"token": forged}), LambdaContext()
    )

    assert response["statusCode"] == 403
    line = logs.line("outbound message refused")
    assert line["level"] == "WARNING"
    assert line["status"] == 403
    assert line["reason"] == "the token query parameter is wrong"
    assert all(line[key] for key in REQUEST_KEYS)
    assert "action_id" not in line  # the body was never parsed
    assert "auth" not in line
    _assert_no_secret_in(logs, forged)


def test_a_refusal_after_parsing_carries_the_action_id(
    app_module: ModuleType, logs: Collected, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(app_module, monkeypatch)

    response = app_module.lambda_handler(_outbound("hostile/wrong_org.xml", AUTHORIZED), LambdaContext())

    assert response["statusCode"] == 403
    line = logs.line("outbound message refused")
    assert line["action_id"] == "04k5g000000Ab1CAAS"
    assert line["auth"] == "outbound_message_token"
    assert "not allowed" in line["reason"]
    assert all(line[key] for key in REQUEST_KEYS)


def test_a_client_certificate_is_logged_by_subject_serial_and_expiry_and_only_for_its_request(
    app_module: ModuleType, logs: Collected, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(app_module, monkeypatch, secret=StaticSecret(token=None), client_cert_subject=SUBJECT)
    certificate = {
        "clientCertPem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "subjectDN": SUBJECT,
        "issuerDN": "CN=Example Client CA",
        "serialNumber": "0a:1b",
        "validity": {"notBefore": "May 28 12:30:02 2025 GMT", "notAfter": "Aug  5 09:36:04 2031 GMT"},
    }

    accepted = app_module.lambda_handler(
        _outbound("valid/opportunity_closed_won.xml", None, clientCert=certificate), LambdaContext()
    )
    refused = app_module.lambda_handler(_outbound("valid/opportunity_closed_won.xml", None), LambdaContext())

    assert (accepted["statusCode"], refused["statusCode"]) == (200, 403)
    line = logs.line("outbound message accepted")
    assert line["auth"] == "client_certificate"
    assert line["client_cert_subject"] == SUBJECT
    assert line["client_cert_serial"] == "0a:1b"
    assert line["client_cert_not_after"] == "Aug  5 09:36:04 2031 GMT"
    assert "MIIB" not in "\n".join(logs.texts)
    refusal = logs.line("outbound message refused")
    assert refusal["reason"] == "no client certificate was presented"
    assert not any(key.startswith("client_cert") for key in refusal)  # nothing left from the last request


def test_a_misconfigured_intake_logs_an_error_naming_the_missing_secret_key(
    app_module: ModuleType, logs: Collected, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(app_module, monkeypatch, secret=StaticSecret(token=None))

    response = app_module.lambda_handler(
        _outbound("valid/opportunity_closed_won.xml", AUTHORIZED), LambdaContext()
    )

    assert response["statusCode"] == 500
    line = logs.line("outbound message refused")
    assert line["level"] == "ERROR"
    assert "outbound_message_tokens" in line["reason"]
    assert line["source_ip"] == SOURCE_IP


def test_an_unexpected_failure_is_logged_with_the_request_keys(
    app_module: ModuleType, logs: Collected, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(app_module, "intake_service", broken)

    response = app_module.lambda_handler(
        _outbound("valid/opportunity_closed_won.xml", AUTHORIZED), LambdaContext()
    )

    assert response["statusCode"] == 500
    line = logs.line("outbound message failed")
    assert all(line[key] for key in REQUEST_KEYS)
    _assert_no_secret_in(logs)


@pytest.mark.parametrize(("signature", "status"), [("", 202), ("ab" * 32, 401)])
def test_signed_events_log_the_sender_and_never_the_signature(
    app_module: ModuleType, logs: Collected, monkeypatch: pytest.MonkeyPatch, signature: str, status: int
) -> None:
    _use(app_module, monkeypatch)
    event = _signed_event(signature)
    sent_signature = event["headers"]["X-Signature"]

    response = app_module.lambda_handler(event, LambdaContext())

    assert response["statusCode"] == status
    [line] = logs.lines
    assert line["source_ip"] == SOURCE_IP
    assert line["user_agent"] == "SFDC-Callout/62.0"
    assert line["api_request_id"] == "7c3d1a2b-8e4f-4a6b-b1c2-3d4e5f6a7b02"
    if status == 401:
        assert line["message"] == "signed event refused"
        assert "X-Signature" in line["reason"]
    _assert_no_secret_in(logs, sent_signature)


def test_a_user_agent_is_logged_printable_and_bounded(
    app_module: ModuleType, logs: Collected, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(app_module, monkeypatch)
    event = _outbound(
        "valid/opportunity_closed_won.xml", AUTHORIZED, userAgent="evil\nlevel=ERROR " + "x" * 500
    )

    app_module.lambda_handler(event, LambdaContext())

    user_agent = logs.line("outbound message accepted")["user_agent"]
    assert user_agent.startswith("evil?level=ERROR ")
    assert len(user_agent) == 203
    assert user_agent.endswith("...")
