"""A rep closes a deal in Salesforce; the customer and the order appear in Intacct, exactly once.

Everything goes over the wire through the local stack: the Salesforce sandbox fires real Outbound
Messages, the local API runs the intake, the poller drives the queues into the worker handlers like
Lambda's event source mapping, the workers call the sandboxes over HTTPS and DynamoDB Local.
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.crash_plan import PlannedCrash
from sandbox.intacct.admin_client import IntacctAdminClient
from sandbox.local_api import LocalLambdaContext, load_intake_handler
from sandbox.sales_rep import THREE_LINES, Line, SalesRep
from sandbox.stack import LocalStack, WorkersPart
from sfintacct.sync.service import CHECKPOINTS
from sfintacct.sync.sync_log import SyncLog
from sfintacct.sync_request import SyncRequest
from tests.e2e.conftest import SETTLE_SECONDS, customers_of, orders_of, queue_depth, settle, sqs, wait_for

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]


def lines_of(intacct: IntacctAdminClient, doc_id: str) -> list[dict[str, Any]]:
    return [record for record in intacct.records("SODOCUMENTENTRY") if record.get("DOCHDRID") == doc_id]


def function_count(intacct: IntacctAdminClient, name: str) -> int:
    return int(intacct.counts()["functions"].get(name, 0))


def requests_besides_log_in(intacct: IntacctAdminClient) -> int:
    """Intacct requests so far, leaving out getAPISession (one per worker container and session)."""
    counts = intacct.counts()
    return int(counts["requests"]) - int(counts["functions"].get("getAPISession", 0))


def new_account(rep: SalesRep, name: str) -> str:
    """An Account of a customer type: its own Outbound Message makes the Intacct customer (create_when)."""
    return rep.create(
        "Account",
        {"Name": name, "BillingCity": "Seattle", "Phone": "+1 206 555 0100", "Type": "Customer - Direct"},
    )


def assert_one_customer_and_one_order(
    intacct: IntacctAdminClient, account_id: str, opportunity_id: str
) -> str:
    customers = customers_of(intacct, account_id)
    orders = orders_of(intacct, opportunity_id)
    assert len(customers) == 1, customers
    assert len(orders) == 1, orders
    assert orders[0]["CUSTVENDID"] == customers[0]["CUSTOMERID"]
    doc_id: str = orders[0]["DOCID"]
    return doc_id


# ---------------------------------------------------------------------------- the happy paths


def test_a_closed_won_deal_becomes_the_customer_and_a_sales_order_with_every_line(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, sync_log: SyncLog
) -> None:
    account_id = new_account(rep, "Northwind Traders")
    settle(stack)  # the Account's own Outbound Message makes the customer first
    assert len(customers_of(intacct, account_id)) == 1
    opportunity_id = rep.deal(account_id, "Northwind platform", THREE_LINES)
    before = requests_besides_log_in(intacct)

    rep.close_won(opportunity_id)
    settle(stack)

    doc_id = assert_one_customer_and_one_order(intacct, account_id, opportunity_id)
    order = orders_of(intacct, opportunity_id)[0]
    assert doc_id.startswith("Sales Order-")
    assert order["PONUMBER"] == opportunity_id
    lines = sorted(lines_of(intacct, doc_id), key=lambda line: int(line["LINE_NO"]))
    assert [(line["ITEMID"], Decimal(line["QUANTITY"]), Decimal(line["PRICE"])) for line in lines] == [
        ("SUB-PLATFORM", Decimal(1), Decimal(12000)),
        ("SVC-ONBOARD", Decimal(1), Decimal(2500)),
        ("SVC-TRAINING", Decimal(2), Decimal(0)),  # the free add-on stays free
    ]
    assert Decimal(lines[0]["DISCOUNT"]) == Decimal(10)
    assert lines[2]["MEMO"] == "Free add-on promised in the contract"
    # ServiceDate 2027-01-04 is the rev-rec start date, sent in the schema's year/month/day form.
    assert [line["REVRECSTARTDATE"] for line in lines] == ["", "01/04/2027", ""]

    opportunity = rep.read("Opportunity", opportunity_id)
    assert opportunity["Intacct_Order_Id__c"] == doc_id
    assert opportunity["Intacct_Sync_Status__c"] == "Synced"
    assert opportunity["Intacct_Sync_Error__c"] is None
    assert opportunity["Intacct_Synced_At__c"]
    account = rep.read("Account", account_id)
    assert account["Intacct_Customer_Id__c"] == customers_of(intacct, account_id)[0]["CUSTOMERID"]

    assert requests_besides_log_in(intacct) - before == 1  # the customer was known: one request
    assert [entry.status for entry in sync_log.history(opportunity_id)] == ["synced"]
    assert sync_log.history(opportunity_id)[0].intacct_order_id == doc_id


def test_an_account_not_yet_in_intacct_becomes_a_customer_with_its_first_order(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, sync_log: SyncLog
) -> None:
    # Made by the integration user, so no Account Outbound Message fires: Intacct has never heard of it.
    integration = SalesRep(stack.info["salesforce"], username=stack.info["salesforce"]["username"])
    try:
        account_id = new_account(integration, "Fabrikam")
    finally:
        integration.close()
    settle(stack)
    assert customers_of(intacct, account_id) == []
    opportunity_id = rep.deal(account_id, "Fabrikam starter", THREE_LINES[:1])
    before = requests_besides_log_in(intacct)

    rep.close_won(opportunity_id)
    settle(stack)

    assert_one_customer_and_one_order(intacct, account_id, opportunity_id)
    customer = customers_of(intacct, account_id)[0]
    assert customer["NAME"] == "Fabrikam"
    assert requests_besides_log_in(intacct) - before == 2  # look up, then customer + order in one
    assert rep.read("Account", account_id)["Intacct_Customer_Id__c"] == customer["CUSTOMERID"]
    assert rep.read("Opportunity", opportunity_id)["Intacct_Sync_Status__c"] == "Synced"
    assert [entry.status for entry in sync_log.history(opportunity_id)] == ["synced"]


def test_an_opportunity_that_is_not_won_is_skipped_with_its_reason(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, sync_log: SyncLog
) -> None:
    account_id = new_account(rep, "Litware")
    opportunity_id = rep.deal(account_id, "Litware pilot", THREE_LINES[:1])
    settle(stack)

    send_to_queue(stack, "OpportunityToOrderQueue", opportunity_request(stack, opportunity_id, "manual-1"))
    settle(stack)

    assert orders_of(intacct, opportunity_id) == []
    entries = sync_log.history(opportunity_id)
    assert [(entry.status, entry.reason) for entry in entries] == [("skipped", "not_won")]
    assert "Negotiation/Review" in entries[0].message


# ---------------------------------------------------------------------------- exactly once


def test_five_copies_of_the_outbound_message_and_an_event_bridge_event_make_one_order(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, sync_log: SyncLog
) -> None:
    account_id = new_account(rep, "Adventure Works")
    opportunity_id = rep.deal(account_id, "Adventure Works rollout", THREE_LINES)
    settle(stack)
    rep.close_won(opportunity_id)
    body = outbound_message_body(stack, opportunity_id)

    def deliver(_: int) -> int:
        return httpx.post(
            stack.info["outbound_url"],
            content=body,
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
            timeout=30,
        ).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        relayed = pool.submit(relay_closed_won_event, stack, opportunity_id)
        statuses = list(pool.map(deliver, range(5)))
        assert relayed.result()["accepted"] == 1
    assert statuses == [200] * 5
    settle(stack)

    assert_one_customer_and_one_order(intacct, account_id, opportunity_id)
    statuses_logged = [entry.status for entry in sync_log.history(opportunity_id)]
    assert statuses_logged.count("synced") == 1
    assert set(statuses_logged) <= {"synced", "already_synced", "retrying"}


def test_a_later_change_to_a_synced_opportunity_never_makes_a_second_order(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, sync_log: SyncLog
) -> None:
    account_id = new_account(rep, "Alpine Ski House")
    opportunity_id = rep.deal(account_id, "Alpine season", THREE_LINES[:1])
    rep.close_won(opportunity_id)
    settle(stack)
    orders_sent = function_count(intacct, "create_sotransaction")

    rep.update("Opportunity", opportunity_id, {"Description": "Signed copy filed"})
    send_to_queue(stack, "OpportunityToOrderQueue", opportunity_request(stack, opportunity_id, "change-1"))
    settle(stack)

    assert_one_customer_and_one_order(intacct, account_id, opportunity_id)
    assert function_count(intacct, "create_sotransaction") == orders_sent
    last = sync_log.history(opportunity_id)[-1]
    assert (last.status, last.reason) == ("already_synced", "order_exists")


def test_a_crash_between_any_two_steps_still_makes_exactly_one_order(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, workers: WorkersPart
) -> None:
    """One deal per step, all closed together: each deal's worker is killed (SIGKILL) at its step, its
    message comes back after the visibility timeout, and a fresh process makes the one order."""
    deals: dict[str, tuple[str, str]] = {}
    for step in CHECKPOINTS:
        account_id = rep.create("Account", {"Name": f"Crash at {step}", "Type": "Customer - Direct"})
        deals[step] = (account_id, rep.deal(account_id, f"Crash test {step}", THREE_LINES[:2]))
    settle(stack)
    kills = {
        step: workers.crash_at(step, function="OpportunityToOrderFunction", record_id=opportunity_id)
        for step, (_, opportunity_id) in deals.items()
    }

    for _, opportunity_id in deals.values():  # one by one: each its own message, batch and kill
        rep.close_won(opportunity_id)
        time.sleep(0.5)
    for step, kill in kills.items():
        assert kill.wait(SETTLE_SECONDS), f"no order worker reached {step}"
    settle(stack)  # each message comes back after the visibility timeout; a fresh process takes it

    for step, (account_id, opportunity_id) in deals.items():
        assert_killed(kills[step])
        doc_id = assert_one_customer_and_one_order(intacct, account_id, opportunity_id)
        opportunity = rep.read("Opportunity", opportunity_id)
        assert (opportunity["Intacct_Order_Id__c"], opportunity["Intacct_Sync_Status__c"]) == (
            doc_id,
            "Synced",
        ), step
        customer_id = customers_of(intacct, account_id)[0]["CUSTOMERID"]
        assert rep.read("Account", account_id)["Intacct_Customer_Id__c"] == customer_id, step


def test_a_crash_between_any_two_steps_still_makes_exactly_one_customer(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, workers: WorkersPart
) -> None:
    """One Account per step, made by the integration user (its saves send nothing), then changed by the
    rep: each Account's worker is killed at its step, and a fresh process makes the one customer."""
    integration_user = SalesRep(stack.info["salesforce"], username=stack.info["salesforce"]["username"])
    try:
        accounts = {
            step: integration_user.create(
                "Account", {"Name": f"Crash account at {step}", "Type": "Customer - Direct"}
            )
            for step in CHECKPOINTS
        }
    finally:
        integration_user.close()
    kills = {
        step: workers.crash_at(step, function="CustomerUpsertFunction", record_id=account_id)
        for step, account_id in accounts.items()
    }

    for account_id in accounts.values():  # its Outbound Message makes the customer; one by one
        rep.update("Account", account_id, {"BillingCity": "Seattle", "Phone": "+1 206 555 0100"})
        time.sleep(0.5)
    for step, kill in kills.items():
        assert kill.wait(SETTLE_SECONDS), f"no customer worker reached {step}"
    settle(stack)

    for step, account_id in accounts.items():
        assert_killed(kills[step], account_id)
        customers = customers_of(intacct, account_id)
        assert len(customers) == 1, (step, customers)
        account = rep.read("Account", account_id)
        assert (account["Intacct_Customer_Id__c"], account["Intacct_Sync_Status__c"]) == (
            customers[0]["CUSTOMERID"],
            "Synced",
        ), step


