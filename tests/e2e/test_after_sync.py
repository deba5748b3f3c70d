"""After the first sync, on the local stack: deals that change, leave Closed Won or move Account; fields
cleared in Salesforce; prospects; merged Accounts; clones; data that does not fit Intacct.

The Salesforce sandbox runs the package's flows (tests/integration/test_salesforce_sandbox_changes.py
holds it to them): the Opportunity message goes out when a won deal's Amount, Account, dates or stage
change, and when a synced deal leaves Closed Won; new records start with blank Intacct fields.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from sandbox.intacct.admin_client import IntacctAdminClient
from sandbox.sales_rep import THREE_LINES, Line, SalesRep
from sandbox.salesforce.admin_client import SalesforceAdminClient
from sandbox.stack import LocalStack
from sfintacct.sync.sync_log import SyncLog
from tests.e2e.conftest import customers_of, orders_of, settle, sqs

pytestmark = pytest.mark.e2e

ONE_LINE = (Line("SUB-PLATFORM", Decimal(1), Decimal(1000)),)


@pytest.fixture(autouse=True)
def nothing_dead_lettered(stack: LocalStack) -> Iterator[None]:
    """Every accepted notification ends in an outcome: none may wait in a dead-letter queue."""
    yield
    for queue in ("CustomerUpsertDeadLetterQueue", "OpportunityToOrderDeadLetterQueue"):
        stranded = sqs(stack).receive_message(QueueUrl=stack.info["queues"][queue], MaxNumberOfMessages=10)
        assert stranded.get("Messages", []) == [], queue


@pytest.fixture
def salesforce_admin(stack: LocalStack) -> SalesforceAdminClient:
    salesforce = stack.info["salesforce"]
    return SalesforceAdminClient(salesforce["admin_url"], salesforce["ca_file"])


def open_orders_of(intacct: IntacctAdminClient, opportunity_id: str) -> list[dict[str, Any]]:
    return [order for order in orders_of(intacct, opportunity_id) if order["STATE"] in ("Draft", "Pending")]


def lines_of(intacct: IntacctAdminClient, doc_id: str) -> list[tuple[str, Decimal, Decimal]]:
    lines = [line for line in intacct.records("SODOCUMENTENTRY") if line.get("DOCHDRID") == doc_id]
    return [
        (line["ITEMID"], Decimal(line["QUANTITY"]), Decimal(line["PRICE"]))
        for line in sorted(lines, key=lambda line: int(line["LINE_NO"]))
    ]


def won_and_synced(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, name: str, lines: Any = ONE_LINE
) -> tuple[str, str, str]:
    account_id = rep.create("Account", {"Name": name, "BillingCity": "Seattle"})
    opportunity_id = rep.deal(account_id, f"{name} deal", lines)
    rep.close_won(opportunity_id)
    settle(stack)
    [order] = open_orders_of(intacct, opportunity_id)
    assert rep.read("Opportunity", opportunity_id)["Intacct_Sync_Status__c"] == "Synced"
    return account_id, opportunity_id, str(order["DOCID"])


def contact_of(intacct: IntacctAdminClient, account_id: str) -> dict[str, Any]:
    [customer] = customers_of(intacct, account_id)
    contact: dict[str, Any] = customer["DISPLAYCONTACT"]
    return contact


# ---------------------------------------------------------------------------- the order follows the deal


def test_a_deal_reopened_given_new_lines_and_won_again_has_one_order_with_the_new_lines(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient
) -> None:
    _, opportunity_id, _ = won_and_synced(stack, rep, intacct, "Reopen Corp")

    rep.update("Opportunity", opportunity_id, {"StageName": "Negotiation/Review"})
    for line in THREE_LINES:
        rep.add_line(opportunity_id, line)
    rep.close_won(opportunity_id)
    settle(stack)

    [order] = open_orders_of(intacct, opportunity_id)  # any earlier one was closed, never left open
    assert lines_of(intacct, order["DOCID"]) == [
        ("SUB-PLATFORM", Decimal(1), Decimal(1000)),
        ("SUB-PLATFORM", Decimal(1), Decimal(12000)),
        ("SVC-ONBOARD", Decimal(1), Decimal(2500)),
        ("SVC-TRAINING", Decimal(2), Decimal(0)),
    ]
    opportunity = rep.read("Opportunity", opportunity_id)
    assert Decimal(str(order["TOTAL"])) == Decimal(str(opportunity["Amount"])) == Decimal(14300)
    assert (opportunity["Intacct_Order_Id__c"], opportunity["Intacct_Sync_Status__c"]) == (
        order["DOCID"],
        "Synced",
    )


def test_a_line_added_to_a_won_deal_reaches_its_order_in_place(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, sync_log: SyncLog
) -> None:
    _, opportunity_id, doc_id = won_and_synced(stack, rep, intacct, "Add-on Ltd")

    rep.add_line(opportunity_id, Line("SVC-TRAINING", Decimal(3), Decimal(800)))
    settle(stack)

    assert [order["DOCID"] for order in orders_of(intacct, opportunity_id)] == [doc_id]
    assert lines_of(intacct, doc_id)[-1] == ("SVC-TRAINING", Decimal(3), Decimal(800))
    assert Decimal(str(orders_of(intacct, opportunity_id)[0]["TOTAL"])) == Decimal(3400)
    assert ("synced", "order_updated") in [
        (entry.status, entry.reason) for entry in sync_log.history(opportunity_id)
    ]


def test_a_deal_moved_to_closed_lost_leaves_no_open_order_and_says_so(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient
) -> None:
    _, opportunity_id, doc_id = won_and_synced(stack, rep, intacct, "Lost Deal Inc")

    rep.update("Opportunity", opportunity_id, {"StageName": "Closed Lost"})
    settle(stack)

    assert open_orders_of(intacct, opportunity_id) == []
    assert [order["STATE"] for order in orders_of(intacct, opportunity_id)] == [
        "Closed"
    ]  # LostDealOrder=close
    opportunity = rep.read("Opportunity", opportunity_id)
    assert (opportunity["Intacct_Sync_Status__c"], opportunity["Intacct_Order_Id__c"]) == (
        "Order closed",
        doc_id,
    )
    assert "Closed Lost" in opportunity["Intacct_Sync_Error__c"]


def test_a_deal_moved_to_another_account_has_its_order_under_the_new_customer(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient
) -> None:
    _, opportunity_id, _ = won_and_synced(stack, rep, intacct, "First Owner")
    other = rep.create("Account", {"Name": "Second Owner", "BillingCity": "Portland"})

    rep.update("Opportunity", opportunity_id, {"AccountId": other})
    settle(stack)

    [order] = open_orders_of(intacct, opportunity_id)
    [customer] = customers_of(intacct, other)
    assert order["CUSTVENDID"] == customer["CUSTOMERID"]
    assert rep.read("Opportunity", opportunity_id)["Intacct_Order_Id__c"] == order["DOCID"]
    assert rep.read("Account", other)["Intacct_Customer_Id__c"] == customer["CUSTOMERID"]


def test_an_edit_after_the_order_was_converted_shows_changed_after_sync_and_is_counted(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, sync_log: SyncLog
) -> None:
    _, opportunity_id, doc_id = won_and_synced(stack, rep, intacct, "Invoiced Already")
    intacct.convert_sales_document(doc_id, "Converted")  # finance made the invoice

    rep.add_line(opportunity_id, Line("SVC-ONBOARD", Decimal(1), Decimal(2500)))
    settle(stack)

    assert lines_of(intacct, doc_id) == [("SUB-PLATFORM", Decimal(1), Decimal(1000))]
    opportunity = rep.read("Opportunity", opportunity_id)
    assert opportunity["Intacct_Sync_Status__c"] == "Changed after sync"
    assert opportunity["Intacct_Order_Id__c"] == doc_id
    assert "products" in opportunity["Intacct_Sync_Error__c"]
    assert "Converted" in opportunity["Intacct_Sync_Error__c"]
    # The sync log holds each one; the worker counts it in the metric the alarm watches
    # (OpportunityChangedAfterSync, reason order_not_open: tests/unit/test_sync_worker.py).
    last = sync_log.history(opportunity_id)[-1]
    assert (last.status, last.reason) == ("changed_after_sync", "order_not_open")


# ---------------------------------------------------------------------------- customers


def test_fields_cleared_in_salesforce_are_cleared_in_intacct(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient
) -> None:
    account_id = rep.create(
        "Account",
        {
            "Name": "Clear Fields Co",
            "Phone": "+1 206 555 0100",
            "Website": "https://clear.example",
            "BillingStreet": "1 Main St\nSuite 200",
            "BillingCity": "Seattle",
        },
    )
    opportunity_id = rep.deal(account_id, "Clear Fields deal", ONE_LINE)
    rep.close_won(opportunity_id)
    settle(stack)
    assert contact_of(intacct, account_id)["PHONE1"] == "+1 206 555 0100"

    rep.update("Account", account_id, {"Phone": None, "Website": None, "BillingStreet": None})
    settle(stack)

    contact = contact_of(intacct, account_id)
    assert contact.get("PHONE1", "") == ""
    assert contact.get("URL1", "") == ""
    assert contact["MAILADDRESS"].get("ADDRESS1", "") == ""
    assert contact["MAILADDRESS"].get("ADDRESS2", "") == ""
    assert contact["MAILADDRESS"]["CITY"] == "Seattle"
    assert rep.read("Account", account_id)["Intacct_Sync_Status__c"] == "Synced"


def test_a_prospect_gets_no_customer_until_its_first_deal_is_won(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, sync_log: SyncLog
) -> None:
    account_id = rep.create("Account", {"Name": "Prospect Partners", "BillingCity": "Boise"})
    settle(stack)
    assert customers_of(intacct, account_id) == []
    assert rep.read("Account", account_id)["Intacct_Customer_Id__c"] is None
    assert sync_log.history(account_id)[-1].reason == "prospect"

    opportunity_id = rep.deal(account_id, "First purchase", ONE_LINE)
    rep.close_won(opportunity_id)
    settle(stack)

    [customer] = customers_of(intacct, account_id)
    assert rep.read("Account", account_id)["Intacct_Customer_Id__c"] == customer["CUSTOMERID"]


def test_a_merge_whose_loser_was_synced_links_the_survivor_to_that_customer(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, salesforce_admin: SalesforceAdminClient
) -> None:
    loser, _, _ = won_and_synced(stack, rep, intacct, "Merged Away Ltd")
    master = rep.create("Account", {"Name": "Survivor Ltd", "BillingCity": "Austin"})
    settle(stack)
    [customer] = customers_of(intacct, loser)

    salesforce_admin.merge(master, [loser])
    settle(stack)

    [linked] = customers_of(intacct, master)  # the loser's customer now carries the survivor's id
    assert linked["CUSTOMERID"] == customer["CUSTOMERID"]
    assert len([c for c in intacct.records("CUSTOMER") if c["CUSTOMERID"] == customer["CUSTOMERID"]]) == 1
    survivor = rep.read("Account", master)
    assert (survivor["Intacct_Customer_Id__c"], survivor["Intacct_Sync_Status__c"]) == (
        customer["CUSTOMERID"],
        "Synced",
    )
    assert linked["NAME"] == "Survivor Ltd"


def test_a_merge_of_two_synced_accounts_keeps_one_and_shows_that_two_exist(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, salesforce_admin: SalesforceAdminClient
) -> None:
    loser, _, _ = won_and_synced(stack, rep, intacct, "Twin A")
    master, _, _ = won_and_synced(stack, rep, intacct, "Twin B")
    [loser_customer] = customers_of(intacct, loser)
    [master_customer] = customers_of(intacct, master)

    salesforce_admin.merge(master, [loser])
    settle(stack)

    survivor = rep.read("Account", master)
    assert survivor["Intacct_Customer_Id__c"] == master_customer["CUSTOMERID"]
    assert survivor["Intacct_Sync_Status__c"] == "Synced with warnings"
    assert f"keeps {master_customer['CUSTOMERID']}" in survivor["Intacct_Sync_Error__c"]
    assert loser_customer["CUSTOMERID"] in survivor["Intacct_Sync_Error__c"]
    assert len(intacct.records("CUSTOMER")) == len({c["CUSTOMERID"] for c in intacct.records("CUSTOMER")})


# ---------------------------------------------------------------------------- clones


def test_a_clone_starts_blank_and_gets_its_own_order_and_a_failed_clone_shows_none(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient
) -> None:
    _, original, doc_id = won_and_synced(stack, rep, intacct, "Clone Source")
    copied = {
        key: value
        for key, value in rep.read("Opportunity", original).items()
        # Salesforce's Clone copies the fields a user could enter: not a formula (the collections warning)
        if key in ("Name", "AccountId", "CloseDate", "StageName")
        or (key.startswith("Intacct_") and key != "Intacct_Collections_Warning__c")
    }

    clone = rep.create("Opportunity", {**copied, "StageName": "Negotiation/Review"})
    assert rep.read("Opportunity", clone)["Intacct_Order_Id__c"] is None
    assert rep.read("Opportunity", clone)["Intacct_Sync_Status__c"] is None
    empty_clone = rep.create("Opportunity", copied)  # won at once, without products
    rep.add_line(clone, Line("SVC-ONBOARD", Decimal(1), Decimal(2500)))
    rep.close_won(clone)
    settle(stack)

    [own] = open_orders_of(intacct, clone)
    assert own["DOCID"] != doc_id
    assert rep.read("Opportunity", clone)["Intacct_Order_Id__c"] == own["DOCID"]
    failed = rep.read("Opportunity", empty_clone)
    assert (failed["Intacct_Sync_Status__c"], failed["Intacct_Order_Id__c"]) == ("Failed", None)
    assert "no products" in failed["Intacct_Sync_Error__c"]
    assert rep.read("Opportunity", original)["Intacct_Order_Id__c"] == doc_id


# ---------------------------------------------------------------------------- data that does not fit


def test_a_phone_number_too_long_for_intacct_fails_the_deal_naming_field_and_limit(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient
) -> None:
    phone = "+1 (206) 555-0100 extension 98765"  # 33 characters; Intacct's PHONE1 takes 30
    account_id = rep.create("Account", {"Name": "Long Phone LLC", "Phone": phone})
    opportunity_id = rep.deal(account_id, "Long phone deal", ONE_LINE)

    rep.close_won(opportunity_id)
    settle(stack)

    assert customers_of(intacct, account_id) == []
    assert orders_of(intacct, opportunity_id) == []
    opportunity = rep.read("Opportunity", opportunity_id)
    assert opportunity["Intacct_Sync_Status__c"] == "Failed"
    assert (
        "contact.phone1 (Salesforce Phone) takes at most 30 characters, the value has 33"
        in (opportunity["Intacct_Sync_Error__c"])
    )


def test_a_long_name_is_refused_for_the_company_name_and_a_three_line_street_fills_three_lines(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient
) -> None:
    long_name = "Contoso " + "Holdings " * 27  # 251 characters
    account_id = rep.create("Account", {"Name": long_name, "BillingCity": "Reno"})
    opportunity_id = rep.deal(account_id, "Long name deal", ONE_LINE)
    rep.close_won(opportunity_id)
    settle(stack)
    failed = rep.read("Opportunity", opportunity_id)
    assert failed["Intacct_Sync_Status__c"] == "Failed"
    assert (
        "contact.company_name (Salesforce Name) takes at most 100 characters"
        in failed["Intacct_Sync_Error__c"]
    )

    # The rep shortens the name and gives the full three-line address; the deal goes through.
    rep.update(
        "Account",
        account_id,
        {"Name": "Contoso Holdings", "BillingStreet": "Building 4\n1 Main Street\nFloor 3\nSuite 12"},
    )
    rep.update("Opportunity", opportunity_id, {"CloseDate": "2026-12-16"})  # a change of the won deal
    settle(stack)

    [order] = open_orders_of(intacct, opportunity_id)
    address = contact_of(intacct, account_id)["MAILADDRESS"]
    assert (address["ADDRESS1"], address["ADDRESS2"], address["ADDRESS3"]) == (
        "Building 4",
        "1 Main Street",
        "Floor 3, Suite 12",
    )
    assert rep.read("Opportunity", opportunity_id)["Intacct_Order_Id__c"] == order["DOCID"]
