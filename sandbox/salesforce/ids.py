"""Salesforce record ids: key prefixes, the 3-character case-safe suffix, parsing and generation.

A record id is 15 case-sensitive characters (3-character key prefix, 2-character instance, 1 reserved
character, 9 base-62 characters). The 18-character form appends a suffix that encodes, for each block
of 5 characters, which ones are upper-case letters, so that the id survives case-insensitive systems.
"""

from __future__ import annotations

import random
import string
import threading

KEY_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "OpportunityLineItem": "00k",
    "Organization": "00D",
    "Pricebook2": "01s",
    "Product2": "01t",
    "PricebookEntry": "01u",
    "WorkflowOutboundMessage": "04k",
    "OutboundMessageNotification": "04l",
    "QueryLocator": "01g",
}
OBJECT_BY_PREFIX = {prefix: name for name, prefix in KEY_PREFIXES.items()}

BASE62_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
SUFFIX_ALPHABET = string.ascii_uppercase + "012345"
ID_CHARACTERS = frozenset(string.ascii_letters + string.digits)


class MalformedIdError(ValueError):
    """A string that is not a well-formed 15- or 18-character Salesforce id."""


def case_safe_suffix(id15: str) -> str:
    """The 3-character suffix of the 18-character form of `id15`."""
    if len(id15) != 15:
        raise MalformedIdError(f"a 15-character id is needed: {id15!r}")
    suffix = ""
    for block in range(3):
        bits = 0
        for position, character in enumerate(id15[block * 5 : block * 5 + 5]):
            if "A" <= character <= "Z":
                bits |= 1 << position
        suffix += SUFFIX_ALPHABET[bits]
    return suffix


def to_18(record_id: str) -> str:
    """The canonical 18-character id for a 15- or 18-character id (18-character ids may be in any case)."""
    if len(record_id) not in (15, 18) or not set(record_id) <= ID_CHARACTERS:
        raise MalformedIdError(f"not a Salesforce id: {record_id!r}")
    if len(record_id) == 15:
        return record_id + case_safe_suffix(record_id)
    suffix = record_id[15:].upper()
    if any(character not in SUFFIX_ALPHABET for character in suffix):
        raise MalformedIdError(f"not a Salesforce id: {record_id!r}")
    # The suffix says which characters are upper case: restore the case, then check the suffix.
    restored = []
    for block in range(3):
        bits = SUFFIX_ALPHABET.index(suffix[block])
        for position in range(5):
            character = record_id[block * 5 + position]
            restored.append(character.upper() if bits & (1 << position) else character.lower())
    id15 = "".join(restored)
    if case_safe_suffix(id15) != suffix:
        raise MalformedIdError(f"not a Salesforce id: {record_id!r}")
    return id15 + suffix


def to_15(record_id: str) -> str:
    """The 15-character form of an id."""
    return to_18(record_id)[:15]


def key_prefix(record_id: str) -> str:
    return record_id[:3]


def encode_base62(number: int, width: int) -> str:
    digits = ""
    while number:
        number, remainder = divmod(number, 62)
        digits = BASE62_ALPHABET[remainder] + digits
    return digits.rjust(width, "0")[-width:]


class IdGenerator:
    """Makes ids that look like one org's: a fixed instance code and an increasing base-62 counter."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.SystemRandom()
        self.instance = self._rng.choice(string.digits[1:]) + self._rng.choice(string.ascii_uppercase)
        # Start deep enough into the counter that every character position is in use.
        self._counter = self._rng.randrange(62**7, 62**8)
        self._lock = threading.Lock()

    def new_id(self, prefix: str) -> str:
        """A fresh 18-character id with the given 3-character key prefix."""
        with self._lock:
            self._counter += self._rng.randrange(1, 40)
            counter = self._counter
        return to_18(prefix + self.instance + "0" + encode_base62(counter, 9))

    def for_object(self, object_type: str) -> str:
        return self.new_id(KEY_PREFIXES[object_type])
