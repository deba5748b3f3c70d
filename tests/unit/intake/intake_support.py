"""Test doubles and builders for the intake: a recording queue sender, a static secret, messages."""

from __future__ import annotations

import copy
import hashlib
import hmac
import importlib.util
import json
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from pydantic import SecretStr

from sfintacct.intake.errors import EnqueueFailed, SecretUnavailable
from sfintacct.intake.service import IntakeService
from sfintacct.intake.settings import IntakeSecret, IntakeSettings
from sfintacct.intake.work_queues import QueueMessage
from sfintacct.salesforce_ids import case_safe_suffix
from sfintacct.sync_request import SyncRequest

ORG_ID = "00D5g000004ZxYtEAK"
OTHER_ORG_ID = "00D5g000009QwErEAK"
INTEGRATION_USER_ID = "0055g00000IntUsAAJ"
CUSTOMER_QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/customer-upsert"
ORDER_QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/opportunity-to-order"
NOW = datetime(2026, 11, 28, 16, 20, 12, 345000, tzinfo=UTC)
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "outbound"
REPO_ROOT = Path(__file__).resolve().parents[3]

# Every key of a serialised SyncRequest: ids and timestamps, never field values.
SYNC_REQUEST_KEYS = {
    "source",
    "org_id",
    "object_type",
    "record_id",
    "producer_id",
    "last_modified",
    "received_at",
}

# Generated per test run: no fixed secrets in the repository.
SIGNING_KEY = secrets.token_hex(32)
OUTBOUND_TOKEN = secrets.token_urlsafe(24)
# The query string of an Outbound Message from Salesforce: the endpoint URL ends in ?token=<token>.
AUTHORIZED = {"token": OUTBOUND_TOKEN}


class RecordingQueueSender:
    """A QueueSender that keeps every batch; `fail_on_batch=n` makes the n-th batch (1-based) fail."""

    def __init__(self, fail_on_batch: int | None = None) -> None:
        self.fail_on_batch = fail_on_batch
        self.batches: list[tuple[str, list[QueueMessage]]] = []
        self.attempts = 0

    def send_batch(self, queue_url: str, messages: Sequence[QueueMessage]) -> None:
        self.attempts += 1
        if self.fail_on_batch is not None and self.attempts >= self.fail_on_batch:
            raise EnqueueFailed("the work queue could not be reached (ServiceUnavailable)")
        assert len(messages) <= 10
        self.batches.append((queue_url, list(messages)))

    def messages(self, queue_url: str | None = None) -> list[QueueMessage]:
        return [m for url, batch in self.batches for m in batch if queue_url is None or url == queue_url]

    def requests(self, queue_url: str | None = None) -> list[SyncRequest]:
        return [SyncRequest.model_validate_json(m.body) for m in self.messages(queue_url)]


class StaticSecret:
    """An IntakeSecretSource with fixed values; `unavailable=True` behaves like Secrets Manager down.

    `token` is the single `outbound_message_token` (OUTBOUND_TOKEN unless told), `tokens` the list
    `outbound_message_tokens`. `reads` counts how often the secret was asked for.
    """

    def __init__(
        self,
        token: str | None = OUTBOUND_TOKEN,
        signing_key: str | None = SIGNING_KEY,
        unavailable: bool = False,
        tokens: Sequence[str] = (),
    ) -> None:
        self.secret = IntakeSecret(
            outbound_message_token=SecretStr(token) if token else None,
            outbound_message_tokens=tuple(SecretStr(value) for value in tokens),
            event_signing_key=SecretStr(signing_key) if signing_key else None,
        )
        self.unavailable = unavailable
        self.reads = 0

    def intake_secret(self) -> IntakeSecret:
        self.reads += 1
        if self.unavailable:
            raise SecretUnavailable("the intake secret could not be read (EndpointConnectionError)")
        return self.secret


def make_service(
    *,
    sender: RecordingQueueSender | None = None,
    secret: StaticSecret | None = None,
    org_ids: Sequence[str] = (ORG_ID,),
    integration_user_id: str | None = INTEGRATION_USER_ID,
    max_age_seconds: int = 300,
    client_cert_subject: str | None = None,
    client_cert_issuer: str | None = None,
    client_cert_serials: Sequence[str] = (),
) -> tuple[IntakeService, RecordingQueueSender]:
    """A service with a recording queue sender; the secret holds OUTBOUND_TOKEN unless told."""
    sender = sender or RecordingQueueSender()
    settings = IntakeSettings(
        org_ids=tuple(org_ids),
        customer_queue_url=CUSTOMER_QUEUE_URL,
        order_queue_url=ORDER_QUEUE_URL,
        intake_secret_arn=None,
        integration_user_id=integration_user_id,
        event_max_age_seconds=max_age_seconds,
        client_cert_subject=client_cert_subject,
        client_cert_issuer=client_cert_issuer,
        client_cert_serials=tuple(client_cert_serials),
    )
    service = IntakeService(
        settings, secret or StaticSecret(), sender, clock=lambda: NOW, unix_time=NOW.timestamp
    )
    return service, sender


