"""Read functions: readByQuery, readMore, query, read, readByName and lookup."""

from __future__ import annotations

import copy
import secrets
from xml.etree.ElementTree import Element, SubElement

from sandbox.intacct.calls import (
    CallContext,
    FunctionOutput,
    add_record_element,
    check_filter_fields,
    check_return_format,
    known_field,
    object_name,
    page_size,
    parse_field_list,
    records_for,
)
from sandbox.intacct.errors import (
    FunctionFailure,
    business_error,
    query_error,
)
from sandbox.intacct.query import (
    Expression,
    QueryError,
    matches,
    parse_filter,
    parse_query_string,
    sort_records,
)
from sandbox.intacct.receivables import with_derived_fields
from sandbox.intacct.store import (
    NESTED_GROUPS,
    OBJECTS,
    Record,
    ResultSet,
    SandboxState,
)
from sandbox.intacct.xmlout import add_text, child_text

READ_BY_QUERY_DEFAULT_PAGE = 100
READ_BY_QUERY_MAX_PAGE = 1000
QUERY_DEFAULT_PAGE = 100
QUERY_MAX_PAGE = 2000
READ_MAX_KEYS = 100


def readable_records(context: CallContext, name: str, element: Element) -> list[Record]:
    """The object's records a read sees (one transaction definition's with `docparid`), with the fields
    worked out on the day of the read (an ARINVOICE's DUE_IN_DAYS)."""
    records = records_for(context.state, name, child_text(element, "docparid"))
    return with_derived_fields(name, records, context.now.date())


def read_by_query(context: CallContext, element: Element) -> FunctionOutput:
    state = context.state
    name = object_name(element)
    check_return_format(element)
    fields = parse_field_list(state, name, child_text(element, "fields", "*"))
    query_text = child_text(element, "query")
    try:
        expression = parse_query_string(query_text)
    except QueryError as error:
        raise query_error(f"The query is not understood: {error} (query: {query_text})") from error
    check_filter_fields(state, name, expression)
    size = page_size(element, READ_BY_QUERY_DEFAULT_PAGE, READ_BY_QUERY_MAX_PAGE)
    rows = [
        copy.deepcopy(record)
        for record in readable_records(context, name, element)
        if matches(expression, record)
    ]
    result_set = ResultSet(
        result_id=secrets.token_hex(16),
        object_name=name,
        rows=rows,
        fields=fields if fields is not None else state.all_fields(name),
        page_size=size,
        position=0,
    )
    return FunctionOutput(data=next_page(state, result_set))


def next_page(state: SandboxState, result_set: ResultSet) -> Element:
    """The next page of a readByQuery result; the set is kept for readMore while rows remain."""
    start = result_set.position
    page = result_set.rows[start : start + result_set.page_size]
    result_set.position = start + len(page)
    remaining = len(result_set.rows) - result_set.position
    if remaining > 0:
        state.remember_result_set(result_set)
    else:
        state.result_sets.pop(result_set.result_id, None)
    data = Element(
        "data",
        {
            "listtype": result_set.object_name.lower(),
            "count": str(len(page)),
            "totalcount": str(len(result_set.rows)),
            "numremaining": str(remaining),
            "resultId": result_set.result_id if remaining > 0 else "",
        },
    )
    for record in page:
        add_record_element(data, result_set.object_name.lower(), record, result_set.fields, result_set.fields)
    return data


def read_more(context: CallContext, element: Element) -> FunctionOutput:
    state = context.state
    result_id = child_text(element, "resultId") or child_text(element, "resultid")
    result_set: ResultSet | None = None
    if result_id:
        result_set = state.result_sets.get(result_id)
    else:
        name = child_text(element, "object").upper()
        for candidate in reversed(list(state.result_sets.values())):
            if candidate.object_name == name:
                result_set = candidate
                break
    if result_set is None:
        raise FunctionFailure(
            business_error(
                f"Invalid resultId {result_id}: there is no pending readByQuery result with that id.",
                correction="Run readByQuery again.",
            )
        )
    return FunctionOutput(data=next_page(state, result_set))


