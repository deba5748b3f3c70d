"""The Salesforce sandbox driven by the unmodified simple-salesforce client, the way sfintacct and
Salesforce integrations use it: a session from the OAuth token endpoint, then records created, read with
a child subquery, updated, and written in one composite call.

simple-salesforce gets only its documented constructor arguments: instance_url and session_id from the
sandbox's token endpoint, and a requests session that trusts the sandbox's CA.
"""

from __future__ import annotations

import ssl
import time
from typing import Any
from urllib.parse import quote_plus

import httpx
import jwt
import pytest
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import SalesforceMalformedRequest

from tests.integration.salesforce_fixtures import SalesforceSandboxHandle

pytestmark = pytest.mark.integration

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEAL_QUERY = """
SELECT Id, Name, StageName, IsWon, Amount, Account.Name,
       (SELECT Id, Quantity, UnitPrice, TotalPrice, Product2.ProductCode, SortOrder
        FROM OpportunityLineItems ORDER BY SortOrder)
FROM Opportunity WHERE Id = {}
"""


def jwt_bearer_session(handle: SalesforceSandboxHandle) -> dict[str, Any]:
    """A token for the integration user from the sandbox's OAuth endpoint (JWT bearer flow)."""
    assertion = jwt.encode(
        {
            "iss": handle.credentials.client_id,
            "sub": handle.credentials.username,
            "aud": "https://login.salesforce.com",
            "exp": int(time.time()) + 180,
        },
        handle.jwt_private_key_pem,
        algorithm="RS256",
    )
    response = httpx.post(
        handle.token_url,
        data={"grant_type": JWT_BEARER_GRANT, "assertion": assertion},
        verify=ssl.create_default_context(cafile=str(handle.ca_file)),
    )
    assert response.status_code == 200, response.text
    token: dict[str, Any] = response.json()
    return token


@pytest.fixture
def sf(salesforce: SalesforceSandboxHandle) -> Salesforce:
    token = jwt_bearer_session(salesforce)
    return Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        session=salesforce.requests_session(),
        version=salesforce.api_version,
    )


def product_entry(sf: Salesforce, code: str, price: float) -> str:
    """A product with a standard price; the price book entry id."""
    pricebook = sf.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true")["records"][0]["Id"]
    product_id = sf.Product2.create({"Name": f"Product {code}", "ProductCode": code, "IsActive": True})["id"]
    entry: dict[str, Any] = sf.PricebookEntry.create(
        {"Pricebook2Id": pricebook, "Product2Id": product_id, "UnitPrice": price, "IsActive": True}
    )
    return str(entry["id"])


def test_the_session_acts_as_the_integration_user(
    sf: Salesforce, salesforce: SalesforceSandboxHandle
) -> None:
    assert sf.sf_instance == salesforce.instance_url.removeprefix("https://")

    account = sf.Account.get(sf.Account.create({"Name": "Whoami"})["id"])

    assert account["CreatedById"] == salesforce.credentials.integration_user_id
    sf.query("SELECT Id FROM Account")
    usage = sf.api_usage["api-usage"]  # simple-salesforce reads the Sforce-Limit-Info header
    assert (usage.used, usage.total) == (3, salesforce.admin.config()["daily_api_allowance"])


def test_create_an_account_and_an_opportunity(sf: Salesforce, salesforce: SalesforceSandboxHandle) -> None:
    account = sf.Account.create({"Name": "Tailspin Toys", "BillingCity": "Oslo"})
    opportunity = sf.Opportunity.create(
        {
            "Name": "Tailspin rollout",
            "AccountId": account["id"],
            "StageName": "Prospecting",
            "CloseDate": "2026-11-30",
        }
    )

    for created, prefix in ((account, "001"), (opportunity, "006")):
        assert created == {"id": created["id"], "success": True, "errors": []}
        assert created["id"].startswith(prefix)
        assert len(created["id"]) == 18
    record = sf.Opportunity.get(opportunity["id"])
    assert record["attributes"] == {
        "type": "Opportunity",
        "url": f"/services/data/v{salesforce.api_version}/sobjects/Opportunity/{opportunity['id']}",
    }
    assert (record["AccountId"], record["CloseDate"]) == (account["id"], "2026-11-30")
    assert (record["IsWon"], record["IsClosed"], record["Probability"]) == (False, False, 10)
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Opportunity.create({"Name": "No stage", "CloseDate": "2026-11-30"})
    assert refused.value.status == 400
    assert refused.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert refused.value.content[0]["fields"] == ["StageName"]