def salesforce_id(key_prefix: str, number: int) -> str:
    """A well-formed 18-character id with a mixed-case body, e.g. salesforce_id("006", 7)."""
    body = f"{key_prefix}5gZq{number:08d}"
    return body + case_safe_suffix(body)


def outbound_message_xml(
    notifications: Sequence[tuple[str, str, Mapping[str, str | None]]],
    *,
    org_id: str = ORG_ID,
    session_id: str | None = None,
) -> str:
    """A SOAP Outbound Message: notifications are (notification id, object type, sObject fields)."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>',
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">',
        f"<OrganizationId>{escape(org_id)}</OrganizationId><ActionId>04k5g000000Ab1CAAS</ActionId>",
        f"<SessionId>{escape(session_id)}</SessionId>" if session_id else '<SessionId xsi:nil="true"/>',
        "<EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/62.0/00D5g000004ZxYt</EnterpriseUrl>",
        "<PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/62.0/00D5g000004ZxYt</PartnerUrl>",
    ]
    for notification_id, object_type, fields in notifications:
        parts.append(f"<Notification><Id>{escape(notification_id)}</Id>")
        object_type_attribute = quoteattr("sf:" + object_type)
        parts.append(
            f'<sObject xsi:type={object_type_attribute} xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        )
        for name, value in fields.items():
            if value is None:
                parts.append(f'<sf:{name} xsi:nil="true"/>')
            else:
                parts.append(f"<sf:{name}>{escape(value)}</sf:{name}>")
        parts.append("</sObject></Notification>")
    parts.append("</notifications></soapenv:Body></soapenv:Envelope>")
    return "".join(parts)


def sign(body: bytes, timestamp: int, key: str = SIGNING_KEY) -> str:
    """The X-Signature the README tells senders to compute (written independently of the code)."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def long_description(number: int, length: int) -> str:
    """A Description of exactly `length` characters, with text XML must escape and non-ASCII letters."""
    paragraph = f"Deal {number}: scope & terms <v2> for Zürich, Köln and São Paulo — renewal in Q1. "
    return (paragraph * (length // len(paragraph) + 1))[:length]


def large_outbound_message(
    count: int, *, description_length: int, org_id: str = ORG_ID
) -> tuple[str, list[str], list[str]]:
    """An Outbound Message of `count` won Opportunities, each with a long Description.

    Returns the body, the notification ids and the Opportunity ids.
    """
    notification_ids = [salesforce_id("04l", n) for n in range(count)]
    record_ids = [salesforce_id("006", n) for n in range(count)]
    body = outbound_message_xml(
        [
            (
                notification_id,
                "Opportunity",
                {
                    "Id": record_id,
                    "AccountId": salesforce_id("001", 1),
                    "Description": long_description(n, description_length),
                    "IsWon": "true",
                    "LastModifiedDate": "2026-11-28T16:20:11.000Z",
                    "Name": f"Deal №{n}",
                    "StageName": "Closed Won",
                },
            )
            for n, (notification_id, record_id) in enumerate(zip(notification_ids, record_ids, strict=True))
        ],
        org_id=org_id,
    )
    return body, notification_ids, record_ids


class LambdaContext:
    """The parts of a Lambda context object the handler's logger reads."""

    function_name = "IntakeFunction"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:IntakeFunction"
    aws_request_id = "5b0e9c4e-6f1d-4d3a-9a57-2f1c2b7e8a01"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def load_intake_app(module_name: str) -> ModuleType:
    """functions/intake/app.py as a module of its own (the handler directory is not a package)."""
    spec = importlib.util.spec_from_file_location(module_name, REPO_ROOT / "functions/intake/app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def api_gateway_event(
    sample: str,
    body: str,
    headers: Mapping[str, str],
    *,
    base64_encoded: bool = False,
    query: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The sample API Gateway REST event `sample` (in events/) with this body and these extra headers,
    and `query` as its query string (an Outbound Message then carries the token: see AUTHORIZED)."""
    event: dict[str, Any] = copy.deepcopy(
        json.loads((REPO_ROOT / "events" / sample).read_text(encoding="utf-8"))
    )
    for name in ("X-Signature-Timestamp", "X-Signature", "Content-Type"):
        event["headers"].pop(name, None)
        event["multiValueHeaders"].pop(name, None)
    for name, value in headers.items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    event["body"] = body
    event["isBase64Encoded"] = base64_encoded
    if query is not None:
        event["queryStringParameters"] = dict(query) or None
        event["multiValueQueryStringParameters"] = {name: [value] for name, value in query.items()} or None
    return event
