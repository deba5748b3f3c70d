"""Property-based: whatever arrives, the intake refuses it with a 4xx or makes valid SyncRequests.

ARCHITECTURE §2, invariant 8. Hypothesis writes both well-formed envelopes with hostile values in
every field (ids, timestamps, org ids, notification ids, nested JSON, digits other than 0-9, huge and
negative numbers, odd time zones) and plain garbage, for the three parsers (Outbound Message SOAP,
signed Platform Event JSON with a valid signature, EventBridge / Change Data Capture) and for the
Lambda handler. The only exceptions that may escape are the intake's own refusals.
"""

from __future__ import annotations

import base64
import json
import string
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from intake_support import (
    AUTHORIZED,
    FIXTURES,
    NOW,
    ORG_ID,
    OTHER_ORG_ID,
    OUTBOUND_TOKEN,
    LambdaContext,
    RecordingQueueSender,
    api_gateway_event,
    load_intake_app,
    make_service,
    outbound_message_xml,
    salesforce_id,
    sign,
)

from sfintacct.intake.errors import IntakeError
from sfintacct.intake.service import Accepted
from sfintacct.sync_request import MAX_PRODUCER_ID_LENGTH, SyncRequest

# Fast enough for `make unit`: a few seconds for the whole module.
FAST = settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
NOW_SECONDS = int(NOW.timestamp())
SOAP = "text/xml; charset=utf-8"
SOURCE_PREFIX = "aws.partner/salesforce.com/"
PREFIXES = {"Account": "001", "Opportunity": "006", "Contact": "003"}
# Characters an SQS message body or attribute value may hold.
SQS_CHARACTERS = ("\t", "\n", "\r", (" ", "\ud7ff"), ("\ue000", "\ufffd"), ("\U00010000", "\U0010ffff"))


# ---------------------------------------------------------------- values


# str.isdigit() is true for all of these; int() refuses them. Superscripts, Arabic-Indic, N'Ko,
# mathematical double-struck and full-width digits.
UNICODE_DIGITS = st.sampled_from(
    [
        "\u00b2",
        "\u00b2\u00b3",
        "\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079\u2070\u00b9\u00b2\u00b3",
        "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662\u0663",
        "\u07c0\u07c1",
        "\U0001d7d9\U0001d7da\U0001d7db",
        "\uff10\uff11\uff12",
    ]
)
ODD_TEXT = st.one_of(
    st.text(max_size=30),
    UNICODE_DIGITS,
    st.sampled_from(["", " ", "\x00", "\ud800", "a\udfff", "null", "true", "-0", "NaN", "1e309", "*"]),
)
ALNUM = string.ascii_letters + string.digits
# Text an XML document can carry (no control characters, no surrogates).
XML_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), max_size=30)


def _id(prefix: str) -> st.SearchStrategy[str]:
    """A well-formed 18-character id with this key prefix, or its 15-character form."""
    valid = st.builds(salesforce_id, st.just(prefix), st.integers(0, 10**8 - 1))
    return st.one_of(valid, valid.map(lambda value: value[:15]))


ANY_ID = st.one_of(
    st.sampled_from(sorted({*PREFIXES.values(), "00D", "04l", "005"})).flatmap(_id),
    _id("006").map(str.lower),  # re-cased: the suffix no longer matches
    _id("001").map(lambda value: value[:17] + "X"),
    st.text(alphabet=ALNUM, min_size=14, max_size=19),
    ODD_TEXT,
)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    ODD_TEXT,
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


class Deep(dict[str, Any]):
    """A dict nested `depth` levels deep (built without recursion) that hypothesis reports in one line."""

    def __init__(self, depth: int) -> None:
        value: Any = 1
        for level in range(depth - 1):
            value = [value] if level % 2 else {"k": value}
        super().__init__(k=value)
        self.depth = depth

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(f"Deep({self.depth})")


NESTED = st.builds(Deep, st.integers(1, 3000))


