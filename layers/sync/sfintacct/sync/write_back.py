"""The fields written back to Salesforce, so the rep sees on the record what happened in Intacct.

Every write-back names the record's own Intacct id, or none: a record (a clone, a failed deal) never
keeps showing an id that is not its own. Warnings (a value shortened to Intacct's length, two customers
after a merge) go in the message field with the status "Synced with warnings".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sfintacct.salesforce.models import RecordUpdate

MAX_ERROR_TEXT = 32768  # Intacct_Sync_Error__c is a Long Text Area(32768)

SYNCED = "Synced"
SYNCED_WITH_WARNINGS = "Synced with warnings"
FAILED = "Failed"
CHANGED_AFTER_SYNC = "Changed after sync"
ORDER_CLOSED = "Order closed"
WAITING = "Waiting"

ID_FIELDS = {"Account": "Intacct_Customer_Id__c", "Opportunity": "Intacct_Order_Id__c"}


def account_synced(
    account_id: str, customer_id: str, now: datetime, warnings: Sequence[str] = ()
) -> RecordUpdate:
    return RecordUpdate(
        object_type="Account",
        record_id=account_id,
        fields={
            "Intacct_Customer_Id__c": customer_id,
            **_status(warnings),
            "Intacct_Last_Synced__c": now,
        },
    )


def opportunity_synced(
    opportunity_id: str, order_id: str, now: datetime, warnings: Sequence[str] = ()
) -> RecordUpdate:
    return RecordUpdate(
        object_type="Opportunity",
        record_id=opportunity_id,
        fields={
            "Intacct_Order_Id__c": order_id,
            **_status(warnings),
            "Intacct_Synced_At__c": now,
        },
    )


def opportunity_order_retired(
    opportunity_id: str, order_id: str | None, message: str, now: datetime
) -> RecordUpdate:
    """The deal left Closed Won and its order was closed (order_id kept) or deleted (None)."""
    return RecordUpdate(
        object_type="Opportunity",
        record_id=opportunity_id,
        fields={
            "Intacct_Order_Id__c": order_id,
            "Intacct_Sync_Status__c": ORDER_CLOSED,
            "Intacct_Sync_Error__c": _error_text(message),
            "Intacct_Synced_At__c": now,
        },
    )


def opportunity_changed_after_sync(opportunity_id: str, order_id: str, message: str) -> RecordUpdate:
    return RecordUpdate(
        object_type="Opportunity",
        record_id=opportunity_id,
        fields={
            "Intacct_Order_Id__c": order_id,
            "Intacct_Sync_Status__c": CHANGED_AFTER_SYNC,
            "Intacct_Sync_Error__c": _error_text(message),
        },
    )


def failed(object_type: str, record_id: str, message: str, own_intacct_id: str | None) -> RecordUpdate:
    """Account and Opportunity carry the same failure fields; the id field keeps only the record's own id."""
    return RecordUpdate(
        object_type=object_type,
        record_id=record_id,
        fields={
            ID_FIELDS[object_type]: own_intacct_id,
            "Intacct_Sync_Status__c": FAILED,
            "Intacct_Sync_Error__c": _error_text(message),
        },
    )


def waiting(object_type: str, record_id: str, message: str) -> RecordUpdate:
    """A fault of the set-up holds the record's sync; it goes on by itself once the set-up is fixed."""
    return RecordUpdate(
        object_type=object_type,
        record_id=record_id,
        fields={"Intacct_Sync_Status__c": WAITING, "Intacct_Sync_Error__c": _error_text(message)},
    )


def _status(warnings: Sequence[str]) -> dict[str, str | None]:
    if not warnings:
        return {"Intacct_Sync_Status__c": SYNCED, "Intacct_Sync_Error__c": None}
    return {
        "Intacct_Sync_Status__c": SYNCED_WITH_WARNINGS,
        "Intacct_Sync_Error__c": _error_text("\n".join(warnings)),
    }


def _error_text(message: str) -> str:
    return message if len(message) <= MAX_ERROR_TEXT else message[: MAX_ERROR_TEXT - 1] + "…"
