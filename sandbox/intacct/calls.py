"""What every gateway function shares: its call context, its output, and helpers for objects and fields."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from xml.etree.ElementTree import Element, SubElement

from sandbox.intacct.errors import (
    SCHEMA_ERROR,
    FunctionFailure,
    IntacctError,
    business_error,
    query_error,
)
from sandbox.intacct.query import (
    Expression,
    fields_in,
)
from sandbox.intacct.store import (
    NESTED_GROUPS,
    OBJECTS,
    TRANSACTION_DEFINITIONS,
    Record,
    SandboxState,
)
from sandbox.intacct.xmlout import add_value, child_text


@dataclass
class CallContext:
    """Who is calling and when: the authenticated company, user and entity of the operation."""

    state: SandboxState
    company_id: str
    user_id: str
    location_id: str
    session_id: str | None
    session_endpoint: str
    now: datetime


@dataclass
class FunctionOutput:
    """What a successful function returns: a `<data>` element, a legacy `<key>`, or neither."""

    data: Element | None = None
    key: str | None = None


Handler = Callable[[CallContext, Element], FunctionOutput]


def object_name(element: Element) -> str:
    """The object named by `<object>` (upper-cased); a failure if the gateway does not know it."""
    name = child_text(element, "object").upper()
    if not name:
        raise FunctionFailure(IntacctError(SCHEMA_ERROR, "", "The <object> element is required."))
    if name not in OBJECTS:
        raise query_error(f"Object definition {name} not found")
    return name


def known_field(state: SandboxState, object_name_: str, path: str) -> bool:
    """True if `path` (FIELD or GROUP.FIELD...) names a field of the object."""
    parts = path.split(".")
    if parts[0] not in state.all_fields(object_name_):
        return False
    group = parts[0]
    for part in parts[1:]:
        allowed = NESTED_GROUPS.get(group)
        if allowed is None or part not in allowed:
            return False
        group = part
    return True


def parse_field_list(state: SandboxState, object_name_: str, text: str) -> list[str] | None:
    """A comma-separated field list; None for `*` (all fields)."""
    text = text.strip()
    if text in ("", "*"):
        return None
    names = [name.strip().upper() for name in text.split(",") if name.strip()]
    for name in names:
        if name == "*":
            return None
        if not known_field(state, object_name_, name):
            raise FunctionFailure(IntacctError(f"Invalid fields list {name}"))
    return names


def check_filter_fields(state: SandboxState, object_name_: str, expression: Expression | None) -> None:
    for name in fields_in(expression):
        if not known_field(state, object_name_, name):
            raise query_error(f"The query is not understood: {name} is not a field of {object_name_}.")


def field_at(record: Record, path: str) -> Any:
    """The value at a field path: a string, a dict for a group, or "" when absent."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return ""
        value = value.get(part, "")
    return value


def add_record_element(
    parent: Element, tag: str, record: Record, fields: list[str] | None, all_fields: list[str]
) -> Element:
    """Append one record element with the requested fields (every field, empty ones too, for `*`)."""
    node = SubElement(parent, tag)
    for name in fields if fields is not None else all_fields:
        add_value(node, name, field_at(record, name))
    return node


def page_size(element: Element, default: int, maximum: int) -> int:
    text = child_text(element, "pagesize")
    if not text:
        return default
    try:
        size = int(text)
    except ValueError as error:
        raise FunctionFailure(IntacctError(SCHEMA_ERROR, "", f"Invalid pagesize {text!r}.")) from error
    return max(1, min(size, maximum))


def check_return_format(element: Element) -> None:
    for tag in ("returnFormat", "returnformat"):
        value = child_text(element, tag)
        if value and value.lower() != "xml":
            raise FunctionFailure(business_error(f"Return format {value} is not available here; use xml."))


def records_for(state: SandboxState, object_name_: str, docparid: str) -> list[Record]:
    """The object's records, limited to one transaction definition when `docparid` is given."""
    records = state.data.records[object_name_]
    if not docparid:
        return list(records)
    if object_name_ not in ("SODOCUMENT", "SODOCUMENTENTRY"):
        raise FunctionFailure(business_error(f"docparid is not valid for object {object_name_}."))
    if docparid not in TRANSACTION_DEFINITIONS:
        raise FunctionFailure(business_error(f"Invalid docparid {docparid}: no such transaction definition."))
    return [record for record in records if record.get("DOCPARID") == docparid]


def plain_number(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: 12000, 1.5."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def format_date(day: date) -> str:
    return day.strftime("%m/%d/%Y")