def assert_killed(kill: PlannedCrash, record_id: str | None = None) -> None:
    """The crash plan killed a worker process (SIGKILL, no unwinding) working on the record."""
    crash = kill.crash
    assert crash is not None
    assert crash.record_id == (record_id or kill.record_id)
    with pytest.raises(ProcessLookupError):
        os.kill(crash.pid, 0)


def test_an_order_whose_answer_is_lost_after_commit_is_not_made_twice(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient
) -> None:
    account_id = new_account(rep, "Tailspin Toys")
    opportunity_id = rep.deal(account_id, "Tailspin fleet", THREE_LINES)
    settle(stack)
    orders_sent = function_count(intacct, "create_sotransaction")
    intacct.set_faults(timeout_after_commit_next={"count": 1, "function": "create_sotransaction"})

    rep.close_won(opportunity_id)
    settle(stack)

    doc_id = assert_one_customer_and_one_order(intacct, account_id, opportunity_id)
    assert function_count(intacct, "create_sotransaction") - orders_sent == 1  # found again, not re-sent
    assert rep.read("Opportunity", opportunity_id)["Intacct_Order_Id__c"] == doc_id


def test_intacct_off_line_for_a_while_is_retried_and_synced_once_it_is_back(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, sync_log: SyncLog
) -> None:
    account_id = new_account(rep, "Wingtip Toys")
    opportunity_id = rep.deal(account_id, "Wingtip stores", THREE_LINES[:1])
    settle(stack)
    intacct.set_faults(offline=True)
    back_online = threading.Timer(4.0, lambda: intacct.set_faults(offline=False))
    back_online.start()
    try:
        rep.close_won(opportunity_id)
        assert wait_for(lambda: any(e.status == "retrying" for e in sync_log.history(opportunity_id)))
        settle(stack)
    finally:
        back_online.cancel()
        intacct.set_faults(offline=False)
    settle(stack)

    doc_id = assert_one_customer_and_one_order(intacct, account_id, opportunity_id)
    assert rep.read("Opportunity", opportunity_id)["Intacct_Order_Id__c"] == doc_id
    assert sync_log.history(opportunity_id)[-1].status == "synced"


