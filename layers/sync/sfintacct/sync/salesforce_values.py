"""Reading the few Salesforce values the sync logic itself decides on."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sfintacct.intake.field_values import parse_salesforce_timestamp


def modified_at(record: Mapping[str, Any]) -> datetime | None:
    """LastModifiedDate as an aware UTC datetime ("2026-11-28T10:00:00.000+0000"), None if absent."""
    value = record.get("LastModifiedDate")
    return parse_salesforce_timestamp(value) if value else None


def is_won(opportunity: Mapping[str, Any]) -> bool:
    return opportunity.get("IsWon") is True or str(opportunity.get("IsWon")).lower() == "true"


def change_stamp(moment: datetime | None) -> str:
    """A compact, sortable text of a LastModifiedDate, for control ids (20261128T100000123)."""
    return moment.strftime("%Y%m%dT%H%M%S%f")[:-3] if moment is not None else "unknown"
