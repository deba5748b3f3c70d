"""A scripted Intacct gateway for httpx.MockTransport, a fake clock, and response builders.

Each request the client sends is parsed (defusedxml) and recorded; the next scripted reply answers
it. A reply is an httpx.Response, or a callable taking the recorded request (to echo its control ids,
or to raise a network error).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

import httpx
from defusedxml.ElementTree import fromstring

from sandbox.intacct.schema import schema_errors
from sfintacct.intacct import IntacctClient, IntacctSettings, SessionCache

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "intacct"
LOGIN_URL = "https://intacct.example.test/ia/xml/xmlgw.phtml"
SESSION_URL = "https://na1.intacct.example.test/ia/xml/xmlgw.phtml"  # as in session_success.xml
FIXTURE_SESSION_ID = "fixture-session-id.."
SENDER_PASSWORD = "sender-pw-Zq81"
USER_PASSWORD = "user-pw-Kx27"
START = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)
XML_TYPE = 'text/xml; encoding="UTF-8"'


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def make_settings(**overrides: Any) -> IntacctSettings:
    values: dict[str, Any] = {
        "endpoint_url": LOGIN_URL,
        "sender_id": "test-sender",
        "sender_password": SENDER_PASSWORD,
        "company_id": "test-company",
        "user_id": "xml_gateway",
        "user_password": USER_PASSWORD,
        "timeout_seconds": 5,
        "retry_budget_seconds": 30,
        "max_attempts": 5,
        "retry_base_delay_seconds": 1,
        "retry_max_delay_seconds": 8,
    }
    values.update(overrides)
    return IntacctSettings.model_validate(values)


class FakeClock:
    """Monotonic time and wall time that only move when the client sleeps (or a test advances them)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.seconds += seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds

    def utc_now(self) -> datetime:
        return START + timedelta(seconds=self.seconds)


@dataclass
class SeenRequest:
    """One request as the gateway received it."""

    request: httpx.Request
    body: bytes
    root: Element = field(repr=False)

    @property
    def url(self) -> str:
        return str(self.request.url)

    @property
    def control_ids(self) -> list[str]:
        return [function.get("controlid", "") for function in self.root.iter("function")]

    @property
    def function_names(self) -> list[str]:
        return [function[0].tag for function in self.root.iter("function")]

    @property
    def unique_id(self) -> str:
        return self.root.findtext("control/uniqueid", "")

    @property
    def request_control_id(self) -> str:
        return self.root.findtext("control/controlid", "")

    @property
    def session_id(self) -> str | None:
        return self.root.findtext("operation/authentication/sessionid")

    @property
    def login(self) -> Element | None:
        return self.root.find("operation/authentication/login")

    @property
    def transaction(self) -> str:
        operation = self.root.find("operation")
        return operation.get("transaction", "") if operation is not None else ""


Reply = httpx.Response | Callable[[SeenRequest], httpx.Response]


