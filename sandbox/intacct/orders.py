"""create_sotransaction, update_sotransaction and delete_sotransaction: Order Entry documents (SODOCUMENT)
and their lines (SODOCUMENTENTRY)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element

from sandbox.intacct.calls import CallContext, FunctionOutput, format_date, money, plain_number
from sandbox.intacct.conversions import SOURCE_LINE_KEY, check_conversion, refresh_source_state
from sandbox.intacct.errors import (
    FunctionFailure,
    business_error,
)
from sandbox.intacct.lengths import first_too_long, length_limits
from sandbox.intacct.receivables import paid_invoice_refusal, post_invoice, remove_invoice
from sandbox.intacct.store import (
    BASE_CURRENCY,
    CONVERSION_STATES,
    CURRENCIES,
    DEFAULT_TRANSACTION_STATE,
    TERM_DAYS,
    TRANSACTION_DEFINITIONS,
    TRANSACTION_STATES,
    Record,
    SandboxState,
    add_record,
    find_record,
    format_datetime,
)
from sandbox.intacct.xmlout import child_text


def document_failure(description2: str, correction: str = "") -> FunctionFailure:
    return FunctionFailure(
        business_error(description2, correction=correction),
        business_error("Could not create Document record!"),
    )


def parse_date_triple(element: Element | None, what: str) -> date:
    if element is None:
        raise document_failure(f"Required field {what} is missing.")
    try:
        return date(
            int(child_text(element, "year")),
            int(child_text(element, "month")),
            int(child_text(element, "day")),
        )
    except ValueError as error:
        raise document_failure(
            f"Invalid {what}: year/month/day do not form a valid date.", "Send a valid calendar date."
        ) from error


def optional_date_triple(parent: Element, tag: str, what: str) -> date | None:
    """A `<tag><year/><month/><day/></tag>` date that may be left out."""
    element = parent.find(tag)
    return None if element is None else parse_date_triple(element, what)


def parse_custom_fields(state: SandboxState, element: Element | None, object_name_: str) -> Record:
    """`<customfields><customfield><customfieldname/><customfieldvalue/>` limited to the object's fields."""
    values: Record = {}
    if element is None:
        return values
    allowed = state.custom_fields(object_name_)
    for custom in element.findall("customfield"):
        name = child_text(custom, "customfieldname").upper()
        if name not in allowed:
            raise document_failure(
                f"Invalid custom field {name or '(empty)'} for {object_name_}.",
                "Use a custom field defined on the object.",
            )
        values[name] = child_text(custom, "customfieldvalue")
    return values


