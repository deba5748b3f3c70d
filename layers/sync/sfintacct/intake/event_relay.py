"""Salesforce Event Relay events (EventBridge): custom platform events and Change Data Capture.

The event's organization comes from its source, `aws.partner/salesforce.com/<orgId>/<channelId>`;
the Salesforce event is under `detail.payload`.

Change Data Capture decisions:
- CREATE, UPDATE, UNDELETE: one SyncRequest per record id (the same change may name several).
- GAP_CREATE, GAP_UPDATE, GAP_UNDELETE: the event carries no field values, only the record ids; a
  SyncRequest is still made because the workers re-read the record from Salesforce anyway.
- DELETE, GAP_DELETE of an Account: one SyncRequest per record id; the worker finds it deleted (or
  merged into another Account) and logs it, leaving its Intacct customer as it is (finance decides).
  Of an Opportunity: ignored; a deleted deal does not delete its Intacct order.
- GAP_OVERFLOW (too many changes to name the records) and wildcard record ids (e.g. "006*") cannot be
  mapped to records: ignored with a reason that the caller logs, so an operator can reconcile.
- Changes committed by the integration user (SALESFORCE_INTEGRATION_USER_ID) are ignored, so the
  workers' own write-backs do not come back as new work.
- producer_id = "<transactionKey>:<sequenceNumber>:<recordId>" (transactionKey: printable ASCII of at
  most 200 characters; sequenceNumber: a whole number from 0 to 10^18 - 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from sfintacct.intake.errors import MalformedRequest
from sfintacct.intake.field_values import (
    InvalidTimestamp,
    first_problem,
    is_printable_ascii,
    parse_salesforce_timestamp,
    printable,
)
from sfintacct.intake.platform_event import event_name, names_a_record, sync_request_from_platform_event
from sfintacct.salesforce_ids import InvalidSalesforceId, to_case_safe_id
from sfintacct.sync_request import (
    KEY_PREFIX_BY_OBJECT_TYPE,
    SYNCED_OBJECT_TYPES,
    SyncObjectType,
    SyncRequest,
)

SALESFORCE_PARTNER_SOURCE_PREFIX = "aws.partner/salesforce.com/"
CHANGE_EVENT_HEADER = "ChangeEventHeader"
SYNCED_CHANGE_TYPES = frozenset({"CREATE", "UPDATE", "UNDELETE", "GAP_CREATE", "GAP_UPDATE", "GAP_UNDELETE"})
DELETE_CHANGE_TYPES = frozenset({"DELETE", "GAP_DELETE"})
# "<transactionKey>:<sequenceNumber>:<18-character record id>" stays within MAX_PRODUCER_ID_LENGTH (256).
MAX_TRANSACTION_KEY_LENGTH = 200
MAX_SEQUENCE_NUMBER = 10**18 - 1


@dataclass(frozen=True)
class RelayedEvent:
    """The parts of an Event Relay EventBridge event the intake uses."""

    event_id: str | None  # EventBridge's id (changes on replay, so not a dedupe key)
    detail_type: str
    org_id: str  # as found in the source; checked by the caller
    detail: Mapping[str, Any]
    payload: Mapping[str, Any]

    @property
    def is_change_event(self) -> bool:
        return CHANGE_EVENT_HEADER in self.payload


@dataclass
class EventOutcome:
    """What became of one event: the requests to enqueue and why anything was left out."""

    requests: list[SyncRequest] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def is_eventbridge_event(event: Mapping[str, Any]) -> bool:
    """True for an EventBridge event shape (rather than an API Gateway request)."""
    return "detail-type" in event and "source" in event and "detail" in event


def parse_relayed_event(event: Mapping[str, Any]) -> RelayedEvent:
    """Check the EventBridge envelope and pull out the organization, the event name and its payload."""
    source = event.get("source")
    if not isinstance(source, str) or not source.startswith(SALESFORCE_PARTNER_SOURCE_PREFIX):
        # Only a string is shown: repr() of a deeply nested value would itself fail.
        shown = printable(source) if isinstance(source, str) else f"a JSON {_json_type(source)}"
        raise MalformedRequest(f"the event source is not a Salesforce partner event source: {shown}")
    org_id = source[len(SALESFORCE_PARTNER_SOURCE_PREFIX) :].split("/", 1)[0]
    detail_type = event.get("detail-type")
    if not isinstance(detail_type, str) or not detail_type:
        raise MalformedRequest("the event has no detail-type")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise MalformedRequest(f"{detail_type}: detail is not an object")
    payload = detail.get("payload")
    if not isinstance(payload, dict):
        raise MalformedRequest(f"{detail_type}: detail.payload is missing or not an object")
    event_id = event.get("id")
    return RelayedEvent(
        event_id=event_id if isinstance(event_id, str) else None,
        detail_type=detail_type,
        org_id=org_id,
        detail=detail,
        payload=payload,
    )


def sync_requests_from_relayed_event(
    event: RelayedEvent, *, org_id: str, received_at: datetime, integration_user_id: str | None
) -> EventOutcome:
    """The SyncRequests of a relayed event whose organization (`org_id`, case-safe) is allowed."""
    if event.is_change_event:
        return _from_change_event(event, org_id, received_at, integration_user_id)
    if not names_a_record(event.payload):
        name = event_name(event.payload) or event.detail_type
        return EventOutcome(ignored=[f"{name:.80} names no Account or Opportunity"])
    detail_id = event.detail.get("id")
    request = sync_request_from_platform_event(
        event.payload,
        source="event_relay",
        org_id=org_id,
        received_at=received_at,
        fallback_producer_id=detail_id if isinstance(detail_id, str) else None,
        where=f"{event.detail_type:.80}",
    )
    return EventOutcome(requests=[request])


def _from_change_event(
    event: RelayedEvent, org_id: str, received_at: datetime, integration_user_id: str | None
) -> EventOutcome:
    where = f"{event.detail_type:.80}"
    header = event.payload[CHANGE_EVENT_HEADER]
    if not isinstance(header, dict):
        raise MalformedRequest(f"{where}: {CHANGE_EVENT_HEADER} is not an object")
    reason_to_ignore = _reason_to_ignore(header, where, integration_user_id)
    if reason_to_ignore is not None:
        return EventOutcome(ignored=[reason_to_ignore])
    object_type: SyncObjectType = "Account" if header["entityName"] == "Account" else "Opportunity"

    transaction_key = header.get("transactionKey")
    sequence_number = header.get("sequenceNumber")
    if not isinstance(transaction_key, str) or not transaction_key:
        raise MalformedRequest(f"{where}: {CHANGE_EVENT_HEADER} has no transactionKey")
    if len(transaction_key) > MAX_TRANSACTION_KEY_LENGTH or not is_printable_ascii(transaction_key):
        raise MalformedRequest(
            f"{where}: {CHANGE_EVENT_HEADER} transactionKey must be printable ASCII of at most "
            f"{MAX_TRANSACTION_KEY_LENGTH} characters"
        )
    if not isinstance(sequence_number, int) or isinstance(sequence_number, bool):
        raise MalformedRequest(f"{where}: {CHANGE_EVENT_HEADER} has no integer sequenceNumber")
    if not 0 <= sequence_number <= MAX_SEQUENCE_NUMBER:
        raise MalformedRequest(
            f"{where}: {CHANGE_EVENT_HEADER} sequenceNumber must be a whole number from 0 to "
            f"{MAX_SEQUENCE_NUMBER}"
        )
    record_ids = header.get("recordIds")
    if not isinstance(record_ids, list) or not record_ids:
        raise MalformedRequest(f"{where}: {CHANGE_EVENT_HEADER} has no recordIds")
    last_modified = None
    if header.get("commitTimestamp") is not None:
        try:
            last_modified = parse_salesforce_timestamp(header["commitTimestamp"])
        except InvalidTimestamp as error:
            raise MalformedRequest(f"{where}: commitTimestamp {error}") from None

    outcome = EventOutcome()
    key_prefix = KEY_PREFIX_BY_OBJECT_TYPE[object_type]
    for raw_id in record_ids:
        if isinstance(raw_id, str) and "*" in raw_id:
            outcome.ignored.append(f"{where}: wildcard record id {raw_id:.20} names no single record")
            continue
        record_id = _record_id(raw_id, key_prefix, object_type, where)
        try:
            outcome.requests.append(
                SyncRequest(
                    source="change_data_capture",
                    org_id=org_id,
                    object_type=object_type,
                    record_id=record_id,
                    producer_id=f"{transaction_key}:{sequence_number}:{record_id}",
                    last_modified=last_modified,
                    received_at=received_at,
                )
            )
        except ValidationError as error:
            raise MalformedRequest(f"{where}: {first_problem(error)}") from None
    return outcome


def _reason_to_ignore(header: Mapping[str, Any], where: str, integration_user_id: str | None) -> str | None:
    """Why a change is not synced (see the module docstring), or None when it is."""
    entity = header.get("entityName")
    change_type = header.get("changeType")
    if not isinstance(entity, str) or not isinstance(change_type, str):
        raise MalformedRequest(f"{where}: {CHANGE_EVENT_HEADER} needs entityName and changeType")
    if entity not in SYNCED_OBJECT_TYPES:
        return f"{where}: {entity:.80} changes are not synced"
    if change_type in DELETE_CHANGE_TYPES:
        if entity != "Account":
            return f"{where}: {change_type} is not synced (Intacct records are kept)"
    elif change_type not in SYNCED_CHANGE_TYPES:
        return f"{where}: {change_type:.40} names no records; reconcile {entity} changes by hand"
    if integration_user_id is not None and _same_user(header.get("commitUser"), integration_user_id):
        return f"{where}: change made by the integration user (a write-back)"
    return None


def _record_id(raw_id: object, key_prefix: str, object_type: str, where: str) -> str:
    if not isinstance(raw_id, str):
        raise MalformedRequest(f"{where}: recordIds must hold strings")
    try:
        record_id = to_case_safe_id(raw_id.strip())
    except InvalidSalesforceId as error:
        raise MalformedRequest(f"{where}: record id {error}") from None
    if not record_id.startswith(key_prefix):
        raise MalformedRequest(f"{where}: record id {raw_id:.20} is not an {object_type} id")
    return record_id


def _same_user(commit_user: object, integration_user_id: str) -> bool:
    if not isinstance(commit_user, str):
        return False
    try:
        return to_case_safe_id(commit_user.strip()) == integration_user_id
    except InvalidSalesforceId:
        return False


def _json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for messages that must not print the value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__
