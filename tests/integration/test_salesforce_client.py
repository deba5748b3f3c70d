"""The Salesforce client against the Salesforce sandbox over HTTPS: auth flows, the one-query read,
the composite write-back, session expiry and the error types, counted with the sandbox's admin API.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce.api import Salesforce

from sandbox.tls import create_local_tls
from sfintacct.faults import ConfigurationFault
from sfintacct.salesforce import auth
from sfintacct.salesforce.client import SalesforceClient
from sfintacct.salesforce.errors import (
    PermanentSalesforceError,
    RecordNotFound,
    SalesforceApiLimitExceeded,
    SalesforceAuthenticationError,
    TransientSalesforceError,
)
from sfintacct.salesforce.models import OpportunityQueryFields, RecordUpdate
from sfintacct.salesforce.session import build_session
from sfintacct.salesforce.settings import SalesforceSettings
from tests.integration.salesforce_fixtures import SalesforceSandboxHandle

pytestmark = pytest.mark.integration


@dataclass
class Org:
    """The sandbox org as these tests use it: client settings for both flows, counts, a seeding API."""

    sandbox: SalesforceSandboxHandle

    def settings(self, auth_flow: str = "client_credentials", **overrides: Any) -> SalesforceSettings:
        credentials = self.sandbox.credentials
        values: dict[str, Any] = {
            "auth_flow": auth_flow,
            "login_url": self.sandbox.instance_url,
            "client_id": credentials.client_id,
            "api_version": self.sandbox.api_version,
            "ca_file": str(self.sandbox.ca_file),
            "timeout_seconds": 10,
        }
        if auth_flow == "client_credentials":
            values["client_secret"] = credentials.client_secret
        else:
            values.update(username=credentials.username, private_key=self.sandbox.jwt_private_key_pem)
        values.update(overrides)
        return SalesforceSettings.model_validate(values)

    def client(self, auth_flow: str = "client_credentials", **overrides: Any) -> SalesforceClient:
        query_fields = overrides.pop("query_fields", None)
        return SalesforceClient(self.settings(auth_flow, **overrides), query_fields=query_fields)

    def counts(self) -> dict[str, int]:
        by_kind: dict[str, int] = self.sandbox.admin.counts()["by_kind"]
        return by_kind

    def faults(self, **faults: Any) -> None:
        self.sandbox.admin.set_faults(**faults)

    def api(self) -> Salesforce:
        """simple-salesforce on its own token, for seeding and checking data outside the client."""
        settings = self.settings()
        session = build_session(settings)
        token = auth.request_access_token(settings, session)
        return Salesforce(
            instance_url=token.instance_url,
            session_id=token.value,
            session=session,
            version=settings.api_version,
            object_pairs_hook=dict,
        )


def counted(org: Org, before: dict[str, int]) -> dict[str, int]:
    """Requests by kind since `before`, without the kinds that did not change."""
    after = org.counts()
    return {kind: after[kind] - before.get(kind, 0) for kind in after if after[kind] != before.get(kind, 0)}


@pytest.fixture
def org(salesforce: SalesforceSandboxHandle) -> Iterator[Org]:
    """The sandbox reset to its seed org, and no access token cached in this process."""
    auth.clear_token_cache()
    yield Org(salesforce)
    auth.clear_token_cache()


@dataclass(frozen=True)
class SeededDeal:
    account_id: str
    opportunity_id: str
    line_ids: tuple[str, ...]


def seed_deal(api: Salesforce, *, lines: int) -> SeededDeal:
    """An Account and an Opportunity with `lines` products from the standard price book."""
    account_id = api.Account.create(
        {"Name": "Grüezi Trading AG", "BillingCity": "Zürich", "BillingCountry": "Switzerland"}
    )["id"]
    pricebook_id = api.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true")["records"][0]["Id"]
    opportunity_id = api.Opportunity.create(
        {
            "Name": "Grüezi renewal",
            "AccountId": account_id,
            "StageName": "Prospecting",
            "CloseDate": "2026-06-30",
            "Pricebook2Id": pricebook_id,
        }
    )["id"]
    # Set after the create: the package's before-save flow blanks the Intacct fields of a new record.
    api.Opportunity.update(opportunity_id, {"Intacct_Sync_Status__c": "Pending"})
    line_ids = []
    for index in range(lines):
        product_id = api.Product2.create(
            {
                "Name": f"Service {index}",
                "ProductCode": f"SKU-{index}",
                "Family": "Services",
                "IsActive": True,
            }
        )["id"]
        entry_id = api.PricebookEntry.create(
            {"Pricebook2Id": pricebook_id, "Product2Id": product_id, "UnitPrice": 100.0, "IsActive": True}
        )["id"]
        line_ids.append(
            api.OpportunityLineItem.create(
                {
                    "OpportunityId": opportunity_id,
                    "PricebookEntryId": entry_id,
                    "Quantity": index + 1,
                    "UnitPrice": 99.5 if index else 0.0,
                    "SortOrder": index,
                }
            )["id"]
        )
    return SeededDeal(account_id, opportunity_id, tuple(line_ids))


# -- auth flows and the one-query read -----------------------------------------------------------------


@pytest.mark.parametrize("auth_flow", ["client_credentials", "jwt_bearer"])
def test_fetches_opportunity_account_and_lines_with_one_query(org: Org, auth_flow: str) -> None:
    deal = seed_deal(org.api(), lines=3)
    client = org.client(auth_flow)
    before = org.counts()

    snapshot = client.fetch_opportunity(deal.opportunity_id)

    assert counted(org, before) == {"token": 1, "query": 1}
    assert snapshot.opportunity["Id"] == deal.opportunity_id
    assert snapshot.opportunity["Name"] == "Grüezi renewal"
    assert snapshot.opportunity["Intacct_Sync_Status__c"] == "Pending"
    assert snapshot.account is not None
    assert snapshot.account["Name"] == "Grüezi Trading AG"
    assert snapshot.account["BillingCity"] == "Zürich"
    assert [line["Id"] for line in snapshot.lines] == list(deal.line_ids)
    assert [line["Product2"]["ProductCode"] for line in snapshot.lines] == ["SKU-0", "SKU-1", "SKU-2"]
    assert [float(line["Quantity"]) for line in snapshot.lines] == [1.0, 2.0, 3.0]
    assert float(snapshot.lines[1]["UnitPrice"]) == 99.5
    assert "attributes" not in snapshot.opportunity
    assert all("attributes" not in line and "attributes" not in line["Product2"] for line in snapshot.lines)

    # A second read in the same container reuses the token.
    before = org.counts()
    client.fetch_opportunity(deal.opportunity_id)
    assert counted(org, before) == {"query": 1}


def test_every_line_is_read_when_salesforce_sends_the_lines_in_batches(org: Org) -> None:
    deal = seed_deal(org.api(), lines=7)
    org.sandbox.admin.set_config(child_batch_size=3)
    client = org.client()
    before = org.counts()

    snapshot = client.fetch_opportunity(deal.opportunity_id)

    assert [line["Id"] for line in snapshot.lines] == list(deal.line_ids)
    assert [line["Product2"]["ProductCode"] for line in snapshot.lines] == [f"SKU-{n}" for n in range(7)]
    assert all("attributes" not in line for line in snapshot.lines)
    # the query, then the second and third batch of lines
    assert counted(org, before) == {"token": 1, "query": 3}


def test_an_opportunity_without_lines(org: Org) -> None:
    deal = seed_deal(org.api(), lines=0)
    client = org.client()
    before = org.counts()

    snapshot = client.fetch_opportunity(deal.opportunity_id)

    assert snapshot.lines == []
    assert snapshot.account_id == deal.account_id
    assert counted(org, before) == {"token": 1, "query": 1}


def test_custom_fields_in_the_field_lists_are_read(org: Org) -> None:
    api = org.api()
    deal = seed_deal(api, lines=1)
    api.Account.update(deal.account_id, {"Intacct_Customer_Id__c": "C-00042"})
    api.Opportunity.update(deal.opportunity_id, {"Intacct_Order_Id__c": "Sales Order-SO0042"})
    fields = OpportunityQueryFields(
        opportunity_fields=("Intacct_Order_Id__c",),
        account_fields=("Intacct_Customer_Id__c",),
        line_fields=("Product2.Family",),
    )

    snapshot = org.client(query_fields=fields).fetch_opportunity(deal.opportunity_id)

    assert snapshot.opportunity == {"Id": deal.opportunity_id, "Intacct_Order_Id__c": "Sales Order-SO0042"}
    assert snapshot.account == {"Id": deal.account_id, "Intacct_Customer_Id__c": "C-00042"}
    assert snapshot.lines == [{"Id": deal.line_ids[0], "Product2": {"Family": "Services"}}]


def test_a_missing_opportunity_is_record_not_found(org: Org) -> None:
    api = org.api()
    deal = seed_deal(api, lines=0)
    api.Opportunity.delete(deal.opportunity_id)

    with pytest.raises(RecordNotFound):
        org.client().fetch_opportunity(deal.opportunity_id)


def test_an_expired_token_is_renewed_in_the_middle_of_work(org: Org) -> None:
    deal = seed_deal(org.api(), lines=1)
    client = org.client("jwt_bearer")
    client.fetch_opportunity(deal.opportunity_id)

    org.faults(expire_tokens=True)
    before = org.counts()
    snapshot = client.fetch_opportunity(deal.opportunity_id)
    client.write_back(
        [
            RecordUpdate(
                object_type="Opportunity",
                record_id=deal.opportunity_id,
                fields={"Intacct_Sync_Status__c": "Synced"},
            )
        ]
    )

    assert snapshot.opportunity_id == deal.opportunity_id
    # refused query, new token, repeated query; the write-back then uses the new token right away
    assert counted(org, before) == {"query": 2, "token": 1, "composite": 1}


# -- write-back ----------------------------------------------------------------------------------------


def test_write_back_updates_account_and_opportunity_in_one_composite_call(org: Org) -> None:
    api = org.api()
    deal = seed_deal(api, lines=1)
    client = org.client()
    client.fetch_opportunity(deal.opportunity_id)
    synced_at = dt.datetime(2026, 3, 31, 21, 30, 5, tzinfo=dt.UTC)
    before = org.counts()

    client.write_back(
        [
            RecordUpdate(
                object_type="Account",
                record_id=deal.account_id,
                fields={
                    "Intacct_Customer_Id__c": "C-00042",
                    "Intacct_Sync_Status__c": "Synced",
                    "Intacct_Last_Synced__c": synced_at,
                },
            ),
            RecordUpdate(
                object_type="Opportunity",
                record_id=deal.opportunity_id,
                fields={
                    "Intacct_Order_Id__c": "Sales Order-SO0042",
                    "Intacct_Sync_Status__c": "Synced",
                    "Intacct_Sync_Error__c": None,
                    "Intacct_Synced_At__c": synced_at,
                },
            ),
        ]
    )

    assert counted(org, before) == {"composite": 1}
    account = api.Account.get(deal.account_id)
    opportunity = api.Opportunity.get(deal.opportunity_id)
    assert (account["Intacct_Customer_Id__c"], account["Intacct_Sync_Status__c"]) == ("C-00042", "Synced")
    assert account["Intacct_Last_Synced__c"].startswith("2026-03-31T21:30:05")
    assert (opportunity["Intacct_Order_Id__c"], opportunity["Intacct_Sync_Status__c"]) == (
        "Sales Order-SO0042",
        "Synced",
    )
    assert opportunity["Intacct_Synced_At__c"].startswith("2026-03-31T21:30:05")


def test_many_records_are_updated_200_a_call_and_a_refused_one_fails_alone(org: Org) -> None:
    api = org.api()
    account_ids = [api.Account.create({"Name": f"Collection {index}"})["id"] for index in range(250)]
    refused = account_ids[7]
    before = org.counts()

    results = org.client().update_records(
        [
            RecordUpdate(
                object_type="Account",
                record_id=account_id,
                fields={"Intacct_Sync_Status__c": "Not a status" if account_id == refused else "Synced"},
            )
            for account_id in account_ids
        ]
    )

    assert counted(org, before) == {"token": 1, "composite": 2}  # 200 + 50 records: one call each
    assert [result.record_id for result in results] == account_ids
    assert [result.record_id for result in results if not result.success] == [refused]
    [failure] = [result for result in results if not result.success]
    assert failure.error_codes == ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",)
    saved = api.query("SELECT Id FROM Account WHERE Intacct_Sync_Status__c = 'Synced'")["records"]
    assert {record["Id"] for record in saved} >= set(account_ids) - {refused}
    assert api.Account.get(refused)["Intacct_Sync_Status__c"] is None


def test_a_refused_write_back_saves_nothing_and_says_why(org: Org) -> None:
    api = org.api()
    deal = seed_deal(api, lines=0)

    with pytest.raises(PermanentSalesforceError) as raised:
        org.client().write_back(
            [
                RecordUpdate(
                    object_type="Account", record_id=deal.account_id, fields={"Intacct_Customer_Id__c": "C-1"}
                ),
                RecordUpdate(
                    object_type="Opportunity",
                    record_id=deal.opportunity_id,
                    fields={"Intacct_Sync_Status__c": "Not a status"},
                ),
            ]
        )

    error = raised.value
    assert not error.transient
    assert error.error_codes == ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",)
    assert error.details[0].reference == f"Opportunity {deal.opportunity_id}"
    assert api.Account.get(deal.account_id)["Intacct_Customer_Id__c"] is None


def test_a_validation_rule_failure_names_the_record_and_rule_message(org: Org) -> None:
    api = org.api()
    deal = seed_deal(api, lines=0)
    org.sandbox.admin.set_validation_rules(
        [
            {
                "object_type": "Account",
                "message": "Customer ids come from Intacct only",
                "error_field": "Intacct_Customer_Id__c",
                "when": {"Intacct_Customer_Id__c": "MANUAL-1"},
            }
        ]
    )

    with pytest.raises(PermanentSalesforceError) as raised:
        org.client().write_back(
            [
                RecordUpdate(
                    object_type="Opportunity",
                    record_id=deal.opportunity_id,
                    fields={"Intacct_Sync_Status__c": "Synced"},
                ),
                RecordUpdate(
                    object_type="Account",
                    record_id=deal.account_id,
                    fields={"Intacct_Customer_Id__c": "MANUAL-1"},
                ),
            ]
        )

    assert str(raised.value).endswith(
        f"Account {deal.account_id}: FIELD_CUSTOM_VALIDATION_EXCEPTION: Customer ids come from Intacct only "
        "(fields: Intacct_Customer_Id__c)"
    )
    assert api.Opportunity.get(deal.opportunity_id)["Intacct_Sync_Status__c"] == "Pending"


def test_write_back_to_a_deleted_record_is_record_not_found(org: Org) -> None:
    api = org.api()
    deal = seed_deal(api, lines=0)
    api.Opportunity.delete(deal.opportunity_id)

    with pytest.raises(RecordNotFound):
        org.client().write_back(
            [
                RecordUpdate(
                    object_type="Opportunity",
                    record_id=deal.opportunity_id,
                    fields={"Intacct_Order_Id__c": "X"},
                )
            ]
        )


# -- errors --------------------------------------------------------------------------------------------


def test_query_follows_every_page(org: Org) -> None:
    api = org.api()
    names = [f"Paged account {index}" for index in range(5)]
    for name in names:
        api.Account.create({"Name": name})
    org.sandbox.admin.set_query_page_size(2)
    client = org.client()
    before = org.counts()

    records = client.query("SELECT Id, Name FROM Account ORDER BY Name")

    assert [record["Name"] for record in records] == names
    assert all(set(record) == {"Id", "Name"} for record in records)
    assert counted(org, before) == {"token": 1, "query": 3}


def test_malformed_query_and_unknown_field_are_permanent(org: Org) -> None:
    deal = seed_deal(org.api(), lines=0)
    client = org.client()

    with pytest.raises(PermanentSalesforceError) as malformed:
        client.query("SELECT FROM Opportunity")
    unknown = org.client(query_fields=OpportunityQueryFields(opportunity_fields=("Not_There__c",)))
    with pytest.raises(PermanentSalesforceError) as invalid:
        unknown.fetch_opportunity(deal.opportunity_id)

    assert malformed.value.error_codes == ("MALFORMED_QUERY",)
    assert invalid.value.error_codes == ("INVALID_FIELD",)
    assert "Not_There__c" in str(invalid.value)


def test_a_server_error_on_a_read_is_retried_transparently(org: Org) -> None:
    deal = seed_deal(org.api(), lines=1)
    client = org.client(read_retries=2)
    client.fetch_opportunity(deal.opportunity_id)  # token cached before the fault
    org.faults(fail_next={"count": 1, "status": 503})
    before = org.counts()

    snapshot = client.fetch_opportunity(deal.opportunity_id)

    assert snapshot.opportunity_id == deal.opportunity_id
    assert counted(org, before) == {"query": 2}


def test_server_errors_beyond_the_retries_are_transient(org: Org) -> None:
    deal = seed_deal(org.api(), lines=0)
    client = org.client(read_retries=1)
    client.fetch_opportunity(deal.opportunity_id)
    org.faults(fail_next={"count": 3, "status": 500})

    with pytest.raises(TransientSalesforceError) as raised:
        client.fetch_opportunity(deal.opportunity_id)

    assert raised.value.status == 500


def test_a_server_error_on_a_write_back_is_transient_and_not_repeated(org: Org) -> None:
    deal = seed_deal(org.api(), lines=0)
    client = org.client(read_retries=2)
    client.fetch_opportunity(deal.opportunity_id)
    org.faults(fail_next={"count": 1, "status": 503})
    before = org.counts()

    with pytest.raises(TransientSalesforceError):
        client.write_back(
            [
                RecordUpdate(
                    object_type="Account", record_id=deal.account_id, fields={"Intacct_Customer_Id__c": "C-9"}
                )
            ]
        )

    assert counted(org, before) == {"composite": 1}


def test_a_spent_api_allowance_is_a_fault_of_the_set_up_not_a_retry(org: Org) -> None:
    deal = seed_deal(org.api(), lines=0)
    client = org.client()
    client.fetch_opportunity(deal.opportunity_id)
    org.faults(spend_api_allowance=True)

    # Not retried inside the call (it comes back within 24 hours, not seconds): the worker holds the work.
    with pytest.raises(SalesforceApiLimitExceeded) as raised:
        client.fetch_opportunity(deal.opportunity_id)

    assert isinstance(raised.value, ConfigurationFault)
    assert raised.value.kind == "salesforce_api_limit"

    assert raised.value.error_codes == ("REQUEST_LIMIT_EXCEEDED",)
    assert raised.value.status == 403


def test_wrong_client_secret_is_a_permanent_authentication_error(org: Org) -> None:
    client = org.client(client_secret="not-the-secret")

    with pytest.raises(SalesforceAuthenticationError) as raised:
        client.query("SELECT Id FROM Account")

    assert raised.value.error_codes == ("invalid_client",)
    assert "not-the-secret" not in str(raised.value)


def test_jwt_bearer_signs_an_audience_salesforce_accepts(org: Org) -> None:
    # The token is asked from the sandbox's own host (https://127.0.0.1:<port>), which is no audience.
    refused = org.client("jwt_bearer", jwt_audience=org.sandbox.instance_url)
    with pytest.raises(SalesforceAuthenticationError, match="audience is invalid") as raised:
        refused.query("SELECT Id FROM Account")
    assert raised.value.error_codes == ("invalid_grant",)
    assert not raised.value.transient

    auth.clear_token_cache()
    derived = org.client("jwt_bearer")
    assert derived.settings.assertion_audience == "https://login.salesforce.com"
    assert derived.query("SELECT Id FROM Account") == []

    auth.clear_token_cache()
    site = "https://acme.my.site.com/partners"
    org.sandbox.admin.set_config(community_urls=[site])
    assert org.client("jwt_bearer", jwt_audience=site).query("SELECT Id FROM Account") == []


def test_tls_is_verified_against_the_configured_ca_only(org: Org, tmp_path: Path) -> None:
    other_ca = create_local_tls(tmp_path / "other").ca_file

    with pytest.raises(PermanentSalesforceError, match="CA bundle"):
        org.client(ca_file=str(other_ca)).query("SELECT Id FROM Account")
