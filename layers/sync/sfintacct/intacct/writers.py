"""XML for the objects we write: CUSTOMER (generic create/update) and create_sotransaction (legacy).

Custom fields are top-level elements named by their integration name in generic functions, and
`<customfields><customfield>` pairs in the legacy create_sotransaction. None means "leave out";
an empty string is sent as an empty element.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from xml.etree.ElementTree import Element, SubElement

from sfintacct.intacct.functions import add_text
from sfintacct.intacct.models import (
    Contact,
    CustomerUpdate,
    NewCustomer,
    SalesTransaction,
    SalesTransactionLine,
)


def optional_text(parent: Element, tag: str, value: str | None) -> None:
    if value is not None:
        add_text(parent, tag, value)


def decimal_text(value: Decimal) -> str:
    """A plain decimal without exponent (1E+2 -> 100)."""
    return format(value, "f")


def date_triple(parent: Element, tag: str, day: date) -> Element:
    """`<tag><year/><month/><day/></tag>` as legacy functions take dates."""
    node = SubElement(parent, tag)
    add_text(node, "year", f"{day.year:04d}")
    add_text(node, "month", f"{day.month:02d}")
    add_text(node, "day", f"{day.day:02d}")
    return node


# ---------------------------------------------------------------------------- CUSTOMER


def new_customer_element(customer: NewCustomer) -> Element:
    """`<CUSTOMER>` for a generic create. DISPLAYCONTACT is required; PRINTAS defaults to NAME."""
    node = Element("CUSTOMER")
    optional_text(node, "CUSTOMERID", customer.customer_id)
    add_text(node, "NAME", customer.name)
    contact = customer.contact or Contact()
    contact_element(node, contact, default_print_as=customer.name)
    _customer_fields(node, customer)
    return node


def customer_update_element(changes: CustomerUpdate) -> Element:
    """`<CUSTOMER>` for a generic update, identified by RECORDNO or CUSTOMERID."""
    node = Element("CUSTOMER")
    if changes.record_no is not None:
        add_text(node, "RECORDNO", str(changes.record_no))
    optional_text(node, "CUSTOMERID", changes.customer_id)
    optional_text(node, "NAME", changes.name)
    if changes.contact is not None:
        contact_element(node, changes.contact, default_print_as=None)
    _customer_fields(node, changes)
    return node


def contact_element(parent: Element, contact: Contact, *, default_print_as: str | None) -> Element:
    node = SubElement(parent, "DISPLAYCONTACT")
    optional_text(node, "PRINTAS", contact.print_as or default_print_as)
    optional_text(node, "CONTACTNAME", contact.contact_name)
    optional_text(node, "COMPANYNAME", contact.company_name)
    optional_text(node, "PREFIX", contact.prefix)
    optional_text(node, "FIRSTNAME", contact.first_name)
    optional_text(node, "LASTNAME", contact.last_name)
    optional_text(node, "PHONE1", contact.phone1)
    optional_text(node, "PHONE2", contact.phone2)
    optional_text(node, "CELLPHONE", contact.cell_phone)
    optional_text(node, "FAX", contact.fax)
    optional_text(node, "EMAIL1", contact.email1)
    optional_text(node, "EMAIL2", contact.email2)
    optional_text(node, "URL1", contact.url1)
    optional_text(node, "URL2", contact.url2)
    address = contact.mail_address
    if address is not None:
        mail = SubElement(node, "MAILADDRESS")
        optional_text(mail, "ADDRESS1", address.address1)
        optional_text(mail, "ADDRESS2", address.address2)
        optional_text(mail, "ADDRESS3", address.address3)
        optional_text(mail, "CITY", address.city)
        optional_text(mail, "STATE", address.state)
        optional_text(mail, "ZIP", address.zip)
        optional_text(mail, "COUNTRY", address.country)
        optional_text(mail, "ISOCOUNTRYCODE", address.iso_country_code)
    return node


def _customer_fields(node: Element, customer: NewCustomer | CustomerUpdate) -> None:
    optional_text(node, "STATUS", customer.status)
    optional_text(node, "CUSTTYPE", customer.customer_type)
    optional_text(node, "PARENTID", customer.parent_id)
    optional_text(node, "TERMNAME", customer.term_name)
    optional_text(node, "TAXID", customer.tax_id)
    if customer.credit_limit is not None:
        add_text(node, "CREDITLIMIT", decimal_text(customer.credit_limit))
    optional_text(node, "COMMENTS", customer.comments)
    optional_text(node, "CURRENCY", customer.currency)
    for name, value in customer.custom_fields.items():
        add_text(node, name, value)


# ---------------------------------------------------------------------------- create_sotransaction


def sotransaction_element(transaction: SalesTransaction) -> Element:
    """`<create_sotransaction>` with elements in schema order."""
    node = Element("create_sotransaction")
    add_text(node, "transactiontype", transaction.transaction_type)
    date_triple(node, "datecreated", transaction.date_created)
    add_text(node, "customerid", transaction.customer_id)
    optional_text(node, "documentno", transaction.document_no)
    optional_text(node, "referenceno", transaction.reference_no)
    _header_terms_to_custom_fields(node, transaction, transaction.message)
    optional_text(node, "state", transaction.state)
    items = SubElement(node, "sotransitems")
    for line in transaction.lines:
        sotransitem_element(items, line)
    return node


def sotransaction_update_element(doc_id: str, transaction: SalesTransaction, existing_lines: int) -> Element:
    """`<update_sotransaction key=DOCID>`: the header as `transaction` holds it, and its lines.

    The order's first `existing_lines` lines are rewritten in place (`updatesotransitem`, line_num
    1-based); further lines are added (`sotransitem`). The schema has no way to remove a line, so the
    caller never sends fewer lines than the order has. The customer cannot be changed by an update.
    """
    if len(transaction.lines) < existing_lines:
        raise ValueError("update_sotransaction cannot remove lines")
    node = Element("update_sotransaction", key=doc_id)
    date_triple(node, "datecreated", transaction.date_created)
    optional_text(node, "referenceno", transaction.reference_no)
    _header_terms_to_custom_fields(node, transaction, transaction.message or "")  # "" clears it
    items = SubElement(node, "updatesotransitems")
    for number, line in enumerate(transaction.lines, start=1):
        if number <= existing_lines:
            _line_content(SubElement(items, "updatesotransitem", line_num=str(number)), line)
        else:
            sotransitem_element(items, line)
    return node


def _header_terms_to_custom_fields(node: Element, transaction: SalesTransaction, message: str | None) -> None:
    """The header elements create and update share, in schema order: terms or due date, message,
    external id, the currency group and custom fields."""
    if transaction.term_name is not None:
        add_text(node, "termname", transaction.term_name)
    elif transaction.date_due is not None:
        date_triple(node, "datedue", transaction.date_due)
    optional_text(node, "message", message)
    optional_text(node, "externalid", transaction.external_id)
    if transaction.currency is not None:
        # The schema's currency group: [basecurr] currency exchratetype; an empty exchratetype means the
        # company's default rate type, as the official SDKs send it.
        optional_text(node, "basecurr", transaction.base_currency)
        add_text(node, "currency", transaction.currency)
        add_text(node, "exchratetype", transaction.exchange_rate_type or "")
    custom_fields_element(node, transaction.custom_fields)


def sotransaction_state_element(doc_id: str, state: str) -> Element:
    """`<update_sotransaction key=DOCID><state>…</state>`: e.g. Closed takes an order out of open business."""
    node = Element("update_sotransaction", key=doc_id)
    add_text(node, "state", state)
    return node


def sotransaction_delete_element(doc_id: str) -> Element:
    return Element("delete_sotransaction", key=doc_id)


def sotransitem_element(parent: Element, line: SalesTransactionLine) -> Element:
    return _line_content(SubElement(parent, "sotransitem"), line)


def _line_content(node: Element, line: SalesTransactionLine) -> Element:
    add_text(node, "itemid", line.item_id)
    optional_text(node, "itemdesc", line.item_description)
    add_text(node, "quantity", decimal_text(line.quantity))
    optional_text(node, "unit", line.unit)
    if line.discount_percent is not None:
        add_text(node, "discountpercent", decimal_text(line.discount_percent))
    if line.price is not None:
        add_text(node, "price", decimal_text(line.price))
    optional_text(node, "locationid", line.location_id)
    optional_text(node, "departmentid", line.department_id)
    optional_text(node, "memo", line.memo)
    custom_fields_element(node, line.custom_fields)
    if line.revrec_start_date is not None:
        date_triple(node, "revrecstartdate", line.revrec_start_date)
    if line.revrec_end_date is not None:
        date_triple(node, "revrecenddate", line.revrec_end_date)
    return node


def custom_fields_element(parent: Element, custom_fields: Mapping[str, str]) -> Element | None:
    """`<customfields><customfield><customfieldname/><customfieldvalue/>...` (omitted when empty)."""
    if not custom_fields:
        return None
    node = SubElement(parent, "customfields")
    for name, value in custom_fields.items():
        field = SubElement(node, "customfield")
        add_text(field, "customfieldname", name)
        add_text(field, "customfieldvalue", value)
    return node
