"""The local queue poller against a moto server: batches, partial failures, visibility timeout, redrive,
and functions run in execution environments of their own (processes: warm, killed at the timeout,
replaced when they die, killed by crash plans)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel

from sandbox.aws_local import sqs_client
from sandbox.crash_plan import CrashPlan
from sandbox.lambda_runtime import FunctionRuntime
from sandbox.poller import (
    BatchResponseError,
    EventSourceMapping,
    PollerError,
    QueuePoller,
    SlotStartError,
    failed_message_ids,
    start_queue_poller,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_RECEIVE_COUNT = 2
VISIBILITY_TIMEOUT_SECONDS = 1
IDLE_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class QueuePair:
    url: str
    arn: str
    dlq_url: str


@pytest.fixture(scope="module")
def sqs(moto_endpoint: str) -> SQSClient:
    return sqs_client(moto_endpoint)


@pytest.fixture
def queue(sqs: SQSClient) -> Iterator[QueuePair]:
    """A fresh queue with a DLQ: maxReceiveCount 2, visibility timeout 1 s."""
    name = f"poller-{uuid.uuid4().hex[:12]}"
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive_policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT})
    url = sqs.create_queue(
        QueueName=name,
        Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT_SECONDS), "RedrivePolicy": redrive_policy},
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    yield QueuePair(url=url, arn=arn, dlq_url=dlq_url)
    sqs.delete_queue(QueueUrl=url)
    sqs.delete_queue(QueueUrl=dlq_url)


class RecordingHandler:
    """A worker handler stand-in: records every event and context; fails the bodies it is told to."""

    def __init__(self, fail_bodies: set[str] | None = None, fail_first_receive_only: bool = False) -> None:
        self.fail_bodies = fail_bodies or set()
        self.fail_first_receive_only = fail_first_receive_only
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self.remaining_millis: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        with self.lock:
            self.events.append(event)
            self.contexts.append(context)
            self.remaining_millis.append(context.get_remaining_time_in_millis())
        failures = [
            {"itemIdentifier": record["messageId"]}
            for record in event["Records"]
            if record["body"] in self.fail_bodies
            and not (self.fail_first_receive_only and record["attributes"]["ApproximateReceiveCount"] != "1")
        ]
        return {"batchItemFailures": failures}

    def records(self) -> list[dict[str, Any]]:
        with self.lock:
            return [record for event in self.events for record in event["Records"]]

    def receive_counts(self, body: str) -> list[int]:
        return [
            int(record["attributes"]["ApproximateReceiveCount"])
            for record in self.records()
            if record["body"] == body
        ]


def send_bodies(sqs: SQSClient, queue_url: str, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(index), "MessageBody": body}
                for index, body in enumerate(bodies[start : start + 10])
            ],
        )


def dlq_bodies(sqs: SQSClient, dlq_url: str) -> list[str]:
    """The dead-letter queue's messages; a long poll, so a message moved a moment ago is seen too (a short
    poll may answer before it shows)."""
    messages = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get(
        "Messages", []
    )
    return sorted(message["Body"] for message in messages)


def give_time_to_finish(sqs: SQSClient, queue: QueuePair, seconds: int = 30) -> None:
    """Lengthen the queue's visibility timeout, as AWS requires (at least the function timeout), for tests
    that count deliveries: with the fixture's 1 s, a slow machine redelivers a message still being handled."""
    sqs.set_queue_attributes(QueueUrl=queue.url, Attributes={"VisibilityTimeout": str(seconds)})


def queue_depth(sqs: SQSClient, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_a_succeeding_handler_consumes_everything_in_batches_with_a_lambda_context(
    sqs: SQSClient, queue: QueuePair
) -> None:
    give_time_to_finish(sqs, queue)
    bodies = [f"message-{index}" for index in range(25)]
    send_bodies(sqs, queue.url, bodies)
    handler = RecordingHandler()
    mapping = EventSourceMapping(
        function_name="customer-upsert", queue_url=queue.url, handler=handler, function_timeout_seconds=30
    )

    with start_queue_poller(sqs, [mapping]) as poller:
        assert poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)

    handled = [record["body"] for record in handler.records()]
    assert sorted(handled) == sorted(bodies)  # each exactly once
    assert all(len(event["Records"]) <= 10 for event in handler.events)
    assert queue_depth(sqs, queue.url) == 0
    assert dlq_bodies(sqs, queue.dlq_url) == []
    stats = poller.stats()["customer-upsert"]
    assert stats["records"] == 25
    assert stats["failed_records"] == 0
    assert stats["invocations"] == len(handler.events)
    assert stats["errors"] == 0

    context = handler.contexts[0]
    account_id = queue.arn.split(":")[4]
    assert context.function_name == "customer-upsert"
    assert context.invoked_function_arn == f"arn:aws:lambda:us-east-1:{account_id}:function:customer-upsert"
    assert context.log_group_name == "/aws/lambda/customer-upsert"
    assert "[$LATEST]" in context.log_stream_name
    assert all(0 < remaining <= 30_000 for remaining in handler.remaining_millis)
    assert len({context.aws_request_id for context in handler.contexts}) == len(handler.contexts)


