"""The sync log against DynamoDB Local, with the table made from template.yaml's SyncLogTable."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest

from sandbox.aws_local import create_tables, delete_tables
from sandbox.template_resources import load_template
from sfintacct.sync.outcome import OutcomeStatus, Reason, SyncOutcome
from sfintacct.sync.sync_log import SyncLog, SyncLogError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

OPPORTUNITY_ID = "0065g00000Bq3RTAAZ"
ACCOUNT_ID = "0015g00000Lz8KpAAJ"


@pytest.fixture(scope="module")
def sync_log_table(dynamodb: DynamoDBClient) -> Iterator[str]:
    tables = create_tables(
        dynamodb, load_template(), f"test-{uuid.uuid4().hex[:12]}", logical_ids=["SyncLogTable"]
    )
    try:
        yield tables["SyncLogTable"].ref
    finally:
        delete_tables(dynamodb, tables)


def outcome(status: OutcomeStatus, reason: Reason, sf_id: str = OPPORTUNITY_ID, **ids: str) -> SyncOutcome:
    return SyncOutcome(status, reason, "Opportunity", sf_id, f"{status} because {reason}", **ids)


def test_every_outcome_of_a_record_is_kept_in_order_with_its_ids(
    dynamodb: DynamoDBClient, sync_log_table: str
) -> None:
    sf_id = f"006{uuid.uuid4().hex[:15]}"
    log = SyncLog(dynamodb, sync_log_table)

    log.record(
        outcome(OutcomeStatus.RETRYING, Reason.TRANSIENT, sf_id), producer_id="n-1", source="outbound_message"
    )
    log.record(
        outcome(
            OutcomeStatus.SYNCED,
            Reason.CREATED,
            sf_id,
            intacct_order_id="Sales Order-SO0001",
            intacct_customer_id="C-1",
            account_id=ACCOUNT_ID,
        ),
        producer_id="n-1",
        source="outbound_message",
    )
    log.record(
        outcome(OutcomeStatus.ALREADY_SYNCED, Reason.ORDER_EXISTS, sf_id),
        producer_id="e-2",
        source="event_relay",
    )

    entries = log.history(sf_id)
    assert [(entry.status, entry.reason, entry.producer_id) for entry in entries] == [
        ("retrying", "transient", "n-1"),
        ("synced", "created", "n-1"),
        ("already_synced", "order_exists", "e-2"),
    ]
    assert entries[1].intacct_order_id == "Sales Order-SO0001"
    assert entries[1].intacct_customer_id == "C-1"
    assert entries[1].account_id == ACCOUNT_ID
    assert entries[0].intacct_order_id is None
    assert log.history(f"006{uuid.uuid4().hex[:15]}") == []


def test_entries_expire_after_the_retention(dynamodb: DynamoDBClient, sync_log_table: str) -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    sf_id = f"001{uuid.uuid4().hex[:15]}"
    SyncLog(dynamodb, sync_log_table, retention_days=30, clock=lambda: now).record(
        outcome(OutcomeStatus.SKIPPED, Reason.NOT_WON, sf_id), producer_id="p", source="platform_event"
    )

    item = dynamodb.query(
        TableName=sync_log_table,
        KeyConditionExpression="sf_id = :id",
        ExpressionAttributeValues={":id": {"S": sf_id}},
    )["Items"][0]
    assert int(item["expires_at"]["N"]) == int((now + timedelta(days=30)).timestamp())


def test_a_missing_table_is_a_clear_error(dynamodb: DynamoDBClient) -> None:
    log = SyncLog(dynamodb, "no-such-sync-log")

    with pytest.raises(SyncLogError, match="cannot write the sync log of 006"):
        log.record(outcome(OutcomeStatus.SYNCED, Reason.CREATED), producer_id="p", source="outbound_message")


def test_outcomes_of_a_status_since_a_time_come_newest_first_page_by_page(
    dynamodb: DynamoDBClient, sync_log_table: str
) -> None:
    """The status index answers "what failed since T" with Queries: other statuses and older outcomes
    are left out, and a small page size makes the reader follow LastEvaluatedKey across pages."""
    start = datetime(2031, 3, 2, 8, 0, tzinfo=UTC)  # a window no other test of the module logs in
    times = iter(start + timedelta(minutes=minute) for minute in range(100))
    log = SyncLog(dynamodb, sync_log_table, clock=lambda: next(times))
    recorded: list[tuple[OutcomeStatus, str]] = []
    for number in range(12):
        status = (OutcomeStatus.FAILED, OutcomeStatus.SYNCED, OutcomeStatus.WAITING)[number % 3]
        sf_id = f"006{uuid.uuid4().hex[:15]}"
        log.record(
            outcome(status, Reason.TRANSIENT, sf_id), producer_id=f"n-{number}", source="outbound_message"
        )
        recorded.append((status, sf_id))
    failed = [sf_id for status, sf_id in recorded if status is OutcomeStatus.FAILED]  # minutes 0, 3, 6, 9
    since = start + timedelta(minutes=3)
    queries: list[dict[str, object]] = []

    def count_query(params: dict[str, object], **_: object) -> None:
        queries.append(params)

    dynamodb.meta.events.register("provide-client-params.dynamodb.Query", count_query)
    try:
        entries = log.by_status("failed", since=since, page_size=2)
        pages = len(queries)
        first_two = log.by_status("failed", since=since, limit=2, page_size=2)
    finally:
        dynamodb.meta.events.unregister("provide-client-params.dynamodb.Query", count_query)

    assert [entry.sf_id for entry in entries] == failed[:0:-1]  # minutes 9, 6, 3: newest first
    assert [entry.at for entry in entries] == [start + timedelta(minutes=m) for m in (9, 6, 3)]
    assert {(entry.status, entry.reason, entry.object_type) for entry in entries} == {
        ("failed", "transient", "Opportunity")
    }
    assert pages >= 2  # followed LastEvaluatedKey: 3 entries in pages of 2
    assert all(query["IndexName"] == "by-status" for query in queries)
    assert [entry.sf_id for entry in first_two] == failed[:0:-1][:2]
    assert len(queries) == pages + 1  # the limit was reached on the first page: no second Query
    waiting_since = [
        sf_id
        for minute, (status, sf_id) in enumerate(recorded)
        if status is OutcomeStatus.WAITING and minute >= 3
    ]
    assert [entry.sf_id for entry in log.by_status("waiting", since=since)] == waiting_since[::-1]
    assert log.by_status("failed", since=start + timedelta(minutes=10)) == []
    # Time is compared in UTC, whatever offset `since` is given in.
    same_time_elsewhere = since.astimezone(timezone(timedelta(hours=-5)))
    assert [entry.sf_id for entry in log.by_status("failed", since=same_time_elsewhere)] == failed[:0:-1]


def test_by_status_wants_an_aware_time(dynamodb: DynamoDBClient, sync_log_table: str) -> None:
    with pytest.raises(ValueError, match="aware"):
        SyncLog(dynamodb, sync_log_table).by_status("failed", since=datetime(2031, 3, 2))
