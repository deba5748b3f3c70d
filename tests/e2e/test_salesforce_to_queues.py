"""Salesforce changes reach the work queues through real Outbound Messages and the local API.

A sales rep works in the Salesforce sandbox through its REST API; the sandbox sends SOAP Outbound
Messages like Salesforce to the local API, which runs the intake handler; the intake puts one
SyncRequest per notification on the queue of its job (moto SQS). Nothing here is faked.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from sandbox.salesforce.admin_client import SalesforceAdminClient
from sandbox.stack import LocalStack
from sfintacct.sync_request import SyncRequest

pytestmark = pytest.mark.e2e


class Rep:
    """The seeded sales rep, calling the sandbox's REST API as a browser session would."""

    def __init__(self, stack: LocalStack) -> None:
        salesforce = stack.info["salesforce"]
        self.admin = SalesforceAdminClient(salesforce["admin_url"], salesforce["ca_file"])
        rep = next(user for user in self.admin.users() if user["username"].startswith("sales.rep@"))
        token = self.admin.log_in(rep["username"])["access_token"]
        base = f"{salesforce['instance_url']}/services/data/v{salesforce['api_version']}"
        self.http = httpx.Client(
            base_url=base,
            headers={"Authorization": f"Bearer {token}"},
            verify=ssl.create_default_context(cafile=salesforce["ca_file"]),
        )

    def create(self, object_type: str, fields: dict[str, Any]) -> str:
        response = self.http.post(f"/sobjects/{object_type}", json=fields)
        assert response.status_code == 201, response.text
        record_id: str = response.json()["id"]
        return record_id

    def update(self, object_type: str, record_id: str, fields: dict[str, Any]) -> None:
        response = self.http.patch(f"/sobjects/{object_type}/{record_id}", json=fields)
        assert response.status_code == 204, response.text


@pytest.fixture
def stack(local_stack: LocalStack) -> LocalStack:
    return local_stack


@pytest.fixture
def rep(stack: LocalStack) -> Iterator[Rep]:
    rep = Rep(stack)  # no admin reset: it would drop the stack's Outbound Message definitions
    drain_all(stack)
    yield rep
    rep.http.close()


def sqs(stack: LocalStack) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=stack.info["sqs_endpoint"],
        region_name=stack.info["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


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


def queue_depth(stack: LocalStack, queue: str) -> int:
    attributes = sqs(stack).get_queue_attributes(
        QueueUrl=stack.info["queues"][queue],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_closing_an_opportunity_as_won_puts_exactly_one_request_on_the_order_queue(
    stack: LocalStack, rep: Rep
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
    assert request.fields["IsWon"] == "true"
    deliveries = [d for d in rep.admin.outbound() if d["definition"] == "Opportunity_Closed_Won"]
    assert [d["status"] for d in deliveries] == ["delivered"]
    # A later edit of the won Opportunity does not fire the closed-won message again.
    rep.update("Opportunity", opportunity_id, {"Description": "signed"})
    rep.admin.flush_outbound()
    assert receive_all(stack, "OpportunityToOrderQueue", expect=0, timeout=3) == []


def test_updating_an_account_puts_one_request_on_the_customer_queue(stack: LocalStack, rep: Rep) -> None:
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
    assert updated[0].fields["Name"] == "Fabrikam Inc"
    assert updated[0].last_modified is not None
    assert queue_depth(stack, "OpportunityToOrderQueue") == 0