def create_sotransaction(context: CallContext, element: Element) -> FunctionOutput:
    """Create an Order Entry document; returns its DOCID (`Sales Order-SO0001`) as the key."""
    state, data = context.state, context.state.data
    definition = child_text(element, "transactiontype")
    if definition not in TRANSACTION_DEFINITIONS:
        raise document_failure(
            f"Invalid transaction definition '{definition}'.",
            f"Use one of: {', '.join(TRANSACTION_DEFINITIONS)}.",
        )
    created = parse_date_triple(element.find("datecreated"), "datecreated")
    posted = (
        parse_date_triple(element.find("dateposted"), "dateposted") if has(element, "dateposted") else None
    )
    customer_id = child_text(element, "customerid")
    customer = find_record(data, "CUSTOMER", "CUSTOMERID", customer_id) if customer_id else None
    if customer is None:
        raise document_failure(f"Invalid Customer '{customer_id}' specified.", "Use an existing customer ID.")
    if customer.get("STATUS") != "active":
        raise document_failure(f"Customer '{customer_id}' is inactive.", "Activate the customer first.")
    term = child_text(element, "termname")
    if has(element, "datedue"):
        due = parse_date_triple(element.find("datedue"), "datedue")
    elif term:
        if term not in TERM_DAYS:
            raise document_failure(
                f"Invalid term '{term}' specified.", f"Use one of: {', '.join(TERM_DAYS)}."
            )
        due = created + timedelta(days=TERM_DAYS[term])
    else:
        raise document_failure("Either termname or datedue is required.")
    if term and term not in TERM_DAYS:
        raise document_failure(f"Invalid term '{term}' specified.", f"Use one of: {', '.join(TERM_DAYS)}.")
    base_currency = child_text(element, "basecurr") or BASE_CURRENCY
    if base_currency != BASE_CURRENCY:
        raise document_failure(
            f"Invalid base currency '{base_currency}': the company's base is {BASE_CURRENCY}."
        )
    currency = child_text(element, "currency") or base_currency
    if currency not in CURRENCIES:
        raise document_failure(
            f"Invalid currency '{currency}' specified.", f"Use one of: {', '.join(CURRENCIES)}."
        )
    state_name = child_text(element, "state") or DEFAULT_TRANSACTION_STATE
    if state_name not in TRANSACTION_STATES:
        raise document_failure(
            f"Invalid state '{state_name}'.", f"Use one of: {', '.join(TRANSACTION_STATES)}."
        )
    check_lengths(context, "SODOCUMENT", element, HEADER_TEXT_ELEMENTS, document_failure)
    custom_values = parse_custom_fields(state, element.find("customfields"), "SODOCUMENT")
    items_element = element.find("sotransitems")
    line_elements = [] if items_element is None else items_element.findall("sotransitem")
    if not line_elements:
        raise document_failure("A transaction must have at least one line (sotransitem).")
    lines = [parse_line(context, line, number) for number, line in enumerate(line_elements)]
    conversion = check_conversion(data, element, definition, customer_id, line_elements)
    reference = child_text(element, "referenceno")
    if conversion is not None and not reference and state.config.conversion_copies_reference:
        reference = conversion.source["PONUMBER"]

    document_number = child_text(element, "documentno")
    if document_number:
        if find_record(data, "SODOCUMENT", "DOCID", f"{definition}-{document_number}") is not None:
            raise document_failure(
                f"Another {definition} with the document number {document_number} already exists.",
                "Use a unique value instead.",
            )
    else:
        document_number = next_document_number(state, definition)
    doc_id = f"{definition}-{document_number}"
    total = sum((Decimal(line["TOTAL"]) for line in lines), Decimal(0))
    stamp = format_datetime(context.now)
    header = add_record(
        data,
        "SODOCUMENT",
        {
            "DOCNO": document_number,
            "DOCID": doc_id,
            "DOCPARID": definition,
            "STATE": state_name,
            "CUSTVENDID": customer_id,
            "CUSTVENDNAME": customer["NAME"],
            "WHENCREATED": format_date(created),
            "WHENPOSTED": format_date(posted) if posted else "",
            "WHENDUE": format_date(due),
            "TERMNAME": term,
            "PONUMBER": reference,
            "EXTERNALID": child_text(element, "externalid"),
            "MESSAGE": child_text(element, "message"),
            "CURRENCY": currency,
            "BASECURR": base_currency,
            "SUBTOTAL": money(total),
            "TOTAL": money(total),
            "CREATEDFROM": conversion.source["DOCID"] if conversion is not None else "",
            "PRRECORDKEY": "",
            "TRX_TOTALENTERED": "",
            "TRX_TOTALPAID": "",
            "TRX_TOTALDUE": "",
            "WHENMODIFIED": stamp,
            **custom_values,
        },
    )
    source_line_keys = conversion.line_keys if conversion is not None else ("",) * len(lines)
    for line, source_line_key in zip(lines, source_line_keys, strict=True):
        add_record(
            data,
            "SODOCUMENTENTRY",
            {
                "DOCHDRNO": header["RECORDNO"],
                "DOCHDRID": doc_id,
                "DOCPARID": definition,
                **line,
                "WHENCREATED": stamp,
                **({SOURCE_LINE_KEY: source_line_key} if source_line_key else {}),
            },
        )
    if conversion is not None:
        refresh_source_state(data, conversion.source, stamp)
    post_invoice(context, header)
    return FunctionOutput(key=doc_id)


