"""End-to-end fixtures: the whole local stack, a sales rep in Salesforce, and views of what Intacct holds."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from sandbox.aws_local import dynamodb_client, sqs_client
from sandbox.intacct.admin_client import IntacctAdminClient
from sandbox.sales_rep import SalesRep
from sandbox.stack import LocalStack
from sfintacct.sync.service import SyncService
from sfintacct.sync.sync_log import SyncLog

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SETTLE_SECONDS = 60.0


@pytest.fixture
def stack(local_stack: LocalStack) -> LocalStack:
    return local_stack


@pytest.fixture
def rep(stack: LocalStack) -> Iterator[SalesRep]:
    rep = SalesRep(stack.info["salesforce"])
    rep.products()
    yield rep
    rep.close()


@pytest.fixture
def intacct(stack: LocalStack) -> Iterator[IntacctAdminClient]:
    intacct = IntacctAdminClient(stack.info["intacct"]["admin_url"], stack.info["intacct"]["ca_file"])
    yield intacct
    intacct.clear_faults()


@pytest.fixture
def sync_log(stack: LocalStack) -> SyncLog:
    client = dynamodb_client(stack.info["dynamodb_endpoint"], stack.info["region"])
    return SyncLog(client, stack.info["tables"]["SyncLogTable"])


@pytest.fixture
def order_services(stack: LocalStack) -> Iterator[list[SyncService]]:
    """The sync services the opportunity-to-order worker runs, one per concurrent slot (checkpoints reset)."""
    services = worker_services(stack, "Opportunity")
    yield services
    for service in services:
        service.checkpoint = lambda step, record_id: None  # type: ignore[method-assign]


def worker_services(stack: LocalStack, object_type: str) -> list[SyncService]:
    """The live SyncService inside each loaded copy of the stack's worker handler for `object_type`."""
    assert stack.poller is not None
    services: list[SyncService] = [
        module.worker.service
        for name, module in list(sys.modules.items())
        if name.startswith("sfintacct_worker_")
        and getattr(getattr(module, "worker", None), "object_type", "") == object_type
    ]
    assert services, f"no worker for {object_type} is loaded"
    return services


def settle(stack: LocalStack, timeout: float = SETTLE_SECONDS) -> None:
    """Wait until Salesforce has sent every Outbound Message and the workers have nothing left to do."""
    assert stack.wait_until_settled(timeout), "the local stack did not settle"


def customers_of(intacct: IntacctAdminClient, account_id: str) -> list[dict[str, Any]]:
    return [record for record in intacct.records("CUSTOMER") if record.get("SALESFORCE_ID") == account_id]


def orders_of(intacct: IntacctAdminClient, opportunity_id: str) -> list[dict[str, Any]]:
    return [record for record in intacct.records("SODOCUMENT") if record.get("PONUMBER") == opportunity_id]


def wait_for(condition: Callable[[], bool], timeout: float = SETTLE_SECONDS) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def sqs(stack: LocalStack) -> SQSClient:
    return sqs_client(stack.info["sqs_endpoint"], stack.info["region"])


def queue_depth(stack: LocalStack, queue: str) -> int:
    attributes = sqs(stack).get_queue_attributes(
        QueueUrl=stack.info["queues"][queue],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )
