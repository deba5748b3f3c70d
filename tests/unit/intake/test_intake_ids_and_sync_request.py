"""Salesforce id conversion (15 -> 18, case-safe suffix) and the SyncRequest contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from intake_support import REPO_ROOT, SYNC_REQUEST_KEYS
from pydantic import ValidationError

from sfintacct.intake.work_queues import QueueMessage
from sfintacct.salesforce_ids import (
    InvalidSalesforceId,
    is_salesforce_id,
    to_case_safe_id,
    to_case_safe_id_with_prefix,
)
from sfintacct.sync_request import SyncRequest

# 15-character ids and their 18-character forms as Salesforce shows them.
KNOWN_IDS = [
    ("001D000000IRFma", "001D000000IRFmaIAH"),  # the example in Salesforce's own knowledge articles
    ("0015g00000Lz8Kp", "0015g00000Lz8KpAAJ"),
    ("0065g00000Bq3RT", "0065g00000Bq3RTAAZ"),
    ("00D5g000004ZxYt", "00D5g000004ZxYtEAK"),
    ("000000000000000", "000000000000000AAA"),
    ("ZZZZZZZZZZZZZZZ", "ZZZZZZZZZZZZZZZ555"),
]


@pytest.mark.parametrize(("id15", "id18"), KNOWN_IDS)
def test_fifteen_character_ids_get_their_case_safe_suffix(id15: str, id18: str) -> None:
    assert to_case_safe_id(id15) == id18
    assert to_case_safe_id(id18) == id18


def test_ids_differing_only_in_case_get_different_suffixes() -> None:
    upper = to_case_safe_id("0015g00000Nt4Xa")
    lower = to_case_safe_id("0015g00000Nt4xa")
    assert upper[:15].lower() == lower[:15].lower()
    assert upper[15:] != lower[15:]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "0015g00000Lz8K",  # 14
        "0015g00000Lz8KpA",  # 16
        "0015g00000Lz8KpAAJX",  # 19
        "0015g00000Lz8K-",  # punctuation
        "0015g00000Lz8Kp AJ",
        "0015g00000Lz8KpAAB",  # wrong suffix
        "0015g00000lz8KpAAJ",  # re-cased body, suffix no longer matches
        "0015g00000Lz8Kpaaj",  # lower-case suffix
        "0015g00000Lz8Kp\u00e9",
    ],
)
def test_malformed_ids_are_refused(value: str) -> None:
    assert not is_salesforce_id(value)
    with pytest.raises(InvalidSalesforceId):
        to_case_safe_id(value)


def test_key_prefix_is_checked() -> None:
    assert to_case_safe_id_with_prefix("0065g00000Bq3RT", "006", "an Opportunity") == "0065g00000Bq3RTAAZ"
    with pytest.raises(InvalidSalesforceId, match="not an Opportunity id"):
        to_case_safe_id_with_prefix("0015g00000Lz8KpAAJ", "006", "an Opportunity")


def _request(**overrides: object) -> SyncRequest:
    values: dict[str, object] = {
        "source": "outbound_message",
        "org_id": "00D5g000004ZxYt",
        "object_type": "Opportunity",
        "record_id": "0065g00000Bq3RT",
        "producer_id": "04l5g00000Q7mPaAAJ",
        "last_modified": datetime(2026, 11, 28, 16, 20, 11, tzinfo=UTC),
        "received_at": datetime(2026, 11, 28, 16, 20, 12, tzinfo=UTC),
    }
    values.update(overrides)
    return SyncRequest.model_validate(values)


def test_sync_request_stores_eighteen_character_ids_and_round_trips_as_json() -> None:
    request = _request()
    assert request.org_id == "00D5g000004ZxYtEAK"
    assert request.record_id == "0065g00000Bq3RTAAZ"
    assert SyncRequest.model_validate_json(request.model_dump_json()) == request


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"record_id": "0015g00000Lz8KpAAJ"}, "not an Opportunity id"),
        ({"object_type": "Account"}, "not an Account id"),
        ({"org_id": "0015g00000Lz8KpAAJ"}, "not an organization id"),
        ({"record_id": "0065g00000Bq3RTAAB"}, "suffix"),
        ({"object_type": "Contact"}, "object_type"),
        ({"producer_id": ""}, "producer_id"),
        ({"received_at": datetime(2026, 11, 28, 16, 20, 12)}, "received_at"),
        ({"unexpected": "x"}, "unexpected"),
    ],
)
def test_sync_request_refuses_what_workers_could_not_trust(
    overrides: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        _request(**overrides)


def test_sync_request_is_frozen() -> None:
    request = _request()
    with pytest.raises(ValidationError):
        request.record_id = "0065g00000Bq3RUAAZ"  # type: ignore[misc]


def test_a_message_written_with_a_field_snapshot_is_still_read_and_the_snapshot_dropped() -> None:
    """Messages queued before the snapshot was dropped carry `fields`; a worker must not refuse them."""
    legacy = {
        **json.loads(_request().model_dump_json()),
        "fields": {"Name": "Müller Logistik GmbH", "Description": None, "Amount": "48000.0"},
    }

    request = SyncRequest.model_validate_json(json.dumps(legacy))

    assert request == _request()
    assert set(json.loads(request.model_dump_json())) == SYNC_REQUEST_KEYS


@pytest.mark.parametrize("name", ["sqs_customer_upsert.json", "sqs_opportunity_to_order.json"])
def test_the_sample_sqs_events_hold_sync_requests_as_the_intake_writes_them(name: str) -> None:
    event = json.loads((REPO_ROOT / "events" / name).read_text(encoding="utf-8"))
    for record in event["Records"]:
        request = SyncRequest.model_validate_json(record["body"])
        assert json.loads(record["body"]) == json.loads(request.model_dump_json())


# The latest moment an AwareDatetime can hold, with the longest offset text.
_LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=14)))


@pytest.mark.parametrize(
    "producer_id",
    [
        "\x01" * 256,  # control characters: JSON writes each as a 6-byte escape
        "\U0001f680" * 256,  # 4-byte UTF-8 characters
        '"' * 256,  # escaped as two bytes each
    ],
    ids=["control", "astral", "quotes"],
)
def test_a_sync_request_at_its_largest_is_a_queue_message_under_3_kib(producer_id: str) -> None:
    request = _request(
        source="change_data_capture", producer_id=producer_id, last_modified=_LATEST, received_at=_LATEST
    )

    message = QueueMessage.for_request(request)

    assert len(message.body.encode()) < 2048
    assert message.size() < 3 * 1024  # body and attributes; SQS takes 1 MiB


def test_what_the_intake_enqueues_at_its_largest_is_under_1_5_kib() -> None:
    """The intake sends producer ids of printable ASCII only (at most 256) and UTC timestamps."""
    worst_ascii = '"' * 128 + "\\" * 128  # both escaped as two bytes
    request = _request(
        source="change_data_capture",
        producer_id=worst_ascii,
        last_modified=datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        received_at=datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    )

    message = QueueMessage.for_request(request)

    assert len(message.body.encode()) < 768
    assert message.size() < 1536  # with the producer id again as a message attribute
