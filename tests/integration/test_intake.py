"""The intake handler over HTTP through the local API, with SQS and Secrets Manager served by moto.

What Salesforce sees (status, SOAP Ack or fault) and what the workers get (one SQS message per
notification, on the right queue, with a valid SyncRequest body) are checked end to end.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

import boto3
import httpx
import pytest
from defusedxml.ElementTree import fromstring
from moto.server import ThreadedMotoServer

from sandbox.local_api import MAX_BODY_BYTES, LocalApi, load_intake_handler, start_local_api
from sfintacct.salesforce_ids import case_safe_suffix
from sfintacct.sync_request import SyncRequest

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "outbound"
ORG_ID = "00D5g000004ZxYtEAK"
SOAP_ENV = "{http://schemas.xmlsoap.org/soap/envelope/}"
OUTBOUND = "{http://soap.sforce.com/2005/09/outbound}"
SOAP_HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}


@dataclass(frozen=True)
class IntakeStack:
    api: LocalApi
    sqs: SQSClient
    customer_queue_url: str
    order_queue_url: str
    outbound_token: str
    signing_key: str

    def outbound_url(self, token: str | None = None) -> str:
        token = self.outbound_token if token is None else token
        return f"{self.api.url}/salesforce/outbound?token={token}"

    def drain(self, queue_url: str) -> list[dict[str, Any]]:
        """Every message now on the queue (received and deleted)."""
        messages: list[dict[str, Any]] = []
        while True:
            response = self.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
            )
            batch = response.get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            messages.extend(batch)


@pytest.fixture(scope="module")
def intake_stack() -> Iterator[IntakeStack]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
        secretsmanager = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1")
        customer_queue_url = sqs.create_queue(QueueName="customer-upsert")["QueueUrl"]
        order_queue_url = sqs.create_queue(QueueName="opportunity-to-order")["QueueUrl"]
        outbound_token = secrets.token_urlsafe(24)
        signing_key = secrets.token_hex(32)
        secret_arn = secretsmanager.create_secret(
            Name="intake",
            SecretString=json.dumps(
                {"outbound_message_token": outbound_token, "event_signing_key": signing_key}
            ),
        )["ARN"]
        with pytest.MonkeyPatch.context() as environment:
            environment.setenv("AWS_ENDPOINT_URL_SQS", endpoint)
            environment.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint)
            environment.setenv("SALESFORCE_ORG_IDS", ORG_ID)
            environment.setenv("CUSTOMER_QUEUE_URL", customer_queue_url)
            environment.setenv("ORDER_QUEUE_URL", order_queue_url)
            environment.setenv("INTAKE_SECRET_ARN", secret_arn)
            environment.setenv("SALESFORCE_INTEGRATION_USER_ID", "0055g00000IntUsAAJ")
            environment.setenv("POWERTOOLS_METRICS_DISABLED", "true")
            api = start_local_api(load_intake_handler(), port=0)
            try:
                yield IntakeStack(api, sqs, customer_queue_url, order_queue_url, outbound_token, signing_key)
            finally:
                api.stop()
    finally:
        moto.stop()


@pytest.fixture
def stack(intake_stack: IntakeStack) -> IntakeStack:
    """The module's stack with both queues empty."""
    intake_stack.drain(intake_stack.customer_queue_url)
    intake_stack.drain(intake_stack.order_queue_url)
    return intake_stack


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _is_ack(response: httpx.Response) -> bool:
    ack = fromstring(response.text).find(f"{SOAP_ENV}Body/{OUTBOUND}notificationsResponse/{OUTBOUND}Ack")
    return ack is not None and ack.text == "true"


def _fault(response: httpx.Response) -> tuple[str, str]:
    fault = fromstring(response.text).find(f"{SOAP_ENV}Body/{SOAP_ENV}Fault")
    assert fault is not None, response.text
    return fault.findtext("faultcode") or "", fault.findtext("faultstring") or ""


