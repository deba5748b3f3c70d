"""Values that once made the intake answer 500: each is now refused with a 4xx that names it.

ARCHITECTURE §2, invariant 8: untrusted input never causes a 5xx. The property-based tests in
test_intake_properties.py look for more of these; the cases found so far are pinned here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest
from intake_support import (
    AUTHORIZED,
    NOW,
    ORG_ID,
    OUTBOUND_TOKEN,
    LambdaContext,
    api_gateway_event,
    load_intake_app,
    make_service,
    outbound_message_xml,
    salesforce_id,
    sign,
)

from sfintacct.intake.errors import IntakeError, MalformedRequest
from sfintacct.intake.field_values import InvalidTimestamp, parse_salesforce_timestamp
from sfintacct.sync.salesforce_values import modified_at

SOAP = "text/xml; charset=utf-8"
NOW_SECONDS = int(NOW.timestamp())
OPPORTUNITY_ID = salesforce_id("006", 1)
SOURCE = f"aws.partner/salesforce.com/{ORG_ID}/0YL5g000000Rl4YGAS"
DEEP = 100_000

# Offsets that move the first or last representable moment out of range once converted to UTC.
OUT_OF_RANGE_IN_UTC = [
    "0001-01-01T00:00:00+1400",
    "9999-12-31T23:59:59-1400",
    "0001-01-01T00:00:00.000+01:00",
]
# str.isdigit() is true for these, int() refuses them: superscripts, Arabic-Indic, N'Ko and
# mathematical double-struck digits.
NOT_ASCII_DIGITS = [
    "²³",
    "²",
    "¹²³⁴",
    "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662",
    "\u07c0",
    "\U0001d7d9\U0001d7da\U0001d7db",
]


@pytest.fixture(scope="module")
def app_module() -> ModuleType:
    return load_intake_app("intake_app_untrusted_input")


def _status(app_module: ModuleType, event: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> int:
    service, sender = make_service()
    monkeypatch.setattr(app_module, "intake_service", lambda: service)
    response = app_module.lambda_handler(event, LambdaContext())
    if response["statusCode"] >= 400:
        assert sender.attempts == 0
    return int(response["statusCode"])


def _outbound(last_modified: str) -> str:
    fields = {"Id": OPPORTUNITY_ID, "LastModifiedDate": last_modified}
    return outbound_message_xml([(salesforce_id("04l", 1), "Opportunity", fields)])


def _deeply_nested(depth: int) -> Any:
    """A value nested `depth` levels deep, built without recursion."""
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


def _change_event(**header: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "entityName": "Opportunity",
        "recordIds": [OPPORTUNITY_ID],
        "changeType": "UPDATE",
        "transactionKey": "0002a3b4-c5d6-e7f8-a9b0-c1d2e3f4a5b6",
        "sequenceNumber": 1,
        "commitTimestamp": 1795882811000,
        "commitUser": "0055g00000RepAbAAJ",
    }
    values.update(header)
    return {
        "version": "0",
        "id": "3e5f7a9b-1c2d-4e3f-a4b5-c6d7e8f9a0b1",
        "detail-type": "OpportunityChangeEvent",
        "source": SOURCE,
        "account": "123456789012",
        "time": "2026-11-28T16:20:11Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"payload": {"ChangeEventHeader": values}, "id": "e3a7c1b9"},
    }


# ---------------------------------------------------------------- timestamps out of range in UTC


@pytest.mark.parametrize("value", OUT_OF_RANGE_IN_UTC)
def test_a_timestamp_out_of_range_in_utc_is_an_invalid_timestamp_not_an_overflow(value: str) -> None:
    with pytest.raises(InvalidTimestamp, match="out of range once converted to UTC"):
        parse_salesforce_timestamp(value)


@pytest.mark.parametrize("value", OUT_OF_RANGE_IN_UTC)
def test_the_workers_get_a_value_error_for_it_too(value: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        modified_at({"LastModifiedDate": value})


@pytest.mark.parametrize("value", OUT_OF_RANGE_IN_UTC)
def test_an_outbound_message_with_such_a_last_modified_date_is_refused_with_400(
    value: str, app_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, sender = make_service()
    with pytest.raises(MalformedRequest, match=r"LastModifiedDate .* out of range") as refused:
        service.accept_outbound_message(_outbound(value), SOAP, OUTBOUND_TOKEN)
    assert refused.value.http_status == 400
    assert sender.attempts == 0

    event = api_gateway_event(
        "apigw_outbound_message.json", _outbound(value), {"Content-Type": SOAP}, query=AUTHORIZED
    )
    assert _status(app_module, event, monkeypatch) == 400


def test_the_first_and_last_moments_in_utc_are_still_accepted() -> None:
    assert parse_salesforce_timestamp("0001-01-01T00:00:00Z") == datetime(1, 1, 1, tzinfo=UTC)
    assert parse_salesforce_timestamp("9999-12-31T23:59:59.000+0000") == datetime(
        9999, 12, 31, 23, 59, 59, tzinfo=UTC
    )


# ---------------------------------------------------------------- digits that are not 0-9


@pytest.mark.parametrize("value", NOT_ASCII_DIGITS)
def test_digits_other_than_ascii_are_not_a_timestamp(value: str) -> None:
    assert value.isdigit()
    with pytest.raises(InvalidTimestamp, match="not an ISO 8601 timestamp"):
        parse_salesforce_timestamp(value)


@pytest.mark.parametrize("value", NOT_ASCII_DIGITS)
def test_an_outbound_message_with_such_digits_is_refused_with_400(
    value: str, app_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, _ = make_service()
    with pytest.raises(MalformedRequest, match=r"Notification 1 .*: LastModifiedDate"):
        service.accept_outbound_message(_outbound(value), SOAP, OUTBOUND_TOKEN)

    event = api_gateway_event(
        "apigw_outbound_message.json", _outbound(value), {"Content-Type": SOAP}, query=AUTHORIZED
    )
    assert _status(app_module, event, monkeypatch) == 400


def test_an_offset_written_in_other_digits_is_not_a_timestamp() -> None:
    with pytest.raises(InvalidTimestamp):
        parse_salesforce_timestamp("2026-11-28T16:20:11.000+\u0660\u0660\u0660\u0660")


def test_a_digit_string_too_long_for_int_is_not_a_timestamp() -> None:
    with pytest.raises(InvalidTimestamp, match="epoch milliseconds"):
        parse_salesforce_timestamp("9" * 5000)
    with pytest.raises(InvalidTimestamp, match="more than 13 digits"):
        parse_salesforce_timestamp(10**5000)


@pytest.mark.parametrize("value", ["²³", "١٢٣٤٥٦٧٨٩٠"])
def test_a_signature_timestamp_in_other_digits_is_refused_with_401(value: str) -> None:
    service, sender = make_service()
    body = json.dumps({"EventUuid": "e-1", "OpportunityId__c": OPPORTUNITY_ID}).encode()
    with pytest.raises(IntakeError, match="X-Signature-Timestamp header must be unix seconds") as refused:
        service.accept_signed_events(body, value, sign(body, NOW_SECONDS))
    assert refused.value.http_status == 401
    assert sender.attempts == 0


# ---------------------------------------------------------------- Change Data Capture commitTimestamp


@pytest.mark.parametrize(
    "value", ["²", "²³", "0001-01-01T00:00:00+1400", 10**40, -1, float("nan"), "9" * 5000]
)
def test_a_malformed_commit_timestamp_is_a_refusal_naming_it(value: object) -> None:
    service, sender = make_service()
    with pytest.raises(MalformedRequest, match="OpportunityChangeEvent: commitTimestamp") as refused:
        service.accept_relayed_event(_change_event(commitTimestamp=value))
    assert refused.value.http_status == 400
    assert sender.attempts == 0


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"sequenceNumber": 10**5000}, "sequenceNumber must be a whole number from 0"),
        ({"sequenceNumber": -1}, "sequenceNumber must be a whole number from 0"),
        ({"transactionKey": "k" * 201}, "transactionKey must be printable ASCII of at most 200"),
        ({"transactionKey": "schlüssel"}, "transactionKey must be printable ASCII"),
        ({"transactionKey": "\ud800"}, "transactionKey must be printable ASCII"),
    ],
)
def test_change_event_header_values_that_cannot_make_a_producer_id_are_refused(
    header: dict[str, Any], message: str
) -> None:
    service, sender = make_service()
    with pytest.raises(MalformedRequest, match=message):
        service.accept_relayed_event(_change_event(**header))
    assert sender.attempts == 0


# ---------------------------------------------------------------- deeply nested JSON


@pytest.mark.parametrize(
    "body", ["[" * DEEP + "]" * DEEP, '{"a":' * DEEP + "1" + "}" * DEEP], ids=["arrays", "objects"]
)
def test_json_nested_100k_deep_in_a_signed_body_is_refused_with_400(
    body: str, app_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, sender = make_service()
    with pytest.raises(MalformedRequest, match="nested too deeply") as refused:
        service.accept_signed_events(body.encode(), str(NOW_SECONDS), sign(body.encode(), NOW_SECONDS))
    assert refused.value.http_status == 400
    assert sender.attempts == 0

    headers = {"X-Signature-Timestamp": str(NOW_SECONDS), "X-Signature": sign(body.encode(), NOW_SECONDS)}
    event = api_gateway_event("apigw_platform_event.json", body, headers)
    assert _status(app_module, event, monkeypatch) == 400


def test_deep_nesting_inside_a_valid_signed_event_is_refused_with_400() -> None:
    body = f'{{"EventUuid": "e-1", "OpportunityId__c": "{OPPORTUNITY_ID}", "Note__c": '.encode()
    body += b"[" * DEEP + b"]" * DEEP + b"}"
    service, _ = make_service()
    with pytest.raises(MalformedRequest, match="nested too deeply"):
        service.accept_signed_events(body, str(NOW_SECONDS), sign(body, NOW_SECONDS))


def test_a_number_with_too_many_digits_in_a_signed_body_is_refused_with_400() -> None:
    body = b'{"EventUuid": "e-1", "OpportunityId__c": "%s", "LastModifiedDate": %s}' % (
        OPPORTUNITY_ID.encode(),
        b"9" * 5000,
    )
    service, _ = make_service()
    with pytest.raises(MalformedRequest, match="a number in it is too long"):
        service.accept_signed_events(body, str(NOW_SECONDS), sign(body, NOW_SECONDS))


def test_deeply_nested_values_in_an_eventbridge_event_are_refused_or_ignored_never_a_crash(
    app_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, sender = make_service()
    monkeypatch.setattr(app_module, "intake_service", lambda: service)
    deep = _deeply_nested(DEEP)

    for field in ("source", "detail-type", "detail"):
        event = {**_change_event(), field: deep}
        with pytest.raises(MalformedRequest):
            app_module.lambda_handler(event, LambdaContext())

    event = _change_event()
    event["detail"]["payload"]["ChangeEventHeader"]["recordIds"] = [deep]
    with pytest.raises(MalformedRequest, match="recordIds must hold strings"):
        service.accept_relayed_event(event)
    assert sender.attempts == 0

    # A deep value in a field the intake does not read is simply not used.
    event = _change_event()
    event["detail"]["payload"]["Description"] = deep
    assert service.accept_relayed_event(event).producer_ids == [
        f"0002a3b4-c5d6-e7f8-a9b0-c1d2e3f4a5b6:1:{OPPORTUNITY_ID}"
    ]


# ---------------------------------------------------------------- text that is not UTF-8


def test_an_outbound_message_holding_an_unpaired_surrogate_is_refused_with_400(
    app_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = _outbound("2026-11-28T16:20:11.000Z").replace("<sf:Id>", "<sf:Name>\ud800</sf:Name><sf:Id>")
    service, _ = make_service()
    with pytest.raises(MalformedRequest, match="not UTF-8"):
        service.accept_outbound_message(body, SOAP, OUTBOUND_TOKEN)

    event = api_gateway_event("apigw_outbound_message.json", body, {"Content-Type": SOAP}, query=AUTHORIZED)
    assert _status(app_module, event, monkeypatch) == 400


def test_a_signed_body_holding_an_unpaired_surrogate_is_refused_with_400(
    app_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = f'{{"EventUuid": "\ud800", "OpportunityId__c": "{OPPORTUNITY_ID}"}}'
    headers = {"X-Signature-Timestamp": str(NOW_SECONDS), "X-Signature": "00" * 32}
    event = api_gateway_event("apigw_platform_event.json", body, headers)
    assert _status(app_module, event, monkeypatch) == 400


def test_an_escaped_unpaired_surrogate_in_an_event_uuid_is_refused_with_400() -> None:
    body = b'{"EventUuid": "\\ud800", "OpportunityId__c": "%s"}' % OPPORTUNITY_ID.encode()
    service, sender = make_service()
    with pytest.raises(MalformedRequest, match="EventUuid must be printable ASCII"):
        service.accept_signed_events(body, str(NOW_SECONDS), sign(body, NOW_SECONDS))
    assert sender.attempts == 0
