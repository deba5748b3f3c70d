"""`sfintacct retry` and `sfintacct redrive`: putting work back on the work queues.

retry: one new SyncRequest per record, on the queue of its worker, with a producer id of its own
(`retry-<uuid>`) and no LastModifiedDate: the workers take it as a retry asked for, compare the record
with Intacct and answer `already_synced` when there is nothing to do (exactly-once holds in the workers).

redrive: every message of a dead-letter queue goes back to its work queue, body and attributes as they
were: received (hidden for a while), sent to the work queue, and deleted from the dead-letter queue only
once the send succeeded. A message that is not a SyncRequest is reported and left where it is, visible
again at the end of the run, as is everything a dry run looked at.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from sfintacct.intake.work_queues import QueueMessage, SqsQueueSender, enqueue_sync_requests
from sfintacct.sync_request import SyncObjectType, SyncRequest
from sfintacct_ops.deployment import Deployment
from sfintacct_ops.records import new_producer_id, sync_request

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef, MessageTypeDef

QueueChoice = Literal["customer", "order", "both"]
QUEUE_OBJECT_TYPES: dict[str, tuple[SyncObjectType, ...]] = {
    "customer": ("Account",),
    "order": ("Opportunity",),
    "both": ("Account", "Opportunity"),
}
QUEUE_NAMES: dict[SyncObjectType, str] = {"Account": "customer", "Opportunity": "order"}
# How long a received dead letter stays hidden while the run looks at it (released at the end).
HOLD_SECONDS = 120
RECEIVE_WAIT_SECONDS = 1


# ---------------------------------------------------------------------------- retry


def retry(deployment: Deployment, record_ids: Sequence[str]) -> list[SyncRequest]:
    """Enqueue one new SyncRequest per record (the intake's own batching and routing); returns them."""
    org_id = deployment.org_id()
    requests = [sync_request(org_id, record_id, new_producer_id("retry")) for record_id in record_ids]
    enqueue_sync_requests(requests, SqsQueueSender(deployment.sqs), deployment.routes)
    return requests


# ---------------------------------------------------------------------------- redrive


@dataclass
class DeadLetter:
    """One message found in a dead-letter queue, and what the run did with it."""

    queue: str  # customer | order
    message_id: str
    record_id: str | None
    object_type: str | None
    producer_id: str | None
    source: str | None
    receive_count: int
    age_seconds: float
    action: str  # moved | would move | left: <why> | failed: <why>
    to_queue: str | None = None

    @property
    def moved(self) -> bool:
        return self.action == "moved"

    @property
    def left_behind(self) -> bool:
        return self.action.startswith(("left", "failed"))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def redrive(
    deployment: Deployment, queue: QueueChoice = "both", *, dry_run: bool = False
) -> list[DeadLetter]:
    """Move every SyncRequest of the chosen dead-letter queues back to its work queue (or only list them)."""
    found: list[DeadLetter] = []
    for object_type in QUEUE_OBJECT_TYPES[queue]:
        found.extend(_redrive_queue(deployment, object_type, dry_run=dry_run))
    return found


def _redrive_queue(deployment: Deployment, object_type: SyncObjectType, *, dry_run: bool) -> list[DeadLetter]:
    sqs = deployment.sqs()
    dead_letter_queue = deployment.dead_letter_queue(object_type)
    held: dict[str, str] = {}  # message id -> receipt handle of what stays in the queue
    found: dict[str, DeadLetter] = {}
    try:
        while True:
            messages = sqs.receive_message(
                QueueUrl=dead_letter_queue,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
                VisibilityTimeout=HOLD_SECONDS,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            fresh = [message for message in messages if message["MessageId"] not in found]
            for message in messages:
                if message["MessageId"] in held:  # seen before (its hold ran out): keep the newest handle
                    held[message["MessageId"]] = message["ReceiptHandle"]
            if not fresh:
                break
            for message in fresh:
                letter = _describe(message, QUEUE_NAMES[object_type])
                found[letter.message_id] = letter
                if dry_run or letter.record_id is None:
                    held[letter.message_id] = message["ReceiptHandle"]
                    continue
                if not _move(deployment, dead_letter_queue, message, letter):
                    held[letter.message_id] = message["ReceiptHandle"]
    finally:
        for receipt_handle in held.values():  # visible again at once, for the next look
            # Should this fail, the message becomes visible when its hold runs out anyway.
            with contextlib.suppress(ClientError, BotoCoreError):
                sqs.change_message_visibility(
                    QueueUrl=dead_letter_queue, ReceiptHandle=receipt_handle, VisibilityTimeout=0
                )
    return list(found.values())


def _describe(message: MessageTypeDef, queue_name: str) -> DeadLetter:
    attributes = message.get("Attributes", {})
    sent_ms = int(attributes.get("SentTimestamp", "0") or 0)
    letter = DeadLetter(
        queue=queue_name,
        message_id=message["MessageId"],
        record_id=None,
        object_type=None,
        producer_id=None,
        source=None,
        receive_count=int(attributes.get("ApproximateReceiveCount", "0") or 0),
        age_seconds=round(time.time() - sent_ms / 1000, 1) if sent_ms else 0.0,
        action="would move",
    )
    try:
        request = SyncRequest.model_validate_json(message.get("Body", ""))
    except (ValidationError, ValueError) as error:
        letter.action = f"left: not a SyncRequest ({_first_line(error)})"
        return letter
    letter.record_id = request.record_id
    letter.object_type = request.object_type
    letter.producer_id = request.producer_id
    letter.source = request.source
    return letter


def _move(
    deployment: Deployment, dead_letter_queue: str, message: MessageTypeDef, letter: DeadLetter
) -> bool:
    """Send the message to its work queue, then delete it from the dead-letter queue; True when moved."""
    sqs = deployment.sqs()
    request = SyncRequest.model_validate_json(message.get("Body", ""))
    work_queue = deployment.work_queue(request.object_type)
    letter.to_queue = QUEUE_NAMES[request.object_type]
    attributes: dict[str, MessageAttributeValueTypeDef] = {}
    for name, value in message.get("MessageAttributes", {}).items():
        copied: MessageAttributeValueTypeDef = {"DataType": value["DataType"]}
        if "StringValue" in value:
            copied["StringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            copied["BinaryValue"] = value["BinaryValue"]
        attributes[name] = copied
    if not attributes:  # what the intake sends with every request
        attributes = {
            name: {"DataType": "String", "StringValue": value}
            for name, value in QueueMessage.for_request(request).attributes.items()
        }
    try:
        sqs.send_message(QueueUrl=work_queue, MessageBody=message["Body"], MessageAttributes=attributes)
    except (ClientError, BotoCoreError) as error:
        letter.action = f"failed: not sent to the {letter.to_queue} work queue ({error}); left in place"
        return False
    try:
        sqs.delete_message(QueueUrl=dead_letter_queue, ReceiptHandle=message["ReceiptHandle"])
    except (ClientError, BotoCoreError) as error:
        # Sent, but still in the dead-letter queue: a later redrive sends it again, and the workers
        # answer the second copy from the first (same producer id).
        letter.action = f"failed: sent, but not deleted from the dead-letter queue ({error})"
        return False
    letter.action = "moved"
    return True


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
