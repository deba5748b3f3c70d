"""The finance fields of the Salesforce package over the wire: the finance run's values (built with its
own functions) saved with sObject Collections on real sandbox records and read back as Salesforce
returns them (currency and number as JSON numbers); the Opportunity's collections warning computed from
its Account; and the collections block refusing a rep who holds it, with the days past due."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sfintacct.finance.fields import account_values, opportunity_values
from sfintacct.finance.invoices import Invoice
from sfintacct.salesforce import auth
from sfintacct.salesforce.client import SalesforceClient
from sfintacct.salesforce.models import RecordUpdate
from sfintacct.salesforce.settings import SalesforceSettings
from tests.integration.salesforce_fixtures import SalesforceSandboxHandle

pytestmark = pytest.mark.integration

TODAY = date(2026, 7, 1)
THRESHOLD = 120
BLOCK = ("Sfintacct_Sync_Status", "Sfintacct_Collections_Block")
DEAL = {"Name": "Big deal", "StageName": "Prospecting", "CloseDate": "2026-06-30"}


@pytest.fixture(autouse=True)
def no_cached_token() -> Iterator[None]:
    auth.clear_token_cache()
    yield
    auth.clear_token_cache()


def client_for(handle: SalesforceSandboxHandle) -> SalesforceClient:
    """The project's Salesforce client, signed in as the integration user (the finance run's)."""
    return SalesforceClient(
        SalesforceSettings.model_validate(
            {
                "auth_flow": "client_credentials",
                "login_url": handle.instance_url,
                "client_id": handle.credentials.client_id,
                "client_secret": handle.credentials.client_secret,
                "api_version": handle.api_version,
                "ca_file": str(handle.ca_file),
                "timeout_seconds": 10,
            }
        )
    )


def rest(handle: SalesforceSandboxHandle, username: str | None = None) -> httpx.Client:
    """Plain REST calls as a seeded user: the sales rep by default."""
    if username is None:
        (rep,) = [user for user in handle.admin.users() if user["username"].startswith("sales.rep@")]
        username = str(rep["username"])
    token = handle.admin.log_in(username)["access_token"]
    return httpx.Client(
        base_url=f"{handle.instance_url}/services/data/v{handle.api_version}",
        headers={"Authorization": f"Bearer {token}"},
        verify=ssl.create_default_context(cafile=str(handle.ca_file)),
    )


def created(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def invoice(number: str, total: str, paid: str, days_late: int) -> Invoice:
    return Invoice(
        record_no=number,
        number=f"INV{number}",
        customer_id="C-0001",
        total=Decimal(total),
        paid=Decimal(paid),
        due=Decimal(total) - Decimal(paid),
        due_date=TODAY - timedelta(days=days_late),
        modified_at=None,
    )


def finance_run_writes(
    handle: SalesforceSandboxHandle, account_id: str, days_late: int, *opportunity_ids: str
) -> None:
    """What the finance run writes for a customer owing 1,250.50 on two invoices, the older
    `days_late` days past due, each deal invoiced by one of them."""
    invoices = [invoice("0001", "1000.00", "250.00", days_late), invoice("0002", "500.50", "0", 3)]
    updates = [
        RecordUpdate(
            object_type="Account", record_id=account_id, fields=account_values(invoices, TODAY, THRESHOLD)
        ),
        *(
            RecordUpdate(object_type="Opportunity", record_id=deal_id, fields=opportunity_values([item]))
            for deal_id, item in zip(opportunity_ids, invoices, strict=False)
        ),
    ]
    results = client_for(handle).update_records(updates)
    assert all(result.success for result in results), results


def read(client: httpx.Client, object_type: str, record_id: str) -> dict[str, Any]:
    response = client.get(f"/sobjects/{object_type}/{record_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


# --- the finance fields ---------------------------------------------------------------------------------


def test_the_finance_values_are_saved_with_sobject_collections_and_read_back_as_salesforce_types(
    salesforce: SalesforceSandboxHandle,
) -> None:
    with rest(salesforce) as client:
        account_id = created(client.post("/sobjects/Account/", json={"Name": "Acme"}))
        deals = [
            created(client.post("/sobjects/Opportunity/", json={**DEAL, "AccountId": account_id}))
            for _ in range(2)
        ]

        finance_run_writes(salesforce, account_id, 130, *deals)

        account = read(client, "Account", account_id)
        partly_paid, open_deal = (read(client, "Opportunity", deal_id) for deal_id in deals)
    # Currency and number fields read back as JSON numbers, a checkbox as a JSON boolean.
    assert account["Intacct_AR_Balance__c"] == 1250.5
    assert account["Intacct_Days_Past_Due__c"] == 130
    assert isinstance(account["Intacct_Days_Past_Due__c"], float)
    assert account["Intacct_In_Collections__c"] is True
    assert (
        partly_paid["Intacct_Invoice_Number__c"],
        partly_paid["Intacct_Invoice_State__c"],
        partly_paid["Intacct_Amount_Due__c"],
    ) == ("INV0001", "Partially paid", 750.0)
    assert (open_deal["Intacct_Invoice_State__c"], open_deal["Intacct_Amount_Due__c"]) == ("Open", 500.5)
    # The rep sees the warning on both deals, made from the Account's fields.
    warning = "In collections: 130 days past due in Sage Intacct"
    assert (
        partly_paid["Intacct_Collections_Warning__c"]
        == open_deal["Intacct_Collections_Warning__c"]
        == warning
    )


def test_the_warning_is_in_queries_and_goes_once_the_account_is_paid(
    salesforce: SalesforceSandboxHandle,
) -> None:
    with rest(salesforce) as client:
        account_id = created(client.post("/sobjects/Account/", json={"Name": "Acme"}))
        deal_id = created(client.post("/sobjects/Opportunity/", json={**DEAL, "AccountId": account_id}))
        other_id = created(client.post("/sobjects/Opportunity/", json=DEAL))
        finance_run_writes(salesforce, account_id, 200)
        query = "SELECT Id, Intacct_Collections_Warning__c FROM Opportunity ORDER BY Name, Id"

        before = client.get("/query", params={"q": query}).json()["records"]
        paid = account_values([], TODAY, THRESHOLD)
        client_for(salesforce).update_records(
            [RecordUpdate(object_type="Account", record_id=account_id, fields=paid)]
        )
        after = read(client, "Opportunity", deal_id)

    warnings = {row["Id"]: row["Intacct_Collections_Warning__c"] for row in before}
    assert warnings == {deal_id: "In collections: 200 days past due in Sage Intacct", other_id: None}
    assert after["Intacct_Collections_Warning__c"] is None


def test_a_text_that_is_no_number_is_refused_for_its_record_alone(
    salesforce: SalesforceSandboxHandle,
) -> None:
    with rest(salesforce) as client:
        good, bad = (created(client.post("/sobjects/Account/", json={"Name": name})) for name in "AB")

    results = client_for(salesforce).update_records(
        [
            RecordUpdate(object_type="Account", record_id=good, fields={"Intacct_AR_Balance__c": "600.00"}),
            RecordUpdate(
                object_type="Account", record_id=bad, fields={"Intacct_AR_Balance__c": "six hundred"}
            ),
        ]
    )

    assert [result.success for result in results] == [True, False]
    assert results[1].error_codes == ("JSON_PARSER_ERROR",)
    assert "Cannot deserialize instance of currency from VALUE_STRING value six hundred" in results[1].message
    with rest(salesforce) as client:
        assert read(client, "Account", good)["Intacct_AR_Balance__c"] == 600.0
        assert read(client, "Account", bad)["Intacct_AR_Balance__c"] is None


def test_describe_shows_the_finance_fields_writable_and_the_warning_calculated(
    salesforce: SalesforceSandboxHandle,
) -> None:
    with rest(salesforce, salesforce.credentials.username) as client:
        account = {item["name"]: item for item in client.get("/sobjects/Account/describe").json()["fields"]}
        deal = {item["name"]: item for item in client.get("/sobjects/Opportunity/describe").json()["fields"]}

    assert {
        name: account[name]["type"] for name in ("Intacct_AR_Balance__c", "Intacct_Days_Past_Due__c")
    } == {
        "Intacct_AR_Balance__c": "currency",
        "Intacct_Days_Past_Due__c": "double",
    }
    assert (
        account["Intacct_In_Collections__c"]["type"],
        account["Intacct_In_Collections__c"]["nillable"],
    ) == (
        "boolean",
        False,
    )
    assert all(account[name]["updateable"] for name in account if name.startswith("Intacct_"))
    warning = deal["Intacct_Collections_Warning__c"]
    assert (warning["type"], warning["calculated"], warning["updateable"]) == ("string", True, False)


# --- the block ------------------------------------------------------------------------------------------


@pytest.fixture
def blocking(start_salesforce: Callable[..., SalesforceSandboxHandle]) -> SalesforceSandboxHandle:
    """A sandbox whose sales rep holds the permission set Sfintacct Collections Block."""
    return start_salesforce(sales_permission_sets=BLOCK)


def test_a_rep_holding_the_block_cannot_create_or_advance_a_deal_of_an_account_in_collections(
    blocking: SalesforceSandboxHandle,
) -> None:
    with rest(blocking) as client:
        account_id = created(client.post("/sobjects/Account/", json={"Name": "Acme"}))
        deal_id = created(client.post("/sobjects/Opportunity/", json={**DEAL, "AccountId": account_id}))
        finance_run_writes(blocking, account_id, 130)

        refused_create = client.post("/sobjects/Opportunity/", json={**DEAL, "AccountId": account_id})
        refused_stage = client.patch(f"/sobjects/Opportunity/{deal_id}", json={"StageName": "Closed Won"})
        other_edit = client.patch(f"/sobjects/Opportunity/{deal_id}", json={"Description": "call the CFO"})
        deal = read(client, "Opportunity", deal_id)

    message = (
        "This deal's Account is in collections in Sage Intacct: 130 days past due. Ask finance before you "
        "create the deal or change its stage."
    )
    for refused in (refused_create, refused_stage):
        assert refused.status_code == 400
        assert refused.json() == [
            {"message": message, "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "fields": []}
        ]
    assert other_edit.status_code == 204
    assert (deal["StageName"], deal["Description"]) == ("Prospecting", "call the CFO")
    assert len(blocking.admin.records("Opportunity")) == 1


def test_the_block_stops_no_one_else(
    blocking: SalesforceSandboxHandle, salesforce: SalesforceSandboxHandle
) -> None:
    # The rep of an org where no one holds the block, and the integration user of this one.
    for handle, username in ((salesforce, None), (blocking, blocking.credentials.username)):
        with rest(handle, username) as client:
            account_id = created(client.post("/sobjects/Account/", json={"Name": "Acme"}))
            finance_run_writes(handle, account_id, 130)
            deal_id = created(client.post("/sobjects/Opportunity/", json={**DEAL, "AccountId": account_id}))
            advanced = client.patch(f"/sobjects/Opportunity/{deal_id}", json={"StageName": "Closed Won"})
            deal = read(client, "Opportunity", deal_id)
        assert advanced.status_code == 204, advanced.text
        assert deal["Intacct_Collections_Warning__c"] == "In collections: 130 days past due in Sage Intacct"


def test_the_block_lets_deals_of_accounts_not_in_collections_through(
    blocking: SalesforceSandboxHandle,
) -> None:
    with rest(blocking) as client:
        account_id = created(client.post("/sobjects/Account/", json={"Name": "Acme"}))
        finance_run_writes(blocking, account_id, THRESHOLD - 1)
        deal_id = created(client.post("/sobjects/Opportunity/", json={**DEAL, "AccountId": account_id}))
        advanced = client.patch(f"/sobjects/Opportunity/{deal_id}", json={"StageName": "Closed Won"})
        deal = read(client, "Opportunity", deal_id)

    assert advanced.status_code == 204, advanced.text
    assert deal["Intacct_Collections_Warning__c"] is None