def query(context: CallContext, element: Element) -> FunctionOutput:
    state = context.state
    name = object_name(element)
    select = element.find("select")
    selected = [] if select is None else [(child.text or "").strip().upper() for child in select]
    if select is not None and any(child.tag != "field" for child in select):
        raise query_error("Only <field> elements are supported in <select>.")
    if not selected or any(not field_name for field_name in selected):
        raise query_error(
            "A <select> with at least one <field> is required; selecting all fields is not supported."
        )
    for field_name in selected:
        if not known_field(state, name, field_name):
            raise query_error(f"Invalid field {field_name} in <select> for object {name}.")
    expression: Expression | None = None
    filter_element = element.find("filter")
    if filter_element is not None and len(filter_element) > 0:
        if len(filter_element) != 1:
            raise query_error("<filter> must hold exactly one condition; combine several with <and> or <or>.")
        try:
            expression = parse_filter(filter_element[0])
        except QueryError as error:
            raise query_error(f"The filter is not understood: {error}") from error
    check_filter_fields(state, name, expression)
    options = element.find("options")
    case_insensitive = options is not None and child_text(options, "caseinsensitive").lower() == "true"
    if options is not None:
        return_format = child_text(options, "returnformat")
        if return_format and return_format.lower() != "xml":
            raise FunctionFailure(
                business_error(f"Return format {return_format} is not available here; use xml.")
            )
    order = parse_order(state, name, element.find("orderby"))
    size = page_size(element, QUERY_DEFAULT_PAGE, QUERY_MAX_PAGE)
    offset_text = child_text(element, "offset") or "0"
    if not (offset_text.isascii() and offset_text.isdigit()):
        raise query_error(f"Invalid offset {offset_text!r}.")
    offset = int(offset_text)
    rows = [
        record
        for record in readable_records(context, name, element)
        if matches(expression, record, case_insensitive=case_insensitive)
    ]
    rows = sort_records(rows, order, case_insensitive=case_insensitive)
    page = rows[offset : offset + size]
    data = Element(
        "data",
        {
            "listtype": name,
            "totalcount": str(len(rows)),
            "offset": str(offset),
            "count": str(len(page)),
            "numremaining": str(max(0, len(rows) - offset - len(page))),
        },
    )
    for record in page:
        add_record_element(data, name, record, selected, selected)
    return FunctionOutput(data=data)


def parse_order(state: SandboxState, name: str, orderby: Element | None) -> list[tuple[str, bool]]:
    if orderby is None:
        return []
    order: list[tuple[str, bool]] = []
    for item in orderby.findall("order"):
        field_name = child_text(item, "field").upper()
        if not known_field(state, name, field_name):
            raise query_error(f"Invalid field {field_name} in <orderby> for object {name}.")
        order.append((field_name, item.find("descending") is None))
    return order


def read(context: CallContext, element: Element) -> FunctionOutput:
    state = context.state
    name = object_name(element)
    check_return_format(element)
    fields = parse_field_list(state, name, child_text(element, "fields", "*"))
    keys = split_keys(child_text(element, "keys"))
    records = readable_records(context, name, element)
    if keys:
        by_recordno = {record["RECORDNO"]: record for record in records}
        found = [by_recordno[key] for key in keys if key in by_recordno]
    else:
        found = records[:READ_MAX_KEYS]
    return FunctionOutput(data=records_data(state, name, found, fields))


def read_by_name(context: CallContext, element: Element) -> FunctionOutput:
    state = context.state
    name = object_name(element)
    check_return_format(element)
    name_field = OBJECTS[name].name_field
    if name_field is None:
        raise FunctionFailure(business_error(f"readByName is not available for object {name}; use read."))
    fields = parse_field_list(state, name, child_text(element, "fields", "*"))
    keys = split_keys(child_text(element, "keys"))
    records = readable_records(context, name, element)
    found = [record for key in keys for record in records if record.get(name_field) == key]
    return FunctionOutput(data=records_data(state, name, found, fields))


