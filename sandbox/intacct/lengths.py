"""The longest values the sandbox accepts in the fields it stores, and the check that enforces them.

Only lengths with a source are enforced (the table and its sources are in README.md, "Field lengths");
`PUT /admin/config {"extra_field_lengths": {"CUSTOMER.DISPLAYCONTACT.COMPANYNAME": 100, ...}}` adds
unconfirmed ones. Keys are `<OBJECT>.<path>`: for CUSTOMER the field path of the generic functions
(`DISPLAYCONTACT.MAILADDRESS.CITY`), for SODOCUMENT and SODOCUMENTENTRY the element name of
create_sotransaction / update_sotransaction (`referenceno`, `memo`).
"""

from __future__ import annotations

from typing import Any

from sandbox.intacct.errors import IntacctError, business_error
from sandbox.intacct.store import SandboxState

LENGTH_OBJECTS = ("CUSTOMER", "SODOCUMENT", "SODOCUMENTENTRY")

# Intacct help, "CSV imports: Contact field definitions": CONTACT_NAME, Character, length 200.
# DataBlend's Intacct target pages (third-party): "free text (N)".
SOURCED_LENGTHS: dict[str, int] = {
    "CUSTOMER.DISPLAYCONTACT.CONTACTNAME": 200,
    "CUSTOMER.DISPLAYCONTACT.FIRSTNAME": 40,
    "CUSTOMER.DISPLAYCONTACT.LASTNAME": 40,
    "CUSTOMER.DISPLAYCONTACT.INITIAL": 40,
    "CUSTOMER.DISPLAYCONTACT.PHONE1": 30,
    "CUSTOMER.DISPLAYCONTACT.PHONE2": 30,
    "CUSTOMER.DISPLAYCONTACT.CELLPHONE": 30,
    "CUSTOMER.DISPLAYCONTACT.PAGER": 30,
    "CUSTOMER.DISPLAYCONTACT.FAX": 30,
    "CUSTOMER.DISPLAYCONTACT.EMAIL1": 200,
    "CUSTOMER.DISPLAYCONTACT.EMAIL2": 200,
    "CUSTOMER.DISPLAYCONTACT.MAILADDRESS.ADDRESS1": 255,
    "CUSTOMER.DISPLAYCONTACT.MAILADDRESS.ADDRESS2": 255,
    "CUSTOMER.DISPLAYCONTACT.MAILADDRESS.ADDRESS3": 255,
    "CUSTOMER.DISPLAYCONTACT.MAILADDRESS.CITY": 80,
    "CUSTOMER.DISPLAYCONTACT.MAILADDRESS.COUNTRY": 60,
    "CUSTOMER.COMMENTS": 200,
}


def length_limits(state: SandboxState, object_name: str) -> dict[str, int]:
    """Field path -> maximum length for one object: the sourced ones plus those the config adds."""
    prefix = object_name + "."
    limits = {**SOURCED_LENGTHS, **state.config.extra_field_lengths}
    return {key.removeprefix(prefix): limit for key, limit in limits.items() if key.startswith(prefix)}


def too_long_error(path: str, value: str, limit: int) -> IntacctError:
    return business_error(
        f"{path} is too long: {len(value)} characters, at most {limit} are allowed.",
        correction=f"Send at most {limit} characters in {path}.",
    )


def first_too_long(limits: dict[str, int], values: dict[str, Any], prefix: str = "") -> IntacctError | None:
    """The error for the first value (nested groups included) longer than its limit, or None."""
    for name, value in values.items():
        path = prefix + name
        if isinstance(value, dict):
            error = first_too_long(limits, value, path + ".")
            if error is not None:
                return error
        elif isinstance(value, str) and path in limits and len(value) > limits[path]:
            return too_long_error(path, value, limits[path])
    return None
