"""SyncRequest: the one message shape between the intake and the workers.

Every accepted Salesforce notification (Outbound Message, Platform Event, Event Relay event, Change
Data Capture event) becomes one SyncRequest per record, serialised as the SQS message body with
`model_dump_json()`; workers read it back with `SyncRequest.model_validate_json(body)`.

A SyncRequest says which record to sync and who asked, nothing more: the workers read the record
itself from Salesforce (a notification may be partial or stale), so no field values travel on the
queue and a message stays well under 2 KiB whatever Salesforce sends (SQS takes at most 1 MiB).
Deduplication happens downstream, keyed on what the work is: object type, record id and producer id.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from sfintacct.salesforce_ids import (
    ACCOUNT_KEY_PREFIX,
    OPPORTUNITY_KEY_PREFIX,
    ORGANIZATION_KEY_PREFIX,
    to_case_safe_id,
    to_case_safe_id_with_prefix,
)

SyncSource = Literal["outbound_message", "platform_event", "event_relay", "change_data_capture"]
SyncObjectType = Literal["Account", "Opportunity"]

SYNCED_OBJECT_TYPES: tuple[SyncObjectType, ...] = ("Account", "Opportunity")
KEY_PREFIX_BY_OBJECT_TYPE: dict[SyncObjectType, str] = {
    "Account": ACCOUNT_KEY_PREFIX,
    "Opportunity": OPPORTUNITY_KEY_PREFIX,
}
MAX_PRODUCER_ID_LENGTH = 256
# Older messages carried the notification's field values under this key; read and ignored.
LEGACY_FIELD_SNAPSHOT_KEY = "fields"


class SyncRequest(BaseModel):
    """Sync one Salesforce record: which org, which object and record, and who asked (for dedupe).

    Unknown keys are refused, except `fields`: messages written before the field snapshot was dropped
    carry one, and they are still read (the snapshot is ignored). It is never written.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: SyncSource
    org_id: str = Field(description="18-character id of the Salesforce org (prefix 00D)")
    object_type: SyncObjectType
    record_id: str = Field(description="18-character case-safe id of the record")
    producer_id: str = Field(
        min_length=1,
        max_length=MAX_PRODUCER_ID_LENGTH,
        description="Who asked (with object type and record id, the idempotency key): notification Id, "
        "EventUuid, CDC transactionKey:sequenceNumber:recordId",
    )
    last_modified: AwareDatetime | None = Field(
        default=None, description="LastModifiedDate when the notification carried it (CDC: commitTimestamp)"
    )
    received_at: AwareDatetime

    @model_validator(mode="before")
    @classmethod
    def _ignore_legacy_field_snapshot(cls, data: Any) -> Any:
        if isinstance(data, dict) and LEGACY_FIELD_SNAPSHOT_KEY in data:
            return {key: value for key, value in data.items() if key != LEGACY_FIELD_SNAPSHOT_KEY}
        return data

    @field_validator("org_id")
    @classmethod
    def _org_id_is_case_safe(cls, value: str) -> str:
        return to_case_safe_id_with_prefix(value, ORGANIZATION_KEY_PREFIX, "an organization")

    @field_validator("record_id")
    @classmethod
    def _record_id_is_case_safe(cls, value: str) -> str:
        return to_case_safe_id(value)

    @model_validator(mode="after")
    def _record_id_matches_object_type(self) -> Self:
        key_prefix = KEY_PREFIX_BY_OBJECT_TYPE[self.object_type]
        article = "an" if self.object_type[0] in "AEIOU" else "a"
        to_case_safe_id_with_prefix(self.record_id, key_prefix, f"{article} {self.object_type}")
        return self
