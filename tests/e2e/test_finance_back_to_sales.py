"""Finance back to sales on the local stack: what the accountant does in Intacct (through its XML API)
reaches the Salesforce records through the scheduled finance function, run as its schedule would run it.

The function decides "today" from the clock; an invoice 130 days past due is one dated 160 days back on
N30 terms (the sandbox's own moved "today" is tested with the sandbox).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from sandbox.accountant import Accountant
from sandbox.intacct.admin_client import IntacctAdminClient
from sandbox.sales_rep import Line, SalesRep
from sandbox.stack import LocalStack
from sfintacct.intacct.client import IntacctClient
from sfintacct.sync.sync_log import SyncLog
from sfintacct_ops.deployment import from_local
from tests.e2e.conftest import orders_of, settle

pytestmark = pytest.mark.e2e

FINANCE_FUNCTION = "FinanceStatusFunction"
ONE_LINE = (Line("SUB-PLATFORM", Decimal(1), Decimal(1000)),)


@pytest.fixture
def accountant(stack: LocalStack) -> Iterator[Accountant]:
    """The accountant, with an Intacct client of the stack's own company and credentials."""
    assert stack.stack_file is not None
    deployment = from_local(stack.stack_file)
    client: IntacctClient = deployment.intacct_client()
    yield Accountant(client)
    deployment.close()


def run_finance(stack: LocalStack) -> dict[str, Any]:
    """One run of the scheduled function, in its own process, as EventBridge would start it."""
    result = stack.workers.run_scheduled(FINANCE_FUNCTION)
    assert result.status == "returned", result.error
    assert isinstance(result.response, dict)
    assert "stopped_by" not in result.response, result.response
    return result.response


def won_deal(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, account_id: str, name: str
) -> tuple[str, str]:
    opportunity_id = rep.deal(account_id, name, ONE_LINE)
    rep.close_won(opportunity_id)
    settle(stack)
    [order] = orders_of(intacct, opportunity_id)
    return opportunity_id, str(order["DOCID"])


def test_an_invoice_its_payments_and_a_late_one_reach_the_deal_and_the_account(
    stack: LocalStack,
    rep: SalesRep,
    intacct: IntacctAdminClient,
    accountant: Accountant,
    sync_log: SyncLog,
) -> None:
    today = datetime.now(UTC).date()
    account_id = rep.create("Account", {"Name": "Fabrikam Finance", "Type": "Customer - Direct"})
    opportunity_id, order_id = won_deal(stack, rep, intacct, account_id, "Fabrikam platform")
    run_finance(stack)  # nothing invoiced yet: nothing to show

    invoice_id = accountant.convert_to_invoice(order_id, day=today)
    run_finance(stack)
    deal = rep.read("Opportunity", opportunity_id)
    number = accountant.invoice_of(invoice_id)["RECORDID"]
    assert (deal["Intacct_Invoice_Number__c"], deal["Intacct_Invoice_State__c"]) == (number, "Open")
    assert Decimal(str(deal["Intacct_Amount_Due__c"])) == Decimal(1000)
    account = rep.read("Account", account_id)
    assert Decimal(str(account["Intacct_AR_Balance__c"])) == Decimal(1000)
    assert account["Intacct_In_Collections__c"] is False

    accountant.pay(invoice_id, Decimal(400), day=today)
    again = run_finance(stack)
    deal = rep.read("Opportunity", opportunity_id)
    assert deal["Intacct_Invoice_State__c"] == "Partially paid"
    assert Decimal(str(deal["Intacct_Amount_Due__c"])) == Decimal(600)
    assert again["written"] == 2  # the deal and its Account, nothing else

    unchanged = run_finance(stack)
    assert unchanged["written"] == 0  # a run with nothing changed writes nothing

    # An older deal's invoice, dated 160 days back on N30: 130 days past due.
    late_id, late_order = won_deal(stack, rep, intacct, account_id, "Fabrikam add-on")
    late_invoice = accountant.convert_to_invoice(late_order, day=today - timedelta(days=160))
    run_finance(stack)
    account = rep.read("Account", account_id)
    assert (account["Intacct_Days_Past_Due__c"], account["Intacct_In_Collections__c"]) == (130, True)
    assert Decimal(str(account["Intacct_AR_Balance__c"])) == Decimal(1600)
    new_deal = rep.deal(account_id, "Fabrikam upsell", ONE_LINE)
    assert "130 days past due" in (rep.read("Opportunity", new_deal)["Intacct_Collections_Warning__c"] or "")

    accountant.pay(late_invoice, Decimal(1000), day=today)
    accountant.pay(invoice_id, Decimal(600), day=today)
    run_finance(stack)
    account = rep.read("Account", account_id)
    assert (account["Intacct_Days_Past_Due__c"], account["Intacct_In_Collections__c"]) == (0, False)
    assert Decimal(str(account["Intacct_AR_Balance__c"])) == 0
    assert rep.read("Opportunity", opportunity_id)["Intacct_Invoice_State__c"] == "Paid"
    assert rep.read("Opportunity", late_id)["Intacct_Invoice_State__c"] == "Paid"
    assert not rep.read("Opportunity", new_deal)["Intacct_Collections_Warning__c"]
    # What the run wrote is in the deal's sync log, for `sfintacct status`.
    reasons = [(entry.status, entry.reason) for entry in sync_log.history(opportunity_id)]
    assert reasons.count(("synced", "finance_updated")) == 3  # open, partially paid, paid


def test_a_run_that_finds_intacct_down_stops_cleanly_and_the_next_one_catches_up(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, accountant: Accountant
) -> None:
    account_id = rep.create("Account", {"Name": "Contoso Finance", "Type": "Customer - Direct"})
    opportunity_id, order_id = won_deal(stack, rep, intacct, account_id, "Contoso platform")
    accountant.convert_to_invoice(order_id, day=datetime.now(UTC).date())
    intacct.set_faults(offline=True)
    try:
        result = stack.workers.run_scheduled(FINANCE_FUNCTION)
    finally:
        intacct.set_faults(offline=False)

    assert result.status == "returned", result.error  # no function error: the schedule goes on
    assert isinstance(result.response, dict)
    assert result.response["stopped_by"]
    assert "next scheduled run" in result.response["message"]
    assert not rep.read("Opportunity", opportunity_id)["Intacct_Invoice_Number__c"]

    run_finance(stack)
    assert rep.read("Opportunity", opportunity_id)["Intacct_Invoice_State__c"] == "Open"


def test_an_approved_deal_goes_straight_to_a_sales_invoice_once_and_shows_it(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient
) -> None:
    account_id = rep.create("Account", {"Name": "Litware Approved", "Type": "Customer - Direct"})
    opportunity_id = rep.deal(account_id, "Litware approved deal", ONE_LINE)
    rep.update("Opportunity", opportunity_id, {"Intacct_Invoice_Approved__c": True})  # finance approves
    rep.close_won(opportunity_id)
    settle(stack)
    rep.update("Opportunity", opportunity_id, {"Description": "edited after close"})  # notified again
    settle(stack)

    [document] = orders_of(intacct, opportunity_id)  # one document, and it is an invoice
    assert document["DOCPARID"] == "Sales Invoice"
    deal = rep.read("Opportunity", opportunity_id)
    assert (deal["Intacct_Order_Id__c"], deal["Intacct_Sync_Status__c"]) == (document["DOCID"], "Synced")

    run_finance(stack)
    deal = rep.read("Opportunity", opportunity_id)
    assert (deal["Intacct_Invoice_State__c"], Decimal(str(deal["Intacct_Amount_Due__c"]))) == ("Open", 1000)