def test_the_event_has_the_shape_lambda_sends(sqs: SQSClient, queue: QueuePair) -> None:
    give_time_to_finish(sqs, queue)
    sqs.send_message(
        QueueUrl=queue.url,
        MessageBody='{"id": "006000000000001"}',
        MessageAttributes={
            "source": {"DataType": "String", "StringValue": "outbound-message"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01raw"},
        },
    )
    handler = RecordingHandler()
    mapping = EventSourceMapping(function_name="opportunity-to-order", queue_url=queue.url, handler=handler)

    with start_queue_poller(sqs, [mapping], region="us-east-1") as poller:
        assert poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)

    [record] = handler.records()
    assert set(record) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["body"] == '{"id": "006000000000001"}'
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queue.arn
    assert record["awsRegion"] == "us-east-1"
    assert set(record["attributes"]) == {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"] == {
        "source": {
            "stringValue": "outbound-message",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
        "blob": {
            "binaryValue": base64.b64encode(b"\x00\x01raw").decode(),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
    }


def test_partial_failures_leave_only_the_failed_records_for_redelivery(
    sqs: SQSClient, queue: QueuePair
) -> None:
    bodies = ["ok-1", "fail-1", "ok-2", "fail-2", "ok-3"]
    send_bodies(sqs, queue.url, bodies)
    handler = RecordingHandler(fail_bodies={"fail-1", "fail-2"}, fail_first_receive_only=True)
    mapping = EventSourceMapping(function_name="worker", queue_url=queue.url, handler=handler)

    with start_queue_poller(sqs, [mapping]) as poller:
        assert poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)

    for body in ("ok-1", "ok-2", "ok-3"):
        assert handler.receive_counts(body) == [1]
    for body in ("fail-1", "fail-2"):
        assert handler.receive_counts(body) == [1, 2]
    fail_1_ids = {record["messageId"] for record in handler.records() if record["body"] == "fail-1"}
    assert len(fail_1_ids) == 1  # the same message came back, not a copy
    assert dlq_bodies(sqs, queue.dlq_url) == []
    stats = poller.stats()["worker"]
    assert stats["records"] == 7
    assert stats["failed_records"] == 2
    assert stats["outcomes"].get("partial", 0) >= 1


def test_redelivery_waits_for_the_visibility_timeout(sqs: SQSClient, queue: QueuePair) -> None:
    send_bodies(sqs, queue.url, ["retry-me"])
    seen_at: list[float] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen_at.append(time.monotonic())
        if len(seen_at) == 1:
            return {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
        return {"batchItemFailures": []}

    mapping = EventSourceMapping(function_name="worker", queue_url=queue.url, handler=handler)
    with start_queue_poller(sqs, [mapping]) as poller:
        assert poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)

    assert len(seen_at) == 2
    assert seen_at[1] - seen_at[0] >= VISIBILITY_TIMEOUT_SECONDS * 0.9


def test_a_record_that_always_fails_ends_in_the_dlq_after_max_receive_count(
    sqs: SQSClient, queue: QueuePair
) -> None:
    give_time_to_finish(sqs, queue, seconds=3)  # a loaded machine still invokes well within it
    send_bodies(sqs, queue.url, ["poison", "fine-1", "fine-2"])
    handler = RecordingHandler(fail_bodies={"poison"})
    mapping = EventSourceMapping(function_name="worker", queue_url=queue.url, handler=handler)

    with start_queue_poller(sqs, [mapping]) as poller:
        assert poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)

    assert handler.receive_counts("poison") == [1, 2]  # exactly maxReceiveCount times
    assert handler.receive_counts("fine-1") == [1]
    assert handler.receive_counts("fine-2") == [1]
    assert dlq_bodies(sqs, queue.dlq_url) == ["poison"]
    assert queue_depth(sqs, queue.url) == 0


