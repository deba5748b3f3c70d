"""The intake Lambda handler: routes, response shapes (SOAP Ack / faults, JSON) and event dispatch."""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
from types import ModuleType
from typing import Any

import pytest
from defusedxml.ElementTree import fromstring
from intake_support import (
    FIXTURES,
    NOW,
    ORDER_QUEUE_URL,
    ORG_ID,
    OUTBOUND_TOKEN,
    REPO_ROOT,
    RecordingQueueSender,
    StaticSecret,
    make_service,
    sign,
)

from sfintacct.intake import runtime
from sfintacct.intake.errors import IntakeMisconfigured, SenderNotAllowed
from sfintacct.intake.settings import load_intake_settings

SOAP_ENV = "{http://schemas.xmlsoap.org/soap/envelope/}"
OUTBOUND = "{http://soap.sforce.com/2005/09/outbound}"
EXACT_ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    "<soapenv:Body>"
    '<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">'
    "<Ack>true</Ack>"
    "</notificationsResponse>"
    "</soapenv:Body>"
    "</soapenv:Envelope>"
)


class Context:
    function_name = "IntakeFunction"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:IntakeFunction"
    aws_request_id = "5b0e9c4e-6f1d-4d3a-9a57-2f1c2b7e8a01"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@pytest.fixture(scope="module")
def app_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "intake_app_under_test", REPO_ROOT / "functions/intake/app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def sender(app_module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> RecordingQueueSender:
    service, sender = make_service(secret=StaticSecret(token=OUTBOUND_TOKEN))
    monkeypatch.setattr(app_module, "intake_service", lambda: service)
    return sender


def _outbound_event(
    body: str,
    query: dict[str, str] | None = None,
    content_type: str = "text/xml; charset=utf-8",
    base64_body: bool = False,
) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(
        (REPO_ROOT / "events/apigw_outbound_message.json").read_text(encoding="utf-8")
    )
    event["headers"]["Content-Type"] = content_type
    event["multiValueHeaders"]["Content-Type"] = [content_type]
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    if base64_body:
        event["body"] = base64.b64encode(body.encode()).decode()
        event["isBase64Encoded"] = True
    else:
        event["body"] = body
    return event


def _fault(response: dict[str, Any]) -> tuple[str, str]:
    root = fromstring(response["body"])
    fault = root.find(f"{SOAP_ENV}Body/{SOAP_ENV}Fault")
    assert fault is not None
    return fault.findtext("faultcode") or "", fault.findtext("faultstring") or ""


def _content_type(response: dict[str, Any]) -> str:
    headers = {
        **response.get("headers", {}),
        **{k: v[-1] for k, v in response.get("multiValueHeaders", {}).items()},
    }
    return str(headers["Content-Type"])


def test_an_accepted_outbound_message_gets_the_exact_ack(
    app_module: ModuleType, sender: RecordingQueueSender
) -> None:
    body = (FIXTURES / "valid/opportunity_closed_won.xml").read_text(encoding="utf-8")

    response = app_module.lambda_handler(_outbound_event(body, {"token": OUTBOUND_TOKEN}), Context())

    assert response["statusCode"] == 200
    assert _content_type(response) == "text/xml"
    assert response["body"] == EXACT_ACK
    ack = fromstring(response["body"]).find(f"{SOAP_ENV}Body/{OUTBOUND}notificationsResponse/{OUTBOUND}Ack")
    assert ack is not None
    assert ack.text == "true"
    assert len(sender.requests(ORDER_QUEUE_URL)) == 1


def test_a_base64_encoded_body_is_decoded(app_module: ModuleType, sender: RecordingQueueSender) -> None:
    body = (FIXTURES / "valid/accounts_several_non_ascii.xml").read_text(encoding="utf-8")

    response = app_module.lambda_handler(
        _outbound_event(body, {"token": OUTBOUND_TOKEN}, base64_body=True), Context()
    )

    assert response["statusCode"] == 200
    assert [r.record_id for r in sender.requests()] == [
        "0015g00000Nt4XaAAJ",
        "0015g00000Nt4XbAAJ",
        "0015g00000Nt4XcAAJ",
    ]


