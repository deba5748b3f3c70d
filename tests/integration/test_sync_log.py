"""The sync log against DynamoDB Local, with the table made from template.yaml's SyncLogTable."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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