def test_without_report_batch_item_failures_the_response_is_ignored(sqs: SQSClient, queue: QueuePair) -> None:
    send_bodies(sqs, queue.url, ["ok", "reported-as-failed"])
    handler = RecordingHandler(fail_bodies={"reported-as-failed"})
    mapping = EventSourceMapping(
        function_name="worker", queue_url=queue.url, handler=handler, report_batch_item_failures=False
    )

    with start_queue_poller(sqs, [mapping]) as poller:
        assert poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)

    # As on Lambda without FunctionResponseTypes: a normal return deletes the whole batch.
    assert handler.receive_counts("reported-as-failed") == [1]
    assert queue_depth(sqs, queue.url) == 0
    assert dlq_bodies(sqs, queue.dlq_url) == []
    assert poller.stats()["worker"]["failed_records"] == 0


def test_a_handler_that_raises_gets_the_whole_batch_again(
    sqs: SQSClient, queue: QueuePair, caplog: pytest.LogCaptureFixture
) -> None:
    send_bodies(sqs, queue.url, ["a", "b", "c"])
    batches: list[list[str]] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        batches.append(sorted(record["body"] for record in event["Records"]))
        if len(batches) == 1:
            raise ConnectionError("Intacct is off-line")

    mapping = EventSourceMapping(
        function_name="flaky-worker", queue_url=queue.url, handler=handler, maximum_concurrency=1
    )
    with (
        caplog.at_level(logging.ERROR, logger="sandbox.poller"),
        start_queue_poller(sqs, [mapping]) as poller,
    ):
        assert poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)

    first_batch = batches[0]
    redelivered = sorted(body for batch in batches[1:] for body in batch)
    assert redelivered == first_batch  # every record of the failed batch came back, once each
    assert sorted(body for batch in batches for body in batch if body not in first_batch) == []
    [error_line] = [record.getMessage() for record in caplog.records if record.name == "sandbox.poller"]
    assert "flaky-worker" in error_line
    assert "Intacct is off-line" in error_line
    assert "\n" not in error_line
    stats = poller.stats()["flaky-worker"]
    assert stats["errors"] == 1
    assert stats["failed_records"] == len(first_batch)


def test_an_unknown_item_identifier_fails_the_whole_batch(sqs: SQSClient, queue: QueuePair) -> None:
    send_bodies(sqs, queue.url, ["x", "y"])
    batches: list[list[str]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        batches.append(sorted(record["body"] for record in event["Records"]))
        if len(batches) == 1:
            return {"batchItemFailures": [{"itemIdentifier": "not-a-message-of-this-batch"}]}
        return {}

    mapping = EventSourceMapping(
        function_name="worker", queue_url=queue.url, handler=handler, maximum_concurrency=1
    )
    with start_queue_poller(sqs, [mapping]) as poller:
        assert poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)

    redelivered = sorted(body for batch in batches[1:] for body in batch)
    assert redelivered == batches[0]
    assert poller.stats()["worker"]["outcomes"]["error"] == 1


def test_batches_never_exceed_batch_size(sqs: SQSClient, queue: QueuePair) -> None:
    give_time_to_finish(sqs, queue)
    bodies = [f"m-{index}" for index in range(9)]
    send_bodies(sqs, queue.url, bodies)
    handler = RecordingHandler()
    mapping = EventSourceMapping(function_name="worker", queue_url=queue.url, handler=handler, batch_size=4)

    with start_queue_poller(sqs, [mapping]) as poller:
        assert poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)

    sizes = [len(event["Records"]) for event in handler.events]
    assert max(sizes) <= 4
    assert sorted(record["body"] for record in handler.records()) == sorted(bodies)


def test_the_batching_window_gathers_messages_that_arrive_while_it_is_open(
    sqs: SQSClient, queue: QueuePair
) -> None:
    give_time_to_finish(sqs, queue, seconds=10)
    handler = RecordingHandler()
    mapping = EventSourceMapping(
        function_name="worker",
        queue_url=queue.url,
        handler=handler,
        batch_size=10,
        maximum_batching_window_seconds=1,
        maximum_concurrency=1,
        function_timeout_seconds=5,
    )
    send_bodies(sqs, queue.url, ["early"])

    with start_queue_poller(sqs, [mapping]) as poller:
        time.sleep(0.3)
        send_bodies(sqs, queue.url, ["late-1", "late-2"])
        assert poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)

    [event] = handler.events
    assert sorted(record["body"] for record in event["Records"]) == ["early", "late-1", "late-2"]