def test_query_an_opportunity_with_its_lines_in_a_child_subquery(
    sf: Salesforce, salesforce: SalesforceSandboxHandle
) -> None:
    account_id = sf.Account.create({"Name": "Coho Winery"})["id"]
    opportunity_id = sf.Opportunity.create(
        {
            "Name": "Coho cellar",
            "AccountId": account_id,
            "StageName": "Prospecting",
            "CloseDate": "2026-10-01",
        }
    )["id"]
    entries = [product_entry(sf, "CASK", 300.0), product_entry(sf, "BOTTLE", 12.5)]
    line_ids = [
        sf.OpportunityLineItem.create(
            {
                "OpportunityId": opportunity_id,
                "PricebookEntryId": entries[number % 2],
                "Quantity": number + 1,
                "UnitPrice": 10.0 * (number + 1),
                "SortOrder": number,
            }
        )["id"]
        for number in range(5)
    ]

    result = sf.query(format_soql(DEAL_QUERY, opportunity_id))

    assert (result["totalSize"], result["done"]) == (1, True)
    deal = result["records"][0]
    assert deal["Account"] == {
        "attributes": {
            "type": "Account",
            "url": f"/services/data/v{salesforce.api_version}/sobjects/Account/{account_id}",
        },
        "Name": "Coho Winery",
    }
    assert deal["Amount"] == 10.0 * 1 + 20.0 * 2 + 30.0 * 3 + 40.0 * 4 + 50.0 * 5
    lines = deal["OpportunityLineItems"]
    assert (lines["totalSize"], lines["done"]) == (5, True)
    assert [line["Id"] for line in lines["records"]] == line_ids
    assert lines["records"][0]["attributes"]["type"] == "OpportunityLineItem"
    assert [line["Product2"]["ProductCode"] for line in lines["records"]] == [
        "CASK",
        "BOTTLE",
        "CASK",
        "BOTTLE",
        "CASK",
    ]
    assert [line["TotalPrice"] for line in lines["records"]] == [10.0, 40.0, 90.0, 160.0, 250.0]

    # More lines than a child batch: simple-salesforce hands back the first batch and its
    # nextRecordsUrl; query_more with identifier_is_url reads the rest.
    salesforce.admin.set_config(child_batch_size=2)
    first = sf.query_all(format_soql(DEAL_QUERY, opportunity_id))["records"][0]["OpportunityLineItems"]
    batches = [first]
    while not batches[-1]["done"]:
        batches.append(sf.query_more(batches[-1]["nextRecordsUrl"], identifier_is_url=True))
    assert [len(batch["records"]) for batch in batches] == [2, 2, 1]
    assert [line["Id"] for batch in batches for line in batch["records"]] == line_ids


def test_update_a_record(sf: Salesforce) -> None:
    account_id = sf.Account.create({"Name": "Lucerne Publishing"})["id"]
    opportunity_id = sf.Opportunity.create(
        {
            "Name": "Lucerne print run",
            "AccountId": account_id,
            "StageName": "Qualification",
            "CloseDate": "2026-09-01",
        }
    )["id"]
    before = sf.Opportunity.get(opportunity_id)
    time.sleep(0.005)

    status = sf.Opportunity.update(opportunity_id, {"StageName": "Closed Won", "Description": "Signed"})
    raw = sf.Account.update(account_id, {"Phone": "+47 22 00 00 00"}, raw_response=True)

    assert status == 204
    assert (raw.status_code, raw.content) == (204, b"")
    after = sf.Opportunity.get(opportunity_id)
    assert (after["StageName"], after["Description"]) == ("Closed Won", "Signed")
    assert (after["IsWon"], after["IsClosed"], after["Probability"]) == (True, True, 100)
    assert after["LastModifiedDate"] > before["LastModifiedDate"]
    assert sf.Account.get(account_id)["Phone"] == "+47 22 00 00 00"
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Opportunity.update(opportunity_id, {"NoSuchField__c": 1})
    assert refused.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert sf.Opportunity.get(opportunity_id)["LastModifiedDate"] == after["LastModifiedDate"]


def test_composite_call_with_references(sf: Salesforce, salesforce: SalesforceSandboxHandle) -> None:
    base = f"/services/data/v{salesforce.api_version}"
    query = format_soql(
        "SELECT Id, Name, Account.Name FROM Opportunity WHERE Name = {}", "Fourth Coffee beans"
    )

    result = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": True,
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": f"{base}/sobjects/Account",
                    "referenceId": "account",
                    "body": {"Name": "Fourth Coffee"},
                },
                {
                    "method": "POST",
                    "url": f"{base}/sobjects/Opportunity",
                    "referenceId": "deal",
                    "body": {
                        "Name": "Fourth Coffee beans",
                        "AccountId": "@{account.id}",
                        "StageName": "Prospecting",
                        "CloseDate": "2026-08-01",
                    },
                },
                {
                    "method": "PATCH",
                    "url": f"{base}/sobjects/Account/@{{account.id}}",
                    "referenceId": "phone",
                    "body": {"Phone": "+1 425 555 0100"},
                },
                {"method": "GET", "url": f"{base}/query?q={quote_plus(query)}", "referenceId": "read"},
            ],
        },
    )

    assert result is not None
    responses = {item["referenceId"]: item for item in result["compositeResponse"]}
    account_id = responses["account"]["body"]["id"]
    deal_id = responses["deal"]["body"]["id"]
    assert responses["account"]["httpStatusCode"] == 201
    assert responses["account"]["httpHeaders"] == {"Location": f"{base}/sobjects/Account/{account_id}"}
    assert responses["deal"]["body"] == {"id": deal_id, "success": True, "errors": []}
    assert (responses["phone"]["httpStatusCode"], responses["phone"]["body"]) == (204, None)
    read = responses["read"]
    assert read["httpStatusCode"] == 200
    assert read["body"]["records"][0]["Id"] == deal_id
    assert read["body"]["records"][0]["Account"]["Name"] == "Fourth Coffee"
    assert sf.Account.get(account_id)["Phone"] == "+1 425 555 0100"
    assert salesforce.admin.counts()["by_kind"]["composite"] == 1


def test_a_failed_composite_call_saves_nothing(sf: Salesforce, salesforce: SalesforceSandboxHandle) -> None:
    base = f"/services/data/v{salesforce.api_version}"

    result = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": True,
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": f"{base}/sobjects/Account",
                    "referenceId": "account",
                    "body": {"Name": "Rolled back"},
                },
                {
                    "method": "POST",
                    "url": f"{base}/sobjects/Opportunity",
                    "referenceId": "deal",
                    "body": {
                        "Name": "No close date",
                        "AccountId": "@{account.id}",
                        "StageName": "Prospecting",
                    },
                },
            ],
        },
    )

    assert result is not None
    account, deal = result["compositeResponse"]
    assert deal["httpStatusCode"] == 400
    assert deal["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert account["httpStatusCode"] == 400
    assert account["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0
