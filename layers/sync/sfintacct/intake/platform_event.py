"""Platform Events sent to the intake: signature checks for callouts and the event -> SyncRequest mapping.

Signing scheme (Flow HTTP callout or Apex, shared key `event_signing_key` of the intake secret):

    X-Signature-Timestamp: <unix seconds>
    X-Signature:           lower-case hex HMAC-SHA256(key, "<timestamp>." + <raw body bytes>)

A request whose timestamp is more than EVENT_MAX_AGE_SECONDS away from now (past or future) is
refused, which bounds replays; benign duplicates are removed downstream on the EventUuid.

An event names its record with `OpportunityId__c` (-> Opportunity) or `AccountId__c` (-> Account);
`EventUuid` (printable ASCII, at most 256 characters) is its producer id. Other fields are ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from sfintacct.intake.errors import MalformedRequest, SignatureRejected
from sfintacct.intake.field_values import (
    InvalidTimestamp,
    first_problem,
    is_ascii_digits,
    is_printable_ascii,
    parse_salesforce_timestamp,
)
from sfintacct.intake.limits import check_body_size
from sfintacct.salesforce_ids import InvalidSalesforceId, to_case_safe_id_with_prefix
from sfintacct.sync_request import (
    KEY_PREFIX_BY_OBJECT_TYPE,
    MAX_PRODUCER_ID_LENGTH,
    SyncObjectType,
    SyncRequest,
    SyncSource,
)

SIGNATURE_HEADER = "X-Signature"
SIGNATURE_TIMESTAMP_HEADER = "X-Signature-Timestamp"
MAX_EVENTS_PER_REQUEST = 100
MAX_TIMESTAMP_HEADER_DIGITS = 12

# Event field naming the record -> object type, in order of preference (an Opportunity job also
# brings its Account over, so an event naming both is an Opportunity request).
RECORD_ID_FIELDS: tuple[tuple[str, SyncObjectType], ...] = (
    ("OpportunityId__c", "Opportunity"),
    ("AccountId__c", "Account"),
)
EVENT_UUID_FIELD = "EventUuid"
ORGANIZATION_ID_FIELD = "OrganizationId"
_LAST_MODIFIED_FIELDS = ("LastModifiedDate", "LastModifiedDate__c")


def event_signature(signing_key: bytes, timestamp: str, body: bytes) -> str:
    """The X-Signature value for `body` sent at `timestamp` (unix seconds, as written in the header)."""
    return hmac.new(signing_key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def verify_event_signature(
    *,
    body: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    signing_key: bytes,
    now: float,
    max_age_seconds: int,
) -> None:
    """Raise `SignatureRejected` unless the headers sign `body` with `signing_key`, recently enough."""
    timestamp = (timestamp_header or "").strip()
    if not timestamp:
        raise SignatureRejected(f"the {SIGNATURE_TIMESTAMP_HEADER} header is missing")
    if not is_ascii_digits(timestamp) or len(timestamp) > MAX_TIMESTAMP_HEADER_DIGITS:
        raise SignatureRejected(f"the {SIGNATURE_TIMESTAMP_HEADER} header must be unix seconds")
    age = now - int(timestamp)
    if age > max_age_seconds:
        raise SignatureRejected(
            f"the {SIGNATURE_TIMESTAMP_HEADER} is {int(age)} seconds old; "
            f"at most {max_age_seconds} are allowed"
        )
    if age < -max_age_seconds:
        raise SignatureRejected(
            f"the {SIGNATURE_TIMESTAMP_HEADER} is {int(-age)} seconds in the future; check the sender's clock"
        )
    signature = (signature_header or "").strip().lower()
    if not signature:
        raise SignatureRejected(f"the {SIGNATURE_HEADER} header is missing")
    expected = event_signature(signing_key, timestamp, body)
    if not hmac.compare_digest(signature.encode("ascii", "replace"), expected.encode("ascii")):
        raise SignatureRejected(f"the {SIGNATURE_HEADER} does not match the body and timestamp")


def check_event_body_size(body_size: int) -> None:
    """Refuse only bodies that could not have reached the function (see `sfintacct.intake.limits`)."""
    check_body_size(body_size, "the body")


def parse_event_callout(body: bytes) -> list[Mapping[str, Any]]:
    """The events of a callout body: one JSON object, or a JSON array of 1 to 100 objects."""
    check_event_body_size(len(body))
    if not body.strip():
        raise MalformedRequest("the request body is empty; expected a JSON platform event")
    try:
        document = json.loads(body)
    except json.JSONDecodeError as error:
        raise MalformedRequest(f"the body is not valid JSON ({error})") from None
    except UnicodeDecodeError:
        raise MalformedRequest("the body is not valid JSON (it is not UTF-8 text)") from None
    except RecursionError:
        raise MalformedRequest("the body is not a platform event: its JSON is nested too deeply") from None
    except ValueError:  # e.g. a number with more digits than Python converts
        raise MalformedRequest("the body is not valid JSON (a number in it is too long)") from None
    events = document if isinstance(document, list) else [document]
    if not events:
        raise MalformedRequest("the body holds an empty list of events")
    if len(events) > MAX_EVENTS_PER_REQUEST:
        raise MalformedRequest(
            f"the body holds {len(events)} events; at most {MAX_EVENTS_PER_REQUEST} are allowed"
        )
    for position, event in enumerate(events, start=1):
        if not isinstance(event, dict):
            raise MalformedRequest(f"event {position} is not a JSON object")
    return events


def event_name(payload: Mapping[str, Any]) -> str | None:
    """The event's API name when the payload says it (Apex serialises `attributes.type`)."""
    attributes = payload.get("attributes")
    if isinstance(attributes, dict) and isinstance(attributes.get("type"), str):
        return str(attributes["type"])
    return None