def test_a_batch_never_holds_a_message_twice_when_the_window_outlasts_the_visibility_timeout(
    sqs: SQSClient, queue: QueuePair
) -> None:
    handler = RecordingHandler()
    mapping = EventSourceMapping(
        function_name="worker",
        queue_url=queue.url,
        handler=handler,
        batch_size=10,
        maximum_batching_window_seconds=2,  # the queue's visibility timeout is 1 s
        maximum_concurrency=1,
        function_timeout_seconds=1,
    )
    # Each time the window outlasts the visibility timeout the receive counts; on a loaded machine that
    # can happen twice, so the message may not go to the DLQ meanwhile (maxReceiveCount 2 here).
    redrive = json.loads(
        sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["RedrivePolicy"])["Attributes"][
            "RedrivePolicy"
        ]
    )
    sqs.set_queue_attributes(
        QueueUrl=queue.url, Attributes={"RedrivePolicy": json.dumps({**redrive, "maxReceiveCount": 10})}
    )
    send_bodies(sqs, queue.url, ["only"])

    with start_queue_poller(sqs, [mapping]) as poller:
        assert poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)

    [event] = handler.events
    assert [record["body"] for record in event["Records"]] == ["only"]
    assert queue_depth(sqs, queue.url) == 0


def test_powertools_batch_processor_accepts_the_event(sqs: SQSClient, queue: QueuePair) -> None:
    processed: list[tuple[str, str, str | None]] = []
    processor = BatchProcessor(event_type=EventType.SQS, model=SqsRecordModel)

    def record_handler(record: SqsRecordModel) -> None:
        if record.body == "bad":
            raise ValueError("unknown product")
        source = (
            record.messageAttributes["source"].stringValue if "source" in record.messageAttributes else None
        )
        processed.append((str(record.body), record.attributes.ApproximateReceiveCount, source))

    def handler(event: dict[str, Any], context: Any) -> object:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    sqs.send_message(
        QueueUrl=queue.url,
        MessageBody="good-1",
        MessageAttributes={"source": {"DataType": "String", "StringValue": "event-bridge"}},
    )
    send_bodies(sqs, queue.url, ["good-2", "bad"])
    mapping = EventSourceMapping(
        function_name="worker", queue_url=queue.url, handler=handler, maximum_concurrency=1
    )

    with start_queue_poller(sqs, [mapping]) as poller:
        assert poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)

    assert sorted(processed) == [("good-1", "1", "event-bridge"), ("good-2", "1", None)]
    assert dlq_bodies(sqs, queue.dlq_url) == ["bad"]
    assert poller.stats()["worker"]["failed_records"] == MAX_RECEIVE_COUNT


def test_stop_returns_promptly_and_ends_the_threads(sqs: SQSClient, queue: QueuePair) -> None:
    mapping = EventSourceMapping(function_name="worker", queue_url=queue.url, handler=RecordingHandler())
    poller = start_queue_poller(sqs, [mapping])
    assert poller.is_running
    time.sleep(0.3)

    started = time.monotonic()
    poller.stop()

    assert time.monotonic() - started < 2.5
    assert not poller.is_running


def test_start_fails_fast_on_a_missing_queue(sqs: SQSClient, queue: QueuePair) -> None:
    missing = queue.url + "-missing"
    poller = QueuePoller(
        sqs, [EventSourceMapping(function_name="worker", queue_url=missing, handler=RecordingHandler())]
    )
    with pytest.raises(PollerError, match="missing"):
        poller.start()
    assert not poller.is_running


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, {"m2"}),
    ],
)
def test_partial_batch_responses_lambda_accepts(response: object, failed: set[str]) -> None:
    assert failed_message_ids(response, ["m1", "m2"]) == failed


