"""Salesforce timestamps as datetimes, and the checks every untrusted value gets before it is used.

Everything here refuses a malformed value with a ValueError subclass that says what is wrong, never
with another exception type (OverflowError, a bare ValueError from int()), so callers can turn it
into a refusal that names the field.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ValidationError

# Epoch milliseconds beyond this are not plausible Salesforce timestamps (year 2286).
_MAX_EPOCH_MILLISECONDS = 10**13
_MAX_EPOCH_MILLISECONDS_DIGITS = len(str(_MAX_EPOCH_MILLISECONDS))
# An ISO 8601 timestamp with fractions and an offset is about 30 characters; longer text is not one.
_MAX_TIMESTAMP_LENGTH = 64
_SHOWN_LENGTH = 40


class InvalidTimestamp(ValueError):
    """A timestamp is neither ISO 8601 with a time zone nor epoch milliseconds, or it is out of range."""


def parse_salesforce_timestamp(value: object) -> datetime:
    """An aware UTC datetime from ISO 8601 (2026-11-28T16:20:11.000Z / +0000) or epoch milliseconds.

    Raises `InvalidTimestamp` (a ValueError) for anything else, including moments that cannot be
    expressed in UTC (0001-01-01T00:00:00+1400) and digits other than ASCII 0-9.
    """
    if isinstance(value, bool):
        raise InvalidTimestamp("a timestamp cannot be true or false")
    if isinstance(value, int | float):
        if not 0 <= value < _MAX_EPOCH_MILLISECONDS:
            raise InvalidTimestamp(f"{_describe_number(value)} is not a timestamp in epoch milliseconds")
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        return _parse_text(value)
    raise InvalidTimestamp(f"a timestamp must be a string or a number, not {type(value).__name__}")


def _parse_text(value: str) -> datetime:
    text = value.strip()
    shown = printable(value)
    if is_ascii_digits(text):
        if len(text) > _MAX_EPOCH_MILLISECONDS_DIGITS:
            raise InvalidTimestamp(f"{shown} is not a timestamp in epoch milliseconds")
        return parse_salesforce_timestamp(int(text))
    if len(text) > _MAX_TIMESTAMP_LENGTH:
        raise InvalidTimestamp(f"{shown} is not an ISO 8601 timestamp")
    # Salesforce writes +0000; fromisoformat wants +00:00.
    if len(text) > 5 and text[-5] in "+-" and is_ascii_digits(text[-4:]) and "T" in text:
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidTimestamp(f"{shown} is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        raise InvalidTimestamp(f"{shown} has no time zone")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise InvalidTimestamp(f"{shown} is out of range once converted to UTC") from None


def is_ascii_digits(text: str) -> bool:
    """True for one or more of 0-9 only (str.isdigit alone also accepts e.g. '²' and '٣')."""
    return text.isascii() and text.isdigit()


def is_printable_ascii(text: str) -> bool:
    """True when every character is printable ASCII (space to tilde): safe as a key and a queue attribute."""
    return text.isascii() and text.isprintable()


def printable(text: str, limit: int = _SHOWN_LENGTH) -> str:
    """`text` quoted and shortened for an error message, with unprintable characters shown as '?'."""
    shown = "".join(character if character.isprintable() else "?" for character in text[:limit])
    return f"'{shown}{'...' if len(text) > limit else ''}'"


def _describe_number(value: float) -> str:
    if isinstance(value, int) and not -_MAX_EPOCH_MILLISECONDS < value < _MAX_EPOCH_MILLISECONDS:
        return f"a number of more than {_MAX_EPOCH_MILLISECONDS_DIGITS - 1} digits"  # repr() may fail
    return repr(value)


def first_problem(error: ValidationError) -> str:
    """The first problem of a pydantic validation error, naming the field: 'producer_id: String ...'."""
    detail = error.errors(include_url=False, include_input=False)[0]
    location = ".".join(str(part) for part in detail["loc"])
    return f"{location}: {detail['msg']}" if location else str(detail["msg"])
