"""After the first sync: a won deal that changes, leaves Closed Won or moves Account; prospects, merged and
deleted Accounts; what a record shows when its sync fails. In-memory fakes, as in test_sync_rules."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sfintacct.crosswalk import CrosswalkKind
from sfintacct.intacct.errors import FunctionFailed, OutcomeUnknown
from sfintacct.mapping import DEFAULT_MAPPING_FILE, MappingError, load_mapping

# world_factory: the in-memory stores; tests/integration/test_sync_service.py runs these tests again with
# its own, on DynamoDB Local.
from tests.unit.sync.test_sync_rules import World, new_account, won_deal, world_factory, writes  # noqa: F401

EDITED_AGAIN = "2026-11-28T10:10:00.000+0000"


@pytest.fixture
def world(world_factory: Any) -> World:  # noqa: F811 - the fixture imported above
    made: World = world_factory()
    return made


def synced_deal(world: World, *, lines: int = 1) -> tuple[str, str, str]:
    account_id, opportunity_id = won_deal(world, lines=lines)
    outcome = world.handle("Opportunity", opportunity_id, "won")
    assert outcome.status == "synced"
    return account_id, opportunity_id, outcome.intacct_order_id


def edit(world: World, opportunity_id: str, **fields: Any) -> None:
    world.salesforce.opportunities[opportunity_id].update(fields, LastModifiedDate=EDITED_AGAIN)


def line(index: int, code: str = "SUB-PLATFORM", quantity: int = 1, price: int = 100) -> dict[str, Any]:
    return {
        "Id": f"00k{index}",
        "Quantity": quantity,
        "UnitPrice": Decimal(price),
        "Product2": {"ProductCode": code},
    }


def shown(world: World, opportunity_id: str) -> dict[str, Any]:
    return world.salesforce.opportunities[opportunity_id]


# ---------------------------------------------------------------------------- the order follows the deal


def test_a_notification_of_an_unchanged_synced_deal_costs_no_intacct_call(world: World) -> None:
    _, opportunity_id, _ = synced_deal(world)
    before = list(world.intacct.requests)

    outcome = world.handle("Opportunity", opportunity_id, "again")

    assert (outcome.status, outcome.reason) == ("already_synced", "order_exists")
    assert world.intacct.requests == before


def test_new_lines_on_a_won_deal_update_its_open_order_in_place(world: World) -> None:
    _, opportunity_id, order_id = synced_deal(world)
    world.salesforce.lines[opportunity_id] = [line(0, quantity=10, price=1000), line(1, "SUB-ADDON", 1, 500)]
    edit(world, opportunity_id, Amount=10500)

    outcome = world.handle("Opportunity", opportunity_id, "lines changed")

    assert (outcome.status, outcome.reason, outcome.intacct_order_id) == ("synced", "order_updated", order_id)
    order = world.intacct.order_of(opportunity_id)
    assert [(line.item_id, line.quantity, line.price) for line in order.lines] == [
        ("SUB-PLATFORM", 10, 1000),
        ("SUB-ADDON", 1, 500),
    ]
    assert sum(line.quantity * (line.price or 0) for line in order.lines) == 10500
    assert len(world.intacct.orders) == 1
    assert shown(world, opportunity_id)["Intacct_Sync_Status__c"] == "Synced"
    # The same change notified again sends nothing more.
    before = list(world.intacct.requests)
    assert world.handle("Opportunity", opportunity_id, "repeat").reason == "order_exists"
    assert world.intacct.requests == before


def test_the_same_update_repeated_after_a_lost_answer_is_not_applied_twice(world: World) -> None:
    _, opportunity_id, _ = synced_deal(world)
    world.salesforce.lines[opportunity_id] = [line(0, quantity=3)]
    edit(world, opportunity_id)
    world.handle("Opportunity", opportunity_id, "first")
    # The crosswalk forgets (the worker died before recording): the same content is sent with the same
    # control id, which Intacct refuses as a repeat, and that is taken as done.
    entry = world.crosswalk.get(opportunity_id, CrosswalkKind.ORDER)
    assert entry is not None
    world.crosswalk.put_mapping(
        opportunity_id, CrosswalkKind.ORDER, entry.intacct_id or "", None, attributes={"customer_id": "x"}
    )

    outcome = world.handle("Opportunity", opportunity_id, "redelivered")

    assert (outcome.status, outcome.reason) == ("synced", "order_updated")
    updates = [c for c in world.intacct.control_ids if c.startswith("order-update-")]
    assert len(updates) == 2
    assert len(set(updates)) == 1
    assert world.intacct.order_of(opportunity_id).lines[0].quantity == 3


def test_fewer_lines_replace_the_order_in_one_request_and_the_old_one_is_closed(world: World) -> None:
    _, opportunity_id, old_order = synced_deal(world, lines=2)
    world.salesforce.lines[opportunity_id] = [line(0, quantity=5)]
    edit(world, opportunity_id)

    outcome = world.handle("Opportunity", opportunity_id, "line removed")

    assert (outcome.status, outcome.reason) == ("synced", "order_replaced")
    assert outcome.intacct_order_id != old_order
    states = {document.doc_id: document.state for document in world.intacct.orders}
    assert states == {old_order: "Closed", outcome.intacct_order_id: "Pending"}
    assert [line.quantity for line in world.intacct.order_of(opportunity_id).lines] == [5]
    assert shown(world, opportunity_id)["Intacct_Order_Id__c"] == outcome.intacct_order_id


def test_a_deal_moved_to_another_account_gets_its_order_under_the_new_customer(world: World) -> None:
    _, opportunity_id, _ = synced_deal(world)
    other = new_account(world)
    world.salesforce.accounts[other]["Name"] = "Contoso"
    edit(world, opportunity_id, AccountId=other)

    outcome = world.handle("Opportunity", opportunity_id, "moved")

    assert (outcome.status, outcome.reason, outcome.intacct_customer_id) == (
        "synced",
        "order_replaced",
        other,
    )
    [open_order] = [document for document in world.intacct.orders if document.is_open]
    assert (open_order.doc_id, open_order.customer_id) == (outcome.intacct_order_id, other)
    assert world.salesforce.accounts[other]["Intacct_Customer_Id__c"] == other


@pytest.mark.parametrize(("setting", "left"), [("close", ["Closed"]), ("delete", [])])
def test_a_deal_moved_to_closed_lost_takes_its_order_out_of_open_business(
    world_factory: Any,  # noqa: F811 - the fixture imported above
    setting: str,
    left: list[str],
) -> None:
    world: World = world_factory(lost_deal_order=setting)
    _, opportunity_id, order_id = synced_deal(world)
    edit(world, opportunity_id, StageName="Closed Lost", IsWon=False)

    outcome = world.handle("Opportunity", opportunity_id, "lost")

    assert (outcome.status, outcome.reason) == ("synced", "order_retired")
    assert [document.state for document in world.intacct.orders] == left
    record = shown(world, opportunity_id)
    assert record["Intacct_Sync_Status__c"] == "Order closed"
    assert record["Intacct_Order_Id__c"] == (order_id if setting == "close" else None)
    assert "Closed Lost" in record["Intacct_Sync_Error__c"]
    # Notified again: nothing more is sent.
    before = list(world.intacct.requests)
    assert world.handle("Opportunity", opportunity_id, "again").reason == "order_retired"
    assert world.intacct.requests == before


def test_a_lost_deal_won_again_gets_a_new_order(world: World) -> None:
    _, opportunity_id, first = synced_deal(world)
    edit(world, opportunity_id, StageName="Closed Lost", IsWon=False)
    world.handle("Opportunity", opportunity_id, "lost")
    edit(world, opportunity_id, StageName="Closed Won", IsWon=True)

    outcome = world.handle("Opportunity", opportunity_id, "won again")

    assert outcome.status == "synced"
    assert outcome.intacct_order_id != first
    assert [document.state for document in world.intacct.orders] == ["Closed", "Pending"]
    assert shown(world, opportunity_id)["Intacct_Sync_Status__c"] == "Synced"


def test_a_deal_changed_after_its_order_was_converted_says_so_and_changes_nothing(world: World) -> None:
    _, opportunity_id, order_id = synced_deal(world)
    world.intacct.set_state(order_id, "Converted")
    world.salesforce.lines[opportunity_id] = [line(0, quantity=7)]
    edit(world, opportunity_id)
    before = writes(world)

    outcome = world.handle("Opportunity", opportunity_id, "edited after invoicing")

    assert (outcome.status, outcome.reason) == ("changed_after_sync", "order_not_open")
    assert writes(world) == before
    record = shown(world, opportunity_id)
    assert record["Intacct_Sync_Status__c"] == "Changed after sync"
    assert record["Intacct_Order_Id__c"] == order_id
    assert "products" in record["Intacct_Sync_Error__c"]
    assert "Converted" in record["Intacct_Sync_Error__c"]


def test_a_deal_lost_after_its_order_was_converted_says_so(world: World) -> None:
    _, opportunity_id, order_id = synced_deal(world)
    world.intacct.set_state(order_id, "Partially Converted")
    edit(world, opportunity_id, StageName="Closed Lost", IsWon=False)

    outcome = world.handle("Opportunity", opportunity_id, "lost after invoicing")

    assert outcome.status == "changed_after_sync"
    assert "stage (now Closed Lost)" in shown(world, opportunity_id)["Intacct_Sync_Error__c"]
    assert world.intacct.orders[0].state == "Partially Converted"


def test_an_order_refused_after_a_change_fails_the_deal_but_keeps_its_own_order_id(world: World) -> None:
    _, opportunity_id, order_id = synced_deal(world)
    world.salesforce.lines[opportunity_id] = [line(0, "NO-SUCH-ITEM")]
    edit(world, opportunity_id)
    world.intacct.fail_with = FunctionFailed("BL03000018 Invalid item NO-SUCH-ITEM")

    outcome = world.handle("Opportunity", opportunity_id, "bad item")

    assert outcome.status == "failed"
    record = shown(world, opportunity_id)
    assert (record["Intacct_Sync_Status__c"], record["Intacct_Order_Id__c"]) == ("Failed", order_id)


# ---------------------------------------------------------------------------- customers


def test_a_prospect_gets_no_customer_until_its_first_deal_is_won(world: World) -> None:
    account_id = new_account(world, account_type="Prospect")

    outcome = world.handle("Account", account_id, "created")

    assert (outcome.status, outcome.reason) == ("skipped", "prospect")
    assert world.intacct.requests == []
    _, opportunity_id = won_deal(world, account_id=account_id)
    assert world.handle("Opportunity", opportunity_id).status == "synced"
    assert [customer.customer_id for customer in world.intacct.customers] == [account_id]
    # From now on, changes of the Account reach its customer.
    world.salesforce.accounts[account_id].update(Name="Northwind Traders", LastModifiedDate=EDITED_AGAIN)
    assert world.handle("Account", account_id, "renamed").reason == "updated"


def test_fields_cleared_in_salesforce_are_cleared_in_intacct(world: World) -> None:
    account_id = new_account(world)
    world.salesforce.accounts[account_id].update(
        Phone="+1 555 0100", Website="https://northwind.example", BillingStreet="1 Main St\nSuite 2"
    )
    world.handle("Account", account_id, "created")
    world.salesforce.accounts[account_id].update(
        Phone=None, Website="", BillingStreet=None, LastModifiedDate=EDITED_AGAIN
    )

    outcome = world.handle("Account", account_id, "cleared")

    assert outcome.reason == "updated"
    contact = world.intacct.customer_updates[-1].contact
    assert contact is not None
    assert contact.mail_address is not None
    assert (contact.phone1, contact.url1) == ("", "")
    assert (contact.mail_address.address1, contact.mail_address.address2) == ("", "")


def test_a_merged_accounts_customer_goes_to_the_surviving_account(world: World) -> None:
    loser = new_account(world)
    world.handle("Account", loser, "loser synced")
    master = new_account(world, account_type="Prospect")
    world.salesforce.delete_account(loser, master_id=master)

    outcome = world.handle("Account", master, "merged")

    assert (outcome.status, outcome.intacct_customer_id) == ("synced", loser)
    assert len(world.intacct.customers) == 1
    assert world.intacct.customer_updates[-1].custom_fields["SALESFORCE_ID"] == master
    assert world.salesforce.accounts[master]["Intacct_Customer_Id__c"] == loser
    assert world.handle("Account", loser, "loser's own notification").reason == "account_merged"


def test_when_both_merged_accounts_had_customers_the_survivor_keeps_its_own_and_says_so(world: World) -> None:
    loser, master = new_account(world), new_account(world)
    world.handle("Account", loser)
    world.handle("Account", master)
    world.salesforce.delete_account(loser, master_id=master)
    world.salesforce.accounts[master]["LastModifiedDate"] = EDITED_AGAIN

    outcome = world.handle("Account", master, "merged")

    assert outcome.intacct_customer_id == master
    assert len(world.intacct.customers) == 2
    record = world.salesforce.accounts[master]
    assert record["Intacct_Sync_Status__c"] == "Synced with warnings"
    assert f"keeps {master}" in record["Intacct_Sync_Error__c"]
    assert loser in record["Intacct_Sync_Error__c"]


def test_a_deleted_account_is_logged_and_its_customer_left_as_it_is(world: World) -> None:
    account_id = new_account(world)
    world.handle("Account", account_id)
    world.salesforce.delete_account(account_id)
    before = list(world.intacct.requests)

    outcome = world.handle("Account", account_id, "deleted")

    assert (outcome.status, outcome.reason) == ("skipped", "account_deleted")
    assert "left as it is" in outcome.message
    assert world.intacct.requests == before
    assert world.sync_log.history(account_id)[-1].reason == "account_deleted"


def test_a_failed_clone_shows_no_order_of_another_deal(world: World) -> None:
    _, original, order_id = synced_deal(world)
    _, clone = won_deal(world)
    world.salesforce.opportunities[clone].update(
        Intacct_Order_Id__c=order_id, Intacct_Sync_Status__c="Synced"
    )
    world.salesforce.lines[clone] = []  # no products: the order cannot be made

    outcome = world.handle("Opportunity", clone, "clone won")

    assert outcome.status == "failed"
    assert (shown(world, clone)["Intacct_Order_Id__c"], shown(world, clone)["Intacct_Sync_Status__c"]) == (
        None,
        "Failed",
    )
    assert shown(world, original)["Intacct_Order_Id__c"] == order_id


def test_a_value_too_long_for_intacct_is_refused_or_shortened_as_the_mapping_says(world: World) -> None:
    account_id = new_account(world)
    world.salesforce.accounts[account_id]["Phone"] = "+1 (555) 010-0199 extension 12345"  # 33 characters
    refused = world.handle("Account", account_id, "long phone")
    assert refused.status == "failed"
    assert (
        "contact.phone1 (Salesforce Phone) takes at most 30 characters, the value has 33" in refused.message
    )

    world.salesforce.accounts[account_id].update(
        Phone="+1 555 0100", BillingStreet="x" * 300, LastModifiedDate=EDITED_AGAIN
    )
    shortened = world.handle("Account", account_id, "long street")
    assert shortened.status == "synced"
    record = world.salesforce.accounts[account_id]
    assert record["Intacct_Sync_Status__c"] == "Synced with warnings"
    assert (
        "address1 (Salesforce BillingStreet) was shortened to 255 characters (from 300)"
        in record["Intacct_Sync_Error__c"]
    )


def test_a_deal_of_a_merge_survivor_synced_before_the_account_uses_the_merged_customer(world: World) -> None:
    loser = new_account(world)
    world.handle("Account", loser, "loser synced")
    master = new_account(world, account_type="Prospect")
    world.salesforce.delete_account(loser, master_id=master)
    _, opportunity_id = won_deal(world, account_id=master)

    outcome = world.handle("Opportunity", opportunity_id, "won before the Account's own sync")

    assert (outcome.status, outcome.intacct_customer_id) == ("synced", loser)
    assert len(world.intacct.customers) == 1
    assert world.intacct.order_of(opportunity_id).customer_id == loser


# ---------------------------------------------------------------------------- straight to an invoice


APPROVED = "Intacct_Invoice_Approved__c"  # the default mapping's order.transaction_type_when field
DEFAULT_CONDITION = """[order.transaction_type_when]
field = "Intacct_Invoice_Approved__c"
values = ["true"]
transaction_type = "Sales Invoice"
"""


def test_an_approved_deal_becomes_a_sales_invoice_and_one_not_approved_a_sales_order(
    world: World,
) -> None:
    _, approved = won_deal(world)
    edit(world, approved, **{APPROVED: True})
    _, plain = won_deal(world)
    edit(world, plain, **{APPROVED: False})

    invoiced = world.handle("Opportunity", approved, "won")
    ordered = world.handle("Opportunity", plain, "won")

    assert invoiced.intacct_order_id.startswith("Sales Invoice-")
    assert ordered.intacct_order_id.startswith("Sales Order-")
    types = {document.reference_no: document.transaction_type for document in world.intacct.orders}
    assert types == {approved: "Sales Invoice", plain: "Sales Order"}
    assert shown(world, approved)["Intacct_Order_Id__c"] == invoiced.intacct_order_id


def test_a_deal_approved_after_its_order_exists_gets_no_invoice_besides_it(world: World) -> None:
    _, opportunity_id = won_deal(world)
    first = world.handle("Opportunity", opportunity_id, "won")
    edit(world, opportunity_id, **{APPROVED: True})

    again = world.handle("Opportunity", opportunity_id, "approved")

    assert (again.status, again.reason, again.intacct_order_id) == (
        "already_synced",
        "order_exists",
        first.intacct_order_id,
    )
    assert [document.transaction_type for document in world.intacct.orders] == ["Sales Order"]


def test_an_invoice_whose_answer_was_lost_is_found_again_and_not_made_twice(world: World) -> None:
    _, opportunity_id = won_deal(world)
    edit(world, opportunity_id, **{APPROVED: True})
    world.intacct.hold_next_write = True  # Intacct takes the invoice but answers too late
    with pytest.raises(OutcomeUnknown):
        world.handle("Opportunity", opportunity_id, "won")
    world.intacct.commit_held()
    world.clock.advance(600)  # past the claim's lease

    recovered = world.handle("Opportunity", opportunity_id, "redelivered")

    assert recovered.status in ("synced", "already_synced")
    assert [document.transaction_type for document in world.intacct.orders] == ["Sales Invoice"]
    assert recovered.intacct_order_id == world.intacct.orders[0].doc_id


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        (
            'field = "Account.Approved__c"\nvalues = ["true"]\ntransaction_type = "Sales Invoice"',
            "Opportunity field",
        ),
        ('field = "Approved__c"\nvalues = []\ntransaction_type = "Sales Invoice"', "at least one value"),
        ('field = "Approved__c"\nvalues = ["true"]\ntransaction_type = " "', "transaction definition"),
        ('field = "Approved__c"\nvalues = ["true"]', "transaction_type"),
    ],
)
def test_a_bad_transaction_type_condition_is_refused_at_load(
    tmp_path: Path, condition: str, problem: str
) -> None:
    mapping_file = tmp_path / "mapping.toml"
    text = DEFAULT_MAPPING_FILE.read_text(encoding="utf-8")
    assert DEFAULT_CONDITION in text
    block = f"[order.transaction_type_when]\n{condition}\n"
    mapping_file.write_text(text.replace(DEFAULT_CONDITION, block, 1), "utf-8")

    with pytest.raises(MappingError, match="transaction_type_when") as refused:
        load_mapping(mapping_file)
    assert problem in str(refused.value)
