"""The worker runs each piece of work once, and only once per piece of work: idempotency on the real
table (DynamoDB Local, made from template.yaml), keyed on object type + record id + producer id.

A repeated or forged envelope id (notification Id, EventUuid) on another record is other work: it must
be done, not answered with the first record's cached result.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from aws_lambda_powertools import Logger

from sandbox.aws_local import create_tables, delete_tables
from sandbox.template_resources import load_template
from sfintacct.salesforce_ids import to_case_safe_id
from sfintacct.sync.outcome import OutcomeStatus, Reason, SyncOutcome
from sfintacct.sync.runtime import QueueSettings
from sfintacct.sync_request import SyncRequest
from sfintacct.sync_worker import SyncWorker
from tests.unit.test_sync_worker import LambdaContextStub
from tests.unit.test_sync_worker import sqs_event as batch

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

pytestmark = pytest.mark.integration


class RecordingSync:
    """Counts the work that reached the sync."""

    def __init__(self) -> None:
        self.handled: list[tuple[str, str]] = []

    def handle(self, request: SyncRequest, *, final_attempt: bool = False) -> SyncOutcome:
        self.handled.append((request.record_id, request.producer_id))
        return SyncOutcome(
            OutcomeStatus.SYNCED, Reason.CREATED, request.object_type, request.record_id, "done"
        )


@pytest.fixture(scope="module")
def idempotency_table(dynamodb: DynamoDBClient) -> Iterator[str]:
    created = create_tables(
        dynamodb, load_template(), f"test-{uuid.uuid4().hex[:12]}", logical_ids=["IdempotencyTable"]
    )
    try:
        yield created["IdempotencyTable"].ref
    finally:
        delete_tables(dynamodb, created)


@pytest.fixture
def sync() -> RecordingSync:
    return RecordingSync()


@pytest.fixture
def worker(
    monkeypatch: pytest.MonkeyPatch, dynamodb_endpoint: str, idempotency_table: str, sync: RecordingSync
) -> SyncWorker:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    return SyncWorker(
        object_type="Opportunity",
        logger=Logger(service="test"),
        service_factory=lambda: sync,  # type: ignore[arg-type,return-value]
        settings=QueueSettings(
            max_receive_count=5, idempotency_table=idempotency_table, idempotency_expires_after_seconds=600
        ),
    )


def opportunity_id() -> str:
    return to_case_safe_id(f"0065g{uuid.uuid4().hex[:10]}")


def body(record_id: str, producer_id: str) -> str:
    return SyncRequest(
        source="outbound_message",
        org_id="00D5g000004ZxYtEAK",
        object_type="Opportunity",
        record_id=record_id,
        producer_id=producer_id,
        received_at=datetime.now(UTC),
    ).model_dump_json()


def test_two_deals_whose_notifications_share_an_id_are_both_synced(
    worker: SyncWorker, sync: RecordingSync
) -> None:
    """A repeated notification Id / EventUuid, or one forged before the real one, hides no deal."""
    first, second, third = opportunity_id(), opportunity_id(), opportunity_id()
    shared = f"04l5g{uuid.uuid4().hex[:13]}"

    assert worker.handle_batch(batch(body(first, shared)), LambdaContextStub()) == {"batchItemFailures": []}  # type: ignore[arg-type]
    response = worker.handle_batch(batch(body(second, shared), body(third, shared)), LambdaContextStub())  # type: ignore[arg-type]

    assert response == {"batchItemFailures": []}
    assert sync.handled == [(first, shared), (second, shared), (third, shared)]


def test_the_same_notification_delivered_again_is_answered_from_the_first_result(
    worker: SyncWorker, sync: RecordingSync
) -> None:
    record_id = opportunity_id()
    notification = f"04l5g{uuid.uuid4().hex[:13]}"

    worker.handle_batch(batch(body(record_id, notification)), LambdaContextStub())  # type: ignore[arg-type]
    worker.handle_batch(batch(body(record_id, notification)), LambdaContextStub())  # type: ignore[arg-type]
    worker.handle_batch(batch(body(record_id, f"{notification}-other")), LambdaContextStub())  # type: ignore[arg-type]

    assert sync.handled == [(record_id, notification), (record_id, f"{notification}-other")]