@pytest.mark.parametrize(
    ("fixture", "query", "content_type", "status", "faultstring"),
    [
        ("hostile/billion_laughs.xml", {"token": OUTBOUND_TOKEN}, "text/xml", 400, "DTD"),
        (
            "valid/opportunity_closed_won.xml",
            {"token": "nope"},
            "text/xml",
            403,
            "token query parameter is wrong",
        ),
        ("valid/opportunity_closed_won.xml", None, "text/xml", 403, "token query parameter is missing"),
        (
            "valid/opportunity_closed_won.xml",
            {"token": OUTBOUND_TOKEN},
            "application/json",
            400,
            "Content-Type",
        ),
        ("hostile/wrong_org.xml", {"token": OUTBOUND_TOKEN}, "text/xml", 403, "not allowed"),
        ("hostile/unsupported_object_contact.xml", {"token": OUTBOUND_TOKEN}, "text/xml", 400, "'Contact'"),
    ],
)
def test_refusals_are_soap_client_faults_with_the_reason(
    app_module: ModuleType,
    sender: RecordingQueueSender,
    fixture: str,
    query: dict[str, str] | None,
    content_type: str,
    status: int,
    faultstring: str,
) -> None:
    body = (FIXTURES / fixture).read_text(encoding="utf-8")

    response = app_module.lambda_handler(_outbound_event(body, query, content_type), Context())

    assert response["statusCode"] == status
    assert _content_type(response) == "text/xml"
    code, text = _fault(response)
    assert code == "soapenv:Client"
    assert faultstring in text
    assert "Ack" not in response["body"]
    assert sender.attempts == 0


