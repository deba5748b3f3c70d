"""The local queue poller: SQS queues driven into worker handlers the way Lambda's event source mapping does.

For each EventSourceMapping, `maximum_concurrency` threads long-poll the queue, gather a batch (up to
`batch_size` records, waiting up to `maximum_batching_window_seconds` for more), build the Lambda SQS
event, call the handler with a Lambda-like context, and settle the batch like a mapping with
FunctionResponseTypes [ReportBatchItemFailures]:

- the handler returns normally without failures: every message is deleted;
- it returns {"batchItemFailures": [{"itemIdentifier": messageId}, ...]}: every other message is deleted,
  the failed ones stay and reappear after the queue's visibility timeout;
- it raises, runs past the function timeout, dies, or returns an invalid response (not
  JSON-serialisable, an empty/missing itemIdentifier or one that is not in the batch): nothing is
  deleted, so the messages come back after the queue's visibility timeout.

A mapping runs its function one of two ways:

- `runtime` (a sandbox.lambda_runtime.FunctionRuntime), as the local stack does: every concurrency
  slot is an execution environment of its own, a process that loads the handler once (cold start) and
  keeps its module state across invocations (warm). The slot's thread sends the event to its process
  and waits at most the function timeout; past it, the process is killed with SIGKILL (outcome
  "timeout"). A process that dies during an invocation (e.g. killed by a crash plan) gives outcome
  "error". Either way a fresh process (cold) replaces it. CPU time and DynamoDB calls are measured in
  the process and reported with each invocation.
- `handler`, a callable run on the polling thread of this process (for tests of the poller itself):
  nothing can be killed, so an invocation past its timeout is only counted as "timeout" when it returns.

A mapping with report_batch_item_failures=False (no FunctionResponseTypes) ignores what the handler
returns, as Lambda does: the batch is deleted unless the handler raises or times out.

Redrive to the dead-letter queue after maxReceiveCount is the queue's own RedrivePolicy: SQS (and moto)
move a message on the receive that would exceed maxReceiveCount, so the handler sees it exactly
maxReceiveCount times. The poller does not move messages itself.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from sandbox.lambda_runtime import (
    EnvironmentStartError,
    ExecutionEnvironment,
    FunctionRuntime,
    InvocationResult,
    LocalLambdaContext,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType
    from mypy_boto3_sqs.type_defs import MessageAttributeValueOutputTypeDef, MessageTypeDef

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], object]

MAX_MESSAGES_PER_RECEIVE = 10  # SQS ReceiveMessage limit
POLL_WAIT_SECONDS = 1  # long-poll wait per receive; bounds how long stop() takes
STOP_TIMEOUT_SECONDS = 2.0
KILLED_INVOCATION_JOIN_SECONDS = 2.0  # after stop() kills a running invocation's process
RECEIVE_ERROR_PAUSE_SECONDS = 1.0
IDLE_CHECK_INTERVAL_SECONDS = 0.1
DEFAULT_MEMORY_SIZE_MB = 128

# The system attributes Lambda puts in every record, in its order, then those it adds when present.
_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
)
_OPTIONAL_RECORD_ATTRIBUTES = (
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)
_QUEUE_DEPTH_ATTRIBUTES: list[QueueAttributeNameType] = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]


class PollerError(Exception):
    """The poller was used wrongly (started twice) or a mapping's queue cannot be polled."""


class SlotStartError(PollerError):
    """An execution environment of a mapping could not start (its handler cannot be loaded)."""

    def __init__(self, function_name: str, message: str) -> None:
        super().__init__(message)
        self.function_name = function_name


class BatchResponseError(Exception):
    """The handler's partial batch response is invalid, so Lambda counts the whole batch as failed."""


