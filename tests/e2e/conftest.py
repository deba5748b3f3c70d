"""End-to-end fixtures: the whole local stack, a sales rep in Salesforce, and views of what Intacct holds."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from sandbox.aws_local import dynamodb_client, sqs_client
from sandbox.intacct.admin_client import IntacctAdminClient
from sandbox.sales_rep import SalesRep
from sandbox.salesforce.admin_client import SalesforceAdminClient
from sandbox.stack import LocalStack, WorkersPart
from sfintacct.sync.sync_log import SyncLog

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SETTLE_SECONDS = 60.0
# Salesforce delivers an Outbound Message "usually one time, sometimes more than one time": the
# session's Salesforce sandbox sends this share of acknowledged messages once more.
OUTBOUND_DUPLICATE_RATE = 0.3


@pytest.fixture
def stack(local_stack: LocalStack) -> Iterator[LocalStack]:
    """The session's stack, its Salesforce sandbox sending some Outbound Messages twice."""
    salesforce = local_stack.info["salesforce"]
    admin = SalesforceAdminClient(salesforce["admin_url"], salesforce["ca_file"])
    earlier = admin.config()["outbound_duplicate_rate"]
    admin.set_config(outbound_duplicate_rate=OUTBOUND_DUPLICATE_RATE)
    yield local_stack
    admin.set_config(outbound_duplicate_rate=earlier)


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
def workers(stack: LocalStack) -> Iterator[WorkersPart]:
    """The stack's workers (processes), for crash plans: `workers.crash_at(step, function, record_id)`
    kills a worker process with SIGKILL at a sync step. A planned crash that did not happen is dropped
    after the test, so it cannot kill a later test's worker."""
    yield stack.workers
    stack.workers.clear_crash_plan()


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