@st.composite
def iso_timestamps(draw: st.DrawFn) -> str:
    """ISO 8601 text from year 1 to 9999 with any offset Python can express, in Salesforce's spellings."""
    moment = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
    minutes = draw(st.integers(-(24 * 60 - 1), 24 * 60 - 1))
    sign_text = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    offset = draw(
        st.sampled_from(
            ["Z", f"{sign_text}{hours:02d}{rest:02d}", f"{sign_text}{hours:02d}:{rest:02d}", "", "+2400"]
        )
    )
    fraction = draw(st.sampled_from(["", ".000", f".{moment.microsecond:06d}"]))
    return moment.replace(microsecond=0).isoformat() + fraction + offset


EPOCH_MILLISECONDS = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.from_regex(r"\A[0-9]{1,40}\Z"),
)
TIMESTAMPS = st.one_of(iso_timestamps(), EPOCH_MILLISECONDS, UNICODE_DIGITS, JSON_VALUES)
TIMESTAMP_TEXT = st.one_of(iso_timestamps(), EPOCH_MILLISECONDS.map(str), UNICODE_DIGITS, ODD_TEXT)


def _mostly(valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`valid` about five times in six, so well-formed messages with one bad value are common."""
    return st.integers(0, 5).flatmap(lambda pick: hostile if pick == 5 else valid)


VALID_TIMESTAMPS = st.one_of(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1)).map(
        lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    ),
    st.integers(0, 10**13 - 1),
)


# ---------------------------------------------------------------- the checks


def _sqs_safe(text: str) -> bool:
    return all(
        any(
            character == allowed if isinstance(allowed, str) else allowed[0] <= character <= allowed[1]
            for allowed in SQS_CHARACTERS
        )
        for character in text
    )


def _refusal_or_acceptance(call: Callable[[], Accepted]) -> IntakeError | Accepted:
    """What the intake did: any exception other than an IntakeError escapes and fails the test."""
    try:
        return call()
    except IntakeError as error:
        return error


def _check(call: Callable[[], Accepted], sender: RecordingQueueSender) -> Accepted | None:
    """Call the intake; a refusal must be the intake's own 4xx, an acceptance valid SyncRequests."""
    outcome = _refusal_or_acceptance(call)
    if isinstance(outcome, IntakeError):
        assert 400 <= outcome.http_status < 500, f"{type(outcome).__name__} {outcome.http_status}: {outcome}"
        assert outcome.message.strip()
        assert sender.attempts == 0, "a refused message enqueued something"
        return None
    accepted = outcome
    messages = sender.messages()
    assert len(messages) == len(accepted.requests)
    assert sorted(m.body for m in messages) == sorted(r.model_dump_json() for r in accepted.requests)
    for message in messages:
        request = SyncRequest.model_validate_json(message.body)
        assert request.org_id in (ORG_ID, OTHER_ORG_ID)
        assert request.record_id.startswith("001" if request.object_type == "Account" else "006")
        assert 0 < len(request.producer_id) <= MAX_PRODUCER_ID_LENGTH
        assert request.producer_id.isascii()
        assert request.producer_id.isprintable()
        assert message.size() < 1536
        assert _sqs_safe(message.body)
        assert all(_sqs_safe(value) for value in message.attributes.values())
    return accepted


def _explore(strategy: st.SearchStrategy[Any], attempt: Callable[[Any], bool]) -> Counter[str]:
    """Run `attempt` (True: accepted, False: refused) on hypothesis' examples; count the outcomes.

    The callers assert both outcomes occurred, so the strategies cannot drift into pure garbage.
    """
    outcomes: Counter[str] = Counter()

    @FAST
    @given(strategy)
    def run(value: Any) -> None:
        outcomes["accepted" if attempt(value) else "refused"] += 1

    run()
    return outcomes


# ---------------------------------------------------------------- Outbound Messages (SOAP)


FIELD_NAMES = st.sampled_from(["Name", "Description", "Amount", "IsWon", "StageName", "AccountId"])


@st.composite
def outbound_messages(draw: st.DrawFn) -> str:
    """A SOAP Outbound Message envelope with hypothesis-chosen values in every field."""
    notifications = []
    for _ in range(draw(st.integers(1, 3))):
        object_type = draw(
            _mostly(st.sampled_from(["Account", "Opportunity"]), st.text(alphabet=ALNUM, max_size=12))
        )
        fields: dict[str, str | None] = {}
        if draw(st.integers(0, 9)) < 9:  # the simplest draw, 0, keeps the field
            fields["Id"] = draw(_mostly(_id(PREFIXES.get(object_type, "001")), ANY_ID))
        if draw(st.booleans()):
            fields["LastModifiedDate"] = draw(_mostly(VALID_TIMESTAMPS.map(str), TIMESTAMP_TEXT))
        fields.update(draw(st.dictionaries(FIELD_NAMES, _mostly(st.none() | XML_TEXT, ODD_TEXT), max_size=3)))
        notification_id = draw(_mostly(_id("04l"), ANY_ID))
        notifications.append((notification_id, object_type, fields))
    org_id = draw(_mostly(st.sampled_from([ORG_ID, ORG_ID[:15]]), st.one_of(st.just(ORG_ID.lower()), ANY_ID)))
    return outbound_message_xml(notifications, org_id=org_id)


def _mangled(body: str, position: int, insert: str, cut: bool) -> str:
    index = position % (len(body) + 1)
    return body[:index] + insert + ("" if cut else body[index:])


VALID_OUTBOUND = (FIXTURES / "valid/opportunity_closed_won.xml").read_text(encoding="utf-8")
OUTBOUND_GARBAGE = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda data: data.decode("latin-1")),
    st.builds(_mangled, st.just(VALID_OUTBOUND), st.integers(0, 10**6), st.text(max_size=20), st.booleans()),
    st.integers(1, 5_000).map(lambda depth: "<a>" * depth + "</a>" * depth),
)


def test_outbound_messages_are_refused_with_a_4xx_or_become_valid_requests() -> None:
    def attempt(body: str) -> bool:
        service, sender = make_service()
        accepted = _check(lambda: service.accept_outbound_message(body, SOAP, OUTBOUND_TOKEN), sender)
        if accepted is not None:
            assert len(accepted.requests) == body.count("<Notification>")
            assert all(request.source == "outbound_message" for request in accepted.requests)
        return accepted is not None

    outcomes = _explore(_mostly(outbound_messages(), OUTBOUND_GARBAGE), attempt)

    assert outcomes["accepted"], outcomes
    assert outcomes["refused"], outcomes


# ---------------------------------------------------------------- signed Platform Events (JSON)


@st.composite
def platform_events(draw: st.DrawFn) -> dict[str, Any]:
    """A platform event with each field absent, well-formed or hostile."""
    record_field, prefix = draw(st.sampled_from([("OpportunityId__c", "006"), ("AccountId__c", "001")]))
    candidates: dict[str, st.SearchStrategy[Any]] = {
        "attributes": _mostly(st.just({"type": "Opportunity_Closed_Won__e"}), JSON_VALUES),
        "EventUuid": _mostly(
            st.uuids().map(str), st.one_of(ODD_TEXT, st.text(min_size=250, max_size=260), JSON_VALUES)
        ),
        record_field: _mostly(_id(prefix), st.one_of(ANY_ID, JSON_VALUES)),
        "LastModifiedDate": _mostly(VALID_TIMESTAMPS, TIMESTAMPS),
        "OrganizationId": _mostly(st.sampled_from([ORG_ID, ORG_ID[:15]]), st.one_of(ANY_ID, JSON_VALUES)),
        "Note__c": _mostly(JSON_VALUES, NESTED),
    }
    event = {name: draw(values) for name, values in candidates.items() if draw(st.integers(0, 9)) < 9}
    event.update(draw(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=2)))
    return event


def _json_body(document: object, ascii_only: bool) -> bytes:
    return json.dumps(document, ensure_ascii=ascii_only, allow_nan=True).encode("utf-8", "surrogatepass")


