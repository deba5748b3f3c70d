"""`make demo` is one of the README's two commands: its story runs on the local stack and holds."""

from __future__ import annotations

import pytest

from sandbox.demo import run_demo
from sandbox.stack import LocalStack

pytestmark = pytest.mark.e2e


def test_the_demo_syncs_its_deal_and_prints_what_the_readme_promises(
    local_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # run_demo raises DemoFailed when anything it prints is not what the sandboxes hold: one customer,
    # one order with three lines, the ServiceDate as rev-rec start, the write-backs, the package parts.
    run_demo(local_stack)

    printed = capsys.readouterr().out
    assert "Sales Order  Sales Order-" in printed
    assert "rev-rec from 01/04/2027" in printed
    assert "Intacct_Sync_Status__c=Synced" in printed
    assert "salesforce/" in printed
    assert "create_sotransaction x1" in printed
    # It ends as an operator: the deal's story from `sfintacct status`, a failed deal fixed and retried.
    assert "Sync log (oldest first)" in printed
    assert "Invalid Item HW-GATEWY" in printed
    assert "producer_id=retry-" in printed
    failed, retried = printed.split("9. A deal that fails")[1].split("sfintacct --local <stack.json> retry")
    assert "Intacct_Sync_Status__c=Failed" in failed
    assert "Intacct_Sync_Status__c=Synced  Intacct_Order_Id__c=Sales Order-" in retried
    # Then finance's half: the invoice and a partial payment reach the deal; a late invoice flags the Account.
    finance = printed.split("10. Finance back to sales")[1]
    assert "Intacct_Invoice_State__c=Open" in finance
    assert "Intacct_Invoice_State__c=Partially paid" in finance
    assert "130 days past due, in collections: True" in finance
    assert "In collections: 130 days past due" in finance  # the warning on a new deal
    assert "Paid in full: days past due 0, in collections: False" in finance
