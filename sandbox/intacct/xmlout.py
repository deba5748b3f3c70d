"""Helpers to read request elements and build response elements (parsing itself is defusedxml)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from xml.etree.ElementTree import Element, SubElement

from sandbox.intacct.errors import IntacctError


def child_text(element: Element, tag: str, default: str = "") -> str:
    """Stripped text of the first child `tag`, or `default` when the child is absent."""
    child = element.find(tag)
    if child is None:
        return default
    return (child.text or "").strip()


def add_text(parent: Element, tag: str, text: str | None) -> Element:
    """Append `<tag>text</tag>` (an empty element for None) and return it."""
    child = SubElement(parent, tag)
    child.text = text if text else None
    return child


def add_errors(parent: Element, errors: Iterable[IntacctError]) -> Element:
    """Append an `<errormessage>` holding the errors, each with all four fields."""
    message = SubElement(parent, "errormessage")
    for error in errors:
        node = SubElement(message, "error")
        add_text(node, "errorno", error.errorno)
        add_text(node, "description", error.description)
        add_text(node, "description2", error.description2)
        add_text(node, "correction", error.correction)
    return message


def add_value(parent: Element, tag: str, value: Any) -> None:
    """Append a field: a string as text, a dict as a nested group of fields."""
    if isinstance(value, dict):
        group = SubElement(parent, tag)
        for name, inner in value.items():
            add_value(group, name, inner)
    else:
        add_text(parent, tag, None if value is None else str(value))
