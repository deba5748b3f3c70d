"""Salesforce changes reach the work queues through real Outbound Messages and the local API.

A sales rep works in the Salesforce sandbox through its REST API; the sandbox sends SOAP Outbound
Messages like Salesforce to the local API, which runs the intake handler; the intake puts one
SyncRequest per notification on the queue of its job (moto SQS). Nothing here is faked.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from sandbox.sales_rep import SalesRep
from sandbox.stack import (
    DynamoDBPart,
    IntacctPart,
    LocalApiPart,
    LocalStack,
    MotoPart,
    SalesforcePart,
    start_local_stack,
)
from sfintacct.sync_request import SyncRequest
from tests.e2e.conftest import queue_depth, sqs

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack without the workers, so the tests read what the intake put on the queues themselves."""
    salesforce = SalesforcePart()
    parts = [DynamoDBPart(), MotoPart(), IntacctPart(), salesforce, LocalApiPart(salesforce)]
    with start_local_stack(tmp_path_factory.mktemp("queues-only"), ephemeral=True, parts=parts) as stack:
        yield stack


@pytest.fixture
def rep(stack: LocalStack) -> Iterator[SalesRep]:
    rep = SalesRep(stack.info["salesforce"])  # no admin reset: it would drop the Outbound Message definitions
    drain_all(stack)
    yield rep
    rep.close()


def drain_all(stack: LocalStack) -> None:
    """Delete what earlier tests left on the queues (receive + delete: a purge may lag)."""
    client = sqs(stack)
    for url in stack.info["queues"].values():
        while messages := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def receive_all(stack: LocalStack, queue: str, *, expect: int, timeout: float = 20.0) -> list[SyncRequest]:
    """Every message on the queue (waiting until `expect` arrived, then a little more for extras)."""
    client = sqs(stack)
    url = stack.info["queues"][queue]
    received: list[SyncRequest] = []
    deadline = time.monotonic() + timeout
    quiet_until: float | None = None
    while time.monotonic() < deadline:
        messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        for message in messages:
            received.append(SyncRequest.model_validate_json(message["Body"]))
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if len(received) >= expect and quiet_until is None:
            quiet_until = time.monotonic() + 2.0
        if quiet_until is not None and time.monotonic() >= quiet_until:
            break
    return received


def test_closing_an_opportunity_as_won_puts_exactly_one_request_on_the_order_queue(
    stack: LocalStack, rep: SalesRep
) -> None:
    account_id = rep.create("Account", {"Name": "Contoso Ltd", "BillingCity": "Seattle"})
    opportunity_id = rep.create(
        "Opportunity",
        {
            "Name": "Contoso platform",
            "AccountId": account_id,
            "StageName": "Prospecting",
            "CloseDate": "2026-12-15",
        },
    )
    rep.update("Opportunity", opportunity_id, {"StageName": "Negotiation/Review"})
    rep.admin.flush_outbound()
    assert receive_all(stack, "OpportunityToOrderQueue", expect=0, timeout=3) == []

    rep.update("Opportunity", opportunity_id, {"StageName": "Closed Won"})
    rep.admin.flush_outbound()

    requests = receive_all(stack, "OpportunityToOrderQueue", expect=1)
    assert len(requests) == 1
    request = requests[0]
    assert request.source == "outbound_message"
    assert request.object_type == "Opportunity"
    assert request.record_id == opportunity_id
    assert request.org_id == stack.info["salesforce"]["org_id"]
    assert request.last_modified is not None
    deliveries = [d for d in rep.admin.outbound() if d["definition"] == "Opportunity_Closed_Won"]
    assert [d["status"] for d in deliveries] == ["delivered"]
    # A later edit of the won Opportunity does not fire the closed-won message again.
    rep.update("Opportunity", opportunity_id, {"Description": "signed"})
    rep.admin.flush_outbound()
    assert receive_all(stack, "OpportunityToOrderQueue", expect=0, timeout=3) == []


def test_updating_an_account_puts_one_request_on_the_customer_queue(stack: LocalStack, rep: SalesRep) -> None:
    account_id = rep.create("Account", {"Name": "Fabrikam"})
    rep.admin.flush_outbound()
    created = receive_all(stack, "CustomerUpsertQueue", expect=1)
    assert [r.record_id for r in created] == [account_id]

    rep.update("Account", account_id, {"Name": "Fabrikam Inc", "Phone": "+1 206 555 0101"})
    rep.admin.flush_outbound()

    updated = receive_all(stack, "CustomerUpsertQueue", expect=1)
    assert len(updated) == 1
    assert updated[0].object_type == "Account"
    assert updated[0].record_id == account_id
    assert updated[0].last_modified is not None
    assert created[0].last_modified is not None
    assert updated[0].last_modified >= created[0].last_modified
    assert queue_depth(stack, "OpportunityToOrderQueue") == 0