def test_an_expired_salesforce_token_is_renewed_in_the_middle_of_the_work(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient
) -> None:
    account_id = new_account(rep, "Proseware")
    first = rep.deal(account_id, "Proseware one", THREE_LINES[:1])
    second = rep.deal(account_id, "Proseware two", THREE_LINES[1:2])
    rep.close_won(first)
    settle(stack)
    tokens_before = rep.admin.counts()["by_kind"]["token"]

    rep.admin.set_faults(expire_tokens=True)
    rep.log_in()  # the rep signs in again; the worker still holds its expired token
    rep.close_won(second)
    settle(stack)

    assert rep.admin.counts()["by_kind"]["token"] > tokens_before
    for opportunity_id in (first, second):
        doc_id = assert_one_customer_and_one_order(intacct, account_id, opportunity_id)
        assert rep.read("Opportunity", opportunity_id)["Intacct_Order_Id__c"] == doc_id


# ---------------------------------------------------------------------------- failures


def test_an_unknown_product_fails_with_intaccts_message_and_is_not_retried(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, sync_log: SyncLog
) -> None:
    rep.product("NO-SUCH-ITEM", "Product finance never set up", Decimal(99))
    account_id = new_account(rep, "Blue Yonder")
    opportunity_id = rep.deal(
        account_id, "Blue Yonder odd item", [Line("NO-SUCH-ITEM", Decimal(1), Decimal(99))]
    )
    settle(stack)
    orders_tried = function_count(intacct, "create_sotransaction")

    rep.close_won(opportunity_id)
    settle(stack)

    assert orders_of(intacct, opportunity_id) == []
    assert function_count(intacct, "create_sotransaction") - orders_tried == 1  # tried once, no storm
    opportunity = rep.read("Opportunity", opportunity_id)
    assert opportunity["Intacct_Sync_Status__c"] == "Failed"
    assert "NO-SUCH-ITEM" in opportunity["Intacct_Sync_Error__c"]
    entries = sync_log.history(opportunity_id)
    assert [(entry.status, entry.reason) for entry in entries] == [("failed", "intacct_rejected")]
    assert queue_depth(stack, "OpportunityToOrderQueue") == 0
    assert queue_depth(stack, "OpportunityToOrderDeadLetterQueue") == 0