def _salesforce_id(key_prefix: str, number: int) -> str:
    body = f"{key_prefix}5gQr{number:08d}"
    return body + case_safe_suffix(body)


def test_an_outbound_message_yields_one_sqs_message_per_notification_on_the_customer_queue(
    stack: IntakeStack,
) -> None:
    response = httpx.post(
        stack.outbound_url(), content=_fixture("valid/accounts_several_non_ascii.xml"), headers=SOAP_HEADERS
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert _is_ack(response)
    messages = stack.drain(stack.customer_queue_url)
    assert stack.drain(stack.order_queue_url) == []
    requests = sorted(
        (SyncRequest.model_validate_json(m["Body"]) for m in messages), key=lambda r: r.producer_id
    )
    assert [r.record_id for r in requests] == [
        "0015g00000Nt4XaAAJ",
        "0015g00000Nt4XbAAJ",
        "0015g00000Nt4XcAAJ",
    ]
    # Which record, not what it holds: the worker reads the Account itself.
    assert all("株式会社サンプル" not in m["Body"] for m in messages)
    assert all(r.org_id == ORG_ID and r.source == "outbound_message" for r in requests)
    attributes = {m["MessageAttributes"]["producer_id"]["StringValue"] for m in messages}
    assert attributes == {r.producer_id for r in requests}


def test_a_closed_won_opportunity_lands_on_the_order_queue(stack: IntakeStack) -> None:
    response = httpx.post(
        stack.outbound_url(), content=_fixture("valid/opportunity_closed_won.xml"), headers=SOAP_HEADERS
    )

    assert response.status_code == 200
    [message] = stack.drain(stack.order_queue_url)
    request = SyncRequest.model_validate_json(message["Body"])
    assert (request.object_type, request.record_id) == ("Opportunity", "0065g00000Bq3RTAAZ")
    assert message["MessageAttributes"]["object_type"]["StringValue"] == "Opportunity"
    assert stack.drain(stack.customer_queue_url) == []


def test_one_hundred_notifications_give_one_hundred_messages(stack: IntakeStack) -> None:
    notifications = "".join(
        f"<Notification><Id>{_salesforce_id('04l', n)}</Id>"
        '<sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"<sf:Id>{_salesforce_id('006', n)}</sf:Id></sObject></Notification>"
        for n in range(100)
    )
    body = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        f'<notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>{ORG_ID}</OrganizationId>'
        f"{notifications}</notifications></soapenv:Body></soapenv:Envelope>"
    )

    response = httpx.post(stack.outbound_url(), content=body.encode(), headers=SOAP_HEADERS)

    assert response.status_code == 200
    messages = stack.drain(stack.order_queue_url)
    record_ids = {SyncRequest.model_validate_json(m["Body"]).record_id for m in messages}
    assert record_ids == {_salesforce_id("006", n) for n in range(100)}


@pytest.mark.parametrize(
    ("name", "token", "content_type", "status", "reason"),
    [
        ("hostile/billion_laughs.xml", None, "text/xml", 400, "DTD"),
        ("hostile/external_entity.xml", None, "text/xml", 400, "DTD"),
        ("hostile/truncated.xml", None, "text/xml", 400, "not well-formed"),
        ("hostile/second_notification_bad_id.xml", None, "text/xml", 400, "Notification 2"),
        ("hostile/unsupported_object_contact.xml", None, "text/xml", 400, "'Contact'"),
        ("hostile/wrong_org.xml", None, "text/xml", 403, "not allowed"),
        ("valid/opportunity_closed_won.xml", "wrong", "text/xml", 403, "token"),
        ("valid/opportunity_closed_won.xml", None, "application/json", 400, "Content-Type"),
    ],
)
def test_a_refused_message_gets_a_fault_and_leaves_the_queues_empty(
    stack: IntakeStack, name: str, token: str | None, content_type: str, status: int, reason: str
) -> None:
    response = httpx.post(
        stack.outbound_url(token), content=_fixture(name), headers={"Content-Type": content_type}
    )

    assert response.status_code == status
    code, text = _fault(response)
    assert code == "soapenv:Client"
    assert reason in text
    assert stack.drain(stack.customer_queue_url) == []
    assert stack.drain(stack.order_queue_url) == []


