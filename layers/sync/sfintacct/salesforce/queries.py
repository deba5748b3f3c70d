"""SOQL text for the client's reads. Values are quoted with simple-salesforce's format_soql; field names
are checked against a strict pattern (models.FIELD_PATH_PATTERN) before they are placed in the text.
"""

from __future__ import annotations

from simple_salesforce.format import format_soql

from sfintacct.salesforce.models import OpportunityQueryFields, validate_record_id

LINE_ITEMS_RELATIONSHIP = "OpportunityLineItems"


def opportunity_query(opportunity_id: str, fields: OpportunityQueryFields) -> str:
    """One SOQL query for an Opportunity with its Account fields and all its line items.

    The line items come as a child subquery ordered like the Opportunity's product list.
    """
    validate_record_id(opportunity_id)
    selected = [
        *fields.opportunity_fields,
        *(f"Account.{name}" for name in fields.account_fields),
    ]
    line_subquery = format_soql(
        "(SELECT {fields:literal} FROM OpportunityLineItems ORDER BY SortOrder, Id)",
        fields=", ".join(fields.line_fields),
    )
    return format_soql(
        "SELECT {fields:literal}, {lines:literal} FROM Opportunity WHERE Id = {opportunity_id}",
        fields=", ".join(selected),
        lines=line_subquery,
        opportunity_id=opportunity_id,
    )


def account_query(account_id: str, fields: OpportunityQueryFields) -> str:
    """SOQL for one Account with the configured Account fields."""
    validate_record_id(account_id)
    return format_soql(
        "SELECT {fields:literal} FROM Account WHERE Id = {account_id}",
        fields=", ".join(fields.account_fields),
        account_id=account_id,
    )


def removed_account_query(account_id: str) -> str:
    """SOQL (for queryAll) telling whether an Account was deleted, or merged into another."""
    validate_record_id(account_id)
    return format_soql(
        "SELECT Id, IsDeleted, MasterRecordId FROM Account WHERE Id = {account_id}", account_id=account_id
    )


def merged_accounts_query(master_id: str) -> str:
    """SOQL (for queryAll) for the Accounts merged into `master_id`, with the customer each showed."""
    validate_record_id(master_id)
    return format_soql(
        "SELECT Id, Intacct_Customer_Id__c FROM Account WHERE MasterRecordId = {master_id}",
        master_id=master_id,
    )
