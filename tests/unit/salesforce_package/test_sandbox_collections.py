"""The sandbox org set up from the package holds the finance fields as Salesforce would (numbers as
numbers, decimal text taken for a currency, other text refused), computes the Opportunity's collections
warning from its Account on every read, and refuses what the collections block flow refuses: creating a
deal, or changing its stage, while its Account is in collections, for holders of the block only."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from sandbox.salesforce.errors import ApiError
from sandbox.salesforce.ids import IdGenerator
from sandbox.salesforce.org_setup import blank_on_create, custom_error_rules, schema_from_package
from sandbox.salesforce.package import load_package
from sandbox.salesforce.store import SeedUser, Store, record_json
from sfintacct.finance.fields import account_values
from sfintacct.finance.invoices import Invoice

INTEGRATION = SeedUser(
    "005000000000001AAA", "sync@example.invalid", "Integration", "User", ("Sfintacct_Integration",)
)
BLOCKED_REP = SeedUser(
    "005000000000002AAA",
    "blocked.rep@example.invalid",
    "Blake",
    "Blocked",
    ("Sfintacct_Sync_Status", "Sfintacct_Collections_Block"),
)
WARNED_REP = SeedUser(
    "005000000000003AAA", "rep@example.invalid", "Sam", "Seller", ("Sfintacct_Sync_Status",)
)
TODAY = date(2026, 7, 1)
THRESHOLD = 120
WARNING = "In collections: 130 days past due in Sage Intacct"
BLOCKED = (
    "This deal's Account is in collections in Sage Intacct: 130 days past due. Ask finance before you "
    "create the deal or change its stage."
)
DEAL = {"Name": "Big deal", "StageName": "Prospecting", "CloseDate": "2026-06-30"}


@pytest.fixture
def store() -> Store:
    package = load_package()
    schema = schema_from_package(package)
    users = [INTEGRATION, BLOCKED_REP, WARNED_REP]
    return Store(
        IdGenerator(),
        users,
        schema,
        blank_on_create(package, schema),
        custom_error_rules(package, schema, users),
    )


def _create(store: Store, object_type: str, body: dict[str, Any], user: SeedUser) -> str:
    with store.lock:
        return store.create(store.schema[object_type], body, user.user_id)


def _update(store: Store, object_type: str, record_id: str, body: dict[str, Any], user: SeedUser) -> None:
    with store.lock:
        store.update(store.schema[object_type], record_id, body, user.user_id)


def _get(store: Store, object_type: str, record_id: str) -> dict[str, Any]:
    record = store.get(object_type, record_id)
    assert record is not None
    return record


def _refused(action: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        action()
    return caught.value


def _late(days: int) -> Invoice:
    return Invoice(
        record_no="1",
        number="INV-0001",
        customer_id="C-0001",
        total=Decimal("1200.00"),
        paid=Decimal(0),
        due=Decimal("1200.00"),
        due_date=TODAY - timedelta(days=days),
        modified_at=None,
    )


def _account(store: Store, *, days_past_due: int) -> str:
    """An Account as the finance run leaves it, its one open invoice `days_past_due` late."""
    account_id = _create(store, "Account", {"Name": "Acme"}, WARNED_REP)
    _update(
        store, "Account", account_id, account_values([_late(days_past_due)], TODAY, THRESHOLD), INTEGRATION
    )
    return account_id


# --- the finance fields ---------------------------------------------------------------------------------


def test_the_finance_values_are_stored_and_read_as_salesforce_types(store: Store) -> None:
    account_id = _account(store, days_past_due=130)

    account = _get(store, "Account", account_id)
    assert (account["Intacct_AR_Balance__c"], account["Intacct_Days_Past_Due__c"]) == (1200.0, 130.0)
    assert account["Intacct_In_Collections__c"] is True
    as_json = record_json(store.schema["Account"], account, "62.0")
    assert (as_json["Intacct_AR_Balance__c"], as_json["Intacct_In_Collections__c"]) == (1200.0, True)


def test_text_that_is_no_number_is_refused_for_a_currency_field_as_salesforce_refuses_it(
    store: Store,
) -> None:
    account_id = _create(store, "Account", {"Name": "Acme"}, WARNED_REP)

    error = _refused(
        lambda: _update(store, "Account", account_id, {"Intacct_AR_Balance__c": "600,00"}, INTEGRATION)
    )

    assert (error.status, error.error_code) == (400, "JSON_PARSER_ERROR")
    assert str(error).startswith("Cannot deserialize instance of currency from VALUE_STRING value 600,00")
    refused_number = _refused(
        lambda: _update(store, "Account", account_id, {"Intacct_Days_Past_Due__c": "many"}, INTEGRATION)
    )
    assert str(refused_number).startswith(
        "Cannot deserialize instance of double from VALUE_STRING value many"
    )


# --- the warning ----------------------------------------------------------------------------------------


def test_a_deal_of_an_account_in_collections_shows_the_warning_with_the_days_past_due(store: Store) -> None:
    in_collections = _account(store, days_past_due=130)
    late_but_not_yet = _account(store, days_past_due=30)

    warned = _create(store, "Opportunity", {**DEAL, "AccountId": in_collections}, WARNED_REP)
    quiet = _create(store, "Opportunity", {**DEAL, "AccountId": late_but_not_yet}, WARNED_REP)
    without_account = _create(store, "Opportunity", DEAL, WARNED_REP)

    assert _get(store, "Opportunity", warned)["Intacct_Collections_Warning__c"] == WARNING
    assert _get(store, "Opportunity", quiet)["Intacct_Collections_Warning__c"] is None
    assert _get(store, "Opportunity", without_account)["Intacct_Collections_Warning__c"] is None


def test_the_warning_follows_the_account_without_a_save_of_the_deal(store: Store) -> None:
    account_id = _account(store, days_past_due=130)
    deal_id = _create(store, "Opportunity", {**DEAL, "AccountId": account_id}, WARNED_REP)
    store.take_events()

    _update(store, "Account", account_id, account_values([_late(131)], TODAY, THRESHOLD), INTEGRATION)
    assert _get(store, "Opportunity", deal_id)["Intacct_Collections_Warning__c"] == (
        "In collections: 131 days past due in Sage Intacct"
    )
    _update(store, "Account", account_id, account_values([], TODAY, THRESHOLD), INTEGRATION)  # paid

    assert _get(store, "Opportunity", deal_id)["Intacct_Collections_Warning__c"] is None
    # A formula's new value is no change of the deal: nothing is sent for it.
    assert {event.object_type for event in store.take_events()} == {"Account"}


def test_the_warning_cannot_be_written(store: Store) -> None:
    error = _refused(
        lambda: _create(store, "Opportunity", {**DEAL, "Intacct_Collections_Warning__c": "x"}, WARNED_REP)
    )

    assert error.error_code == "INVALID_FIELD_FOR_INSERT_UPDATE"


# --- the block ------------------------------------------------------------------------------------------


def test_a_holder_of_the_block_cannot_create_a_deal_of_an_account_in_collections(store: Store) -> None:
    account_id = _account(store, days_past_due=130)

    error = _refused(lambda: _create(store, "Opportunity", {**DEAL, "AccountId": account_id}, BLOCKED_REP))

    assert (error.status, error.error_code, str(error)) == (400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", BLOCKED)
    assert error.items[0]["fields"] == []
    assert store.live("Opportunity") == []


def test_a_holder_of_the_block_cannot_change_the_stage_but_may_edit_the_rest(store: Store) -> None:
    account_id = _account(store, days_past_due=10)
    deal_id = _create(store, "Opportunity", {**DEAL, "AccountId": account_id}, BLOCKED_REP)
    _update(store, "Account", account_id, account_values([_late(130)], TODAY, THRESHOLD), INTEGRATION)

    error = _refused(lambda: _update(store, "Opportunity", deal_id, {"StageName": "Closed Won"}, BLOCKED_REP))
    _update(store, "Opportunity", deal_id, {"Description": "call the CFO"}, BLOCKED_REP)

    assert str(error) == BLOCKED
    assert _get(store, "Opportunity", deal_id)["Description"] == "call the CFO"


def test_without_the_block_the_rep_and_the_integration_save_and_only_see_the_warning(store: Store) -> None:
    account_id = _account(store, days_past_due=130)

    deal_id = _create(store, "Opportunity", {**DEAL, "AccountId": account_id}, WARNED_REP)
    _update(store, "Opportunity", deal_id, {"StageName": "Closed Won"}, WARNED_REP)
    _update(store, "Opportunity", deal_id, {"Intacct_Invoice_State__c": "Open"}, INTEGRATION)

    assert _get(store, "Opportunity", deal_id)["IsWon"] is True


def test_the_block_lets_deals_of_accounts_not_in_collections_through(store: Store) -> None:
    account_id = _account(store, days_past_due=119)

    deal_id = _create(store, "Opportunity", {**DEAL, "AccountId": account_id}, BLOCKED_REP)
    _update(store, "Opportunity", deal_id, {"StageName": "Closed Won"}, BLOCKED_REP)

    assert _get(store, "Opportunity", deal_id)["Intacct_Collections_Warning__c"] is None
