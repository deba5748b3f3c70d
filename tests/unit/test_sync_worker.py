"""The worker's SQS side for messages that are not what the queue should carry: refused alone, clearly."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from sandbox.template_resources import load_template
from sfintacct.intacct.errors import AuthenticationFailed
from sfintacct.sync.outcome import OutcomeStatus, Reason, SyncOutcome
from sfintacct.sync.runtime import QueueSettings, queue_settings
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


# ---------------------------------------------------------------------------- faults of the set-up


class FaultingService:
    """A sync that raises `error` (as SyncService.handle does after logging a retried outcome)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def handle(self, request: SyncRequest, *, final_attempt: bool = False) -> SyncOutcome:
        raise self.error


class RecordingSqs:
    def __init__(self) -> None:
        self.visibility: list[tuple[str, int]] = []

    def change_message_visibility(self, *, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> None:
        self.visibility.append((ReceiptHandle, VisibilityTimeout))


def held_worker(
    monkeypatch: pytest.MonkeyPatch, error: Exception, builds: list[int], *, max_age: int = 300
) -> tuple[SyncWorker, RecordingSqs]:
    monkeypatch.setenv("POWERTOOLS_IDEMPOTENCY_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "SfIntacct")

    def build() -> SyncService:
        builds.append(1)
        return FaultingService(error)  # type: ignore[return-value]

    worker = SyncWorker(
        object_type="Opportunity",
        logger=Logger(service="sfintacct"),
        service_factory=build,
        settings=QueueSettings(
            max_receive_count=5,
            idempotency_table="no-table-needed",
            idempotency_expires_after_seconds=60,
            work_queue_url="https://sqs.local/opportunity-to-order",
            first_retry_delay_seconds=720,
            retry_backoff_factor=6,
            service_max_age_seconds=max_age,
        ),
    )
    sqs = RecordingSqs()
    monkeypatch.setattr(worker, "_sqs", lambda: sqs)
    return worker, sqs


def receive(count: int) -> SQSRecord:
    record = sqs_event(opportunity_request())["Records"][0]
    record["attributes"]["ApproximateReceiveCount"] = str(count)
    return SQSRecord(record)


def test_a_fault_of_the_set_up_is_held_with_a_growing_delay_and_the_secrets_are_read_again(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    builds: list[int] = []
    fault = AuthenticationFailed(
        "Intacct refused the company sign-in: XL03000006 Sign-in information is incorrect"
    )
    worker, sqs = held_worker(monkeypatch, fault, builds)

    for count in (1, 2, 3):
        with pytest.raises(AuthenticationFailed):
            worker.handle_record(receive(count))

    assert [delay for _, delay in sqs.visibility] == [720, 4320, 25920]
    assert len(builds) == 3  # the service (and the secrets it read) is built again after each fault
    output = capsys.readouterr().out
    metrics = [json.loads(line) for line in output.splitlines() if '"_aws"' in line]
    names = [metric["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] for metric in metrics]
    assert names.count("ConfigurationFault") == 3
    assert names.count("OpportunityWaiting") == 6  # with the reason, and alone for the alarm
    assert {metric.get("reason") for metric in metrics if "reason" in metric} == {"intacct_credentials"}
    errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 3
    assert "receive 1 of 5 and is retried later" in errors[0]
    assert "Sign-in information is incorrect" in errors[0]


def test_the_retry_delays_of_the_template_span_a_day_before_the_dead_letter_queue() -> None:
    resources = load_template().document["Resources"]
    parameters = load_template().document["Parameters"]
    receives = int(parameters["MaxReceiveCount"]["Default"])
    for function, queue in (
        ("OpportunityToOrderFunction", "OpportunityToOrderQueue"),
        ("CustomerUpsertFunction", "CustomerUpsertQueue"),
    ):
        environment = resources[function]["Properties"]["Environment"]["Variables"]
        settings = queue_settings(
            {
                "IDEMPOTENCY_TABLE": "t",
                "WORK_QUEUE_URL": "https://sqs.local/q",
                "RETRY_FIRST_DELAY_SECONDS": str(environment["RETRY_FIRST_DELAY_SECONDS"]),
            }
        )
        assert settings.first_retry_delay_seconds == resources[queue]["Properties"]["VisibilityTimeout"]
        waited = sum(settings.retry_delay(count) or 0 for count in range(1, receives + 1))
        assert waited >= 24 * 3600, (function, waited)


def test_a_warm_worker_reads_its_secrets_again_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[int] = []
    worker, _ = held_worker(monkeypatch, RuntimeError("unused"), builds, max_age=0)
    first = worker.service
    time.sleep(0.01)
    assert worker.service is not first
    assert len(builds) == 2