def test_two_account_updates_delivered_newest_first_leave_the_newest_data_in_intacct(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, sync_log: SyncLog
) -> None:
    account_id = new_account(rep, "Coho Winery")
    settle(stack)
    rep.update("Account", account_id, {"Name": "Coho Winery Ltd"})
    older = account_request(stack, account_id, "older", last_modified(rep, account_id))
    time.sleep(0.01)  # LastModifiedDate has millisecond precision
    rep.update("Account", account_id, {"Name": "Coho Vineyard & Winery"})
    newer = account_request(stack, account_id, "newer", last_modified(rep, account_id))
    assert older.last_modified is not None
    assert newer.last_modified is not None
    assert older.last_modified < newer.last_modified
    settle(stack)  # the real notifications of both updates

    send_to_queue(stack, "CustomerUpsertQueue", newer)
    settle(stack)
    send_to_queue(stack, "CustomerUpsertQueue", older)
    settle(stack)

    customers = customers_of(intacct, account_id)
    assert len(customers) == 1
    assert customers[0]["NAME"] == "Coho Vineyard & Winery"
    last = sync_log.history(account_id)[-1]
    assert (last.producer_id, last.status, last.reason) == (older.producer_id, "skipped", "older_change")


# ---------------------------------------------------------------------------- helpers


