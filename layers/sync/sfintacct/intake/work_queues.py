"""Putting SyncRequests on the work queues: one SQS message per request, in batches of up to 10.

`enqueue_sync_requests` returns only when every request is on its queue and raises `EnqueueFailed`
otherwise (some may already be queued; the sender retries the whole message and the workers drop
duplicates by producer id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sfintacct.intake.errors import EnqueueFailed
from sfintacct.sync_request import SyncObjectType, SyncRequest

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024
SEND_ATTEMPTS = 2  # a batch's failed entries are sent once more before giving up


@dataclass(frozen=True)
class QueueMessage:
    """One SQS message: the serialised SyncRequest and string message attributes."""

    body: str
    attributes: dict[str, str]

    @classmethod
    def for_request(cls, request: SyncRequest) -> QueueMessage:
        return cls(
            body=request.model_dump_json(),
            attributes={
                "object_type": request.object_type,
                "producer_id": request.producer_id,
                "source": request.source,
            },
        )

    def size(self) -> int:
        """Bytes SQS counts against the batch limit (body, attribute names, types and values)."""
        attributes = sum(
            len(name) + len("String") + len(value.encode()) for name, value in self.attributes.items()
        )
        return len(self.body.encode()) + attributes


class QueueSender(Protocol):
    """Sends one batch (at most 10 messages) to a queue; raises `EnqueueFailed` unless all are accepted."""

    def send_batch(self, queue_url: str, messages: Sequence[QueueMessage]) -> None: ...


@dataclass(frozen=True)
class QueueRoutes:
    """Which queue does which job: Account -> customer upsert, Opportunity -> opportunity to order."""

    customer_queue_url: str
    order_queue_url: str

    def queue_for(self, object_type: SyncObjectType) -> str:
        return self.customer_queue_url if object_type == "Account" else self.order_queue_url


def enqueue_sync_requests(requests: Sequence[SyncRequest], sender: QueueSender, routes: QueueRoutes) -> None:
    """Send every request to the queue of its job; raise `EnqueueFailed` if any could not be sent."""
    by_queue: dict[str, list[QueueMessage]] = {}
    for request in requests:
        by_queue.setdefault(routes.queue_for(request.object_type), []).append(
            QueueMessage.for_request(request)
        )
    for queue_url, messages in by_queue.items():
        for batch in _batches(messages):
            sender.send_batch(queue_url, batch)


def _batches(messages: Sequence[QueueMessage]) -> Iterator[list[QueueMessage]]:
    """Batches of at most 10 messages and at most 256 KiB in total."""
    batch: list[QueueMessage] = []
    batch_bytes = 0
    for message in messages:
        size = message.size()
        if batch and (len(batch) == MAX_BATCH_ENTRIES or batch_bytes + size > MAX_BATCH_BYTES):
            yield batch
            batch, batch_bytes = [], 0
        batch.append(message)
        batch_bytes += size
    if batch:
        yield batch


class SqsQueueSender:
    """`QueueSender` over SQS SendMessageBatch. The client is created on first use, once.

    The endpoint comes from boto3's own configuration (e.g. AWS_ENDPOINT_URL_SQS for a local stack).
    """

    def __init__(self, client_factory: Callable[[], SQSClient] | None = None) -> None:
        self._client_factory = client_factory or _default_sqs_client
        self._client: SQSClient | None = None

    def send_batch(self, queue_url: str, messages: Sequence[QueueMessage]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        if len(messages) > MAX_BATCH_ENTRIES:
            raise ValueError(f"a batch holds at most {MAX_BATCH_ENTRIES} messages")
        pending = {str(index): message for index, message in enumerate(messages)}
        problems: list[str] = []
        for _ in range(SEND_ATTEMPTS):
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {
                    "Id": entry_id,
                    "MessageBody": message.body,
                    "MessageAttributes": {
                        name: {"DataType": "String", "StringValue": value}
                        for name, value in message.attributes.items()
                    },
                }
                for entry_id, message in pending.items()
            ]
            try:
                if self._client is None:
                    self._client = self._client_factory()
                response = self._client.send_message_batch(QueueUrl=queue_url, Entries=entries)
            except (BotoCoreError, ClientError) as error:
                raise EnqueueFailed(
                    f"the work queue could not be reached ({_describe_error(error)})"
                ) from error
            failed = response.get("Failed", [])
            problems = [f"{entry.get('Code', '?')}: {entry.get('Message', '')}".strip() for entry in failed]
            retryable = {entry["Id"] for entry in failed if not entry.get("SenderFault", False)}
            pending = {entry_id: message for entry_id, message in pending.items() if entry_id in retryable}
            if not failed:
                return
            if len(retryable) < len(failed):
                break
        raise EnqueueFailed(
            f"{len(problems)} of {len(messages)} messages were not accepted by the work queue ({problems[0]})"
        )


def _default_sqs_client() -> SQSClient:
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    config = Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"})
    return boto3.client("sqs", config=config)


def _describe_error(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(error).__name__
