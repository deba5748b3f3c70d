"""Turning received field values into the SyncRequest snapshot and Salesforce timestamps into datetimes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

# Epoch milliseconds beyond this are not plausible Salesforce timestamps (year 2286).
_MAX_EPOCH_MILLISECONDS = 10**13


class InvalidTimestamp(ValueError):
    """A timestamp is neither ISO 8601 with a time zone nor epoch milliseconds."""


def snapshot_value(value: object) -> str | None:
    """One field value as a string the way Salesforce writes it in XML: true/false, numbers, JSON.

    None stays None (null / xsi:nil). Compound values (e.g. a CDC address) become compact JSON.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def snapshot_fields(
    payload: Mapping[str, object], skip: frozenset[str] = frozenset()
) -> dict[str, str | None]:
    """The snapshot of every field in `payload` except those named in `skip`."""
    return {name: snapshot_value(value) for name, value in payload.items() if name not in skip}


def parse_salesforce_timestamp(value: object) -> datetime:
    """An aware UTC datetime from ISO 8601 (2026-11-28T16:20:11.000Z / +0000) or epoch milliseconds."""
    if isinstance(value, bool):
        raise InvalidTimestamp("a timestamp cannot be true or false")
    if isinstance(value, int | float):
        if not 0 <= value < _MAX_EPOCH_MILLISECONDS:
            raise InvalidTimestamp(f"{value!r} is not a timestamp in epoch milliseconds")
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return parse_salesforce_timestamp(int(text))
        # Salesforce writes +0000; fromisoformat wants +00:00.
        if len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit() and "T" in text:
            text = f"{text[:-2]}:{text[-2:]}"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidTimestamp(f"{value[:40]!r} is not an ISO 8601 timestamp") from None
        if parsed.tzinfo is None:
            raise InvalidTimestamp(f"{value[:40]!r} has no time zone")
        return parsed.astimezone(UTC)
    raise InvalidTimestamp(f"a timestamp must be a string or a number, not {type(value).__name__}")