def _large_outbound_message(count: int, description_length: int) -> tuple[bytes, list[str]]:
    """An Outbound Message of `count` won Opportunities with a long Description each, and their ids."""
    record_ids = [_salesforce_id("006", n) for n in range(count)]
    notifications = []
    for n, record_id in enumerate(record_ids):
        text = f"Deal {n}: scope & terms <v2> for Zürich. " * description_length
        description = escape(text[:description_length])
        notifications.append(
            f"<Notification><Id>{_salesforce_id('04l', n)}</Id>"
            '<sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
            f"<sf:Id>{record_id}</sf:Id><sf:Description>{description}</sf:Description>"
            "<sf:IsWon>true</sf:IsWon><sf:LastModifiedDate>2026-11-28T16:20:11.000Z</sf:LastModifiedDate>"
            "</sObject></Notification>"
        )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{ORG_ID}</OrganizationId><ActionId>04k5g000000Ab1CAAS</ActionId>"
        '<SessionId xsi:nil="true"/>'
        f"{''.join(notifications)}</notifications></soapenv:Body></soapenv:Envelope>"
    )
    return body.encode(), record_ids


def test_one_hundred_notifications_with_32000_character_descriptions_are_acknowledged_and_queued_small(
    stack: IntakeStack,
) -> None:
    """3.4 MB as Salesforce sends it once an admin adds Description; the queue messages stay tiny."""
    body, record_ids = _large_outbound_message(100, 32_000)
    assert len(body) > 3_200_000

    response = httpx.post(stack.outbound_url(), content=body, headers=SOAP_HEADERS, timeout=30)

    assert response.status_code == 200, response.text
    assert _is_ack(response)
    messages = stack.drain(stack.order_queue_url)
    assert sorted(SyncRequest.model_validate_json(m["Body"]).record_id for m in messages) == record_ids
    assert max(len(m["Body"].encode()) for m in messages) < 512


def test_a_body_larger_than_a_lambda_request_gets_413(stack: IntakeStack) -> None:
    body = _fixture("valid/opportunity_closed_won.xml").replace(
        b"Closed Won<", b"Closed Won" + b" " * (6 * 1024 * 1024) + b"<"
    )

    response = httpx.post(stack.outbound_url(), content=body, headers=SOAP_HEADERS, timeout=30)

    assert response.status_code == 413
    code, text = _fault(response)
    assert code == "soapenv:Client"
    assert "6 MiB" in text
    assert stack.drain(stack.order_queue_url) == []


