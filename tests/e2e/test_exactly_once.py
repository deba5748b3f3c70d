"""Exactly once under attack and under a busy org, over the wire through the local stack.

- a repeated or forged notification Id / EventUuid never hides another deal;
- a write-back lost to a Salesforce 5xx is repaired on redelivery, without asking Intacct again;
- an Opportunity edited while its order is still being committed gets one order, not two.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from sandbox.aws_local import secretsmanager_client
from sandbox.intacct.admin_client import IntacctAdminClient
from sandbox.sales_rep import THREE_LINES, Line, SalesRep
from sandbox.salesforce.admin_client import SalesforceAdminClient
from sandbox.salesforce.outbound import definition_from_json
from sandbox.stack import LocalStack
from tests.e2e.conftest import customers_of, orders_of, settle, wait_for

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXED_NOTIFICATION_ID = "04l5g00000Q7mPaAAJ"  # the one in events/outbound_message_opportunity.xml


def salesforce_admin(stack: LocalStack) -> SalesforceAdminClient:
    return SalesforceAdminClient(stack.info["salesforce"]["admin_url"], stack.info["salesforce"]["ca_file"])


@contextmanager
def no_opportunity_outbound_message(stack: LocalStack) -> Iterator[None]:
    """Closing a deal sends nothing by itself: the test sends the notifications it wants."""
    admin = salesforce_admin(stack)
    definitions = [definition_from_json(item) for item in admin._call("GET", "/outbound/definitions")]
    admin.set_outbound_definitions([item for item in definitions if item.object_type != "Opportunity"])
    try:
        yield
    finally:
        admin.set_outbound_definitions(definitions)


def outbound_message(stack: LocalStack, opportunity_id: str, notification_id: str) -> int:
    template = (REPO_ROOT / "events" / "outbound_message_opportunity.xml").read_text(encoding="utf-8")
    body = (
        template.replace("00D5g000004ZxYtEAK", stack.info["salesforce"]["org_id"])
        .replace("0065g00000Bq3RTAAZ", opportunity_id)
        .replace(FIXED_NOTIFICATION_ID, notification_id)
    )
    return httpx.post(
        stack.info["outbound_url"],
        content=body.encode("utf-8"),
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
        timeout=30,
    ).status_code


def signed_event(stack: LocalStack, opportunity_id: str, event_uuid: str) -> int:
    secrets = secretsmanager_client(stack.info["secretsmanager_endpoint"], stack.info["region"])
    key = json.loads(secrets.get_secret_value(SecretId=stack.info["secrets"]["intake"])["SecretString"])[
        "event_signing_key"
    ]
    body = json.dumps({"EventUuid": event_uuid, "OpportunityId__c": opportunity_id}).encode()
    timestamp = str(int(time.time()))
    signature = hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return httpx.post(
        f"{stack.info['api_url']}/salesforce/events",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Signature-Timestamp": timestamp,
            "X-Signature": signature,
        },
        timeout=30,
    ).status_code


def assert_synced(rep: SalesRep, intacct: IntacctAdminClient, account_id: str, opportunity_id: str) -> None:
    [customer] = customers_of(intacct, account_id)
    [order] = orders_of(intacct, opportunity_id)
    opportunity = rep.read("Opportunity", opportunity_id)
    assert (opportunity["Intacct_Order_Id__c"], opportunity["Intacct_Sync_Status__c"]) == (
        order["DOCID"],
        "Synced",
    )
    account = rep.read("Account", account_id)
    assert (account["Intacct_Customer_Id__c"], account["Intacct_Sync_Status__c"]) == (
        customer["CUSTOMERID"],
        "Synced",
    )


def test_deals_whose_notifications_repeat_an_id_each_get_their_order(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient
) -> None:
    deals = []
    with no_opportunity_outbound_message(stack):
        for index in range(4):
            account_id = rep.create("Account", {"Name": f"Shared envelope {index}"})
            opportunity_id = rep.deal(account_id, f"Shared envelope deal {index}", THREE_LINES[:1])
            rep.close_won(opportunity_id)
            deals.append((account_id, opportunity_id))
        settle(stack)
        assert all(orders_of(intacct, opportunity_id) == [] for _, opportunity_id in deals)
        forged_first, real_second = deals[0][1], deals[1][1]
        statuses = [
            # An Outbound Message id sent first for one deal (forged or repeated), then for another.
            outbound_message(stack, forged_first, FIXED_NOTIFICATION_ID),
            outbound_message(stack, real_second, FIXED_NOTIFICATION_ID),
            # Two signed callouts whose EventUuid repeats.
            signed_event(stack, deals[2][1], "repeated-event-uuid"),
            signed_event(stack, deals[3][1], "repeated-event-uuid"),
        ]
        assert statuses == [200, 200, 202, 202]
        settle(stack)

    for account_id, opportunity_id in deals:
        assert_synced(rep, intacct, account_id, opportunity_id)


def test_an_account_write_back_lost_to_a_5xx_is_repaired_without_asking_intacct_again(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient
) -> None:
    settle(stack)
    salesforce_admin(stack).set_faults(fail_next={"count": 1, "status": 503, "path": "/composite"})
    before = intacct.counts()
    try:
        account_id = rep.create(
            "Account",
            {"Name": "Write-back lost once", "Phone": "+1 206 555 0101", "Type": "Customer - Direct"},
        )
        settle(stack)  # the first write-back gets the 503; the redelivery (same change) repairs it
    finally:
        salesforce_admin(stack).clear_faults()

    [customer] = customers_of(intacct, account_id)
    account = rep.read("Account", account_id)
    assert (account["Intacct_Customer_Id__c"], account["Intacct_Sync_Status__c"]) == (
        customer["CUSTOMERID"],
        "Synced",
    )
    after = intacct.counts()
    writes = {
        name: int(after["functions"].get(name, 0)) - int(before["functions"].get(name, 0))
        for name in after["functions"]
        if name.startswith("create") or name.startswith("update")
    }
    assert {name: count for name, count in writes.items() if count} == {"create:CUSTOMER": 1}


def test_an_edit_after_close_while_the_order_is_still_being_committed_makes_one_order(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient
) -> None:
    """Intacct refuses a repeat of a running request (the sandbox's default): even a commit after the
    claim's lease (16 s locally) makes one order, since the repeat carries the same control id."""
    account_id = rep.create("Account", {"Name": "Slow commit"})
    opportunity_id = rep.deal(account_id, "Slow commit deal", THREE_LINES)
    settle(stack)  # the customer exists: the order goes alone
    delay_seconds = 25  # longer than the worker's Intacct timeout, its function timeout and the lease
    intacct.set_faults(
        slow_next={"count": 1, "function": "create_sotransaction", "delay_ms": delay_seconds * 1000}
    )
    started = time.monotonic()
    try:
        rep.close_won(opportunity_id)
        assert wait_for(
            lambda: int(intacct.counts()["requests"]) > 0 and intacct.set_faults()["slow_next"]["count"] == 0
        )
        rep.update(
            "Opportunity", opportunity_id, {"Description": "Signed copy attached"}
        )  # edited after close
        settle(stack, timeout=120)
        time.sleep(max(0.0, delay_seconds + 2 - (time.monotonic() - started)))  # the slow create has run
    finally:
        intacct.clear_faults()
    settle(stack)

    assert len(orders_of(intacct, opportunity_id)) == 1
    assert_synced(rep, intacct, account_id, opportunity_id)


@pytest.mark.parametrize("remembered", [False, True], ids=["refused-ids-reusable", "refused-ids-remembered"])
def test_a_refused_order_syncs_once_its_data_is_fixed_whether_or_not_intacct_remembers_the_refusal(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, remembered: bool
) -> None:
    code = f"NOT-SET-UP-{int(remembered)}"
    rep.product(code, "Product finance has not set up yet", Decimal(40))
    account_id = rep.create(
        "Account", {"Name": f"Fixed later {int(remembered)}", "Type": "Customer - Direct"}
    )
    opportunity_id = rep.deal(account_id, "Fixed later deal", [Line(code, Decimal(2), Decimal(40))])
    settle(stack)
    intacct.configure(remember_failed_controlids=remembered)
    try:
        rep.close_won(opportunity_id)
        settle(stack)
        assert rep.read("Opportunity", opportunity_id)["Intacct_Sync_Status__c"] == "Failed"

        [product] = rep.query(f"SELECT Id FROM Product2 WHERE ProductCode = '{code}'")
        rep.update("Product2", product["Id"], {"ProductCode": "SVC-ONBOARD"})  # the rep fixes the product
        assert signed_event(stack, opportunity_id, f"retry-sync-{opportunity_id}") == 202  # "Retry sync"
        settle(stack)
    finally:
        intacct.configure(remember_failed_controlids=False)

    assert_synced(rep, intacct, account_id, opportunity_id)