def split_keys(text: str) -> list[str]:
    keys = [key.strip() for key in text.split(",") if key.strip()]
    if len(keys) > READ_MAX_KEYS:
        raise FunctionFailure(business_error(f"Too many keys: at most {READ_MAX_KEYS} per request."))
    return keys


def records_data(state: SandboxState, name: str, records: list[Record], fields: list[str] | None) -> Element:
    """`<data listtype="OBJECT" count="n">` with upper-case record elements, as read and readByName return."""
    data = Element("data", {"listtype": name, "count": str(len(records))})
    all_fields = state.all_fields(name)
    for record in records:
        node = add_record_element(data, name, record, fields, all_fields)
        if name == "SODOCUMENT" and fields is None:
            entries = SubElement(node, "SODOCUMENTENTRIES")
            line_fields = state.all_fields("SODOCUMENTENTRY")
            for line in state.data.records["SODOCUMENTENTRY"]:
                if line["DOCHDRID"] == record["DOCID"]:
                    add_record_element(entries, "sodocumententry", line, None, line_fields)
    return data


def lookup(context: CallContext, element: Element) -> FunctionOutput:
    """The object definition: its fields, which are custom, required or read-only."""
    state = context.state
    name = object_name(element)
    definition = OBJECTS[name]
    custom = set(state.custom_fields(name))
    data = Element("data", {"listtype": "All", "count": "1"})
    object_type = SubElement(data, "Type", {"Name": name, "DocumentType": child_text(element, "docparid")})
    fields_node = SubElement(object_type, "Fields")
    for field_name in state.all_fields(name):
        node = SubElement(fields_node, "Field")
        add_text(node, "ID", field_name)
        add_text(node, "LABEL", field_name.replace("_", " ").title())
        add_text(node, "DESCRIPTION", "Custom field" if field_name in custom else "")
        add_text(node, "REQUIRED", "true" if field_name in definition.required_fields else "false")
        writable = field_name in definition.writable_fields or field_name in custom
        add_text(node, "READONLY", "false" if writable else "true")
        add_text(node, "DATATYPE", field_type(name, field_name))
        add_text(node, "ISCUSTOM", "true" if field_name in custom else "false")
    return FunctionOutput(data=data)


# The AR records' WHENCREATED is the document date; AUWHENCREATED is the audit timestamp
# (fivetran/dbt_sage_intacct_source, get_ar_invoice_columns.sql: whencreated date, auwhencreated timestamp).
DATED_OBJECTS = ("ARINVOICE", "ARPYMT")


def field_type(object_name_: str, field_name: str) -> str:
    if field_name in NESTED_GROUPS:
        return "OBJECT"
    if field_name in (
        "RECORDNO",
        "LINE_NO",
        "DOCHDRNO",
        "DUEDAYS",
        "PARENTKEY",
        "GLGRPKEY",
        "PRRECORDKEY",
        "DUE_IN_DAYS",
    ):
        return "INTEGER"
    if field_name == "WHENCREATED" and object_name_ in DATED_OBJECTS:
        return "DATE"
    if field_name in ("WHENCREATED", "WHENMODIFIED", "AUWHENCREATED"):
        return "TIMESTAMP"
    if field_name.startswith("WHEN") or field_name.startswith("REVREC") or field_name.endswith("DATE"):
        return "DATE"
    if field_name in ("TOTAL", "SUBTOTAL", "PRICE", "BASEPRICE", "CREDITLIMIT") or field_name.startswith(
        ("TOTAL", "TRX_TOTAL")
    ):
        return "CURRENCY"
    if field_name in ("QUANTITY", "DISCOUNT"):
        return "DECIMAL"
    if field_name == "MRR":
        return "BOOLEAN"
    return "TEXT"
