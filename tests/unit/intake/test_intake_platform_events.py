"""Signed Platform Event callouts: signature and timestamp checks, event -> SyncRequest mapping."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from intake_support import (
    CUSTOMER_QUEUE_URL,
    NOW,
    ORDER_QUEUE_URL,
    ORG_ID,
    OTHER_ORG_ID,
    REPO_ROOT,
    SIGNING_KEY,
    SYNC_REQUEST_KEYS,
    StaticSecret,
    make_service,
    salesforce_id,
    sign,
)

from sfintacct.intake.errors import (
    IntakeError,
    IntakeMisconfigured,
    MalformedRequest,
    RequestTooLarge,
    SenderNotAllowed,
    SignatureRejected,
)
from sfintacct.intake.limits import MAX_REQUEST_BODY_BYTES
from sfintacct.intake.platform_event import event_signature

NOW_SECONDS = int(NOW.timestamp())
EVENT_UUID = "b6f1a3c2-9d4e-4c1b-8e2f-7a5d3c9b1e04"


def _closed_won_event(**fields: object) -> dict[str, object]:
    event: dict[str, object] = {
        "attributes": {"type": "Opportunity_Closed_Won__e"},
        "EventUuid": EVENT_UUID,
        "OpportunityId__c": "0065g00000Bq3RTAAZ",
        "CreatedDate": "2026-11-28T16:20:11.000Z",
        "CreatedById": "0055g00000RepAbAAJ",
    }
    event.update(fields)
    return event


def _signed(document: object, timestamp: int = NOW_SECONDS) -> tuple[bytes, str, str]:
    body = json.dumps(document).encode()
    return body, str(timestamp), sign(body, timestamp)


def test_the_readme_signing_recipe_matches_the_verifier() -> None:
    body = b'{"EventUuid": "x"}'
    assert event_signature(SIGNING_KEY.encode(), "1795882812", body) == sign(body, 1795882812)


def test_a_signed_closed_won_event_becomes_one_opportunity_request_keyed_on_its_event_uuid() -> None:
    service, sender = make_service()

    accepted = service.accept_signed_events(*_signed(_closed_won_event()))

    assert accepted.producer_ids == [EVENT_UUID]
    assert sender.messages(CUSTOMER_QUEUE_URL) == []
    [request] = sender.requests(ORDER_QUEUE_URL)
    assert request.source == "platform_event"
    assert request.org_id == ORG_ID
    assert request.object_type == "Opportunity"
    assert request.record_id == "0065g00000Bq3RTAAZ"
    assert request.producer_id == EVENT_UUID
    assert request.received_at == NOW
    [message] = sender.messages(ORDER_QUEUE_URL)
    assert set(json.loads(message.body)) == SYNC_REQUEST_KEYS


def test_the_sample_event_in_events_folder_is_accepted_once_signed() -> None:
    sample = json.loads((REPO_ROOT / "events" / "apigw_platform_event.json").read_text(encoding="utf-8"))
    body = sample["body"].encode()
    service, sender = make_service()

    service.accept_signed_events(body, str(NOW_SECONDS), sign(body, NOW_SECONDS))

    [request] = sender.requests(ORDER_QUEUE_URL)
    assert request.record_id == "0065g00000Bq3RTAAZ"


def test_an_event_naming_an_account_goes_to_the_customer_queue_with_15_char_ids_converted() -> None:
    event = {
        "EventUuid": "8c1f",
        "AccountId__c": "0015g00000Lz8Kp",
        "LastModifiedDate": 1795882811000,
        "IsVip__c": True,
        "Score__c": 4.5,
        "Tags__c": ["a", "b"],
        "Note__c": None,
    }
    service, sender = make_service()

    service.accept_signed_events(*_signed(event))

    [request] = sender.requests(CUSTOMER_QUEUE_URL)
    assert request.object_type == "Account"
    assert request.record_id == "0015g00000Lz8KpAAJ"
    assert request.last_modified == datetime(2026, 11, 28, 16, 20, 11, tzinfo=UTC)
    # Other event fields, whatever their type, are not carried to the worker.
    [message] = sender.messages(CUSTOMER_QUEUE_URL)
    assert set(json.loads(message.body)) == SYNC_REQUEST_KEYS


def test_a_list_of_events_is_accepted_as_a_whole() -> None:
    events = [
        _closed_won_event(EventUuid=f"uuid-{n}", OpportunityId__c=salesforce_id("006", n)) for n in range(12)
    ]
    service, sender = make_service()

    accepted = service.accept_signed_events(*_signed(events))

    assert len(accepted.requests) == 12
    assert [r.producer_id for r in sender.requests(ORDER_QUEUE_URL)] == [f"uuid-{n}" for n in range(12)]


@pytest.mark.parametrize("age", [301, 3600, -301, -86400])
def test_stale_or_future_timestamps_are_refused_with_401(age: int) -> None:
    service, sender = make_service(max_age_seconds=300)

    with pytest.raises(SignatureRejected, match=r"seconds old|in the future") as refused:
        service.accept_signed_events(*_signed(_closed_won_event(), timestamp=NOW_SECONDS - age))

    assert refused.value.http_status == 401
    assert sender.attempts == 0


@pytest.mark.parametrize("age", [0, 299, -299])
def test_timestamps_within_the_window_are_accepted(age: int) -> None:
    service, sender = make_service(max_age_seconds=300)
    service.accept_signed_events(*_signed(_closed_won_event(), timestamp=NOW_SECONDS - age))
    assert len(sender.requests()) == 1


def _tamper_body(body: bytes, timestamp: str, signature: str) -> tuple[bytes, str, str]:
    return body.replace(b"Bq3RT", b"Bq3RU"), timestamp, signature


def _other_key(body: bytes, timestamp: str, signature: str) -> tuple[bytes, str, str]:
    return body, timestamp, sign(body, int(timestamp), key="another-key")


def _other_timestamp(body: bytes, timestamp: str, signature: str) -> tuple[bytes, str, str]:
    return body, str(int(timestamp) - 1), signature


def _no_signature(body: bytes, timestamp: str, signature: str) -> tuple[bytes, str, str | None]:
    return body, timestamp, None


def _no_timestamp(body: bytes, timestamp: str, signature: str) -> tuple[bytes, str | None, str]:
    return body, None, signature


def _timestamp_not_a_number(body: bytes, timestamp: str, signature: str) -> tuple[bytes, str, str]:
    return body, "2026-11-28T16:20:12Z", signature


def _signature_prefixed(body: bytes, timestamp: str, signature: str) -> tuple[bytes, str, str]:
    return body, timestamp, "sha256=" + signature


@pytest.mark.parametrize(
    "mutate",
    [
        _tamper_body,
        _other_key,
        _other_timestamp,
        _no_signature,
        _no_timestamp,
        _timestamp_not_a_number,
        _signature_prefixed,
    ],
)
def test_a_bad_signature_is_refused_with_401_and_nothing_enqueued(mutate: object) -> None:
    service, sender = make_service()
    body, timestamp, signature = mutate(*_signed(_closed_won_event()))  # type: ignore[operator]

    with pytest.raises(SignatureRejected) as refused:
        service.accept_signed_events(body, timestamp, signature)

    assert refused.value.http_status == 401
    assert sender.attempts == 0


def test_an_upper_case_hex_signature_is_accepted() -> None:
    service, sender = make_service()
    body, timestamp, signature = _signed(_closed_won_event())
    service.accept_signed_events(body, timestamp, signature.upper())
    assert len(sender.requests()) == 1


@pytest.mark.parametrize(
    ("document", "error_type", "message"),
    [
        (b"not json at all", MalformedRequest, "not valid JSON"),
        (b"", MalformedRequest, "empty"),
        (b"[]", MalformedRequest, "empty list"),
        (b'"just a string"', MalformedRequest, "not a JSON object"),
        ({"OpportunityId__c": "0065g00000Bq3RTAAZ"}, MalformedRequest, "no EventUuid"),
        ({"EventUuid": "u1"}, MalformedRequest, "names no record: expected OpportunityId__c or AccountId__c"),
        (
            {"EventUuid": "u1", "OpportunityId__c": "0015g00000Lz8KpAAJ"},
            MalformedRequest,
            "not an Opportunity id",
        ),
        ({"EventUuid": "u1", "AccountId__c": "0015g00000Lz8KpAAB"}, MalformedRequest, "suffix"),
        ({"EventUuid": "u1", "AccountId__c": 15}, MalformedRequest, "must be a string"),
        (
            {"EventUuid": "u1", "AccountId__c": "0015g00000Lz8Kp", "LastModifiedDate": "yesterday"},
            MalformedRequest,
            "LastModifiedDate",
        ),
        ({"EventUuid": 7, "AccountId__c": "0015g00000Lz8Kp"}, MalformedRequest, "EventUuid must be a string"),
        (
            {"EventUuid": "u" * 257, "AccountId__c": "0015g00000Lz8Kp"},
            MalformedRequest,
            "EventUuid is 257 characters; at most 256",
        ),
        (
            {"EventUuid": "ü-1", "AccountId__c": "0015g00000Lz8Kp"},
            MalformedRequest,
            "EventUuid must be printable ASCII",
        ),
        (
            {"EventUuid": "u\x00", "AccountId__c": "0015g00000Lz8Kp"},
            MalformedRequest,
            "EventUuid must be printable ASCII",
        ),
        (
            [{"EventUuid": f"u{n}", "AccountId__c": "0015g00000Lz8Kp"} for n in range(101)],
            MalformedRequest,
            "at most 100",
        ),
        (
            [{"EventUuid": "u1", "AccountId__c": "0015g00000Lz8Kp"}, {"EventUuid": "u2"}],
            MalformedRequest,
            "event 2 names no record",
        ),
        (
            {"EventUuid": "u1", "AccountId__c": "0015g00000Lz8Kp", "OrganizationId": OTHER_ORG_ID},
            SenderNotAllowed,
            "not allowed",
        ),
    ],
)
def test_bad_events_are_refused_with_a_clear_message_and_nothing_enqueued(
    document: object, error_type: type[IntakeError], message: str
) -> None:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    service, sender = make_service()

    with pytest.raises(error_type, match=message):
        service.accept_signed_events(body, str(NOW_SECONDS), sign(body, NOW_SECONDS))
    assert sender.attempts == 0


def test_a_body_larger_than_lambda_takes_is_refused_with_413() -> None:
    body = json.dumps(_closed_won_event(Note__c="x" * MAX_REQUEST_BODY_BYTES)).encode()
    service, sender = make_service()
    with pytest.raises(RequestTooLarge, match="6 MiB") as refused:
        service.accept_signed_events(body, str(NOW_SECONDS), sign(body, NOW_SECONDS))
    assert refused.value.http_status == 413
    assert sender.attempts == 0


def test_a_large_event_that_fits_in_a_lambda_request_is_accepted_and_its_message_stays_small() -> None:
    body = json.dumps(_closed_won_event(Note__c="x" * (2 * 1024 * 1024))).encode()
    service, sender = make_service()

    service.accept_signed_events(body, str(NOW_SECONDS), sign(body, NOW_SECONDS))

    [message] = sender.messages(ORDER_QUEUE_URL)
    assert message.size() < 1024


def test_with_several_orgs_allowed_an_event_must_name_its_org() -> None:
    service, sender = make_service(org_ids=(ORG_ID, OTHER_ORG_ID))

    with pytest.raises(MalformedRequest, match="OrganizationId"):
        service.accept_signed_events(*_signed(_closed_won_event()))
    service.accept_signed_events(*_signed(_closed_won_event(OrganizationId=OTHER_ORG_ID[:15])))

    assert [r.org_id for r in sender.requests()] == [OTHER_ORG_ID]


def test_without_a_signing_key_signed_events_are_a_server_configuration_error() -> None:
    service, sender = make_service(secret=StaticSecret(signing_key=None))

    with pytest.raises(IntakeMisconfigured, match="event_signing_key") as failed:
        service.accept_signed_events(*_signed(_closed_won_event()))

    assert failed.value.http_status == 500
    assert sender.attempts == 0
