"""The Salesforce sandbox set up from the package follows a won deal's changes, over HTTPS: the Opportunity
flow's entry formula decides which saves send Opportunity_Closed_Won (becoming won, a product added, a
new Account, leaving won after a sync; not the integration user's write-backs, not an unrelated edit);
the before-save flows blank the Intacct fields of every new record (a clone starts unsynced); a merge
deletes the losers (MasterRecordId), moves their children without running their automation and updates
the master like a save; a REST delete leaves the record to queryAll."""

from __future__ import annotations

import ssl
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.salesforce.admin_client import SalesforceAdminError
from tests.integration.salesforce_fixtures import SalesforceSandboxHandle, start_sandbox_handle

pytestmark = pytest.mark.integration

UNREACHABLE_LISTENER = "http://127.0.0.1:9/salesforce/outbound"  # the discard port: nothing listens
WON_MESSAGE, ACCOUNT_MESSAGE = "Opportunity_Closed_Won", "Account_Created_Or_Updated"
INTACCT_ACCOUNT_FIELDS = (
    "Intacct_Customer_Id__c",
    "Intacct_Sync_Status__c",
    "Intacct_Sync_Error__c",
    "Intacct_Last_Synced__c",
)
INTACCT_OPPORTUNITY_FIELDS = (
    "Intacct_Order_Id__c",
    "Intacct_Sync_Status__c",
    "Intacct_Sync_Error__c",
    "Intacct_Synced_At__c",
)


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SalesforceSandboxHandle]:
    """A sandbox with the package's Outbound Messages (to a listener that never answers: the test reads
    what was queued, and the first retry is 15 s away)."""
    handle = start_sandbox_handle(
        tmp_path_factory.mktemp("salesforce-changes"),
        outbound_variables={"SFINTACCT_OUTBOUND_URL": UNREACHABLE_LISTENER},
        time_factor=1.0,
    )
    try:
        yield handle
    finally:
        handle.server.stop()


@pytest.fixture
def sandbox(org: SalesforceSandboxHandle) -> SalesforceSandboxHandle:
    org.admin.reset()  # the seed org, the package's definitions and the start-up config
    return org