@dataclass(frozen=True)
class EventSourceMapping:
    """One queue → function wiring, with the settings of an SQS event source mapping and its function."""

    function_name: str
    queue_url: str
    handler: Handler | None = None  # run in this process, on the polling thread
    runtime: FunctionRuntime | None = None  # run in a process per concurrency slot
    batch_size: int = 10
    maximum_batching_window_seconds: int = 0
    maximum_concurrency: int = 2
    function_timeout_seconds: int = 60
    memory_size_mb: int = DEFAULT_MEMORY_SIZE_MB
    report_batch_item_failures: bool = True  # FunctionResponseTypes: [ReportBatchItemFailures]

    def __post_init__(self) -> None:
        if (self.handler is None) == (self.runtime is None):
            raise ValueError(f"{self.function_name}: give either a handler or a runtime")
        if not 1 <= self.batch_size <= 10000:
            raise ValueError(f"{self.function_name}: batch_size must be 1..10000, not {self.batch_size}")
        if not 0 <= self.maximum_batching_window_seconds <= 300:
            raise ValueError(
                f"{self.function_name}: maximum_batching_window_seconds must be 0..300, "
                f"not {self.maximum_batching_window_seconds}"
            )
        if self.batch_size > MAX_MESSAGES_PER_RECEIVE and self.maximum_batching_window_seconds < 1:
            raise ValueError(
                f"{self.function_name}: batch_size above {MAX_MESSAGES_PER_RECEIVE} needs "
                "maximum_batching_window_seconds of at least 1 (as on AWS)"
            )
        if self.maximum_concurrency < 1:
            raise ValueError(f"{self.function_name}: maximum_concurrency must be at least 1")
        if self.function_timeout_seconds < 1:
            raise ValueError(f"{self.function_name}: function_timeout_seconds must be at least 1")


@dataclass(frozen=True)
class InvocationRecord:
    """One handler invocation: how many records, how many were left for retry, and what it cost."""

    function_name: str
    records: int
    failed_records: int
    outcome: str  # "success", "partial", "error" (raised, died or invalid response) or "timeout"
    cpu_seconds: float  # the process's CPU time around the handler call (in-process: the thread's)
    duration_seconds: float
    slot: int = 0  # the concurrency slot (execution environment) that ran it
    pid: int | None = None  # its process; None for an in-process handler
    cold_start: bool = False  # the first invocation of that process
    init_seconds: float | None = None  # the process's init (handler import) time, on a cold start
    killed: bool = False  # the process died during the invocation (not killed by the poller's timeout)
    exit_signal: str | None = None  # how a process that died or timed out ended, e.g. "SIGKILL"
    dynamodb_calls: dict[tuple[str, str], int] = field(default_factory=dict)  # (table, operation) -> calls


@dataclass
class _FunctionTotals:
    invocations: int = 0
    records: int = 0
    failed_records: int = 0
    errors: int = 0
    timeouts: int = 0
    kills: int = 0
    cold_starts: int = 0
    cpu_seconds: float = 0.0
    duration_seconds: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, invocation: InvocationRecord) -> None:
        self.invocations += 1
        self.records += invocation.records
        self.failed_records += invocation.failed_records
        if invocation.outcome in ("error", "timeout"):
            self.errors += 1
        self.timeouts += invocation.outcome == "timeout"
        self.kills += invocation.killed
        self.cold_starts += invocation.cold_start
        self.cpu_seconds += invocation.cpu_seconds
        self.duration_seconds += invocation.duration_seconds
        self.outcomes[invocation.outcome] = self.outcomes.get(invocation.outcome, 0) + 1


# ---------------------------------------------------------------------------- event and response


def sqs_event(messages: Sequence[MessageTypeDef], queue_arn: str, region: str) -> dict[str, Any]:
    """The Lambda SQS event for received messages, shaped exactly as the event source mapping sends it."""
    return {"Records": [_sqs_record(message, queue_arn, region) for message in messages]}