class FakeIntacct:
    """The MockTransport handler: records requests and answers them with scripted replies in order.

    Every request must pass Intacct's published schema, as at the real gateway: so every request any
    client test makes is checked, whatever the test asserts.
    """

    def __init__(self, replies: Iterable[Reply] = ()) -> None:
        self.replies: deque[Reply] = deque(replies)
        self.requests: list[SeenRequest] = []

    def add(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        seen = SeenRequest(request=request, body=body, root=fromstring(body, forbid_dtd=True))
        errors = schema_errors(body)
        assert not errors, f"request #{len(self.requests) + 1} breaks the Intacct schema: {errors}"
        self.requests.append(seen)
        if not self.replies:
            raise AssertionError(f"unexpected request #{len(self.requests)}: {seen.function_names}")
        reply = self.replies.popleft()
        return reply(seen) if callable(reply) else reply

    def gateway_requests(self) -> list[SeenRequest]:
        """Requests other than getAPISession."""
        return [seen for seen in self.requests if seen.function_names != ["getAPISession"]]


def make_client(
    fake: FakeIntacct, clock: FakeClock, sessions: SessionCache | None = None, **overrides: Any
) -> IntacctClient:
    return IntacctClient(
        make_settings(**overrides),
        http_client=httpx.Client(transport=httpx.MockTransport(fake)),
        sessions=sessions if sessions is not None else SessionCache(),
        sleep=clock.sleep,
        clock=clock.monotonic,
        now=clock.utc_now,
        random_fraction=lambda: 0.5,
    )


# ---------------------------------------------------------------------------- replies


def xml_reply(body: bytes | str, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return httpx.Response(status, content=content, headers={"Content-Type": XML_TYPE, **(headers or {})})


def fixture_reply(name: str, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return xml_reply(fixture_bytes(name), status, headers)


def html_reply(status: int) -> httpx.Response:
    page = f"<html><head><title>{status}</title></head><body><h1>{status}</h1></body></html>"
    return httpx.Response(status, content=page.encode(), headers={"Content-Type": "text/html"})


def network_failure(kind: type[httpx.TransportError]) -> Callable[[SeenRequest], httpx.Response]:
    def fail(seen: SeenRequest) -> httpx.Response:
        raise kind("simulated network failure", request=seen.request)

    return fail


def envelope(results: str, *, lifetime_seconds: int = 3600, timestamp: datetime = START) -> str:
    """A success response (control + authentication) around the given `<result>` elements."""
    timeout = timestamp + timedelta(seconds=lifetime_seconds)
    return (
        '<?xml version="1.0" encoding="UTF-8"?><response><control><status>success</status>'
        "<senderid>test-sender</senderid><controlid>req</controlid><uniqueid>false</uniqueid>"
        "<dtdversion>3.0</dtdversion></control><operation><authentication><status>success</status>"
        "<userid>xml_gateway</userid><companyid>test-company</companyid><locationid></locationid>"
        f"<sessiontimestamp>{timestamp.isoformat()}</sessiontimestamp>"
        f"<sessiontimeout>{timeout.isoformat()}</sessiontimeout></authentication>"
        f"{results}</operation></response>"
    )


def result_xml(status: str, function: str, control_id: str, inner: str = "") -> str:
    return (
        f"<result><status>{status}</status><function>{function}</function>"
        f"<controlid>{escape(control_id)}</controlid>{inner}</result>"
    )


def errors_xml(*errors: tuple[str, str]) -> str:
    items = "".join(
        f"<error><errorno>{escape(number)}</errorno><description></description>"
        f"<description2>{escape(text)}</description2><correction></correction></error>"
        for number, text in errors
    )
    return f"<errormessage>{items}</errormessage>"


def session_reply(
    session_id: str = "session-1..", endpoint: str = SESSION_URL, lifetime_seconds: int = 3600
) -> Callable[[SeenRequest], httpx.Response]:
    """A getAPISession answer."""

    def reply(seen: SeenRequest) -> httpx.Response:
        data = (
            f"<data><api><sessionid>{session_id}</sessionid><endpoint>{endpoint}</endpoint>"
            "<locationid></locationid></api></data>"
        )
        return xml_reply(
            envelope(
                result_xml("success", "getAPISession", seen.control_ids[0], data),
                lifetime_seconds=lifetime_seconds,
            )
        )

    return reply


def ok(
    data: str = "", key: str | None = None, lifetime_seconds: int = 3600
) -> Callable[[SeenRequest], httpx.Response]:
    """Success for every function of the request, each with the same `<key>` / `<data>` content."""

    def reply(seen: SeenRequest) -> httpx.Response:
        inner = (f"<key>{escape(key)}</key>" if key is not None else "") + data
        results = "".join(
            result_xml("success", name, control_id, inner)
            for name, control_id in zip(seen.function_names, seen.control_ids, strict=True)
        )
        return xml_reply(envelope(results, lifetime_seconds=lifetime_seconds))

    return reply


def fail_all(*errors: tuple[str, str]) -> Callable[[SeenRequest], httpx.Response]:
    """Failure for every function of the request, with the given (errorno, description2) errors."""

    def reply(seen: SeenRequest) -> httpx.Response:
        results = "".join(
            result_xml("failure", name, control_id, errors_xml(*errors))
            for name, control_id in zip(seen.function_names, seen.control_ids, strict=True)
        )
        return xml_reply(envelope(results))

    return reply