def names_a_record(payload: Mapping[str, Any]) -> bool:
    """True when the event carries one of the record id fields this intake understands."""
    return any(payload.get(field) not in (None, "") for field, _ in RECORD_ID_FIELDS)


def sync_request_from_platform_event(
    payload: Mapping[str, Any],
    *,
    source: SyncSource,
    org_id: str,
    received_at: datetime,
    fallback_producer_id: str | None = None,
    where: str = "the event",
) -> SyncRequest:
    """The SyncRequest of one platform event; `org_id` is already checked and case-safe."""
    object_type, record_id = _record_reference(payload, where)
    producer_id = _producer_id(payload.get(EVENT_UUID_FIELD) or fallback_producer_id, where)
    last_modified = None
    for field in _LAST_MODIFIED_FIELDS:
        if payload.get(field) not in (None, ""):
            try:
                last_modified = parse_salesforce_timestamp(payload[field])
            except InvalidTimestamp as error:
                raise MalformedRequest(f"{where}: {field} {error}") from None
            break
    try:
        return SyncRequest(
            source=source,
            org_id=org_id,
            object_type=object_type,
            record_id=record_id,
            producer_id=producer_id,
            last_modified=last_modified,
            received_at=received_at,
        )
    except ValidationError as error:
        raise MalformedRequest(f"{where}: {first_problem(error)}") from None


def _producer_id(value: object, where: str) -> str:
    """The event's EventUuid (or the fallback), stripped; printable ASCII of at most 256 characters."""
    if value is not None and not isinstance(value, str):
        raise MalformedRequest(f"{where}: {EVENT_UUID_FIELD} must be a string")
    producer_id = (value or "").strip()
    if not producer_id:
        raise MalformedRequest(f"{where} has no {EVENT_UUID_FIELD}")
    if len(producer_id) > MAX_PRODUCER_ID_LENGTH:
        raise MalformedRequest(
            f"{where}: {EVENT_UUID_FIELD} is {len(producer_id)} characters; at most {MAX_PRODUCER_ID_LENGTH} "
            "are allowed"
        )
    if not is_printable_ascii(producer_id):
        raise MalformedRequest(
            f"{where}: {EVENT_UUID_FIELD} must be printable ASCII (letters, digits, punctuation)"
        )
    return producer_id


def _record_reference(payload: Mapping[str, Any], where: str) -> tuple[SyncObjectType, str]:
    for field, object_type in RECORD_ID_FIELDS:
        value = payload.get(field)
        if value in (None, ""):
            continue
        if not isinstance(value, str):
            raise MalformedRequest(f"{where}: {field} must be a string")
        try:
            article = "an" if object_type[0] in "AEIOU" else "a"
            record_id = to_case_safe_id_with_prefix(
                value.strip(), KEY_PREFIX_BY_OBJECT_TYPE[object_type], f"{article} {object_type}"
            )
        except InvalidSalesforceId as error:
            raise MalformedRequest(f"{where}: {field} {error}") from None
        return object_type, record_id
    names = " or ".join(field for field, _ in RECORD_ID_FIELDS)
    raise MalformedRequest(f"{where} names no record: expected {names}")


def event_org_id(payload: Mapping[str, Any]) -> str | None:
    """The organization an event names in `OrganizationId`, or None when it names none."""
    value = payload.get(ORGANIZATION_ID_FIELD)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise MalformedRequest(f"{ORGANIZATION_ID_FIELD} must be a string")
    return value.strip()