def last_modified(rep: SalesRep, record_id: str) -> datetime:
    return datetime.fromisoformat(rep.read("Account", record_id)["LastModifiedDate"])


def send_to_queue(stack: LocalStack, queue: str, request: SyncRequest) -> None:
    sqs(stack).send_message(QueueUrl=stack.info["queues"][queue], MessageBody=request.model_dump_json())


def opportunity_request(stack: LocalStack, opportunity_id: str, producer_id: str) -> SyncRequest:
    return SyncRequest(
        source="platform_event",
        org_id=stack.info["salesforce"]["org_id"],
        object_type="Opportunity",
        record_id=opportunity_id,
        producer_id=producer_id,
        received_at=datetime.now(UTC),
    )


def account_request(stack: LocalStack, account_id: str, producer_id: str, modified: datetime) -> SyncRequest:
    return SyncRequest(
        source="outbound_message",
        org_id=stack.info["salesforce"]["org_id"],
        object_type="Account",
        record_id=account_id,
        producer_id=f"{account_id}-{producer_id}",
        last_modified=modified,
        received_at=datetime.now(UTC),
    )


def outbound_message_body(stack: LocalStack, opportunity_id: str) -> bytes:
    """The SOAP message Salesforce sends for this Opportunity, with one fixed notification id."""
    template = (REPO_ROOT / "events" / "outbound_message_opportunity.xml").read_text(encoding="utf-8")
    salesforce = stack.info["salesforce"]
    document = template.replace("00D5g000004ZxYtEAK", salesforce["org_id"]).replace(
        "0065g00000Bq3RTAAZ", opportunity_id
    )
    return document.encode("utf-8")


def relay_closed_won_event(stack: LocalStack, opportunity_id: str) -> dict[str, Any]:
    """The Event Relay event of a closed-won platform event, handed to the intake as EventBridge would."""
    event = json.loads((REPO_ROOT / "events" / "eventbridge_platform_event.json").read_text(encoding="utf-8"))
    org_id = stack.info["salesforce"]["org_id"]
    event["source"] = f"aws.partner/salesforce.com/{org_id}/0YL5g000000Rl4YGAS"
    event["detail"]["payload"]["OpportunityId__c"] = opportunity_id
    event["detail"]["payload"]["EventUuid"] = f"relay-{opportunity_id}"
    context = LocalLambdaContext(
        function_name="intake",
        memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:intake",
        aws_request_id=f"relay-{opportunity_id}",
        timeout_seconds=30,
    )
    result: dict[str, Any] = load_intake_handler()(event, context)
    return result
