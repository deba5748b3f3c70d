"""Builders for the gateway functions the client uses: getAPISession, create, update, query,
readByQuery, readMore and lookup. Object-specific content (CUSTOMER, create_sotransaction) is in writers.py.

Read functions get a deterministic control id derived from their content when the caller gives none,
so the same read sends the same request every time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from xml.etree.ElementTree import Element, SubElement, tostring

from sfintacct.intacct.errors import IntacctRequestError
from sfintacct.intacct.query import Filter, check_field_path, check_object_name, filter_element
from sfintacct.intacct.request import IntacctFunction, check_control_id

SESSION_CONTROL_ID = "getAPISession"
QUERY_MAX_PAGE_SIZE = 2000
READ_BY_QUERY_MAX_PAGE_SIZE = 1000


def add_text(parent: Element, tag: str, value: str) -> Element:
    """Append `<tag>value</tag>`."""
    child = SubElement(parent, tag)
    child.text = value
    return child


def derived_control_id(operation: Element) -> str:
    """A control id for a read: the function name plus a digest of its content."""
    digest = hashlib.sha256(tostring(operation, encoding="utf-8")).hexdigest()[:24]
    return f"{operation.tag}-{digest}"


def read_function(operation: Element, control_id: str | None) -> IntacctFunction:
    chosen = check_control_id(control_id) if control_id else derived_control_id(operation)
    return IntacctFunction(control_id=chosen, operation=operation, writes=False)


def write_function(operation: Element, control_id: str) -> IntacctFunction:
    return IntacctFunction(control_id=check_control_id(control_id), operation=operation, writes=True)


def get_api_session(location_id: str | None = None) -> IntacctFunction:
    """`<getAPISession/>`, optionally for an entity: `<getAPISession><locationid>E</locationid>`."""
    operation = Element("getAPISession")
    if location_id:
        add_text(operation, "locationid", location_id)
    return IntacctFunction(control_id=SESSION_CONTROL_ID, operation=operation, writes=False)


def create(objects: Sequence[Element], *, control_id: str) -> IntacctFunction:
    """Generic `<create>` of one or more object elements (`<CUSTOMER>...`)."""
    return write_function(_generic("create", objects), control_id)


def update(objects: Sequence[Element], *, control_id: str) -> IntacctFunction:
    """Generic `<update>` of one or more object elements, each identified by RECORDNO or its ID field."""
    return write_function(_generic("update", objects), control_id)


def _generic(name: str, objects: Sequence[Element]) -> Element:
    if not objects:
        raise IntacctRequestError(f"<{name}> needs at least one object")
    operation = Element(name)
    operation.extend(objects)
    return operation


def query(
    object_name: str,
    fields: Sequence[str],
    *,
    query_filter: Filter | None = None,
    order_by: Sequence[tuple[str, bool]] = (),
    case_insensitive: bool = False,
    page_size: int = 100,
    offset: int = 0,
    docparid: str | None = None,
    control_id: str | None = None,
) -> IntacctFunction:
    """The `query` function; `order_by` holds (field, descending) pairs."""
    if not fields:
        raise IntacctRequestError("query needs at least one field to select")
    operation = Element("query")
    add_text(operation, "object", check_object_name(object_name))
    select = SubElement(operation, "select")
    for name in fields:
        add_text(select, "field", check_field_path(name))
    if query_filter is not None:
        filter_element(SubElement(operation, "filter"), query_filter)
    if order_by:
        orderby = SubElement(operation, "orderby")
        for name, descending in order_by:
            order = SubElement(orderby, "order")
            add_text(order, "field", check_field_path(name))
            if descending:
                SubElement(order, "descending")
    if case_insensitive:
        options = SubElement(operation, "options")
        add_text(options, "caseinsensitive", "true")
    add_text(operation, "pagesize", str(_page_size(page_size, QUERY_MAX_PAGE_SIZE)))
    add_text(operation, "offset", str(max(0, offset)))
    if docparid:
        add_text(operation, "docparid", docparid)
    return read_function(operation, control_id)


def read_by_query(
    object_name: str,
    *,
    query_text: str = "",
    fields: Sequence[str] = ("*",),
    page_size: int = 100,
    docparid: str | None = None,
    control_id: str | None = None,
) -> IntacctFunction:
    """The legacy `readByQuery` function; build `query_text` with query.equals_clause and friends."""
    operation = Element("readByQuery")
    add_text(operation, "object", check_object_name(object_name))
    if list(fields) == ["*"]:
        add_text(operation, "fields", "*")
    else:
        add_text(operation, "fields", ",".join(check_field_path(name) for name in fields))
    add_text(operation, "query", query_text)
    add_text(operation, "pagesize", str(_page_size(page_size, READ_BY_QUERY_MAX_PAGE_SIZE)))
    if docparid:
        add_text(operation, "docparid", docparid)
    return read_function(operation, control_id)


def read_more(result_id: str, *, control_id: str | None = None) -> IntacctFunction:
    """`<readMore><resultId>...</resultId></readMore>`: the next page of a readByQuery."""
    if not result_id:
        raise IntacctRequestError("readMore needs the resultId of a readByQuery")
    operation = Element("readMore")
    add_text(operation, "resultId", result_id)
    return read_function(operation, control_id)


def lookup(
    object_name: str, *, docparid: str | None = None, control_id: str | None = None
) -> IntacctFunction:
    """`<lookup><object>CUSTOMER</object></lookup>`: the object's definition, its custom fields included.

    `docparid` names the transaction definition for document objects (SODOCUMENT, SODOCUMENTENTRY).
    """
    operation = Element("lookup")
    add_text(operation, "object", check_object_name(object_name))
    if docparid:
        add_text(operation, "docparid", docparid)
    return read_function(operation, control_id)


def _page_size(size: int, maximum: int) -> int:
    if size < 1:
        raise IntacctRequestError("page_size must be at least 1")
    return min(size, maximum)
