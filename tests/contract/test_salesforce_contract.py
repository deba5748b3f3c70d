"""Contract: what the sync needs from a Salesforce org, checked through the project's Salesforce client.

Authenticate (JWT bearer), read an Opportunity with its Account and line items in one query, run SOQL,
and write the sync fields back in one composite call, then read them back.
Runs against the Salesforce sandbox, or a real org when SFINTACCT_CONTRACT_SALESFORCE_* is set.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from simple_salesforce.format import format_soql

from sfintacct.salesforce import auth
from sfintacct.salesforce.session import build_session
from sfintacct.sync.write_back import account_synced, failed, opportunity_synced
from tests.contract.support import DEAL_LINES, SalesforceOrg, SeededDeal

pytestmark = pytest.mark.contract

ACCOUNT_SYNC_FIELDS = ("Intacct_Customer_Id__c", "Intacct_Sync_Status__c", "Intacct_Sync_Error__c")
OPPORTUNITY_SYNC_FIELDS = ("Intacct_Order_Id__c", "Intacct_Sync_Status__c", "Intacct_Sync_Error__c")


def read_back(
    org: SalesforceOrg, object_type: str, record_id: str, fields: tuple[str, ...]
) -> dict[str, Any]:
    records = org.client().query(
        format_soql(
            "SELECT {fields:literal} FROM {object:literal} WHERE Id = {record_id}",
            fields=", ".join(fields),
            object=object_type,
            record_id=record_id,
        )
    )
    assert len(records) == 1, f"{object_type} {record_id} not found"
    record: dict[str, Any] = records[0]
    return {name: record[name] for name in fields}


def salesforce_datetime(text: str) -> datetime:
    """A Salesforce dateTime as the REST API returns it, e.g. 2026-03-31T21:30:05.123+0000."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")


def test_authenticates_and_reads_as_the_integration_user(salesforce_org: SalesforceOrg) -> None:
    settings = salesforce_org.target.settings
    auth.clear_token_cache()

    token = auth.get_access_token(settings, build_session(settings))
    users = salesforce_org.client().query(
        format_soql("SELECT Id, Username, IsActive FROM User WHERE Username = {}", settings.username)
    )

    assert token.instance_url.startswith("https://")
    assert token.value
    assert [(user["Username"].lower(), user["IsActive"]) for user in users] == [
        ((settings.username or "").lower(), True)
    ]


def test_reads_the_opportunity_with_its_account_and_line_items(
    salesforce_org: SalesforceOrg, deal: SeededDeal
) -> None:
    snapshot = salesforce_org.client().fetch_opportunity(deal.opportunity_id)

    assert snapshot.opportunity_id == deal.opportunity_id
    assert snapshot.opportunity["Name"] == deal.opportunity_name
    assert snapshot.account_id == deal.account_id
    assert snapshot.account is not None
    assert (snapshot.account["Name"], snapshot.account["BillingCity"]) == (deal.account_name, "Zürich")
    assert [
        (line["Id"], line["Product2"]["ProductCode"], line["Quantity"], line["UnitPrice"], line["TotalPrice"])
        for line in snapshot.lines
    ] == [
        (line_id, deal.product_code, quantity, price, quantity * price)
        for line_id, (quantity, price) in zip(deal.line_ids, DEAL_LINES, strict=True)
    ]
    assert snapshot.opportunity["Amount"] == Decimal("1648.50")


def test_query_finds_the_account_by_its_name(salesforce_org: SalesforceOrg, deal: SeededDeal) -> None:
    records = salesforce_org.client().query(
        format_soql("SELECT Id, Name, BillingCity FROM Account WHERE Name = {}", deal.account_name)
    )

    assert records == [{"Id": deal.account_id, "Name": deal.account_name, "BillingCity": "Zürich"}]


def test_write_back_of_a_failure_reads_back(salesforce_org: SalesforceOrg, deal: SeededDeal) -> None:
    message = "Intacct refused the order for Zürich AG: Invalid Item 'SFCT' on line 1.\nFix the product code."

    salesforce_org.client().write_back(
        [
            failed("Account", deal.account_id, message, None),
            failed("Opportunity", deal.opportunity_id, message, None),
        ]
    )

    fields = ("Intacct_Sync_Status__c", "Intacct_Sync_Error__c")
    expected = {"Intacct_Sync_Status__c": "Failed", "Intacct_Sync_Error__c": message}
    assert read_back(salesforce_org, "Account", deal.account_id, fields) == expected
    assert read_back(salesforce_org, "Opportunity", deal.opportunity_id, fields) == expected


def test_write_back_of_a_sync_reads_back_and_clears_the_error(
    salesforce_org: SalesforceOrg, deal: SeededDeal, run_id: str
) -> None:
    client = salesforce_org.client()
    client.write_back([failed("Account", deal.account_id, "earlier failure", None)])
    synced_at = datetime.now(UTC).replace(microsecond=123000)
    customer_id, order_id = f"CT-{run_id}", f"Sales Order-CT{run_id}"

    client.write_back(
        [
            account_synced(deal.account_id, customer_id, synced_at),
            opportunity_synced(deal.opportunity_id, order_id, synced_at),
        ]
    )

    account = read_back(
        salesforce_org, "Account", deal.account_id, (*ACCOUNT_SYNC_FIELDS, "Intacct_Last_Synced__c")
    )
    opportunity = read_back(
        salesforce_org, "Opportunity", deal.opportunity_id, (*OPPORTUNITY_SYNC_FIELDS, "Intacct_Synced_At__c")
    )
    assert account == {
        "Intacct_Customer_Id__c": customer_id,
        "Intacct_Sync_Status__c": "Synced",
        "Intacct_Sync_Error__c": None,
        "Intacct_Last_Synced__c": account["Intacct_Last_Synced__c"],
    }
    assert salesforce_datetime(account["Intacct_Last_Synced__c"]) == synced_at
    assert opportunity == {
        "Intacct_Order_Id__c": order_id,
        "Intacct_Sync_Status__c": "Synced",
        "Intacct_Sync_Error__c": None,
        "Intacct_Synced_At__c": opportunity["Intacct_Synced_At__c"],
    }
    assert salesforce_datetime(opportunity["Intacct_Synced_At__c"]) == synced_at
