"""SOQL building: one query for Opportunity + Account + lines, configurable fields, safe quoting."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from sfintacct.salesforce.models import OpportunityQueryFields
from sfintacct.salesforce.queries import account_query, opportunity_query

OPPORTUNITY_ID = "006Dn00000AbCdEIAV"


def test_opportunity_query_selects_opportunity_account_and_line_fields_in_one_statement() -> None:
    fields = OpportunityQueryFields(
        opportunity_fields=("Name", "Amount"),
        account_fields=("Name", "BillingCity"),
        line_fields=("Quantity", "Product2.ProductCode"),
    )

    soql = opportunity_query(OPPORTUNITY_ID, fields)

    assert soql == (
        "SELECT Id, Name, Amount, Account.Id, Account.Name, Account.BillingCity, "
        "(SELECT Id, Quantity, Product2.ProductCode FROM OpportunityLineItems ORDER BY SortOrder, Id) "
        f"FROM Opportunity WHERE Id = '{OPPORTUNITY_ID}'"
    )
    assert soql.count("FROM Opportunity ") == 1


def test_default_fields_cover_what_an_order_needs() -> None:
    soql = opportunity_query(OPPORTUNITY_ID, OpportunityQueryFields())

    # The sync writes back only what Salesforce does not show yet: both records' id and status fields.
    for expected in (
        "IsWon",
        "CloseDate",
        "Account.BillingPostalCode",
        "Intacct_Order_Id__c",
        "Intacct_Sync_Status__c",
        "Account.Intacct_Customer_Id__c",
        "Account.Intacct_Sync_Status__c",
    ):
        assert re.search(rf"\b{re.escape(expected)}\b", soql)
    for expected in ("UnitPrice", "Quantity", "Discount", "Product2.ProductCode", "ServiceDate"):
        assert re.search(rf"\b{re.escape(expected)}\b", soql.split("(SELECT", 1)[1])


def test_custom_fields_come_along_and_duplicates_are_dropped() -> None:
    fields = OpportunityQueryFields().with_extra(
        opportunity_fields=["Contract_Terms__c", "name"],
        account_fields=["Credit_Limit__c"],
        line_fields=["Free_Addon__c", "Product2.Revenue_Type__c"],
    )

    soql = opportunity_query(OPPORTUNITY_ID, fields)

    assert ", Contract_Terms__c," in soql
    assert "Account.Credit_Limit__c" in soql
    assert "Free_Addon__c, Product2.Revenue_Type__c FROM OpportunityLineItems" in soql
    # Salesforce rejects a field selected twice ("duplicate field selected"), whatever its case.
    assert [name.lower() for name in fields.opportunity_fields].count("name") == 1
    assert ", name," not in soql


def test_extra_fields_from_the_environment() -> None:
    fields = OpportunityQueryFields.from_environment(
        {
            "SALESFORCE_OPPORTUNITY_FIELDS": "Contract_Terms__c, PO_Number__c",
            "SALESFORCE_ACCOUNT_FIELDS": "Credit_Limit__c",
            "SALESFORCE_LINE_FIELDS": "",
        }
    )

    assert fields.opportunity_fields[-2:] == ("Contract_Terms__c", "PO_Number__c")
    assert fields.account_fields[-1] == "Credit_Limit__c"
    assert fields.line_fields == OpportunityQueryFields().line_fields


@pytest.mark.parametrize(
    "bad_field",
    ["Name FROM Account --", "Name, (SELECT Id FROM Contacts)", "Amount'", "", "1Name", "A.B.C.D.E.F.G"],
)
def test_field_names_that_are_not_plain_names_are_refused(bad_field: str) -> None:
    with pytest.raises(ValidationError, match="not a Salesforce field name"):
        OpportunityQueryFields(line_fields=(bad_field,))


def test_relationship_fields_must_go_through_their_own_list() -> None:
    with pytest.raises(ValidationError, match="account_fields"):
        OpportunityQueryFields(opportunity_fields=("Account.Name",))
    with pytest.raises(ValidationError, match="line_fields"):
        OpportunityQueryFields(opportunity_fields=("OpportunityLineItems",))


@pytest.mark.parametrize(
    "bad_id", ["006' OR Name != '", "006Dn00000AbCdE'", "006Dn00000AbCd", "006Dn00000AbCdEIAV1", ""]
)
def test_record_ids_are_checked_before_they_reach_the_query(bad_id: str) -> None:
    with pytest.raises(ValueError, match="not a Salesforce record id"):
        opportunity_query(bad_id, OpportunityQueryFields())
    with pytest.raises(ValueError, match="not a Salesforce record id"):
        account_query(bad_id, OpportunityQueryFields())


def test_fifteen_character_ids_are_accepted_and_quoted() -> None:
    soql = account_query("001Dn00000AbCdE", OpportunityQueryFields(account_fields=("Name",)))

    assert soql == "SELECT Id, Name FROM Account WHERE Id = '001Dn00000AbCdE'"
