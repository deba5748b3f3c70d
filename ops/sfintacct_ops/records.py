"""Record ids and the SyncRequests the command puts on the work queues."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sfintacct.salesforce_ids import InvalidSalesforceId, to_case_safe_id
from sfintacct.sync_request import KEY_PREFIX_BY_OBJECT_TYPE, SyncObjectType, SyncRequest, SyncSource

# The command asks for work the way the package's "Retry Sync" callout does: a signed Platform Event
# carries no LastModifiedDate, which the workers take as "a retry asked for" (always worth a look).
SOURCE: SyncSource = "platform_event"


def case_safe_id(value: str) -> str:
    """The 18-character id of an Account (001) or Opportunity (006); ValueError otherwise."""
    record_id = to_case_safe_id(value.strip())
    object_type_of(record_id)
    return record_id


def object_type_of(record_id: str) -> SyncObjectType:
    for object_type, prefix in KEY_PREFIX_BY_OBJECT_TYPE.items():
        if record_id.startswith(prefix):
            return object_type
    raise InvalidSalesforceId(f"{record_id} is neither an Account (001) nor an Opportunity (006) id")


def new_producer_id(kind: str) -> str:
    """A producer id of its own (`retry-<uuid>`, `backfill-<uuid>`): new work, never a duplicate."""
    return f"{kind}-{uuid.uuid4()}"


def sync_request(org_id: str, record_id: str, producer_id: str) -> SyncRequest:
    return SyncRequest(
        source=SOURCE,
        org_id=org_id,
        object_type=object_type_of(record_id),
        record_id=record_id,
        producer_id=producer_id,
        last_modified=None,
        received_at=datetime.now(UTC),
    )