def _sqs_record(message: MessageTypeDef, queue_arn: str, region: str) -> dict[str, Any]:
    received = {str(name): value for name, value in message.get("Attributes", {}).items()}
    attributes = {name: received.get(name, "") for name in _RECORD_ATTRIBUTES}
    attributes.update({name: received[name] for name in _OPTIONAL_RECORD_ATTRIBUTES if name in received})
    message_attributes = {
        name: _record_message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _record_message_attribute(value: MessageAttributeValueOutputTypeDef) -> dict[str, Any]:
    """A message attribute as Lambda writes it: camelCase, binary base64-encoded, empty list values."""
    converted: dict[str, Any] = {}
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    converted["stringListValues"] = list(value.get("StringListValues", []))
    converted["binaryListValues"] = [
        base64.b64encode(item).decode("ascii") for item in value.get("BinaryListValues", [])
    ]
    converted["dataType"] = value["DataType"]
    return converted


def failed_message_ids(response: object, batch_message_ids: Iterable[str]) -> set[str]:
    """The message ids a partial batch response reports as failed, by Lambda's rules.

    None, a response without "batchItemFailures", or a null/empty list mean full success. A response
    that is not a JSON object, a list that is not a list of objects, or an item whose itemIdentifier is
    missing, empty, not a string or not a message of the batch raise BatchResponseError.
    """
    if response is None:
        return set()
    if not isinstance(response, dict):
        raise BatchResponseError(f"the response is a {type(response).__name__}, not a JSON object")
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        raise BatchResponseError("batchItemFailures is not a list")
    in_batch = set(batch_message_ids)
    failed: set[str] = set()
    for item in failures:
        if not isinstance(item, dict):
            raise BatchResponseError(f"a batchItemFailures entry is not an object: {item!r}")
        identifier = item.get("itemIdentifier")
        if not isinstance(identifier, str) or not identifier:
            raise BatchResponseError(f"a batchItemFailures entry has no itemIdentifier: {item!r}")
        if identifier not in in_batch:
            raise BatchResponseError(f"itemIdentifier {identifier!r} is not a message of the batch")
        failed.add(identifier)
    return failed


# ---------------------------------------------------------------------------- poller


class QueuePoller:
    """Background threads that drive SQS queues into handlers; start(), stop(), stats(), wait_until_idle()."""

    def __init__(
        self, sqs_client: SQSClient, mappings: Sequence[EventSourceMapping], region: str = "us-east-1"
    ) -> None:
        self._sqs = sqs_client
        self._mappings = list(mappings)
        self._region = region
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._running_invocations = 0
        self._busy: set[ExecutionEnvironment] = set()
        self._invocations: list[InvocationRecord] = []
        # The execution environments of the mappings that have a runtime, by mapping, one per slot.
        self._environments: dict[int, list[ExecutionEnvironment]] = {}
        self._started = False

    def __enter__(self) -> QueuePoller:
        """Start the poller unless it is already started (as by start_queue_poller); stop it on exit."""
        if not self._started:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Look up every queue's ARN (failing fast on a missing queue), start every execution environment
        (failing fast on a handler that cannot be loaded), then start the polling threads."""
        if self._started:
            raise PollerError("the poller is already started")
        queue_arns = {mapping.queue_url: self._queue_arn(mapping.queue_url) for mapping in self._mappings}
        for mapping in self._mappings:
            self._warn_on_short_visibility_timeout(mapping)
        self._start_environments()
        self._started = True
        for position, mapping in enumerate(self._mappings):
            environments = self._environments.get(position, [])
            for index in range(mapping.maximum_concurrency):
                thread = threading.Thread(
                    target=self._poll,
                    args=(
                        mapping,
                        queue_arns[mapping.queue_url],
                        environments[index] if environments else None,
                    ),
                    name=f"poller-{mapping.function_name}-{index}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()

    def _start_environments(self) -> None:
        """Spawn every slot's process at once (their inits overlap), then wait for each to be ready."""
        for position, mapping in enumerate(self._mappings):
            if mapping.runtime is not None:
                self._environments[position] = [
                    ExecutionEnvironment(mapping.runtime, slot) for slot in range(mapping.maximum_concurrency)
                ]
        everything = [environment for group in self._environments.values() for environment in group]
        environment = None
        try:
            for environment in everything:
                environment.spawn()
            for environment in everything:
                environment.wait_ready()
        except (EnvironmentStartError, OSError) as error:
            for started in everything:
                started.kill()
            assert environment is not None
            raise SlotStartError(environment.runtime.function_name, str(error)) from error

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Stop polling and end every execution environment within about `timeout` seconds.

        A running invocation gets until the timeout to finish; then its process is killed (its messages
        come back after the visibility timeout). An in-process handler cannot be cut off.
        """
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            busy = list(self._busy)
        for environment in busy:
            environment.signal_kill()
        deadline = time.monotonic() + (KILLED_INVOCATION_JOIN_SECONDS if busy else 0.0)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        still_running = [thread.name for thread in self._threads if thread.is_alive()]
        if still_running:
            logger.warning("poller threads still busy after stop: %s", ", ".join(still_running))
        idle = [env for env in self.environments() if f"poller-{env.name}" not in still_running]
        for environment in self.environments():
            if environment not in idle:
                environment.signal_kill()  # its thread still reads from it: never close under it
        for environment in idle:
            environment.close_input()  # all at once: the processes end side by side
        for environment in idle:
            environment.stop()

    @property
    def is_running(self) -> bool:
        """Whether any polling thread is still alive."""
        return any(thread.is_alive() for thread in self._threads)

    def environments(self) -> list[ExecutionEnvironment]:
        """Every execution environment (process slot), in mapping and slot order."""
        return [environment for group in self._environments.values() for environment in group]

    def slot_pids(self) -> dict[str, list[int | None]]:
        """Per function, the process id of each slot (None while a slot has no process)."""
        pids: dict[str, list[int | None]] = {}
        for environment in self.environments():
            pids.setdefault(environment.runtime.function_name, []).append(environment.pid)
        return pids

    def invocations(self) -> list[InvocationRecord]:
        """Every invocation so far, oldest first."""
        with self._lock:
            return list(self._invocations)

    def stats(self) -> dict[str, dict[str, Any]]:
        """Totals per function: invocations, records, failed_records, errors, timeouts (killed by the
        poller for passing the function timeout), kills (the process died during the invocation, e.g.
        by a crash plan), cold_starts, cpu_seconds, duration_seconds, outcomes (count per outcome)."""
        totals: dict[str, _FunctionTotals] = {
            mapping.function_name: _FunctionTotals() for mapping in self._mappings
        }
        for invocation in self.invocations():
            totals.setdefault(invocation.function_name, _FunctionTotals()).add(invocation)
        return {
            name: {
                "invocations": total.invocations,
                "records": total.records,
                "failed_records": total.failed_records,
                "errors": total.errors,
                "timeouts": total.timeouts,
                "kills": total.kills,
                "cold_starts": total.cold_starts,
                "cpu_seconds": total.cpu_seconds,
                "duration_seconds": total.duration_seconds,
                "outcomes": dict(total.outcomes),
            }
            for name, total in totals.items()
        }

    def reset_stats(self) -> None:
        """Forget the invocations recorded so far."""
        with self._lock:
            self._invocations.clear()

    def wait_until_idle(self, timeout: float) -> bool:
        """Wait until every polled queue is empty (visible, in flight and delayed) and no handler runs."""
        deadline = time.monotonic() + timeout
        while True:
            if self._is_idle():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(IDLE_CHECK_INTERVAL_SECONDS)

    def _is_idle(self) -> bool:
        # Invocations first, queues second: a batch received after the first check is still in flight.
        with self._lock:
            if self._running_invocations:
                return False
        for queue_url in dict.fromkeys(mapping.queue_url for mapping in self._mappings):
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=queue_url, AttributeNames=_QUEUE_DEPTH_ATTRIBUTES
            )["Attributes"]
            if any(int(attributes.get(name, "0")) for name in _QUEUE_DEPTH_ATTRIBUTES):
                return False
        return True

    def _warn_on_short_visibility_timeout(self, mapping: EventSourceMapping) -> None:
        """AWS refuses a mapping whose queue's visibility timeout is below the function timeout; say so."""
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=mapping.queue_url, AttributeNames=["VisibilityTimeout"]
        )
        visibility_timeout = int(attributes["Attributes"].get("VisibilityTimeout", "30"))
        if visibility_timeout < mapping.function_timeout_seconds:
            logger.warning(
                "%s: queue visibility timeout %d s is less than the function timeout %d s (AWS refuses this "
                "mapping; a record may be handled again while still running)",
                mapping.function_name,
                visibility_timeout,
                mapping.function_timeout_seconds,
            )

    def _queue_arn(self, queue_url: str) -> str:
        try:
            attributes = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        except (BotoCoreError, ClientError) as error:
            raise PollerError(f"cannot poll {queue_url}: {error}") from error
        return attributes["Attributes"]["QueueArn"]

    # --------------------------------------------------------------- one polling thread

    def _poll(
        self, mapping: EventSourceMapping, queue_arn: str, environment: ExecutionEnvironment | None
    ) -> None:
        log_stream_name = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[$LATEST]{uuid.uuid4().hex}"
        while not self._stopping.is_set():
            if environment is not None and not environment.is_alive() and not self._restart(environment):
                self._stopping.wait(RECEIVE_ERROR_PAUSE_SECONDS)
                continue
            try:
                messages = self._gather_batch(mapping)
            except (BotoCoreError, ClientError) as error:
                if self._stopping.is_set():
                    break
                logger.warning(
                    "%s: receiving from %s failed: %s", mapping.function_name, mapping.queue_url, error
                )
                self._stopping.wait(RECEIVE_ERROR_PAUSE_SECONDS)
                continue
            if not messages:
                continue
            try:
                self._invoke(mapping, queue_arn, messages, environment, log_stream_name)
            except Exception as error:  # the thread keeps polling; the batch reappears after the timeout
                logger.error(
                    "%s: invoking failed: %s: %s", mapping.function_name, type(error).__name__, error
                )

    def _restart(self, environment: ExecutionEnvironment) -> bool:
        """A fresh process for a slot whose process died or was killed (the next invocation is cold)."""
        try:
            environment.start()
        except (EnvironmentStartError, OSError) as error:
            logger.error("%s: the execution environment cannot start: %s", environment.name, error)
            return False
        return True

    def _gather_batch(self, mapping: EventSourceMapping) -> list[MessageTypeDef]:
        """Receive up to batch_size messages; with a batching window, keep receiving until it closes.

        On stop, messages gathered but not yet handed to the handler are made visible again.
        """
        messages: list[MessageTypeDef] = []
        window_closes: float | None = None
        while not self._stopping.is_set():
            wait_seconds = POLL_WAIT_SECONDS
            if window_closes is not None:
                remaining = window_closes - time.monotonic()
                if remaining <= 0:
                    return messages
                wait_seconds = POLL_WAIT_SECONDS if remaining >= POLL_WAIT_SECONDS else 0
            wanted = min(MAX_MESSAGES_PER_RECEIVE, mapping.batch_size - len(messages))
            received = self._sqs.receive_message(
                QueueUrl=mapping.queue_url,
                MaxNumberOfMessages=wanted,
                WaitTimeSeconds=wait_seconds,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            _add_received(messages, received)
            if not messages:
                return messages  # nothing yet: the thread checks its execution environment, then polls again
            if len(messages) >= mapping.batch_size:
                return messages
            if messages and mapping.maximum_batching_window_seconds == 0:
                return messages
            if messages and window_closes is None:
                window_closes = time.monotonic() + mapping.maximum_batching_window_seconds
            if not received and wait_seconds == 0:
                self._stopping.wait(0.05)
        self._release(mapping, messages)
        return []

    def _release(self, mapping: EventSourceMapping, messages: Sequence[MessageTypeDef]) -> None:
        for chunk in _chunks(list(messages), MAX_MESSAGES_PER_RECEIVE):
            try:
                self._sqs.change_message_visibility_batch(
                    QueueUrl=mapping.queue_url,
                    Entries=[
                        {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
                        for index, message in enumerate(chunk)
                    ],
                )
            except (BotoCoreError, ClientError) as error:
                logger.warning("%s: could not release messages on stop: %s", mapping.function_name, error)

    def _invoke(
        self,
        mapping: EventSourceMapping,
        queue_arn: str,
        messages: list[MessageTypeDef],
        environment: ExecutionEnvironment | None,
        log_stream_name: str,
    ) -> None:
        with self._lock:
            self._running_invocations += 1
            if environment is not None:
                self._busy.add(environment)
        try:
            event = sqs_event(messages, queue_arn, self._region)
            started = time.monotonic()
            deadline = time.time() + mapping.function_timeout_seconds
            context = {
                "function_name": mapping.function_name,
                "invoked_function_arn": _function_arn(queue_arn, self._region, mapping.function_name),
                "memory_limit_in_mb": mapping.memory_size_mb,
                "aws_request_id": str(uuid.uuid4()),
                "log_group_name": f"/aws/lambda/{mapping.function_name}",
                "log_stream_name": log_stream_name,
                "deadline_ms": int(deadline * 1000),
            }
            message_ids = [message["MessageId"] for message in messages]
            if environment is not None:
                result = environment.invoke(event, context, deadline)
            else:
                result = self._call_in_process(mapping, event, context)
            duration_seconds = time.monotonic() - started
            outcome, failed = self._settle(mapping, result, message_ids, duration_seconds)
            self._delete(mapping, [message for message in messages if message["MessageId"] not in failed])
            invocation = InvocationRecord(
                function_name=mapping.function_name,
                records=len(messages),
                failed_records=len(failed),
                outcome=outcome,
                cpu_seconds=result.cpu_seconds,
                duration_seconds=duration_seconds,
                slot=environment.slot if environment is not None else 0,
                pid=result.pid if environment is not None else None,
                cold_start=result.cold_start,
                init_seconds=result.init_seconds,
                killed=result.status == "died",
                exit_signal=result.exit_signal,
                dynamodb_calls=result.dynamodb_calls,
            )
            with self._lock:
                self._invocations.append(invocation)
        finally:
            with self._lock:
                self._running_invocations -= 1
                if environment is not None:
                    self._busy.discard(environment)

    def _call_in_process(
        self, mapping: EventSourceMapping, event: dict[str, Any], context: dict[str, Any]
    ) -> InvocationResult:
        """Run an in-process handler on this thread (it cannot be cut off at its timeout)."""
        assert mapping.handler is not None
        lambda_context = LocalLambdaContext(**context)
        started_cpu = time.thread_time()
        try:
            response = mapping.handler(event, lambda_context)
            json.dumps(response)  # Lambda serialises the response; failing that fails the invocation
        except Exception as error:
            status, response, text = "raised", None, f"{type(error).__name__}: {error}"
        else:
            status, text = "returned", ""
        return InvocationResult(
            status=status,
            pid=0,
            cold_start=False,
            response=response,
            error=text,
            cpu_seconds=time.thread_time() - started_cpu,
        )

    def _settle(
        self,
        mapping: EventSourceMapping,
        result: InvocationResult,
        message_ids: list[str],
        duration_seconds: float,
    ) -> tuple[str, set[str]]:
        """The invocation's outcome and the ids to leave on the queue, as Lambda's mapping decides."""
        name = mapping.function_name
        everything = set(message_ids)
        if result.status == "timeout" or duration_seconds > mapping.function_timeout_seconds:
            logger.error("%s: Task timed out after %.2f seconds", name, duration_seconds)
            return "timeout", everything
        if result.status == "died":
            logger.error("%s: the execution environment died during the invocation: %s", name, result.error)
            return "error", everything
        if result.status != "returned":
            logger.error("%s failed: %s", name, result.error)
            return "error", everything
        if not mapping.report_batch_item_failures:
            return "success", set()
        try:
            failed = failed_message_ids(result.response, message_ids)
        except BatchResponseError as error:
            logger.error("%s: invalid partial batch response, whole batch failed: %s", name, error)
            return "error", everything
        return ("partial" if failed else "success"), failed

    def _delete(self, mapping: EventSourceMapping, messages: Sequence[MessageTypeDef]) -> None:
        for chunk in _chunks(list(messages), MAX_MESSAGES_PER_RECEIVE):
            try:
                result = self._sqs.delete_message_batch(
                    QueueUrl=mapping.queue_url,
                    Entries=[
                        {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                        for index, message in enumerate(chunk)
                    ],
                )
            except (BotoCoreError, ClientError) as error:
                logger.error("%s: deleting handled messages failed: %s", mapping.function_name, error)
                continue
            for failure in result.get("Failed", []):
                logger.error(
                    "%s: deleting a handled message failed: %s %s",
                    mapping.function_name,
                    failure.get("Code"),
                    failure.get("Message"),
                )


def start_queue_poller(
    sqs_client: SQSClient, mappings: Sequence[EventSourceMapping], region: str = "us-east-1"
) -> QueuePoller:
    """Create a QueuePoller for the mappings and start it."""
    poller = QueuePoller(sqs_client, mappings, region)
    poller.start()
    return poller


def _add_received(batch: list[MessageTypeDef], received: Sequence[MessageTypeDef]) -> None:
    """Add received messages to a batch; one received again (visibility timeout shorter than the
    batching window) replaces its older copy, so a batch never holds a message twice."""
    positions = {message["MessageId"]: index for index, message in enumerate(batch)}
    for message in received:
        position = positions.get(message["MessageId"])
        if position is None:
            positions[message["MessageId"]] = len(batch)
            batch.append(message)
        else:
            batch[position] = message


def _function_arn(queue_arn: str, region: str, function_name: str) -> str:
    account_id = queue_arn.split(":")[4]
    return f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"


def _chunks(items: list[MessageTypeDef], size: int) -> list[list[MessageTypeDef]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