def test_an_enqueue_failure_is_a_503_server_fault_and_no_ack(
    app_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, _ = make_service(sender=RecordingQueueSender(fail_on_batch=1))
    monkeypatch.setattr(app_module, "intake_service", lambda: service)
    body = (FIXTURES / "valid/opportunity_closed_won.xml").read_text(encoding="utf-8")

    response = app_module.lambda_handler(_outbound_event(body, {"token": OUTBOUND_TOKEN}), Context())

    assert response["statusCode"] == 503
    code, text = _fault(response)
    assert code == "soapenv:Server"
    assert "could not be reached" in text
    assert "Ack" not in response["body"]


def test_an_unexpected_error_is_a_500_server_fault(
    app_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> Any:
        raise RuntimeError("boom with internal details")

    monkeypatch.setattr(app_module, "intake_service", broken)

    response = app_module.lambda_handler(_outbound_event("<x/>"), Context())

    assert response["statusCode"] == 500
    code, text = _fault(response)
    assert code == "soapenv:Server"
    assert "boom" not in text


def test_a_misconfigured_intake_answers_a_server_fault_naming_the_variable(
    app_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALESFORCE_ORG_IDS", ORG_ID)
    monkeypatch.delenv("CUSTOMER_QUEUE_URL", raising=False)
    monkeypatch.setenv("ORDER_QUEUE_URL", ORDER_QUEUE_URL)

    response = app_module.lambda_handler(_outbound_event("<x/>"), Context())

    assert response["statusCode"] == 500
    assert "CUSTOMER_QUEUE_URL" in _fault(response)[1]


def _events_request(body: bytes, timestamp: str | None, signature: str | None) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(
        (REPO_ROOT / "events/apigw_platform_event.json").read_text(encoding="utf-8")
    )
    for name, value in (("X-Signature-Timestamp", timestamp), ("X-Signature", signature)):
        event["headers"].pop(name, None)
        event["multiValueHeaders"].pop(name, None)
        if value is not None:
            event["headers"][name.lower()] = value  # header names are case-insensitive
            event["multiValueHeaders"][name.lower()] = [value]
    event["body"] = body.decode()
    return event


def test_a_signed_event_is_answered_202_with_its_producer_id(
    app_module: ModuleType, sender: RecordingQueueSender
) -> None:
    body = json.dumps({"EventUuid": "e-1", "OpportunityId__c": "0065g00000Bq3RTAAZ"}).encode()
    timestamp = int(NOW.timestamp())

    response = app_module.lambda_handler(
        _events_request(body, str(timestamp), sign(body, timestamp)), Context()
    )

    assert response["statusCode"] == 202
    assert _content_type(response) == "application/json"
    assert json.loads(response["body"]) == {"accepted": 1, "producer_ids": ["e-1"]}
    assert [r.producer_id for r in sender.requests()] == ["e-1"]


@pytest.mark.parametrize(
    ("body", "sign_it", "status", "error"),
    [
        (b'{"EventUuid": "e-1", "OpportunityId__c": "0065g00000Bq3RTAAZ"}', False, 401, "X-Signature"),
        (b"{not json", True, 400, "not valid JSON"),
        (b'{"EventUuid": "e-1"}', True, 400, "names no record"),
    ],
)
def test_event_errors_are_json(
    app_module: ModuleType, sender: RecordingQueueSender, body: bytes, sign_it: bool, status: int, error: str
) -> None:
    timestamp = int(NOW.timestamp())
    signature = sign(body, timestamp) if sign_it else "00" * 32

    response = app_module.lambda_handler(_events_request(body, str(timestamp), signature), Context())

    assert response["statusCode"] == status
    assert error in json.loads(response["body"])["error"]
    assert sender.attempts == 0


def test_eventbridge_events_are_dispatched_to_the_relay_path(
    app_module: ModuleType, sender: RecordingQueueSender
) -> None:
    event = json.loads(
        (REPO_ROOT / "events/eventbridge_opportunity_change_event.json").read_text(encoding="utf-8")
    )

    result = app_module.lambda_handler(event, Context())

    assert result == {"accepted": 1, "ignored": []}
    assert len(sender.requests(ORDER_QUEUE_URL)) == 1


def test_a_refused_eventbridge_event_raises_so_it_is_retried_then_dead_lettered(
    app_module: ModuleType, sender: RecordingQueueSender
) -> None:
    event = json.loads((REPO_ROOT / "events/eventbridge_platform_event.json").read_text(encoding="utf-8"))
    event = copy.deepcopy(event)
    event["source"] = "aws.partner/salesforce.com/00D5g000009QwErEAK/0YL5g000000Rl4YGAS"

    with pytest.raises(SenderNotAllowed):
        app_module.lambda_handler(event, Context())
    assert sender.attempts == 0


def test_an_unknown_event_shape_is_an_error(app_module: ModuleType, sender: RecordingQueueSender) -> None:
    with pytest.raises(ValueError, match="unrecognised event"):
        app_module.lambda_handler({"Records": []}, Context())


def test_settings_normalise_ids_and_name_the_wrong_variable() -> None:
    settings = load_intake_settings(
        {
            "SALESFORCE_ORG_IDS": " 00D5g000004ZxYt , 00D5g000009QwErEAK ",
            "CUSTOMER_QUEUE_URL": "c",
            "ORDER_QUEUE_URL": "o",
            "SALESFORCE_INTEGRATION_USER_ID": "",
            "EVENT_MAX_AGE_SECONDS": "120",
        }
    )
    assert settings.org_ids == (ORG_ID, "00D5g000009QwErEAK")
    assert settings.integration_user_id is None
    assert settings.event_max_age_seconds == 120
    with pytest.raises(IntakeMisconfigured, match="SALESFORCE_ORG_IDS"):
        load_intake_settings(
            {"SALESFORCE_ORG_IDS": "0015g00000Lz8Kp", "CUSTOMER_QUEUE_URL": "c", "ORDER_QUEUE_URL": "o"}
        )
    with pytest.raises(IntakeMisconfigured, match="EVENT_MAX_AGE_SECONDS"):
        load_intake_settings(
            {
                "SALESFORCE_ORG_IDS": ORG_ID,
                "CUSTOMER_QUEUE_URL": "c",
                "ORDER_QUEUE_URL": "o",
                "EVENT_MAX_AGE_SECONDS": "0",
            }
        )


def test_the_service_is_built_once_per_configuration() -> None:
    environment = {
        "SALESFORCE_ORG_IDS": ORG_ID,
        "CUSTOMER_QUEUE_URL": "c",
        "ORDER_QUEUE_URL": "o",
        # No secret here: mutual TLS is what lets this intake accept Outbound Messages.
        "OUTBOUND_CLIENT_CERT_SUBJECT": "CN=client.example.com",
    }

    first = runtime.intake_service(environment)

    assert runtime.intake_service(dict(environment)) is first
    assert runtime.intake_service({**environment, "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:1"}) is not first