@pytest.mark.parametrize(
    "response",
    [
        "ok",
        {"batchItemFailures": "m1"},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemId": "m1"}]},
        {"batchItemFailures": [{"itemIdentifier": "m3"}]},
        {"batchItemFailures": ["m1"]},
    ],
)
def test_partial_batch_responses_that_fail_the_whole_batch(response: object) -> None:
    with pytest.raises(BatchResponseError):
        failed_message_ids(response, ["m1", "m2"])


def test_mapping_settings_are_checked_like_aws() -> None:
    with pytest.raises(ValueError, match="maximum_batching_window_seconds"):
        EventSourceMapping(function_name="worker", queue_url="q", handler=RecordingHandler(), batch_size=50)
    with pytest.raises(ValueError, match="batch_size"):
        EventSourceMapping(function_name="worker", queue_url="q", handler=RecordingHandler(), batch_size=0)


# ---------------------------------------------------------------------------- execution environments

PROCESS_APP = """
import json
import os
import signal
import time

INVOCATIONS = 0  # module state: kept across the invocations of one process, gone with it
LOADED_AT = time.time()


def lambda_handler(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    bodies = [record["body"] for record in event["Records"]]
    first_receive = event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "1"
    seen = {
        "pid": os.getpid(),
        "invocations": INVOCATIONS,
        "loaded_at": LOADED_AT,
        "bodies": bodies,
        "first_receive": first_receive,
        "remaining_millis": context.get_remaining_time_in_millis(),
    }
    with open(os.environ["SEEN_FILE"], "a", encoding="utf-8") as handle:
        handle.write(json.dumps(seen) + "\\n")
    print(f"handled {bodies}")
    if first_receive and "hang" in bodies:
        time.sleep(60)
    if first_receive and "die" in bodies:
        os.kill(os.getpid(), signal.SIGKILL)
    return {"batchItemFailures": []}
"""
PROCESS_TIMEOUT_SECONDS = 2
PROCESS_VISIBILITY_SECONDS = 3


def process_runtime(directory: Path) -> FunctionRuntime:
    """A function whose handler (app.py in `directory`) writes what it saw to <directory>/seen.jsonl."""
    (directory / "app.py").write_text(PROCESS_APP)
    return FunctionRuntime(
        function_name="worker",
        code_dir=directory,
        handler="app.lambda_handler",
        environment={
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO_ROOT),
            "SEEN_FILE": str(directory / "seen.jsonl"),
        },
        log_dir=directory / "logs",
    )


def seen(directory: Path) -> list[dict[str, Any]]:
    path = directory / "seen.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def process_mapping(sqs: SQSClient, queue: QueuePair, tmp_path: Path) -> EventSourceMapping:
    """One slot (concurrency 1) of a function run in its own process, timeout 2 s, visibility 3 s."""
    sqs.set_queue_attributes(
        QueueUrl=queue.url, Attributes={"VisibilityTimeout": str(PROCESS_VISIBILITY_SECONDS)}
    )
    return EventSourceMapping(
        function_name="worker",
        queue_url=queue.url,
        runtime=process_runtime(tmp_path),
        maximum_concurrency=1,
        function_timeout_seconds=PROCESS_TIMEOUT_SECONDS,
    )


def test_a_slot_keeps_its_module_state_across_invocations(
    sqs: SQSClient, queue: QueuePair, process_mapping: EventSourceMapping, tmp_path: Path
) -> None:
    with start_queue_poller(sqs, [process_mapping]) as poller:
        [slot_pid] = poller.slot_pids()["worker"]
        for body in ("one", "two", "three"):
            send_bodies(sqs, queue.url, [body])
            assert poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)

    handled = seen(tmp_path)
    assert [item["bodies"] for item in handled] == [["one"], ["two"], ["three"]]
    assert slot_pid is not None
    assert {item["pid"] for item in handled} == {slot_pid}  # one process, not this one
    assert slot_pid != os.getpid()
    assert [item["invocations"] for item in handled] == [1, 2, 3]  # warm: the module was loaded once
    assert len({item["loaded_at"] for item in handled}) == 1
    assert all(0 < item["remaining_millis"] <= PROCESS_TIMEOUT_SECONDS * 1000 for item in handled)
    invocations = poller.invocations()
    assert [invocation.cold_start for invocation in invocations] == [True, False, False]
    assert invocations[0].init_seconds is not None
    assert invocations[0].init_seconds > 0
    assert all(invocation.pid == slot_pid for invocation in invocations)
    assert all(invocation.cpu_seconds > 0 for invocation in invocations)
    stats = poller.stats()["worker"]
    assert (stats["invocations"], stats["cold_starts"], stats["kills"], stats["timeouts"]) == (3, 1, 0, 0)
    log = (tmp_path / "logs" / "worker-0.log").read_text()
    assert "handled ['two']" in log  # the handler's stdout
    assert log.count('"platform.report"') == 3
    assert process_gone(slot_pid)  # stop() ended it


