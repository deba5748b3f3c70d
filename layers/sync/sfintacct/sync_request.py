"""SyncRequest: the one message shape between the intake and the workers.

Every accepted Salesforce notification (Outbound Message, Platform Event, Event Relay event, Change
Data Capture event) becomes one SyncRequest per record, serialised as the SQS message body with
`model_dump_json()`; workers read it back with `SyncRequest.model_validate_json(body)`.

The field snapshot is what the notification carried and may be partial or stale: it tells a worker
which record to sync, not what to write. Deduplication happens downstream, keyed on `producer_id`.
"""

from __future__ import annotations

from typing import Literal, Self

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


class SyncRequest(BaseModel):
    """Sync one Salesforce record: which org, which object and record, and who asked (for dedupe)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: SyncSource
    org_id: str = Field(description="18-character id of the Salesforce org (prefix 00D)")
    object_type: SyncObjectType
    record_id: str = Field(description="18-character case-safe id of the record")
    producer_id: str = Field(
        min_length=1,
        max_length=MAX_PRODUCER_ID_LENGTH,
        description="Idempotency key: notification Id, EventUuid, CDC transactionKey:sequenceNumber:recordId",
    )
    fields: dict[str, str | None] = Field(description="Field snapshot as received; null -> None")
    last_modified: AwareDatetime | None = Field(
        default=None, description="LastModifiedDate when the notification carried it (CDC: commitTimestamp)"
    )
    received_at: AwareDatetime

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
