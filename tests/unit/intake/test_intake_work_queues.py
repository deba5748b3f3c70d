"""Enqueueing: routing by object, batches of at most 10 (and 256 KiB), and failed entries surfacing."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from intake_support import (
    CUSTOMER_QUEUE_URL,
    NOW,
    ORDER_QUEUE_URL,
    ORG_ID,
    RecordingQueueSender,
    salesforce_id,
)

from sfintacct.intake.errors import EnqueueFailed
from sfintacct.intake.work_queues import (
    QueueMessage,
    QueueRoutes,
    SqsQueueSender,
    _batches,
    enqueue_sync_requests,
)
from sfintacct.sync_request import SyncObjectType, SyncRequest

ROUTES = QueueRoutes(customer_queue_url=CUSTOMER_QUEUE_URL, order_queue_url=ORDER_QUEUE_URL)


def _request(object_type: SyncObjectType, number: int) -> SyncRequest:
    prefix = "001" if object_type == "Account" else "006"
    return SyncRequest(
        source="outbound_message",
        org_id=ORG_ID,
        object_type=object_type,
        record_id=salesforce_id(prefix, number),
        producer_id=salesforce_id("04l", number),
        received_at=NOW,
    )


def test_requests_go_to_the_queue_of_their_job_in_batches_of_ten() -> None:
    requests = [_request("Opportunity", n) for n in range(23)] + [_request("Account", n) for n in range(3)]
    sender = RecordingQueueSender()

    enqueue_sync_requests(requests, sender, ROUTES)

    assert [(url, len(batch)) for url, batch in sender.batches] == [
        (ORDER_QUEUE_URL, 10),
        (ORDER_QUEUE_URL, 10),
        (ORDER_QUEUE_URL, 3),
        (CUSTOMER_QUEUE_URL, 3),
    ]
    assert sender.requests() == requests[:23] + requests[23:]


def test_batches_are_split_by_size_should_messages_ever_be_large() -> None:
    # A SyncRequest is far smaller (see test_intake_ids_and_sync_request); the byte limit is a backstop.
    messages = [QueueMessage(body="x" * 100_000, attributes={"source": "outbound_message"}) for _ in range(5)]

    batches = list(_batches(messages))

    assert [len(batch) for batch in batches] == [2, 2, 1]
    assert all(sum(m.size() for m in batch) <= 256 * 1024 for batch in batches)


class FakeSqsClient:
    """Answers send_message_batch with scripted responses (a list per call) and records the calls."""

    def __init__(self, responses: list[Any]) -> None:
        self.responses = responses
        self.calls: list[dict[str, Any]] = []

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        response = self.responses.pop(0)
        if isinstance(response, Exception):
            raise response
        entries = kwargs["Entries"]
        failed_ids = set(response)
        return {
            "Successful": [
                {"Id": e["Id"], "MessageId": "m", "MD5OfMessageBody": "x"}
                for e in entries
                if e["Id"] not in failed_ids
            ],
            "Failed": [
                {
                    "Id": e["Id"],
                    "SenderFault": response[e["Id"]],
                    "Code": "InternalError",
                    "Message": "try again",
                }
                for e in entries
                if e["Id"] in failed_ids
            ],
        }


def _messages(count: int) -> list[QueueMessage]:
    return [QueueMessage.for_request(_request("Opportunity", n)) for n in range(count)]


def test_sqs_sender_sends_bodies_with_object_type_and_producer_id_attributes() -> None:
    client = FakeSqsClient([{}])
    messages = _messages(2)

    SqsQueueSender(lambda: client).send_batch(ORDER_QUEUE_URL, messages)  # type: ignore[arg-type, return-value]

    [call] = client.calls
    assert call["QueueUrl"] == ORDER_QUEUE_URL
    assert [e["MessageBody"] for e in call["Entries"]] == [m.body for m in messages]
    attributes = call["Entries"][1]["MessageAttributes"]
    assert attributes["object_type"] == {"DataType": "String", "StringValue": "Opportunity"}
    assert attributes["producer_id"] == {"DataType": "String", "StringValue": salesforce_id("04l", 1)}


def test_failed_entries_are_sent_once_more_and_success_then_counts() -> None:
    client = FakeSqsClient([{"1": False, "3": False}, {}])

    SqsQueueSender(lambda: client).send_batch(ORDER_QUEUE_URL, _messages(4))  # type: ignore[arg-type, return-value]

    assert [len(call["Entries"]) for call in client.calls] == [4, 2]
    assert [e["Id"] for e in client.calls[1]["Entries"]] == ["1", "3"]


def test_entries_failing_twice_raise_enqueue_failed() -> None:
    client = FakeSqsClient([{"0": False}, {"0": False}])

    with pytest.raises(EnqueueFailed, match="1 of 3 messages were not accepted"):
        SqsQueueSender(lambda: client).send_batch(ORDER_QUEUE_URL, _messages(3))  # type: ignore[arg-type, return-value]


def test_sender_faults_are_not_retried() -> None:
    client = FakeSqsClient([{"2": True}])

    with pytest.raises(EnqueueFailed):
        SqsQueueSender(lambda: client).send_batch(ORDER_QUEUE_URL, _messages(3))  # type: ignore[arg-type, return-value]
    assert len(client.calls) == 1


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
        ClientError(
            {"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue", "Message": "no"}},
            "SendMessageBatch",
        ),
    ],
)
def test_an_unreachable_or_missing_queue_raises_enqueue_failed(error: Exception) -> None:
    client = FakeSqsClient([error])

    with pytest.raises(EnqueueFailed, match="could not be reached"):
        SqsQueueSender(lambda: client).send_batch(ORDER_QUEUE_URL, _messages(1))  # type: ignore[arg-type, return-value]


def test_the_sqs_client_is_created_once_on_first_use() -> None:
    created: list[FakeSqsClient] = []

    def factory() -> FakeSqsClient:
        created.append(FakeSqsClient([{}, {}]))
        return created[-1]

    sender = SqsQueueSender(factory)  # type: ignore[arg-type]
    assert created == []
    sender.send_batch(ORDER_QUEUE_URL, _messages(1))
    sender.send_batch(ORDER_QUEUE_URL, _messages(1))
    assert len(created) == 1