def test_when_sqs_is_unavailable_salesforce_gets_a_503_fault_and_no_ack(
    stack: IntakeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a local port with nothing listening
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", f"http://127.0.0.1:{closed_port}")

    response = httpx.post(
        stack.outbound_url(),
        content=_fixture("valid/opportunity_closed_won.xml"),
        headers=SOAP_HEADERS,
        timeout=30,
    )

    assert response.status_code == 503
    code, text = _fault(response)
    assert code == "soapenv:Server"
    assert "work queue" in text
    assert "Ack" not in response.text


def test_a_signed_platform_event_is_enqueued_and_a_tampered_one_refused(stack: IntakeStack) -> None:
    import hashlib  # noqa: PLC0415
    import hmac  # noqa: PLC0415

    body = json.dumps({"EventUuid": "8f0c", "OpportunityId__c": "0065g00000Bq3RTAAZ"}).encode()
    timestamp = str(int(time.time()))
    signature = hmac.new(
        stack.signing_key.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Signature-Timestamp": timestamp,
        "X-Signature": signature,
    }

    accepted = httpx.post(f"{stack.api.url}/salesforce/events", content=body, headers=headers)
    refused = httpx.post(
        f"{stack.api.url}/salesforce/events", content=body.replace(b"8f0c", b"8f0d"), headers=headers
    )

    assert accepted.status_code == 202
    assert accepted.json() == {"accepted": 1, "producer_ids": ["8f0c"]}
    assert refused.status_code == 401
    assert "X-Signature" in refused.json()["error"]
    [message] = stack.drain(stack.order_queue_url)
    assert SyncRequest.model_validate_json(message["Body"]).producer_id == "8f0c"


# ---------------------------------------------------------------- the local API itself


@pytest.fixture
def echo_api() -> Iterator[tuple[LocalApi, list[tuple[dict[str, Any], Any]]]]:
    calls: list[tuple[dict[str, Any], Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append((event, context))
        if event["path"] == "/boom":
            raise RuntimeError("handler failure")
        if event["path"] == "/binary":
            return {
                "statusCode": 200,
                "headers": {"Content-Type": "application/octet-stream"},
                "body": "AAEC/w==",
                "isBase64Encoded": True,
            }
        return {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": json.dumps({"seen": event["body"]}),
            "isBase64Encoded": False,
        }

    api = start_local_api(handler, port=0)
    try:
        yield api, calls
    finally:
        api.stop()


def test_requests_become_api_gateway_rest_proxy_events(echo_api: tuple[LocalApi, list[Any]]) -> None:
    api, calls = echo_api

    response = httpx.post(
        f"{api.url}/salesforce/outbound?token=abc&x=1&x=2",
        content="héllo".encode(),
        headers={"Content-Type": "text/xml", "X-Multi": "one"},
    )

    assert response.status_code == 201
    assert response.json() == {"seen": "héllo"}
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    [(event, context)] = calls
    assert event["resource"] == event["path"] == "/salesforce/outbound"
    assert event["httpMethod"] == "POST"
    assert event["headers"]["Content-Type"] == "text/xml"
    assert event["multiValueHeaders"]["X-Multi"] == ["one"]
    assert event["queryStringParameters"] == {"token": "abc", "x": "2"}
    assert event["multiValueQueryStringParameters"] == {"token": ["abc"], "x": ["1", "2"]}
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    assert event["requestContext"]["stage"]
    assert event["requestContext"]["requestId"]
    assert event["isBase64Encoded"] is False
    assert context.function_name
    assert context.memory_limit_in_mb > 0
    assert context.invoked_function_arn.startswith("arn:aws:lambda:")
    assert context.aws_request_id
    assert 0 < context.get_remaining_time_in_millis() <= 15_000


def test_a_request_without_body_or_query_has_nulls(echo_api: tuple[LocalApi, list[Any]]) -> None:
    api, calls = echo_api
    httpx.get(f"{api.url}/health")
    [(event, _)] = calls
    assert event["body"] is None
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None


def test_base64_responses_are_decoded(echo_api: tuple[LocalApi, list[Any]]) -> None:
    api, _ = echo_api
    assert httpx.get(f"{api.url}/binary").content == b"\x00\x01\x02\xff"


def test_a_failing_handler_gives_502(echo_api: tuple[LocalApi, list[Any]]) -> None:
    api, _ = echo_api
    response = httpx.get(f"{api.url}/boom")
    assert response.status_code == 502
    assert response.json() == {"message": "Internal server error"}


def test_bodies_over_ten_megabytes_are_refused_like_api_gateway(echo_api: tuple[LocalApi, list[Any]]) -> None:
    api, calls = echo_api

    response = httpx.post(f"{api.url}/salesforce/outbound", content=b"x" * (MAX_BODY_BYTES + 1), timeout=30)

    assert response.status_code == 413
    assert calls == []
