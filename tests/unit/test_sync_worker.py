"""The worker's SQS side for messages that are not what the queue should carry: refused alone, clearly."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from sandbox.template_resources import load_template
from sfintacct.sync.outcome import OutcomeStatus, Reason, SyncOutcome
from sfintacct.sync.runtime import QueueSettings
from sfintacct.sync.service import SyncService
from sfintacct.sync_request import SyncRequest
from sfintacct.sync_worker import SyncWorker

OPPORTUNITY_ID = "0065g00000Bq3RTAAZ"


class LambdaContextStub:
    function_name = "opportunity_to_order"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:opportunity_to_order"
    aws_request_id = "request-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def never_built() -> SyncService:
    raise AssertionError("a refused message must not reach the sync")


@pytest.fixture
def worker() -> SyncWorker:
    return SyncWorker(
        object_type="Opportunity",
        logger=Logger(service="test"),
        service_factory=never_built,
        settings=QueueSettings(
            max_receive_count=5, idempotency_table="no-table-needed", idempotency_expires_after_seconds=60
        ),
    )


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{index}",
                "receiptHandle": f"r-{index}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1795920212343",
                    "SenderId": "local",
                    "ApproximateFirstReceiveTimestamp": "1795920212343",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:opportunity-to-order",
                "awsRegion": "us-east-1",
            }
            for index, body in enumerate(bodies)
        ]
    }


def opportunity_request() -> str:
    return SyncRequest(
        source="outbound_message",
        org_id="00D5g000004ZxYtEAK",
        object_type="Opportunity",
        record_id=OPPORTUNITY_ID,
        producer_id="n-2",
        received_at=datetime.now(UTC),
    ).model_dump_json()


def account_request() -> str:
    return SyncRequest(
        source="outbound_message",
        org_id="00D5g000004ZxYtEAK",
        object_type="Account",
        record_id="0015g00000Lz8KpAAJ",
        producer_id="n-1",
        received_at=datetime.now(UTC),
    ).model_dump_json()


def test_messages_that_are_not_sync_requests_fail_alone_and_stay_for_the_dead_letter_queue(
    worker: SyncWorker,
) -> None:
    bad_bodies = ("not json", json.dumps({"object_type": "Opportunity"}), account_request())

    response = worker.handle_batch(sqs_event(*bad_bodies), LambdaContextStub())  # type: ignore[arg-type]

    assert response == {"batchItemFailures": [{"itemIdentifier": f"m-{index}"} for index in range(3)]}


def test_the_refusal_says_what_is_wrong(worker: SyncWorker) -> None:
    not_json, wrong_object = (
        SQSRecord(record) for record in sqs_event("not json", account_request())["Records"]
    )

    with pytest.raises(Exception, match="message m-0 is not a SyncRequest"):
        worker.handle_record(not_json)
    with pytest.raises(Exception, match="is for Account; this worker syncs Opportunity"):
        worker.handle_record(wrong_object)


class OutcomeStub:
    """A sync that answers with a fixed outcome (the worker's own plumbing is what is tested)."""

    def __init__(self, outcome: SyncOutcome) -> None:
        self.outcome = outcome

    def handle(self, request: SyncRequest, *, final_attempt: bool = False) -> SyncOutcome:
        return self.outcome


def test_each_outcome_is_a_metric_with_its_reason_as_a_dimension(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_IDEMPOTENCY_DISABLED", "true")  # no table here; idempotency is e2e-tested
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "SfIntacct")
    outcome = SyncOutcome(
        OutcomeStatus.ALREADY_SYNCED, Reason.ORDER_EXISTS, "Opportunity", OPPORTUNITY_ID, "already synced"
    )
    worker = SyncWorker(
        object_type="Opportunity",
        logger=Logger(service="test"),
        service_factory=lambda: OutcomeStub(outcome),  # type: ignore[arg-type,return-value]
        settings=QueueSettings(
            max_receive_count=5, idempotency_table="no-table-needed", idempotency_expires_after_seconds=60
        ),
    )

    response = worker.handle_batch(sqs_event(opportunity_request()), LambdaContextStub())  # type: ignore[arg-type]

    assert response == {"batchItemFailures": []}
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert len(metrics) == 1
    definition = metrics[0]["_aws"]["CloudWatchMetrics"][0]
    assert definition["Namespace"] == "SfIntacct"
    assert definition["Metrics"] == [{"Name": "OpportunityAlreadySynced", "Unit": "Count"}]
    assert "reason" in definition["Dimensions"][0]
    assert metrics[0]["reason"] == "order_exists"
    assert metrics[0]["OpportunityAlreadySynced"] == [1.0]


def test_a_deal_changed_after_sync_is_the_metric_and_dimensions_the_template_alarm_watches(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_IDEMPOTENCY_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "SfIntacct")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "sfintacct")  # as the template's Globals set it
    outcome = SyncOutcome(
        OutcomeStatus.CHANGED_AFTER_SYNC, Reason.ORDER_NOT_OPEN, "Opportunity", OPPORTUNITY_ID, "changed"
    )
    worker = SyncWorker(
        object_type="Opportunity",
        logger=Logger(service="sfintacct"),
        service_factory=lambda: OutcomeStub(outcome),  # type: ignore[arg-type,return-value]
        settings=QueueSettings(
            max_receive_count=5, idempotency_table="no-table-needed", idempotency_expires_after_seconds=60
        ),
    )

    worker.handle_batch(sqs_event(opportunity_request()), LambdaContextStub())  # type: ignore[arg-type]

    with_reason, alone = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
    ]
    assert with_reason["reason"] == "order_not_open"
    alarm = load_template().document["Resources"]["OrderChangedAfterSyncAlarm"]["Properties"]
    metric = alone
    definition = metric["_aws"]["CloudWatchMetrics"][0]
    assert definition["Namespace"] == alarm["Namespace"]
    assert [item["Name"] for item in definition["Metrics"]] == [alarm["MetricName"]]
    assert {name: metric[name] for name in definition["Dimensions"][0]} == {
        item["Name"]: item["Value"] for item in alarm["Dimensions"]
    }