SIGNED_DOCUMENTS = _mostly(st.one_of(platform_events(), st.lists(platform_events(), max_size=3)), JSON_VALUES)
SIGNED_BODIES = _mostly(
    st.builds(_json_body, SIGNED_DOCUMENTS, st.booleans()),
    st.one_of(
        st.binary(max_size=200),
        st.integers(1, 5_000).map(lambda depth: b"[" * depth + b"]" * depth),
        st.integers(1, 5_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
        st.integers(1, 20_000).map(
            lambda digits: b'{"EventUuid": "u", "LastModifiedDate": ' + b"9" * digits + b"}"
        ),
    ),
)


def test_signed_events_are_refused_with_a_4xx_or_become_valid_requests() -> None:
    """The signature is valid, so every body reaches the parser."""

    def attempt(case: tuple[bytes, tuple[str, ...]]) -> bool:
        body, orgs = case
        service, sender = make_service(org_ids=orgs)
        signature = sign(body, NOW_SECONDS)
        return (
            _check(lambda: service.accept_signed_events(body, str(NOW_SECONDS), signature), sender)
            is not None
        )

    outcomes = _explore(
        st.tuples(SIGNED_BODIES, st.sampled_from([(ORG_ID,), (ORG_ID, OTHER_ORG_ID)])), attempt
    )

    assert outcomes["accepted"], outcomes
    assert outcomes["refused"], outcomes


# ---------------------------------------------------------------- EventBridge (Event Relay, CDC)


@st.composite
def change_event_headers(draw: st.DrawFn) -> dict[str, Any]:
    entity = draw(_mostly(st.sampled_from(sorted(PREFIXES)), JSON_VALUES))
    prefix = PREFIXES.get(entity, "001") if isinstance(entity, str) else "001"
    candidates: dict[str, st.SearchStrategy[Any]] = {
        "entityName": st.just(entity),
        "changeType": _mostly(
            st.sampled_from(["CREATE", "UPDATE", "UNDELETE", "GAP_CREATE", "GAP_UPDATE", "GAP_UNDELETE"]),
            st.one_of(st.sampled_from(["DELETE", "GAP_DELETE", "GAP_OVERFLOW"]), JSON_VALUES),
        ),
        "recordIds": _mostly(
            st.lists(_id(prefix), min_size=1, max_size=3),
            st.one_of(
                st.lists(st.one_of(_id(prefix), st.just(f"{prefix}*"), ANY_ID, JSON_VALUES), max_size=4),
                JSON_VALUES,
            ),
        ),
        "transactionKey": _mostly(
            st.uuids().map(str), st.one_of(ODD_TEXT, st.text(min_size=190, max_size=210), JSON_VALUES)
        ),
        "sequenceNumber": _mostly(
            st.integers(1, 10**6), st.one_of(st.integers(min_value=-(10**30), max_value=10**30), JSON_VALUES)
        ),
        "commitTimestamp": _mostly(VALID_TIMESTAMPS, TIMESTAMPS),
        "commitUser": st.one_of(_id("005"), ANY_ID, JSON_VALUES),
    }
    return {name: draw(values) for name, values in candidates.items() if draw(st.integers(0, 9)) < 9}


@st.composite
def relayed_events(draw: st.DrawFn) -> dict[str, Any]:
    org = draw(_mostly(st.sampled_from([ORG_ID, ORG_ID[:15], OTHER_ORG_ID]), ANY_ID))
    if draw(st.booleans()):
        payload: Any = {"ChangeEventHeader": draw(_mostly(change_event_headers(), JSON_VALUES))}
    else:
        payload = draw(_mostly(platform_events(), JSON_VALUES))
    if isinstance(payload, dict) and draw(st.booleans()):
        payload["Description"] = draw(_mostly(JSON_VALUES, NESTED))
    detail: Any = {"payload": payload, "id": draw(_mostly(st.uuids().map(str), JSON_VALUES))}
    event: dict[str, Any] = {
        "version": "0",
        "id": "3e5f7a9b-1c2d-4e3f-a4b5-c6d7e8f9a0b1",
        "detail-type": draw(_mostly(st.just("OpportunityChangeEvent"), st.one_of(ODD_TEXT, JSON_VALUES))),
        "source": draw(
            _mostly(st.just(f"{SOURCE_PREFIX}{org}/0YL5g000000Rl4YGAS"), st.one_of(ODD_TEXT, JSON_VALUES))
        ),
        "detail": draw(_mostly(st.just(detail), st.one_of(JSON_VALUES, NESTED))),
    }
    return event


def test_eventbridge_events_are_refused_with_a_4xx_or_become_valid_requests() -> None:
    def attempt(event: dict[str, Any]) -> bool:
        service, sender = make_service(org_ids=(ORG_ID, OTHER_ORG_ID))
        accepted = _check(lambda: service.accept_relayed_event(event), sender)
        if accepted is not None:
            assert all(r.source in ("change_data_capture", "event_relay") for r in accepted.requests)
        return accepted is not None and bool(accepted.requests)

    outcomes = _explore(relayed_events(), attempt)

    assert outcomes["accepted"], outcomes
    assert outcomes["refused"], outcomes


# ---------------------------------------------------------------- the Lambda handler


@pytest.fixture(scope="module")
def app_module() -> ModuleType:
    return load_intake_app("intake_app_properties")


def _invoke(app_module: ModuleType, event: dict[str, Any]) -> Any:
    service, _ = make_service()
    previous = app_module.intake_service
    app_module.intake_service = lambda: service
    try:
        return app_module.lambda_handler(event, LambdaContext())
    finally:
        app_module.intake_service = previous


CONTENT_TYPES = st.sampled_from([SOAP, "text/xml", "application/soap+xml", "application/json", "", "ẋml"])


BASE64_ENCODINGS = _mostly(st.just("plain"), st.sampled_from(["base64", "broken base64"]))


def test_the_outbound_route_never_answers_500(app_module: ModuleType) -> None:
    def attempt(case: tuple[str, str, str]) -> bool:
        body, content_type, encoding = case
        text = body
        if encoding == "base64":
            text = base64.b64encode(body.encode("utf-8", "surrogatepass")).decode()
        elif encoding == "broken base64":
            text = body[:50] + "=*"
        event = api_gateway_event(
            "apigw_outbound_message.json",
            text,
            {"Content-Type": content_type},
            base64_encoded=encoding != "plain",
            query=AUTHORIZED,
        )
        status = _invoke(app_module, event)["statusCode"]
        assert status == 200 or 400 <= status < 500, status
        return status == 200

    outcomes = _explore(
        st.tuples(_mostly(outbound_messages(), OUTBOUND_GARBAGE), CONTENT_TYPES, BASE64_ENCODINGS), attempt
    )

    assert outcomes["accepted"], outcomes
    assert outcomes["refused"], outcomes


def test_the_events_route_never_answers_500(app_module: ModuleType) -> None:
    def attempt(case: tuple[bytes, str, bool]) -> bool:
        body, timestamp, signed = case
        text = body.decode("utf-8", "surrogateescape")  # bytes that are not UTF-8: unpaired surrogates
        signature = sign(body, NOW_SECONDS) if signed else "00" * 32
        headers = {"X-Signature-Timestamp": timestamp, "X-Signature": signature}
        event = api_gateway_event("apigw_platform_event.json", text, headers)
        status = _invoke(app_module, event)["statusCode"]
        assert status == 202 or 400 <= status < 500, status
        return status == 202

    timestamps = _mostly(
        st.just(str(NOW_SECONDS)), st.one_of(UNICODE_DIGITS, ODD_TEXT, st.from_regex(r"\A[0-9]{1,30}\Z"))
    )
    outcomes = _explore(st.tuples(SIGNED_BODIES, timestamps, _mostly(st.just(True), st.just(False))), attempt)

    assert outcomes["accepted"], outcomes
    assert outcomes["refused"], outcomes


def test_the_eventbridge_path_raises_only_refusals(app_module: ModuleType) -> None:
    def attempt(event: dict[str, Any]) -> bool:
        outcome = _refusal_or_acceptance(lambda: _invoke(app_module, event))
        if isinstance(outcome, IntakeError):
            assert 400 <= outcome.http_status < 500
            return False
        assert set(outcome) == {"accepted", "ignored"}
        return True

    outcomes = _explore(relayed_events(), attempt)

    assert outcomes["accepted"], outcomes
    assert outcomes["refused"], outcomes
