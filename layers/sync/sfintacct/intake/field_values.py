"""Salesforce timestamps (ISO 8601 or epoch milliseconds) as aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime

# Epoch milliseconds beyond this are not plausible Salesforce timestamps (year 2286).
_MAX_EPOCH_MILLISECONDS = 10**13


class InvalidTimestamp(ValueError):
    """A timestamp is neither ISO 8601 with a time zone nor epoch milliseconds."""


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