def has(element: Element, tag: str) -> bool:
    child = element.find(tag)
    return child is not None and (len(child) > 0 or bool((child.text or "").strip()))


def parse_line(context: CallContext, line: Element, line_no: int) -> Record:
    """Validate one sotransitem and turn it into SODOCUMENTENTRY fields."""
    where = f"line {line_no + 1}"
    check_lengths(context, "SODOCUMENTENTRY", line, LINE_TEXT_ELEMENTS, document_failure, where=where)
    item_id = child_text(line, "itemid")
    if not item_id:
        raise document_failure(f"Required field itemid is missing on {where}.")
    item = active_item(context, item_id, where)
    quantity_text = child_text(line, "quantity")
    if not quantity_text:
        raise document_failure(f"Required field quantity is missing on {where}.")
    quantity = decimal_or_fail(quantity_text, f"quantity on {where}")
    unit = checked_unit(child_text(line, "unit") or item["UOM"], item, where)
    price_text = child_text(line, "price")
    price = decimal_or_fail(price_text, f"price on {where}") if price_text else Decimal(item["BASEPRICE"])
    discount_text = child_text(line, "discountpercent")
    discount = checked_discount(discount_text, where) if discount_text else Decimal(0)
    location_id = checked_location(context, child_text(line, "locationid") or context.location_id, where)
    department_id = checked_department(context, child_text(line, "departmentid"), where)
    start = optional_date_triple(line, "revrecstartdate", f"revrecstartdate on {where}")
    end = optional_date_triple(line, "revrecenddate", f"revrecenddate on {where}")
    if start and end and end < start:
        raise document_failure(f"revrecenddate is before revrecstartdate on {where}.")
    custom_values = parse_custom_fields(context.state, line.find("customfields"), "SODOCUMENTENTRY")
    return {
        "LINE_NO": str(line_no),
        "ITEMID": item_id,
        "ITEMNAME": item["NAME"],
        "ITEMDESC": child_text(line, "itemdesc") or item["NAME"],
        "QUANTITY": plain_number(quantity),
        "UNIT": unit,
        "PRICE": plain_number(price),
        "DISCOUNT": plain_number(discount),
        "TOTAL": line_total(quantity, price, discount),
        "MEMO": child_text(line, "memo"),
        "LOCATIONID": location_id,
        "DEPARTMENTID": department_id,
        "REVRECSTARTDATE": format_date(start) if start else "",
        "REVRECENDDATE": format_date(end) if end else "",
        **custom_values,
    }


def active_item(context: CallContext, item_id: str, where: str) -> Record:
    item = find_record(context.state.data, "ITEM", "ITEMID", item_id)
    if item is None:
        raise document_failure(f"Invalid Item {item_id} on {where}.", "Use an existing item ID.")
    if item.get("STATUS") != "active":
        raise document_failure(
            f"Invalid Item {item_id} on {where}: the item is inactive.", "Use an active item."
        )
    return item


def checked_unit(unit: str, item: Record, where: str) -> str:
    if unit != item["UOM"]:
        raise document_failure(
            f"Invalid unit '{unit}' for item {item['ITEMID']} on {where}.", f"Use {item['UOM']}."
        )
    return unit


def checked_discount(text: str, where: str) -> Decimal:
    discount = decimal_or_fail(text, f"discountpercent on {where}")
    if not Decimal(0) <= discount <= Decimal(100):
        raise document_failure(f"Invalid discountpercent {text} on {where}: use 0 to 100.")
    return discount


def checked_location(context: CallContext, location_id: str, where: str) -> str:
    if location_id and find_record(context.state.data, "LOCATION", "LOCATIONID", location_id) is None:
        raise document_failure(f"Invalid Location '{location_id}' specified on {where}.")
    return location_id


def checked_department(context: CallContext, department_id: str, where: str) -> str:
    if department_id and find_record(context.state.data, "DEPARTMENT", "DEPARTMENTID", department_id) is None:
        raise document_failure(f"Invalid Department '{department_id}' specified on {where}.")
    return department_id


