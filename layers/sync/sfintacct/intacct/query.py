"""Query filters for the `query` function, and safe literals for readByQuery query strings.

    all_of(equal_to("STATUS", "active"), in_list("ITEMID", ["A", "B"]))

Filter values travel as XML text, so ElementTree escapes them. Field names are checked against a
strict pattern because they become element text the gateway interprets as a field path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement

from sfintacct.intacct.errors import IntacctRequestError

_FIELD_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_OBJECT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_SINGLE_VALUE_OPERATORS = frozenset(
    {
        "equalto",
        "notequalto",
        "lessthan",
        "lessthanorequalto",
        "greaterthan",
        "greaterthanorequalto",
        "like",
        "notlike",
    }
)


def check_field_path(name: str) -> str:
    """A field name or dotted path (DISPLAYCONTACT.EMAIL1); IntacctRequestError otherwise."""
    if not _FIELD_PATH.match(name):
        raise IntacctRequestError(f"Not a valid field name: {name!r}")
    return name


def check_object_name(name: str) -> str:
    """An object name such as CUSTOMER or SODOCUMENT."""
    if not _OBJECT_NAME.match(name):
        raise IntacctRequestError(f"Not a valid object name: {name!r}")
    return name


@dataclass(frozen=True)
class Condition:
    """`<operator><field/><value/>...</operator>`."""

    operator: str
    field: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class AllOf:
    """`<and>` of two or more filters."""

    filters: tuple[Filter, ...]


@dataclass(frozen=True)
class AnyOf:
    """`<or>` of two or more filters."""

    filters: tuple[Filter, ...]


Filter = Condition | AllOf | AnyOf


def _condition(operator: str, field: str, values: Iterable[str]) -> Condition:
    return Condition(operator, check_field_path(field), tuple(values))


def equal_to(field: str, value: str) -> Condition:
    return _condition("equalto", field, [value])


def not_equal_to(field: str, value: str) -> Condition:
    return _condition("notequalto", field, [value])


def greater_than(field: str, value: str) -> Condition:
    return _condition("greaterthan", field, [value])


def greater_than_or_equal_to(field: str, value: str) -> Condition:
    return _condition("greaterthanorequalto", field, [value])


def less_than_or_equal_to(field: str, value: str) -> Condition:
    return _condition("lessthanorequalto", field, [value])


def like(field: str, pattern: str) -> Condition:
    return _condition("like", field, [pattern])


def in_list(field: str, values: Iterable[str]) -> Condition:
    listed = tuple(values)
    if not listed:
        raise IntacctRequestError("An `in` filter needs at least one value")
    return _condition("in", field, listed)


def is_null(field: str) -> Condition:
    return _condition("isnull", field, [])


def is_not_null(field: str) -> Condition:
    return _condition("isnotnull", field, [])


def all_of(*filters: Filter) -> Filter:
    """Every filter must match; a single filter is returned as is."""
    if not filters:
        raise IntacctRequestError("all_of needs at least one filter")
    return filters[0] if len(filters) == 1 else AllOf(tuple(filters))


def any_of(*filters: Filter) -> Filter:
    """At least one filter must match; a single filter is returned as is."""
    if not filters:
        raise IntacctRequestError("any_of needs at least one filter")
    return filters[0] if len(filters) == 1 else AnyOf(tuple(filters))


def filter_element(parent: Element, query_filter: Filter) -> Element:
    """Append the XML form of a filter to `parent` and return it."""
    if isinstance(query_filter, AllOf | AnyOf):
        node = SubElement(parent, "and" if isinstance(query_filter, AllOf) else "or")
        for child in query_filter.filters:
            filter_element(node, child)
        return node
    if query_filter.operator in _SINGLE_VALUE_OPERATORS and len(query_filter.values) != 1:
        raise IntacctRequestError(f"<{query_filter.operator}> takes exactly one value")
    node = SubElement(parent, query_filter.operator)
    SubElement(node, "field").text = query_filter.field
    for value in query_filter.values:
        SubElement(node, "value").text = value
    return node


def quote_query_value(value: str) -> str:
    """A readByQuery string literal: single-quoted, with backslashes and quotes escaped (`'Jane\\'s'`)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def equals_clause(field: str, value: str) -> str:
    """`FIELD = 'value'` for a readByQuery query string, safely quoted."""
    return f"{check_field_path(field)} = {quote_query_value(value)}"