class Api:
    """REST calls as one user."""

    def __init__(self, handle: SalesforceSandboxHandle, token: str) -> None:
        self.http = httpx.Client(
            base_url=f"{handle.instance_url}/services/data/v{handle.api_version}",
            headers={"Authorization": f"Bearer {token}"},
            verify=ssl.create_default_context(cafile=str(handle.ca_file)),
        )

    def create(self, object_type: str, body: dict[str, Any]) -> str:
        response = self.http.post(f"/sobjects/{object_type}/", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def update(self, object_type: str, record_id: str, body: dict[str, Any]) -> None:
        response = self.http.patch(f"/sobjects/{object_type}/{record_id}", json=body)
        assert response.status_code == 204, response.text

    def delete(self, object_type: str, record_id: str) -> None:
        response = self.http.delete(f"/sobjects/{object_type}/{record_id}")
        assert response.status_code == 204, response.text

    def read(self, object_type: str, record_id: str) -> dict[str, Any]:
        response = self.http.get(f"/sobjects/{object_type}/{record_id}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def query(self, soql: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        response = self.http.get("/queryAll/" if include_deleted else "/query/", params={"q": soql})
        assert response.status_code == 200, response.text
        records: list[dict[str, Any]] = response.json()["records"]
        return records


@pytest.fixture
def rep(sandbox: SalesforceSandboxHandle) -> Iterator[Api]:
    (user,) = [user for user in sandbox.admin.users() if user["username"].startswith("sales.rep@")]
    api = Api(sandbox, sandbox.admin.log_in(user["username"])["access_token"])
    yield api
    api.http.close()


@pytest.fixture
def integration(sandbox: SalesforceSandboxHandle) -> Iterator[Api]:
    api = Api(sandbox, sandbox.admin.log_in(sandbox.credentials.username)["access_token"])
    yield api
    api.http.close()


def sent(handle: SalesforceSandboxHandle) -> Counter[tuple[str, str]]:
    """How many notifications each (message, record id) has had queued."""
    return Counter(
        (delivery["definition"], record_id)
        for delivery in handle.admin.outbound()
        for record_id in delivery["record_ids"]
    )


def sent_by(handle: SalesforceSandboxHandle, before: Counter[tuple[str, str]]) -> Counter[tuple[str, str]]:
    """What was queued since `before`."""
    return sent(handle) - before


def won_deal(rep: Api, account_id: str, name: str = "Platform deal") -> str:
    return rep.create(
        "Opportunity",
        {"Name": name, "AccountId": account_id, "StageName": "Closed Won", "CloseDate": "2026-06-30"},
    )


def price_book_entry(rep: Api, code: str = "SUB-PLATFORM", price: float = 1200.0) -> str:
    (standard,) = rep.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true")
    product_id = rep.create("Product2", {"Name": code, "ProductCode": code, "IsActive": True})
    return rep.create(
        "PricebookEntry",
        {"Pricebook2Id": standard["Id"], "Product2Id": product_id, "UnitPrice": price, "IsActive": True},
    )


# --- the Opportunity flow ---------------------------------------------------------------------------------


def test_a_deal_sends_when_it_becomes_won_and_not_while_open(
    sandbox: SalesforceSandboxHandle, rep: Api
) -> None:
    account_id = rep.create("Account", {"Name": "Contoso"})
    before = sent(sandbox)

    opportunity_id = rep.create(
        "Opportunity",
        {"Name": "Open deal", "AccountId": account_id, "StageName": "Prospecting", "CloseDate": "2026-06-30"},
    )
    rep.update("Opportunity", opportunity_id, {"StageName": "Negotiation/Review"})
    assert sent_by(sandbox, before) == Counter()

    rep.update("Opportunity", opportunity_id, {"StageName": "Closed Won"})
    assert sent_by(sandbox, before) == Counter({(WON_MESSAGE, opportunity_id): 1})


def test_a_product_added_to_a_won_deal_changes_its_amount_and_sends(
    sandbox: SalesforceSandboxHandle, rep: Api
) -> None:
    account_id = rep.create("Account", {"Name": "Fabrikam"})
    opportunity_id = won_deal(rep, account_id)
    entry_id = price_book_entry(rep)
    before = sent(sandbox)

    line_id = rep.create(
        "OpportunityLineItem",
        {"OpportunityId": opportunity_id, "PricebookEntryId": entry_id, "Quantity": 2, "UnitPrice": 1200.0},
    )

    assert rep.read("Opportunity", opportunity_id)["Amount"] == 2400.0  # the sum of the lines' TotalPrice
    assert sent_by(sandbox, before) == Counter({(WON_MESSAGE, opportunity_id): 1})
    rep.update("OpportunityLineItem", line_id, {"Quantity": 3})
    assert rep.read("Opportunity", opportunity_id)["Amount"] == 3600.0
    assert sent_by(sandbox, before) == Counter({(WON_MESSAGE, opportunity_id): 2})
    rep.update("OpportunityLineItem", line_id, {"Description": "same price"})  # Amount unchanged
    assert sent_by(sandbox, before) == Counter({(WON_MESSAGE, opportunity_id): 2})


def test_whether_the_amount_roll_up_runs_flows_is_a_setting(
    sandbox: SalesforceSandboxHandle, rep: Api
) -> None:
    assert sandbox.admin.config()["amount_rollup_fires_flows"] is True
    sandbox.admin.set_config(amount_rollup_fires_flows=False)
    account_id = rep.create("Account", {"Name": "Litware"})
    opportunity_id = won_deal(rep, account_id)
    entry_id = price_book_entry(rep)
    before = sent(sandbox)

    line_id = rep.create(
        "OpportunityLineItem",
        {"OpportunityId": opportunity_id, "PricebookEntryId": entry_id, "Quantity": 1, "UnitPrice": 500.0},
    )
    rep.delete("OpportunityLineItem", line_id)

    assert rep.read("Opportunity", opportunity_id)["Amount"] == 0.0
    assert sent_by(sandbox, before) == Counter()  # the Amount moved, no flow ran
    rep.update("Opportunity", opportunity_id, {"CloseDate": "2026-07-31"})  # a save still does
    assert sent_by(sandbox, before) == Counter({(WON_MESSAGE, opportunity_id): 1})
    with pytest.raises(SalesforceAdminError):
        sandbox.admin.set_config(amount_rollup_fires_flows="no")
    sandbox.admin.reset()
    assert sandbox.admin.config()["amount_rollup_fires_flows"] is True


def test_a_won_deal_moved_to_another_account_sends(sandbox: SalesforceSandboxHandle, rep: Api) -> None:
    first, second = rep.create("Account", {"Name": "Adatum"}), rep.create("Account", {"Name": "Adatum Ltd"})
    opportunity_id = won_deal(rep, first)
    before = sent(sandbox)

    rep.update("Opportunity", opportunity_id, {"AccountId": second})

    assert sent_by(sandbox, before) == Counter({(WON_MESSAGE, opportunity_id): 1})


def test_a_synced_deal_that_leaves_closed_won_sends_and_one_never_synced_does_not(
    sandbox: SalesforceSandboxHandle, rep: Api, integration: Api
) -> None:
    account_id = rep.create("Account", {"Name": "Northwind"})
    synced, unsynced = won_deal(rep, account_id, "Synced"), won_deal(rep, account_id, "Never synced")
    integration.update(  # the workers' write-back
        "Opportunity",
        synced,
        {"Intacct_Order_Id__c": "Sales Order-SO0042", "Intacct_Sync_Status__c": "Synced"},
    )
    before = sent(sandbox)

    rep.update("Opportunity", synced, {"StageName": "Negotiation/Review"})
    rep.update("Opportunity", unsynced, {"StageName": "Closed Lost"})

    assert sent_by(sandbox, before) == Counter({(WON_MESSAGE, synced): 1})
    rep.update("Opportunity", synced, {"Amount": 10.0})  # an open deal's edits send nothing
    assert sent_by(sandbox, before) == Counter({(WON_MESSAGE, synced): 1})


def test_the_integration_users_write_back_and_unrelated_edits_of_a_won_deal_send_nothing(
    sandbox: SalesforceSandboxHandle, rep: Api, integration: Api
) -> None:
    account_id = rep.create("Account", {"Name": "Tailspin"})
    opportunity_id = won_deal(rep, account_id)
    before = sent(sandbox)

    integration.update(
        "Opportunity",
        opportunity_id,
        {
            "Intacct_Order_Id__c": "Sales Order-SO0007",
            "Intacct_Sync_Status__c": "Synced",
            "Intacct_Synced_At__c": "2026-06-30T12:00:00.000+0000",
        },
    )
    integration.update("Opportunity", opportunity_id, {"Amount": 99.0})  # even a watched field
    rep.update("Opportunity", opportunity_id, {"Description": "Customer asked for a call"})
    rep.update("Opportunity", opportunity_id, {"NextStep": "Invoice"})

    assert sent_by(sandbox, before) == Counter()


# --- new records start unsynced ---------------------------------------------------------------------------


@pytest.mark.parametrize("as_integration_user", [False, True], ids=["by the rep", "by the integration user"])
def test_a_clone_starts_with_blank_intacct_fields(
    sandbox: SalesforceSandboxHandle, rep: Api, integration: Api, as_integration_user: bool
) -> None:
    api = integration if as_integration_user else rep
    # Salesforce's Clone copies every field: the clone is created with the original's values.
    account_id = api.create(
        "Account",
        {
            "Name": "Contoso (copy)",
            "BillingCity": "Lyon",
            "Intacct_Customer_Id__c": "C-0042",
            "Intacct_Sync_Status__c": "Synced",
            "Intacct_Sync_Error__c": "old warning",
            "Intacct_Last_Synced__c": "2026-06-30T12:00:00.000+0000",
        },
    )
    opportunity_id = api.create(
        "Opportunity",
        {
            "Name": "Platform deal (copy)",
            "AccountId": account_id,
            "StageName": "Closed Won",
            "CloseDate": "2026-06-30",
            "Intacct_Order_Id__c": "Sales Order-SO0042",
            "Intacct_Sync_Status__c": "Synced with warnings",
            "Intacct_Sync_Error__c": "old warning",
            "Intacct_Synced_At__c": "2026-06-30T12:00:00.000+0000",
        },
    )

    account, opportunity = api.read("Account", account_id), api.read("Opportunity", opportunity_id)
    assert {name: account[name] for name in INTACCT_ACCOUNT_FIELDS} == dict.fromkeys(INTACCT_ACCOUNT_FIELDS)
    assert {name: opportunity[name] for name in INTACCT_OPPORTUNITY_FIELDS} == dict.fromkeys(
        INTACCT_OPPORTUNITY_FIELDS
    )
    assert (account["Name"], account["BillingCity"]) == ("Contoso (copy)", "Lyon")
    assert opportunity["IsWon"] is True
    # Updates keep what they are given: only creating blanks.
    api.update("Opportunity", opportunity_id, {"Intacct_Order_Id__c": "Sales Order-SO0043"})
    assert api.read("Opportunity", opportunity_id)["Intacct_Order_Id__c"] == "Sales Order-SO0043"


# --- merge and delete -------------------------------------------------------------------------------------


def test_a_merge_deletes_the_losers_moves_their_children_quietly_and_updates_the_master(
    sandbox: SalesforceSandboxHandle, rep: Api, integration: Api
) -> None:
    master = rep.create("Account", {"Name": "Contoso", "Phone": "555-0100"})
    losers = [rep.create("Account", {"Name": "Contoso Inc"}), rep.create("Account", {"Name": "Contoso Ltd"})]
    integration.update("Account", losers[0], {"Intacct_Customer_Id__c": "C-0007"})
    deals = [won_deal(rep, loser, f"Deal of {loser}") for loser in losers]
    contact = rep.create("Contact", {"LastName": "Doe", "AccountId": losers[1]})
    master_modified = rep.read("Account", master)["LastModifiedDate"]
    before = sent(sandbox)

    result = sandbox.admin.merge(master, losers, {"Phone": "555-0199"})

    assert result["object_type"] == "Account"
    # Only the master's update runs automation: its Account message, nothing for the children or losers.
    assert sent_by(sandbox, before) == Counter({(ACCOUNT_MESSAGE, master): 1})
    assert [row["Id"] for row in rep.query("SELECT Id FROM Account ORDER BY Name")] == [master]
    merged = rep.query(
        "SELECT Id, Name, IsDeleted, MasterRecordId, Intacct_Customer_Id__c FROM Account "
        f"WHERE MasterRecordId = '{master}' ORDER BY Name",
        include_deleted=True,
    )
    assert [(row["Id"], row["IsDeleted"], row["MasterRecordId"]) for row in merged] == [
        (losers[0], True, master),
        (losers[1], True, master),
    ]
    assert merged[0]["Intacct_Customer_Id__c"] == "C-0007"  # what the workers need to find the customer
    children = rep.query(f"SELECT Id, AccountId FROM Opportunity WHERE AccountId = '{master}' ORDER BY Name")
    assert sorted(row["Id"] for row in children) == sorted(deals)
    assert rep.read("Contact", contact)["AccountId"] == master
    account = rep.read("Account", master)
    assert account["Phone"] == "555-0199"
    assert account["LastModifiedDate"] > master_modified
    assert account["MasterRecordId"] is None


def test_a_merge_the_org_would_refuse_changes_nothing(sandbox: SalesforceSandboxHandle, rep: Api) -> None:
    accounts = [rep.create("Account", {"Name": f"Account {number}"}) for number in range(4)]
    master, *others = accounts
    contact = rep.create("Contact", {"LastName": "Roe"})
    before = sent(sandbox)

    for merged_ids, fields in (
        (others, {}),  # three losers: Salesforce merges at most three records
        ([master], {}),
        ([], {}),
        ([contact], {}),
        (others[:1], {"Nope__c": 1}),
        (others[:1], {"IsDeleted": True}),
    ):
        with pytest.raises(SalesforceAdminError):
            sandbox.admin.merge(master, merged_ids, fields)

    assert len(rep.query("SELECT Id FROM Account")) == 4
    assert sent_by(sandbox, before) == Counter()


def test_a_rest_delete_leaves_the_record_to_query_all(sandbox: SalesforceSandboxHandle, rep: Api) -> None:
    account_id = rep.create("Account", {"Name": "Gone Inc"})
    opportunity_id = won_deal(rep, account_id)
    kept = rep.create("Account", {"Name": "Kept"})
    before = sent(sandbox)

    rep.delete("Opportunity", opportunity_id)
    rep.delete("Account", account_id)

    assert sent_by(sandbox, before) == Counter()  # the flows run on create and update only
    assert [row["Id"] for row in rep.query("SELECT Id FROM Account")] == [kept]
    assert rep.query("SELECT Id FROM Account WHERE IsDeleted = true") == []
    deleted = rep.query(
        "SELECT Id, IsDeleted, MasterRecordId FROM Account WHERE IsDeleted = true", include_deleted=True
    )
    assert [(row["Id"], row["IsDeleted"], row["MasterRecordId"]) for row in deleted] == [
        (account_id, True, None)
    ]
    (opportunity,) = rep.query(
        f"SELECT Id, IsDeleted FROM Opportunity WHERE Id = '{opportunity_id}'", include_deleted=True
    )
    assert opportunity["IsDeleted"] is True
    assert len(rep.query("SELECT Id FROM Account", include_deleted=True)) == 2
    assert rep.http.get(f"/sobjects/Account/{account_id}").status_code == 404


def test_account_describes_the_system_fields_is_deleted_and_master_record_id(rep: Api) -> None:
    response = rep.http.get("/sobjects/Account/describe")
    assert response.status_code == 200, response.text
    fields = {field["name"]: field for field in response.json()["fields"]}

    assert fields["IsDeleted"]["type"] == "boolean"
    assert fields["MasterRecordId"]["type"] == "reference"
    assert fields["MasterRecordId"]["referenceTo"] == ["Account"]
    assert not fields["MasterRecordId"]["createable"]
    assert not fields["MasterRecordId"]["updateable"]
