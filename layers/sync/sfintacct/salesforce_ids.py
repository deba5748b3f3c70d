"""Salesforce record ids: validation and the 15 -> 18 character (case-safe) conversion.

A Salesforce id is 15 case-sensitive characters (3-character key prefix naming the object, e.g. 001
Account, 006 Opportunity, 00D organization, 005 user) or the same 15 characters followed by a
3-character suffix that encodes which of them are upper case, so the id survives case-insensitive
systems. Everything downstream stores the 18-character form.
"""

from __future__ import annotations

import re

_ID_PATTERN = re.compile(r"[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?")
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"

ORGANIZATION_KEY_PREFIX = "00D"
USER_KEY_PREFIX = "005"
ACCOUNT_KEY_PREFIX = "001"
OPPORTUNITY_KEY_PREFIX = "006"


class InvalidSalesforceId(ValueError):
    """A value is not a well-formed Salesforce id (or not one of the expected object)."""


def case_safe_suffix(id15: str) -> str:
    """The 3-character suffix Salesforce appends to a 15-character id.

    Each 5-character chunk gives one character: bit i is set when character i of the chunk is an
    upper-case letter A-Z, and the 5-bit number indexes "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345".
    """
    if len(id15) != 15:
        raise InvalidSalesforceId("the case-safe suffix is computed from exactly 15 characters")
    suffix = []
    for start in range(0, 15, 5):
        bits = 0
        for position, character in enumerate(id15[start : start + 5]):
            if "A" <= character <= "Z":
                bits |= 1 << position
        suffix.append(_SUFFIX_ALPHABET[bits])
    return "".join(suffix)


def to_case_safe_id(value: str) -> str:
    """Return the 18-character form of a 15- or 18-character id; refuse anything else.

    An 18-character id must carry the suffix that matches its first 15 characters, so a corrupted
    or re-cased id is refused rather than silently pointing at another record.
    """
    if not isinstance(value, str) or _ID_PATTERN.fullmatch(value) is None:
        raise InvalidSalesforceId(f"{_describe(value)} is not a Salesforce id (15 or 18 letters and digits)")
    expected_suffix = case_safe_suffix(value[:15])
    if len(value) == 18 and value[15:] != expected_suffix:
        raise InvalidSalesforceId(f"{_describe(value)} has a case-safe suffix that does not match the id")
    return value[:15] + expected_suffix


def to_case_safe_id_with_prefix(value: str, key_prefix: str, what: str) -> str:
    """Like `to_case_safe_id`, and the id must start with `key_prefix` (e.g. 006 for an Opportunity)."""
    case_safe = to_case_safe_id(value)
    if not case_safe.startswith(key_prefix):
        raise InvalidSalesforceId(f"{_describe(value)} is not {what} id (those start with {key_prefix})")
    return case_safe


def is_salesforce_id(value: str) -> bool:
    """True when `value` is a valid 15- or 18-character Salesforce id."""
    try:
        to_case_safe_id(value)
    except InvalidSalesforceId:
        return False
    return True


def _describe(value: object) -> str:
    """A short, printable rendering of a rejected value for error messages."""
    text = value if isinstance(value, str) else repr(value)
    printable = "".join(character if character.isprintable() else "?" for character in text[:40])
    return f"'{printable}{'...' if len(text) > 40 else ''}'"