def line_total(quantity: Decimal, price: Decimal, discount: Decimal) -> str:
    return money(quantity * price * (Decimal(100) - discount) / Decimal(100))


# Text elements whose length is checked (lengths.py), by object.
HEADER_TEXT_ELEMENTS = ("documentno", "referenceno", "message", "externalid")
LINE_TEXT_ELEMENTS = ("itemdesc", "memo")


def check_lengths(
    context: CallContext,
    object_name_: str,
    element: Element,
    tags: tuple[str, ...],
    failure: Callable[[str, str], FunctionFailure],
    *,
    where: str = "",
) -> None:
    """Refuse a text element longer than the limit the sandbox knows for it (none are sourced yet)."""
    values = {tag: child_text(element, tag) for tag in tags if element.find(tag) is not None}
    error = first_too_long(length_limits(context.state, object_name_), values)
    if error is not None:
        suffix = f" (on {where})" if where else ""
        raise failure(error.description2 + suffix, error.correction)


def decimal_or_fail(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as error:
        raise document_failure(f"Invalid {what} '{text}': a number is required.") from error
    if not value.is_finite():
        raise document_failure(f"Invalid {what} '{text}': a number is required.")
    return value


def next_document_number(state: SandboxState, definition: str) -> str:
    """The definition's next document number: SO0001, INV0001, SQ0001, ..."""
    prefix = TRANSACTION_DEFINITIONS[definition]
    while True:
        number = state.data.next_document_number.get(definition, 1)
        state.data.next_document_number[definition] = number + 1
        candidate = f"{prefix}{number:04d}"
        if find_record(state.data, "SODOCUMENT", "DOCID", f"{definition}-{candidate}") is None:
            return candidate


# ------------------------------------------------------------------ update_sotransaction


def update_failure(description2: str, correction: str = "") -> FunctionFailure:
    return FunctionFailure(
        business_error(description2, correction=correction),
        business_error("Could not update Document record!"),
    )


def delete_failure(description2: str, correction: str = "") -> FunctionFailure:
    return FunctionFailure(
        business_error(description2, correction=correction),
        business_error("Could not delete Document record!"),
    )


def document_by_key(context: CallContext, element: Element, external_attribute: str) -> Record | None:
    """The document named by the `key` attribute: its DOCID, or its EXTERNALID when the attribute
    `externalkey` (update) / `external` (delete) is "true"."""
    key = element.get("key", "")
    field_name = "EXTERNALID" if element.get(external_attribute, "false") == "true" else "DOCID"
    return find_record(context.state.data, "SODOCUMENT", field_name, key) if key else None


def refuse_converted(document: Record, action: str, failure: Callable[[str, str], FunctionFailure]) -> None:
    """In Progress, Converted and Partially Converted documents cannot be updated [DOC-OE]; the sandbox
    refuses to delete them too (the docs say nothing about deleting them)."""
    if document["STATE"] in CONVERSION_STATES:
        raise failure(
            f"Transaction {document['DOCID']} cannot be {action}: its state is {document['STATE']}. "
            f"A transaction that is In Progress, Converted or Partially Converted cannot be {action}.",
            "",
        )


def update_sotransaction(context: CallContext, element: Element) -> FunctionOutput:
    """Change a document's header, change lines by 1-based line_num, append lines; totals follow."""
    state = context.state
    document = document_by_key(context, element, "externalkey")
    if document is None:
        raise update_failure(
            f"Cannot update non-existing transaction with key '{element.get('key', '')}'.",
            "Use the DOCID of an existing transaction (for example Sales Order-SO0001).",
        )
    doc_id = document["DOCID"]
    refuse_converted(document, "updated", update_failure)
    new_state = child_text(element, "state")
    if document["STATE"] == "Closed" and not state.config.closed_orders_reopen:
        raise update_failure(f"Transaction {doc_id} cannot be updated: its state is Closed.")
    paid = paid_invoice_refusal(state.data, document, "updated")
    if paid is not None:
        raise update_failure(paid)
    if new_state and new_state not in TRANSACTION_STATES:
        raise update_failure(f"Invalid state '{new_state}'.", f"Use one of: {', '.join(TRANSACTION_STATES)}.")
    check_lengths(context, "SODOCUMENT", element, HEADER_TEXT_ELEMENTS, update_failure)
    changes = header_changes(context, document, element)
    if new_state:
        changes["STATE"] = new_state
    lines = [line for line in state.data.records["SODOCUMENTENTRY"] if line["DOCHDRID"] == doc_id]
    lines.sort(key=lambda line: int(line["LINE_NO"]))
    items = element.find("updatesotransitems")
    new_lines: list[Record] = []
    for change in [] if items is None else list(items):
        if change.tag == "updatesotransitem":
            apply_line_update(context, lines, change)
        else:
            new_lines.append(parse_line(context, change, len(lines) + len(new_lines)))
    document.update(changes)
    for line in new_lines:
        stored = add_record(
            state.data,
            "SODOCUMENTENTRY",
            {
                "DOCHDRNO": document["RECORDNO"],
                "DOCHDRID": doc_id,
                "DOCPARID": document["DOCPARID"],
                **line,
                "WHENCREATED": format_datetime(context.now),
            },
        )
        lines.append(stored)
    total = sum((Decimal(line["TOTAL"]) for line in lines), Decimal(0))
    document["SUBTOTAL"] = money(total)
    document["TOTAL"] = money(total)
    document["WHENMODIFIED"] = format_datetime(context.now)
    post_invoice(context, document)
    return FunctionOutput(key=doc_id)


def header_changes(context: CallContext, document: Record, element: Element) -> Record:
    """The SODOCUMENT fields the update's header elements replace (validated as on create)."""
    changes: Record = {}
    created = document_date(document["WHENCREATED"])
    if element.find("datecreated") is not None:
        created = parse_date_triple(element.find("datecreated"), "datecreated")
        changes["WHENCREATED"] = format_date(created)
    if element.find("dateposted") is not None:
        changes["WHENPOSTED"] = format_date(parse_date_triple(element.find("dateposted"), "dateposted"))
    for tag, field_name in (
        ("referenceno", "PONUMBER"),
        ("message", "MESSAGE"),
        ("externalid", "EXTERNALID"),
    ):
        if element.find(tag) is not None:
            changes[field_name] = child_text(element, tag)
    term = child_text(element, "termname") if element.find("termname") is not None else document["TERMNAME"]
    if term and term not in TERM_DAYS:
        raise update_failure(f"Invalid term '{term}' specified.", f"Use one of: {', '.join(TERM_DAYS)}.")
    if element.find("termname") is not None:
        changes["TERMNAME"] = term
    if has(element, "datedue"):
        changes["WHENDUE"] = format_date(parse_date_triple(element.find("datedue"), "datedue"))
    elif term and ("TERMNAME" in changes or "WHENCREATED" in changes):
        changes["WHENDUE"] = format_date(created + timedelta(days=TERM_DAYS[term]))
    if element.find("currency") is not None:
        base_currency = child_text(element, "basecurr") or document["BASECURR"] or BASE_CURRENCY
        if base_currency != BASE_CURRENCY:
            raise update_failure(
                f"Invalid base currency '{base_currency}': the company's base is {BASE_CURRENCY}."
            )
        currency = child_text(element, "currency") or base_currency
        if currency not in CURRENCIES:
            raise update_failure(
                f"Invalid currency '{currency}' specified.", f"Use one of: {', '.join(CURRENCIES)}."
            )
        changes["BASECURR"] = base_currency
        changes["CURRENCY"] = currency
    changes.update(parse_custom_fields(context.state, element.find("customfields"), "SODOCUMENT"))
    return changes


def document_date(text: str) -> date:
    month, day, year = (int(part) for part in text.split("/"))
    return date(year, month, day)


def apply_line_update(context: CallContext, lines: list[Record], change: Element) -> None:
    """Replace the given fields of the line `line_num` (1-based: LINE_NO + 1) and recompute its total."""
    number_text = change.get("line_num", "")
    number = int(number_text) if number_text.strip().isdigit() else 0
    if not 1 <= number <= len(lines):
        raise update_failure(
            f"Line {number_text} does not exist on transaction {lines[0]['DOCHDRID'] if lines else ''}: "
            f"it has {len(lines)} lines, numbered from 1.",
            "line_num is 1-based: add one to the LINE_NO that read returns.",
        )
    line = lines[number - 1]
    where = f"line {number}"
    check_lengths(context, "SODOCUMENTENTRY", change, LINE_TEXT_ELEMENTS, update_failure, where=where)
    updated: Record = dict(line)
    item_id = child_text(change, "itemid") if has(change, "itemid") else updated["ITEMID"]
    item = active_item(context, item_id, where)
    if item_id != line["ITEMID"]:
        updated.update(ITEMID=item["ITEMID"], ITEMNAME=item["NAME"], UNIT=item["UOM"])
        if change.find("itemdesc") is None:
            updated["ITEMDESC"] = item["NAME"]
    for tag, field_name in (("itemdesc", "ITEMDESC"), ("memo", "MEMO")):
        if change.find(tag) is not None:
            updated[field_name] = child_text(change, tag)
    if has(change, "quantity"):
        updated["QUANTITY"] = plain_number(
            decimal_or_fail(child_text(change, "quantity"), f"quantity on {where}")
        )
    if has(change, "unit"):
        updated["UNIT"] = checked_unit(child_text(change, "unit"), item, where)
    if has(change, "price"):
        updated["PRICE"] = plain_number(decimal_or_fail(child_text(change, "price"), f"price on {where}"))
    if has(change, "discountpercent"):
        updated["DISCOUNT"] = plain_number(checked_discount(child_text(change, "discountpercent"), where))
    if has(change, "locationid"):
        updated["LOCATIONID"] = checked_location(context, child_text(change, "locationid"), where)
    if has(change, "departmentid"):
        updated["DEPARTMENTID"] = checked_department(context, child_text(change, "departmentid"), where)
    for tag, field_name in (("revrecstartdate", "REVRECSTARTDATE"), ("revrecenddate", "REVRECENDDATE")):
        if change.find(tag) is not None:
            updated[field_name] = format_date(parse_date_triple(change.find(tag), f"{tag} on {where}"))
    start, end = updated.get("REVRECSTARTDATE", ""), updated.get("REVRECENDDATE", "")
    if start and end and document_date(end) < document_date(start):
        raise update_failure(f"revrecenddate is before revrecstartdate on {where}.")
    updated.update(parse_custom_fields(context.state, change.find("customfields"), "SODOCUMENTENTRY"))
    updated["TOTAL"] = line_total(
        Decimal(updated["QUANTITY"]), Decimal(updated["PRICE"]), Decimal(updated["DISCOUNT"])
    )
    line.update(updated)


# ------------------------------------------------------------------ delete_sotransaction


def delete_sotransaction(context: CallContext, element: Element) -> FunctionOutput:
    """Remove a document and its lines; a converted (or converting) one is refused."""
    document = document_by_key(context, element, "external")
    if document is None:
        raise delete_failure(
            f"Cannot find transaction with key '{element.get('key', '')}' to delete.",
            "Use the DOCID of an existing transaction (for example Sales Order-SO0001).",
        )
    refuse_converted(document, "deleted", delete_failure)
    data = context.state.data
    paid = paid_invoice_refusal(data, document, "deleted")
    if paid is not None:
        raise delete_failure(paid)
    remove_invoice(data, document)
    records = data.records
    records["SODOCUMENT"].remove(document)
    records["SODOCUMENTENTRY"] = [
        line for line in records["SODOCUMENTENTRY"] if line["DOCHDRID"] != document["DOCID"]
    ]
    source = (
        find_record(data, "SODOCUMENT", "DOCID", document["CREATEDFROM"]) if document["CREATEDFROM"] else None
    )
    if source is not None:
        refresh_source_state(data, source, format_datetime(context.now))
    return FunctionOutput()
