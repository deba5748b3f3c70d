"""The operations command (`sfintacct`, ops/sfintacct_ops) against the session's local stack.

The command runs in-process through its `main(argv)` with `--local <stack.json>`, and once as the
launcher `make setup` installs (.venv/bin/sfintacct) in a process of its own, with nothing of this
process's environment but PATH: it finds every endpoint, queue, table and secret in stack.json.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sandbox.aws_local import sqs_client
from sandbox.intacct.admin_client import IntacctAdminClient
from sandbox.sales_rep import THREE_LINES, Line, SalesRep
from sandbox.salesforce.admin_client import SalesforceAdminClient
from sandbox.stack import LocalStack
from sfintacct.intacct.client import OrderRetirement
from sfintacct.intacct.models import CustomerUpdate
from sfintacct.sync_request import SyncRequest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = REPO_ROOT / ".venv" / "bin" / "sfintacct"
# The command's package lives in ops/ (the launcher puts it on the import path; so does this module).
if str(REPO_ROOT / "ops") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "ops"))
ops_cli = importlib.import_module("sfintacct_ops.cli")
ops_deployment = importlib.import_module("sfintacct_ops.deployment")

SETTLE_SECONDS = 60.0
BACKFILL_DEALS = 200
ONE_LINE = (Line("SUB-PLATFORM", Decimal(1), Decimal(12000)),)


# ---------------------------------------------------------------------------- helpers


class Ops:
    """Runs `sfintacct --local <stack.json> ...` in-process; returns exit code, stdout and stderr."""

    def __init__(self, stack_file: Path) -> None:
        self.stack_file = stack_file

    def __call__(self, *arguments: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = ops_cli.main(["--local", str(self.stack_file), *arguments], stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    def json(self, *arguments: str, expect: int = 0) -> dict[str, Any]:
        code, out, err = self(*arguments, "--json")
        assert code == expect, f"exit {code}\n{out}\n{err}"
        data: dict[str, Any] = json.loads(out)
        return data


def wait_for(condition: Callable[[], bool], timeout: float = SETTLE_SECONDS) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return condition()


@pytest.fixture(scope="module")
def ops(local_stack: LocalStack) -> Ops:
    assert local_stack.stack_file is not None
    return Ops(local_stack.stack_file)


@pytest.fixture(scope="module")
def intacct(local_stack: LocalStack) -> IntacctAdminClient:
    return IntacctAdminClient(
        local_stack.info["intacct"]["admin_url"], local_stack.info["intacct"]["ca_file"]
    )


@pytest.fixture(scope="module")
def rep(local_stack: LocalStack) -> Iterator[SalesRep]:
    rep = SalesRep(local_stack.info["salesforce"])
    rep.products()
    yield rep
    rep.close()


@pytest.fixture(scope="module")
def integration_user(local_stack: LocalStack) -> Iterator[SalesRep]:
    """Acts as the integration user: its saves send no Outbound Message (the package's flows skip it)."""
    salesforce = local_stack.info["salesforce"]
    user = SalesRep(salesforce, username=salesforce["username"])
    user.products()
    yield user
    user.close()


def orders_by_reference(intacct: IntacctAdminClient) -> dict[str, list[dict[str, Any]]]:
    orders: dict[str, list[dict[str, Any]]] = {}
    for record in intacct.records("SODOCUMENT"):
        orders.setdefault(str(record.get("PONUMBER")), []).append(record)
    return orders


def settle(stack: LocalStack) -> None:
    assert stack.wait_until_settled(SETTLE_SECONDS), "the local stack did not settle"


@pytest.fixture(scope="module")
def synced_deal(local_stack: LocalStack, rep: SalesRep) -> tuple[str, str]:
    """(Account id, Opportunity id) of a deal closed won by the sales rep and synced."""
    account_id = rep.create(
        "Account", {"Name": f"Ops Status {uuid.uuid4().hex[:8]}", "Type": "Customer - Direct"}
    )
    opportunity_id = rep.deal(account_id, "Ops status deal", THREE_LINES)
    rep.close_won(opportunity_id)
    settle(local_stack)
    return account_id, opportunity_id


# ---------------------------------------------------------------------------- finding the deployment


def test_a_cloudformation_stacks_outputs_and_parameters_make_the_deployment() -> None:
    outputs = {name: f"value-of-{name}" for name in ops_deployment.STACK_OUTPUTS.values()}
    parameters = {
        "IntacctSecretArn": "arn:aws:secretsmanager:eu-west-1:111111111111:secret:intacct",
        "SalesforceSecretArn": "arn:aws:secretsmanager:eu-west-1:111111111111:secret:salesforce",
        "IntacctEndpointUrl": "https://api.intacct.com/ia/xml/xmlgw.phtml",
        "IntacctTransactionType": "Sales Invoice",
        "SalesforceApiVersion": "62.0",
        "SalesforceOrgIds": "00D000000000001",
    }
    deployment = ops_deployment.deployment_from_outputs(
        "sfintacct-prod", outputs, parameters, ops_deployment.AwsAccess(region="eu-west-1")
    )
    assert deployment.order_dead_letter_queue_url == "value-of-OpportunityToOrderDeadLetterQueueUrl"
    assert deployment.sync_log_table == "value-of-SyncLogTableName"
    assert deployment.salesforce_secret_id == parameters["SalesforceSecretArn"]
    assert deployment.transaction_type == "Sales Invoice"
    assert deployment.org_id() == "00D000000000001EAA"
    del outputs["CrosswalkTableName"]
    with pytest.raises(ops_deployment.DeploymentError, match="CrosswalkTableName"):
        ops_deployment.deployment_from_outputs("x", outputs, parameters, ops_deployment.AwsAccess())


def test_without_a_deployment_the_command_says_how_to_name_one(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        ops_cli.main(["status", "006000000000001"], stdout=io.StringIO(), stderr=io.StringIO())
    assert exit_info.value.code == 2
    err = io.StringIO()
    assert ops_cli.main(["--local", str(tmp_path / "stack.json"), "redrive"], stderr=err) == 1
    assert "make stack" in err.getvalue()


# ---------------------------------------------------------------------------- status and retry


def test_status_of_a_synced_deal_shows_its_whole_story(ops: Ops, synced_deal: tuple[str, str]) -> None:
    account_id, opportunity_id = synced_deal
    record = ops.json("status", opportunity_id[:15])["records"][0]

    assert record["record_id"] == opportunity_id
    assert record["object_type"] == "Opportunity"
    assert record["errors"] == []
    salesforce = record["salesforce"]
    assert salesforce["StageName"] == "Closed Won"
    assert salesforce["IsWon"] is True
    assert Decimal(str(salesforce["Amount"])) > 0
    assert salesforce["Intacct_Sync_Status__c"] == "Synced"
    [order] = record["intacct"]["orders"]
    assert salesforce["Intacct_Order_Id__c"] == order["doc_id"]
    assert order["reference_no"] == opportunity_id
    assert order["state"]
    assert [line["item_id"] for line in order["lines"]] == ["SUB-PLATFORM", "SVC-ONBOARD", "SVC-TRAINING"]
    kinds = {(entry["sf_id"], entry["kind"]): entry for entry in record["crosswalk"]}
    assert kinds[(opportunity_id, "ORDER")]["status"] == "COMPLETE"
    assert kinds[(opportunity_id, "ORDER")]["intacct_id"] == order["doc_id"]
    assert kinds[(opportunity_id, "ORDER")]["attributes"]  # the order's digest and what it was made for
    assert kinds[(account_id, "CUSTOMER")]["intacct_id"] == order["customer_id"]
    assert [entry["status"] for entry in record["sync_log"]][-1] == "synced"
    assert record["sync_log"][-1]["intacct_order_id"] == order["doc_id"]

    code, out, _ = ops("status", opportunity_id, account_id)
    assert code == 0
    assert f"Opportunity {opportunity_id}" in out
    assert f"Account {account_id}" in out
    assert f"{order['doc_id']}  state=" in out
    assert "line 0: SUB-PLATFORM" in out
    assert "Intacct_Sync_Status__c" in out


def test_status_through_the_installed_launcher(local_stack: LocalStack, synced_deal: tuple[str, str]) -> None:
    assert LAUNCHER.exists(), "make setup installs .venv/bin/sfintacct"
    _, opportunity_id = synced_deal
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    finished = subprocess.run(
        [str(LAUNCHER), "--local", str(local_stack.stack_file), "status", opportunity_id, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        cwd=local_stack.state_dir,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    [record] = json.loads(finished.stdout)["records"]
    assert record["salesforce"]["Intacct_Sync_Status__c"] == "Synced"
    assert len(record["intacct"]["orders"]) == 1


def test_retry_of_a_synced_deal_is_answered_already_synced(
    ops: Ops, local_stack: LocalStack, intacct: IntacctAdminClient, synced_deal: tuple[str, str]
) -> None:
    _, opportunity_id = synced_deal
    [sent] = ops.json("retry", opportunity_id)["sent"]
    assert sent["record_id"] == opportunity_id
    assert sent["source"] == "platform_event"
    assert sent["last_modified"] is None
    assert sent["producer_id"].startswith("retry-")
    assert sent["queue"] == local_stack.info["queues"]["OpportunityToOrderQueue"]

    def answered() -> list[dict[str, Any]]:
        log = ops.json("status", opportunity_id)["records"][0]["sync_log"]
        return [entry for entry in log if entry["producer_id"] == sent["producer_id"]]

    assert wait_for(lambda: bool(answered()), 30), "the worker never answered the retry"
    assert [entry["status"] for entry in answered()] == ["already_synced"]
    settle(local_stack)
    assert len(orders_by_reference(intacct)[opportunity_id]) == 1


# ---------------------------------------------------------------------------- redrive


def test_redrive_moves_a_parked_request_back_and_leaves_what_is_not_one(
    ops: Ops, local_stack: LocalStack, intacct: IntacctAdminClient, integration_user: SalesRep
) -> None:
    info = local_stack.info
    account_id = integration_user.create("Account", {"Name": f"Ops Redrive {uuid.uuid4().hex[:8]}"})
    opportunity_id = integration_user.deal(account_id, "Ops redrive deal", ONE_LINE)
    integration_user.close_won(opportunity_id)  # no Outbound Message: only the parked request syncs it
    request = SyncRequest(
        source="outbound_message",
        org_id=info["salesforce"]["org_id"],
        object_type="Opportunity",
        record_id=opportunity_id,
        producer_id=f"parked-{uuid.uuid4()}",
        received_at=datetime.now(UTC),
    )
    sqs = sqs_client(info["sqs_endpoint"], info["region"])
    dead_letters = info["queues"]["OpportunityToOrderDeadLetterQueue"]
    junk = f"not a sync request {uuid.uuid4()}"
    sqs.send_message(QueueUrl=dead_letters, MessageBody=request.model_dump_json())
    junk_id = sqs.send_message(QueueUrl=dead_letters, MessageBody=junk)["MessageId"]
    try:
        listed = ops.json("redrive", "--queue", "order", "--dry-run")
        mine = {message["record_id"] or message["message_id"]: message for message in listed["messages"]}
        assert mine[opportunity_id]["action"] == "would move"
        assert mine[opportunity_id]["producer_id"] == request.producer_id
        assert mine[opportunity_id]["object_type"] == "Opportunity"
        assert mine[opportunity_id]["receive_count"] >= 1
        assert mine[opportunity_id]["age_seconds"] >= 0
        assert mine[junk_id]["action"].startswith("left: not a SyncRequest")
        assert listed["moved"] == 0
        assert opportunity_id not in orders_by_reference(intacct)

        moved = ops.json("redrive", "--queue", "order", expect=1)  # 1: something stays in the DLQ
        mine = {message["record_id"] or message["message_id"]: message for message in moved["messages"]}
        assert mine[opportunity_id]["action"] == "moved"
        assert mine[opportunity_id]["to_queue"] == "order"
        assert mine[junk_id]["action"].startswith("left: not a SyncRequest")

        assert wait_for(lambda: opportunity_id in orders_by_reference(intacct), 30), "the deal did not sync"
        settle(local_stack)
        assert len(orders_by_reference(intacct)[opportunity_id]) == 1
        left = ops.json("redrive", "--queue", "order", "--dry-run")["messages"]
        assert [message["message_id"] for message in left] == [junk_id]
    finally:
        for _ in range(5):
            messages = sqs.receive_message(QueueUrl=dead_letters, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in messages.get("Messages", []):
                if message["Body"] == junk:
                    sqs.delete_message(QueueUrl=dead_letters, ReceiptHandle=message["ReceiptHandle"])
                    break
            else:
                continue
            break


# ---------------------------------------------------------------------------- backfill


@pytest.fixture(scope="module")
def unsynced_won_deals(
    local_stack: LocalStack, rep: SalesRep, integration_user: SalesRep
) -> tuple[str, list[str]]:
    """A name prefix and 200 won deals the integration user closed: nobody told the workers about them."""
    tag = f"OpsBackfill{uuid.uuid4().hex[:8]}"
    account_id = rep.create("Account", {"Name": f"{tag} customer", "Type": "Customer - Direct"})
    deals = []
    for number in range(BACKFILL_DEALS):
        deal = integration_user.deal(account_id, f"{tag}-{number:03d}", ONE_LINE)
        integration_user.close_won(deal)
        deals.append(deal)
    settle(local_stack)  # the Account's own Outbound Message made its customer
    return tag, deals


def test_backfill_sends_each_won_deal_once_and_resumes_from_its_checkpoint(
    ops: Ops,
    local_stack: LocalStack,
    intacct: IntacctAdminClient,
    unsynced_won_deals: tuple[str, list[str]],
    tmp_path: Path,
) -> None:
    tag, deals = unsynced_won_deals
    where = f"Name LIKE '{tag}-%'"
    checkpoint = tmp_path / "backfill.checkpoint"
    salesforce = SalesforceAdminClient(local_stack.info["salesforce"]["admin_url"], local_stack.ca_file)
    page_size = salesforce.config()["query_page_size"]
    salesforce.set_query_page_size(45)  # the query comes back in pages (nextRecordsUrl)
    try:
        assert not set(deals) & set(orders_by_reference(intacct)), "a deal synced without the backfill"

        dry = ops.json(
            "backfill", "opportunities", "--where", where, "--dry-run", "--checkpoint", str(checkpoint)
        )
        assert (dry["found"], dry["to_send"], dry["sent"]) == (BACKFILL_DEALS, BACKFILL_DEALS, 0)
        assert sorted(dry["records"]) == sorted(deals)
        assert not checkpoint.exists()

        started = time.monotonic()
        arguments = (
            "backfill",
            "opportunities",
            "--where",
            where,
            "--rate",
            "200",
            "--checkpoint",
            str(checkpoint),
        )
        first = ops.json(*arguments, "--limit", "50")  # as if interrupted after 50
        assert (first["found"], first["sent"], first["already_sent"]) == (BACKFILL_DEALS, 50, 0)
        rest = ops.json(*arguments)
        assert (rest["already_sent"], rest["to_send"], rest["sent"]) == (
            50,
            BACKFILL_DEALS - 50,
            BACKFILL_DEALS - 50,
        )
        assert sorted(first["records"] + rest["records"]) == sorted(deals)
        again = ops.json(*arguments)
        assert (again["already_sent"], again["sent"]) == (BACKFILL_DEALS, 0)

        def all_synced() -> bool:
            orders = orders_by_reference(intacct)
            return all(deal in orders for deal in deals)

        assert wait_for(all_synced, 75), "not every backfilled deal has its order"
        settle(local_stack)
        synced_seconds = time.monotonic() - started
        orders = orders_by_reference(intacct)
        assert all(len(orders[deal]) == 1 for deal in deals)

        # A backfill of the same deals once more (a new checkpoint): every one is answered already_synced.
        repeat = ops.json(*arguments, "--fresh")
        assert repeat["sent"] == BACKFILL_DEALS
        settle(local_stack)
        orders = orders_by_reference(intacct)
        assert all(len(orders[deal]) == 1 for deal in deals)
        for deal in deals[:: BACKFILL_DEALS // 10]:
            log = ops.json("status", deal)["records"][0]["sync_log"]
            assert [entry["status"] for entry in log] == ["synced", "already_synced"], log
        print(f"{BACKFILL_DEALS} backfilled deals synced in {synced_seconds:.1f} s")

        # Reconciled: every one of them has exactly one order at its amount (two Intacct queries of 100).
        reconciled = ops.json("reconcile", "--where", where)
        assert (reconciled["deals"], reconciled["orders"], reconciled["findings"]) == (
            BACKFILL_DEALS,
            BACKFILL_DEALS,
            [],
        )
    finally:
        salesforce.set_query_page_size(page_size)


# ---------------------------------------------------------------------------- reconcile


def test_reconcile_finds_a_deleted_order_and_an_edited_customer_and_fix_restores_the_order(
    ops: Ops, local_stack: LocalStack, intacct: IntacctAdminClient, rep: SalesRep
) -> None:
    tag = f"OpsReconcile{uuid.uuid4().hex[:8]}"
    where = f"Name LIKE '{tag}%'"
    kept_account = rep.create("Account", {"Name": f"{tag} kept", "Type": "Customer - Direct"})
    kept = rep.deal(kept_account, f"{tag} kept deal", ONE_LINE)
    lost_account = rep.create("Account", {"Name": f"{tag} lost", "Type": "Customer - Direct"})
    lost = rep.deal(lost_account, f"{tag} deleted order", ONE_LINE)
    invoiced_account = rep.create("Account", {"Name": f"{tag} invoiced", "Type": "Customer - Direct"})
    invoiced = rep.deal(invoiced_account, f"{tag} approved deal", ONE_LINE)
    rep.update("Opportunity", invoiced, {"Intacct_Invoice_Approved__c": True})  # straight to an invoice
    for deal in (kept, lost, invoiced):
        rep.close_won(deal)
    settle(local_stack)
    [straight] = orders_by_reference(intacct)[invoiced]
    assert straight["DOCPARID"] == "Sales Invoice"
    assert ops.json("reconcile", "--where", where)["findings"] == []  # the invoice is the deal's document

    # As finance might, in Intacct: the order of one deal deleted, the other's customer renamed.
    assert local_stack.stack_file is not None
    deployment = ops_deployment.from_local(local_stack.stack_file)
    client = deployment.intacct_client()
    [deleted] = orders_by_reference(intacct)[lost]
    client.retire_sotransaction(
        OrderRetirement(doc_id=str(deleted["DOCID"]), how="delete", control_id=f"finance-{uuid.uuid4()}")
    )
    kept_customer = rep.read("Account", kept_account)["Intacct_Customer_Id__c"]
    client.update_customer(
        CustomerUpdate(customer_id=kept_customer, name="Renamed In Intacct"),
        control_id=f"finance-{uuid.uuid4()}",
    )
    deployment.close()

    found = ops.json("reconcile", "--where", where, expect=1)
    assert (found["deals"], found["orders"], found["accounts"]) == (3, 2, 3)
    by_kind = {(finding["kind"], finding["record_id"]): finding for finding in found["findings"]}
    assert set(by_kind) == {("missing_order", lost), ("customer_edited", kept_account)}
    assert str(deleted["DOCID"]) in by_kind["missing_order", lost]["detail"]  # the crosswalk's order
    assert by_kind["missing_order", lost]["last_sync"].startswith("synced/created")
    assert by_kind["customer_edited", kept_account]["intacct"].endswith("'Renamed In Intacct'")
    assert by_kind["customer_edited", kept_account]["salesforce"] == f"{tag} kept"

    code, table, _ = ops("reconcile", "--where", where, "--csv")
    assert code == 1
    assert table.splitlines()[0] == "kind,record_id,name,detail,salesforce,intacct,last_sync,fixed"
    assert sum(line.startswith(("missing_order,", "customer_edited,")) for line in table.splitlines()) == 2

    fixed = ops.json("reconcile", "--where", where, "--fix", expect=1)  # 1: the rename is finance's call
    by_kind = {(finding["kind"], finding["record_id"]): finding for finding in fixed["findings"]}
    assert by_kind["missing_order", lost]["fixed"].startswith("retry sent (retry-")
    assert by_kind["customer_edited", kept_account]["fixed"] == ""
    assert wait_for(lambda: lost in orders_by_reference(intacct), 30), "the order was not made again"
    settle(local_stack)
    [restored] = orders_by_reference(intacct)[lost]
    assert restored["DOCID"] != deleted["DOCID"]
    assert rep.read("Opportunity", lost)["Intacct_Sync_Status__c"] == "Synced"
    assert rep.read("Opportunity", lost)["Intacct_Order_Id__c"] == restored["DOCID"]
    assert orders_by_reference(intacct)[invoiced] == [straight]  # --fix left the approved deal alone
    after = ops.json("reconcile", "--where", where, expect=1)
    assert [(finding["kind"], finding["record_id"]) for finding in after["findings"]] == [
        ("customer_edited", kept_account)
    ]