def test_an_invocation_past_its_timeout_is_killed_and_a_fresh_process_serves_the_next(
    sqs: SQSClient,
    queue: QueuePair,
    process_mapping: EventSourceMapping,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    send_bodies(sqs, queue.url, ["hang"])

    with (
        caplog.at_level(logging.ERROR, logger="sandbox.poller"),
        start_queue_poller(sqs, [process_mapping]) as poller,
    ):
        assert poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)
        [slot_pid] = poller.slot_pids()["worker"]

    first, second = seen(tmp_path)
    assert first["bodies"] == second["bodies"] == ["hang"]
    assert (first["first_receive"], second["first_receive"]) == (True, False)  # the message came back
    assert process_gone(first["pid"])  # killed at the timeout
    assert second["pid"] != first["pid"]
    assert second["invocations"] == 1  # a cold process: its module state starts afresh
    assert second["loaded_at"] > first["loaded_at"]
    assert slot_pid == second["pid"]
    timed_out, retried = poller.invocations()
    assert (timed_out.outcome, timed_out.pid, timed_out.failed_records) == ("timeout", first["pid"], 1)
    assert PROCESS_TIMEOUT_SECONDS <= timed_out.duration_seconds < PROCESS_TIMEOUT_SECONDS + 1
    assert (retried.outcome, retried.pid, retried.cold_start) == ("success", second["pid"], True)
    stats = poller.stats()["worker"]
    assert (stats["timeouts"], stats["kills"], stats["errors"], stats["cold_starts"]) == (1, 0, 1, 2)
    assert any("Task timed out after 2." in record.getMessage() for record in caplog.records)
    assert queue_depth(sqs, queue.url) == 0


def test_a_process_that_dies_during_an_invocation_deletes_nothing_and_is_replaced(
    sqs: SQSClient, queue: QueuePair, process_mapping: EventSourceMapping, tmp_path: Path
) -> None:
    send_bodies(sqs, queue.url, ["die"])

    with start_queue_poller(sqs, [process_mapping]) as poller:
        assert poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)

    first, second = seen(tmp_path)
    assert (first["first_receive"], second["first_receive"]) == (True, False)
    assert process_gone(first["pid"])
    assert second["pid"] != first["pid"]
    assert second["invocations"] == 1
    died, retried = poller.invocations()
    assert (died.outcome, died.killed, died.exit_signal, died.failed_records) == ("error", True, "SIGKILL", 1)
    assert (retried.outcome, retried.cold_start) == ("success", True)
    stats = poller.stats()["worker"]
    assert (stats["kills"], stats["timeouts"], stats["errors"]) == (1, 0, 1)


def test_a_process_killed_while_idle_is_replaced_before_the_next_invocation(
    sqs: SQSClient, queue: QueuePair, process_mapping: EventSourceMapping, tmp_path: Path
) -> None:
    with start_queue_poller(sqs, [process_mapping]) as poller:
        [first_pid] = poller.slot_pids()["worker"]
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        send_bodies(sqs, queue.url, ["after"])
        assert poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)

    [handled] = seen(tmp_path)
    assert handled["pid"] != first_pid
    [invocation] = poller.invocations()
    assert (invocation.outcome, invocation.cold_start) == ("success", True)


def test_stop_kills_a_running_invocation_instead_of_waiting_for_its_timeout(
    sqs: SQSClient, queue: QueuePair, tmp_path: Path
) -> None:
    mapping = EventSourceMapping(
        function_name="worker",
        queue_url=queue.url,
        runtime=process_runtime(tmp_path),
        maximum_concurrency=1,
        function_timeout_seconds=60,
    )
    send_bodies(sqs, queue.url, ["hang"])
    poller = start_queue_poller(sqs, [mapping])
    assert wait_for_file(tmp_path / "seen.jsonl")
    [running] = seen(tmp_path)

    started = time.monotonic()
    poller.stop()

    assert time.monotonic() - started < 5
    assert not poller.is_running
    assert process_gone(running["pid"])
    assert poller.slot_pids() == {"worker": [None]}


