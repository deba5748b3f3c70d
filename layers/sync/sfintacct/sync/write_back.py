"""The fields written back to Salesforce, so the rep sees on the record what happened in Intacct."""

from __future__ import annotations

from datetime import datetime

from sfintacct.salesforce.models import RecordUpdate

MAX_ERROR_TEXT = 32768  # Intacct_Sync_Error__c is a Long Text Area(32768)


def account_synced(account_id: str, customer_id: str, now: datetime) -> RecordUpdate:
    return RecordUpdate(
        object_type="Account",
        record_id=account_id,
        fields={
            "Intacct_Customer_Id__c": customer_id,
            "Intacct_Sync_Status__c": "Synced",
            "Intacct_Sync_Error__c": None,
            "Intacct_Last_Synced__c": now,
        },
    )


def opportunity_synced(opportunity_id: str, order_id: str, now: datetime) -> RecordUpdate:
    return RecordUpdate(
        object_type="Opportunity",
        record_id=opportunity_id,
        fields={
            "Intacct_Order_Id__c": order_id,
            "Intacct_Sync_Status__c": "Synced",
            "Intacct_Sync_Error__c": None,
            "Intacct_Synced_At__c": now,
        },
    )


def failed(object_type: str, record_id: str, message: str) -> RecordUpdate:
    """Account and Opportunity carry the same two failure fields."""
    return RecordUpdate(
        object_type=object_type,
        record_id=record_id,
        fields={"Intacct_Sync_Status__c": "Failed", "Intacct_Sync_Error__c": _error_text(message)},
    )


def _error_text(message: str) -> str:
    return message if len(message) <= MAX_ERROR_TEXT else message[: MAX_ERROR_TEXT - 1] + "…"
