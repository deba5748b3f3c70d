"""create_sotransaction: Order Entry documents (SODOCUMENT) and their lines (SODOCUMENTENTRY)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element

from sandbox.intacct.calls import CallContext, FunctionOutput, format_date, money, plain_number
from sandbox.intacct.errors import (
    FunctionFailure,
    business_error,
)
from sandbox.intacct.store import (
    BASE_CURRENCY,
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
    custom_values = parse_custom_fields(state, element.find("customfields"), "SODOCUMENT")
    items_element = element.find("sotransitems")
    line_elements = [] if items_element is None else items_element.findall("sotransitem")
    if not line_elements:
        raise document_failure("A transaction must have at least one line (sotransitem).")
    lines = [parse_line(context, line, number) for number, line in enumerate(line_elements)]

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
            "PONUMBER": child_text(element, "referenceno"),
            "EXTERNALID": child_text(element, "externalid"),
            "MESSAGE": child_text(element, "message"),
            "CURRENCY": currency,
            "BASECURR": base_currency,
            "SUBTOTAL": money(total),
            "TOTAL": money(total),
            "CREATEDFROM": child_text(element, "createdfrom"),
            "WHENMODIFIED": stamp,
            **custom_values,
        },
    )
    for line in lines:
        add_record(
            data,
            "SODOCUMENTENTRY",
            {
                "DOCHDRNO": header["RECORDNO"],
                "DOCHDRID": doc_id,
                "DOCPARID": definition,
                **line,
                "WHENCREATED": stamp,
            },
        )
    return FunctionOutput(key=doc_id)


def has(element: Element, tag: str) -> bool:
    child = element.find(tag)
    return child is not None and (len(child) > 0 or bool((child.text or "").strip()))


def parse_line(context: CallContext, line: Element, line_no: int) -> Record:
    """Validate one sotransitem and turn it into SODOCUMENTENTRY fields."""
    data = context.state.data
    where = f"line {line_no + 1}"
    item_id = child_text(line, "itemid")
    if not item_id:
        raise document_failure(f"Required field itemid is missing on {where}.")
    item = find_record(data, "ITEM", "ITEMID", item_id)
    if item is None:
        raise document_failure(f"Invalid Item {item_id} on {where}.", "Use an existing item ID.")
    if item.get("STATUS") != "active":
        raise document_failure(
            f"Invalid Item {item_id} on {where}: the item is inactive.", "Use an active item."
        )
    quantity_text = child_text(line, "quantity")
    if not quantity_text:
        raise document_failure(f"Required field quantity is missing on {where}.")
    quantity = decimal_or_fail(quantity_text, f"quantity on {where}")
    unit = child_text(line, "unit") or item["UOM"]
    if unit != item["UOM"]:
        raise document_failure(f"Invalid unit '{unit}' for item {item_id} on {where}.", f"Use {item['UOM']}.")
    price_text = child_text(line, "price")
    price = decimal_or_fail(price_text, f"price on {where}") if price_text else Decimal(item["BASEPRICE"])
    discount_text = child_text(line, "discountpercent")
    discount = decimal_or_fail(discount_text, f"discountpercent on {where}") if discount_text else Decimal(0)
    if not Decimal(0) <= discount <= Decimal(100):
        raise document_failure(f"Invalid discountpercent {discount_text} on {where}: use 0 to 100.")
    location_id = child_text(line, "locationid") or context.location_id
    if location_id and find_record(data, "LOCATION", "LOCATIONID", location_id) is None:
        raise document_failure(f"Invalid Location '{location_id}' specified on {where}.")
    department_id = child_text(line, "departmentid")
    if department_id and find_record(data, "DEPARTMENT", "DEPARTMENTID", department_id) is None:
        raise document_failure(f"Invalid Department '{department_id}' specified on {where}.")
    start = optional_date_triple(line, "revrecstartdate", f"revrecstartdate on {where}")
    end = optional_date_triple(line, "revrecenddate", f"revrecenddate on {where}")
    if start and end and end < start:
        raise document_failure(f"revrecenddate is before revrecstartdate on {where}.")
    custom_values = parse_custom_fields(context.state, line.find("customfields"), "SODOCUMENTENTRY")
    total = quantity * price * (Decimal(100) - discount) / Decimal(100)
    return {
        "LINE_NO": str(line_no),
        "ITEMID": item_id,
        "ITEMNAME": item["NAME"],
        "ITEMDESC": child_text(line, "itemdesc") or item["NAME"],
        "QUANTITY": plain_number(quantity),
        "UNIT": unit,
        "PRICE": plain_number(price),
        "DISCOUNT": plain_number(discount),
        "TOTAL": money(total),
        "MEMO": child_text(line, "memo"),
        "LOCATIONID": location_id,
        "DEPARTMENTID": department_id,
        "REVRECSTARTDATE": format_date(start) if start else "",
        "REVRECENDDATE": format_date(end) if end else "",
        **custom_values,
    }


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