def wait_for_file(path: Path, timeout: float = IDLE_TIMEOUT_SECONDS) -> bool:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return path.exists()


def test_a_handler_that_cannot_be_loaded_stops_the_start(
    sqs: SQSClient, queue: QueuePair, tmp_path: Path
) -> None:
    runtime = process_runtime(tmp_path)
    (tmp_path / "app.py").write_text("raise RuntimeError('the mapping file is broken')\n")
    poller = QueuePoller(
        sqs, [EventSourceMapping(function_name="worker", queue_url=queue.url, runtime=runtime)]
    )

    with pytest.raises(SlotStartError, match="RuntimeError: the mapping file is broken") as refused:
        poller.start()

    assert refused.value.function_name == "worker"
    assert not poller.is_running
    assert "the mapping file is broken" in (tmp_path / "logs" / "worker-0.log").read_text()  # the traceback


# ---------------------------------------------------------------------------- crash plans

CHECKPOINT_APP = """
from sfintacct.sync.service import SyncService


def lambda_handler(event, context):
    for record in event["Records"]:
        SyncService.checkpoint(None, "after_intacct_write", record["body"])
    return {"batchItemFailures": []}
"""


def test_a_crash_plan_entry_kills_exactly_one_of_several_processes(
    sqs: SQSClient, queue: QueuePair, tmp_path: Path
) -> None:
    sqs.set_queue_attributes(QueueUrl=queue.url, Attributes={"VisibilityTimeout": "2"})
    (tmp_path / "app.py").write_text(CHECKPOINT_APP)
    plan = CrashPlan(tmp_path / "crash-plan.json")
    runtime = FunctionRuntime(
        function_name="worker",
        code_dir=tmp_path,
        handler="app.lambda_handler",
        environment={"PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "layers" / "sync"), str(REPO_ROOT)])},
        log_dir=tmp_path / "logs",
        crash_plan=plan.path,
    )
    mapping = EventSourceMapping(
        function_name="worker", queue_url=queue.url, runtime=runtime, batch_size=1, maximum_concurrency=3
    )
    this_record = plan.add("worker", "after_intacct_write", record_id="r-5")
    any_record = plan.add("worker", "after_intacct_write")  # the next record but r-5, taken first above
    plan.add("other-function", "after_intacct_write")  # not this function's: never taken
    plan.add("worker", "before_write_back")  # a step this handler never reaches: never taken

    send_bodies(sqs, queue.url, [f"r-{index}" for index in range(8)])
    with start_queue_poller(sqs, [mapping]) as poller:
        assert poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)

    crashes = plan.crashes()
    assert len(crashes) == 2  # one process per entry, however many reached the step together
    assert {crash.id for crash in crashes} == {any_record.id, this_record.id}
    assert this_record.crash is not None
    assert this_record.crash.record_id == "r-5"
    assert len({crash.pid for crash in crashes}) == 2
    assert all(process_gone(crash.pid) for crash in crashes)
    assert [entry["step"] for entry in plan.planned()] == ["after_intacct_write", "before_write_back"]
    stats = poller.stats()["worker"]
    assert stats["kills"] == 2
    assert stats["records"] - stats["failed_records"] == 8  # every record was handled in the end
    assert not any_record.cancel()  # consumed already


def test_concurrent_receives_on_the_local_queue_never_hand_out_one_message_twice(
    sqs: SQSClient, queue: QueuePair
) -> None:
    """The local SQS picks each receive's messages atomically: eight threads long-polling one queue share
    its 200 messages without a duplicate (moto alone hands some messages to two receivers at once)."""
    give_time_to_finish(sqs, queue, seconds=120)
    bodies = [f"message-{index}" for index in range(200)]
    received: list[str] = []
    lock = threading.Lock()

    def receive_until_empty() -> None:
        client = sqs_client(sqs.meta.endpoint_url)
        while True:
            messages = client.receive_message(
                QueueUrl=queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            if not messages:
                return
            with lock:
                received.extend(message["Body"] for message in messages)

    send_bodies(sqs, queue.url, bodies)
    receivers = [threading.Thread(target=receive_until_empty) for _ in range(8)]
    for receiver in receivers:
        receiver.start()
    for receiver in receivers:
        receiver.join(timeout=60)

    assert sorted(received) == sorted(bodies)
