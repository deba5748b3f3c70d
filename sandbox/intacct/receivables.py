"""Accounts receivable: the AR invoice (ARINVOICE) a Sales Invoice posts, and AR payments (ARPYMT).

Sources (README.md, "The accountant's side"): developer.intacct.com order-entry-transactions (a Sales
Invoice's PRRECORDKEY is its ARINVOICE) and ar-payments (`<create><ARPYMT>` with ARPYMTDETAILS); the
ARINVOICE fields real clients select (fylein/sageintacct-sdk-py apis/constants.py) and their types
(fivetran/dbt_sage_intacct_source); the STATE words (docs.cloud-elements.com: Posted, Partially Paid, Paid).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from xml.etree.ElementTree import Element, SubElement

from sandbox.intacct import customers
from sandbox.intacct.calls import CallContext, FunctionOutput, format_date, money
from sandbox.intacct.errors import FunctionFailure, business_error
from sandbox.intacct.store import (
    BASE_CURRENCY,
    CURRENCIES,
    INVOICE_DOCCLASS,
    CompanyData,
    Record,
    add_record,
    find_record,
    format_datetime,
)
from sandbox.intacct.xmlout import add_text, child_text

# [DOC-ARPYMT]: the PAYMENTMETHOD values of `<create><ARPYMT>`.
PAYMENT_METHODS = ("Printed Check", "Cash", "EFT", "Credit Card", "Online Charge Card", "Online ACH Debit")
# ARINVOICE.STATE as a read answers it [CE]: Posted (nothing paid), Partially Paid, Paid (nothing due).
POSTED, PARTIALLY_PAID, PAID = "Posted", "Partially Paid", "Paid"
# ARPYMT.STATE of an applied payment: the raw code "C" (UNCERTAIN: no source shows a payment's STATE).
PAYMENT_STATE = "C"
# ARINVOICE.MODULEKEY of an invoice posted by Order Entry.
ORDER_ENTRY_MODULE = "8.SO"
# Amounts the sandbox reads: plain decimals with at most two decimal places, not too long to be money.
_AMOUNT = re.compile(r"-?\d{1,15}(?:\.\d{1,20})?", re.ASCII)
CENT = Decimal("0.01")
_DATE = re.compile(r"\d{1,2}/\d{1,2}/\d{4}", re.ASCII)


# ------------------------------------------------------------------ the AR invoice of a Sales Invoice


def is_invoice_definition(data: CompanyData, definition: str) -> bool:
    """True for a transaction definition whose class (SODOCUMENTPARAMS.DOCCLASS) is Invoice."""
    record = find_record(data, "SODOCUMENTPARAMS", "DOCID", definition)
    return record is not None and record.get("DOCCLASS") == INVOICE_DOCCLASS


def invoice_of(data: CompanyData, document: Record) -> Record | None:
    """The ARINVOICE a document posted (its PRRECORDKEY), if any."""
    key = document.get("PRRECORDKEY") or ""
    return find_record(data, "ARINVOICE", "RECORDNO", key) if key else None


def post_invoice(context: CallContext, document: Record) -> None:
    """Keep a Sales Invoice's ARINVOICE in step with the document after a create or an update.

    A document of an Invoice definition posts an ARINVOICE unless it is a Draft (a Draft posts nothing;
    an update back to Draft takes an unpaid invoice out again). Other documents have none: their
    PRRECORDKEY and TRX_ totals stay empty.
    """
    data = context.state.data
    if not is_invoice_definition(data, document["DOCPARID"]):
        return
    invoice = invoice_of(data, document)
    if document["STATE"] == "Draft":
        if invoice is not None:
            data.records["ARINVOICE"].remove(invoice)
        document.update(PRRECORDKEY="", TRX_TOTALENTERED="", TRX_TOTALPAID="", TRX_TOTALDUE="")
        return
    stamp = format_datetime(context.now)
    total = Decimal(document["TOTAL"])
    paid = Decimal(invoice["TRX_TOTALPAID"]) if invoice is not None else Decimal(0)
    fields: Record = {
        "RECORDID": document["DOCNO"],
        "CUSTOMERID": document["CUSTVENDID"],
        "CUSTOMERNAME": document["CUSTVENDNAME"],
        "DOCNUMBER": document["PONUMBER"],
        "DESCRIPTION": document["MESSAGE"],
        "TERMNAME": document["TERMNAME"],
        "WHENCREATED": document["WHENCREATED"],
        "WHENPOSTED": document["WHENPOSTED"] or document["WHENCREATED"],
        "WHENDUE": document["WHENDUE"],
        "CURRENCY": document["CURRENCY"],
        "BASECURR": document["BASECURR"],
        **amounts(total, paid),
        "MODULEKEY": ORDER_ENTRY_MODULE,
        "WHENMODIFIED": stamp,
    }
    if invoice is None:
        invoice = add_record(data, "ARINVOICE", {**fields, "WHENPAID": "", "AUWHENCREATED": stamp})
    else:
        invoice.update(fields)
    invoice["STATE"] = invoice_state(total, paid)
    document["PRRECORDKEY"] = invoice["RECORDNO"]
    copy_totals(invoice, document)


def amounts(total: Decimal, paid: Decimal) -> Record:
    """TOTALENTERED, TOTALPAID, TOTALDUE and their TRX_ twins. The sandbox has no exchange rates: the base
    currency amounts equal the transaction currency ones."""
    values = {"TOTALENTERED": money(total), "TOTALPAID": money(paid), "TOTALDUE": money(total - paid)}
    return {**values, **{f"TRX_{name}": value for name, value in values.items()}}


def invoice_state(total: Decimal, paid: Decimal) -> str:
    """[CE]: Paid when nothing is due, Partially Paid when some is paid and some due, else Posted."""
    if total - paid == 0 and paid != 0:
        return PAID
    return PARTIALLY_PAID if paid != 0 else POSTED


def copy_totals(invoice: Record, document: Record) -> None:
    for name in ("TRX_TOTALENTERED", "TRX_TOTALPAID", "TRX_TOTALDUE"):
        document[name] = invoice[name]


def paid_invoice_refusal(data: CompanyData, document: Record, action: str) -> str | None:
    """Why a document whose AR invoice has payments applied cannot be updated or deleted (UNCERTAIN:
    the sandbox refuses rather than guess what Intacct does with the payments)."""
    invoice = invoice_of(data, document)
    if invoice is None or Decimal(invoice["TRX_TOTALPAID"]) == 0:
        return None
    return (
        f"Transaction {document['DOCID']} cannot be {action}: payments of {invoice['TRX_TOTALPAID']} "
        f"have been applied to its AR invoice {invoice['RECORDID']}."
    )


def remove_invoice(data: CompanyData, document: Record) -> None:
    invoice = invoice_of(data, document)
    if invoice is not None:
        data.records["ARINVOICE"].remove(invoice)


def with_derived_fields(object_name: str, records: list[Record], today: date) -> list[Record]:
    """The records as a read answers them: an ARINVOICE's DUE_IN_DAYS is worked out on the day of the
    read (today - WHENDUE, in days; positive once the due date has passed; its meaning is UNCERTAIN)."""
    if object_name != "ARINVOICE":
        return records
    return [{**record, "DUE_IN_DAYS": due_in_days(record, today)} for record in records]


def due_in_days(record: Record, today: date) -> str:
    due = parse_us_date(record.get("WHENDUE") or "")
    return "" if due is None else str((today - due).days)


# ------------------------------------------------------------------ payments


def payment_failure(description2: str, correction: str = "") -> FunctionFailure:
    return FunctionFailure(
        business_error(description2, correction=correction),
        business_error("Could not create ARPYMT record!"),
    )


@dataclass(frozen=True)
class PaymentRequest:
    """A payment to record, as `<create><ARPYMT>` or the legacy create_arpayment gives it."""

    customer_id: str
    method: str
    receipt_date: date
    payment_date: date | None
    doc_number: str
    description: str
    financial_entity: str
    undeposited_account: str
    batch: str
    currency: str
    details: tuple[tuple[str, Decimal], ...]


def parse_amount(text: str, what: str) -> Decimal:
    """A payment amount: a plain decimal greater than 0 with at most two decimal places."""
    text = text.strip()
    if not _AMOUNT.fullmatch(text):
        raise payment_failure(f"Invalid {what} '{text[:40]}': a number is required.")
    value = Decimal(text)
    if value <= 0:
        raise payment_failure(f"Invalid {what} {text}: the amount must be greater than 0.")
    if value != value.quantize(CENT):
        raise payment_failure(f"Invalid {what} {text}: at most two decimal places.")
    return value


def parse_us_date(text: str) -> date | None:
    """mm/dd/yyyy, the date format of the generic functions and of reads; None if it is not one."""
    text = text.strip()
    if not _DATE.fullmatch(text):
        return None
    try:
        return datetime.strptime(text, "%m/%d/%Y").date()
    except ValueError:
        return None


def required_us_date(text: str, what: str) -> date:
    value = parse_us_date(text)
    if value is None:
        raise payment_failure(
            f"Invalid {what} '{text[:40]}': a date mm/dd/yyyy is required.", "Send the date as mm/dd/yyyy."
        )
    return value


def read_arpymt(node: Element) -> PaymentRequest:
    """Read one `<ARPYMT>` of a generic create (field names in any case, as Intacct's own SDKs vary)."""
    fields = {child.tag.upper(): child for child in node}

    def text(name: str) -> str:
        child = fields.get(name)
        return "" if child is None else (child.text or "").strip()

    receipt = text("RECEIPTDATE")
    if not receipt:
        raise payment_failure("Required field RECEIPTDATE is missing.", "Send RECEIPTDATE as mm/dd/yyyy.")
    payment_date = text("PAYMENTDATE")
    details_node = fields.get("ARPYMTDETAILS")
    details: list[tuple[str, Decimal]] = []
    for number, detail in enumerate([] if details_node is None else list(details_node), 1):
        if detail.tag.upper() != "ARPYMTDETAIL":
            raise payment_failure(f"ARPYMTDETAILS holds ARPYMTDETAIL elements, not {detail.tag}.")
        values = {child.tag.upper(): (child.text or "").strip() for child in detail}
        key = values.get("RECORDKEY", "")
        if not key:
            raise payment_failure(
                f"Required field RECORDKEY is missing on payment detail {number}.",
                "Send the RECORDNO of the AR invoice to pay.",
            )
        amount_text = values.get("TRX_PAYMENTAMOUNT", "")
        if not amount_text:
            raise payment_failure(
                f"Required field TRX_PAYMENTAMOUNT is missing on payment detail {number}.",
                "The sandbox applies cash only: send the amount paid on the invoice.",
            )
        details.append((key, parse_amount(amount_text, f"TRX_PAYMENTAMOUNT on payment detail {number}")))
    return PaymentRequest(
        customer_id=text("CUSTOMERID"),
        method=text("PAYMENTMETHOD"),
        receipt_date=required_us_date(receipt, "RECEIPTDATE"),
        payment_date=required_us_date(payment_date, "PAYMENTDATE") if payment_date else None,
        doc_number=text("DOCNUMBER"),
        description=text("DESCRIPTION"),
        financial_entity=text("FINANCIALENTITY"),
        undeposited_account=text("UNDEPOSITEDACCOUNTNO"),
        batch=text("PRBATCH"),
        currency=text("CURRENCY"),
        details=tuple(details),
    )


def record_payment(context: CallContext, request: PaymentRequest) -> Record:
    """Validate a payment as a whole, then apply it to its invoices and store it; nothing is applied
    when any part is refused."""
    data = context.state.data
    if request.method not in PAYMENT_METHODS:
        raise payment_failure(
            f"Invalid PAYMENTMETHOD '{request.method}'.", f"Use one of: {', '.join(PAYMENT_METHODS)}."
        )
    customer = (
        find_record(data, "CUSTOMER", "CUSTOMERID", request.customer_id) if request.customer_id else None
    )
    if customer is None:
        raise payment_failure(
            f"Invalid Customer '{request.customer_id}' specified.", "Use an existing customer ID."
        )
    accounts = [
        name for name in (request.financial_entity, request.undeposited_account, request.batch) if name
    ]
    if len(accounts) != 1:
        raise payment_failure(
            "Exactly one of FINANCIALENTITY, UNDEPOSITEDACCOUNTNO or PRBATCH is required.",
            "Name the bank account, the undeposited funds account or the summary the payment goes to.",
        )
    if request.currency and request.currency not in CURRENCIES:
        raise payment_failure(
            f"Invalid currency '{request.currency}' specified.", f"Use one of: {', '.join(CURRENCIES)}."
        )
    if not request.details:
        raise payment_failure(
            "A payment must be applied to at least one invoice (ARPYMTDETAILS/ARPYMTDETAIL).",
            "The sandbox holds no unapplied payments or advances.",
        )
    invoices: dict[str, Record] = {}
    applied: dict[str, Decimal] = {}
    for key, amount in request.details:
        invoice = find_record(data, "ARINVOICE", "RECORDNO", key)
        if invoice is None:
            raise payment_failure(
                f"Invalid RECORDKEY {key}: there is no AR invoice with that RECORDNO.",
                "Use the RECORDNO of an AR invoice (a Sales Invoice's PRRECORDKEY).",
            )
        if invoice["CUSTOMERID"] != request.customer_id:
            raise payment_failure(
                f"AR invoice {invoice['RECORDID']} (RECORDKEY {key}) belongs to customer "
                f"{invoice['CUSTOMERID']}, not {request.customer_id}.",
                "Pay a customer's own invoices.",
            )
        if request.currency and invoice["CURRENCY"] != request.currency:
            raise payment_failure(
                f"AR invoice {invoice['RECORDID']} is in {invoice['CURRENCY']}, "
                f"the payment in {request.currency}."
            )
        invoices[key] = invoice
        applied[key] = applied.get(key, Decimal(0)) + amount
    for key, amount in applied.items():
        due = Decimal(invoices[key]["TRX_TOTALDUE"])
        if amount > due:
            raise payment_failure(
                f"The payment of {money(amount)} on AR invoice {invoices[key]['RECORDID']} is more than "
                f"its amount due of {money(due)}.",
                "Pay at most the amount due.",
            )
    stamp = format_datetime(context.now)
    for key, amount in applied.items():
        apply_payment(data, invoices[key], amount, request.receipt_date, stamp)
    total = sum(applied.values(), Decimal(0))
    currency = request.currency or next(iter(invoices.values()))["CURRENCY"] or BASE_CURRENCY
    payment = add_record(
        data,
        "ARPYMT",
        {
            "STATE": PAYMENT_STATE,
            "PAYMENTMETHOD": request.method,
            "CUSTOMERID": request.customer_id,
            "CUSTOMERNAME": customer["NAME"],
            "DOCNUMBER": request.doc_number,
            "DESCRIPTION": request.description,
            "FINANCIALENTITY": request.financial_entity,
            "UNDEPOSITEDACCOUNTNO": request.undeposited_account,
            "PRBATCH": request.batch,
            "RECEIPTDATE": format_date(request.receipt_date),
            "PAYMENTDATE": format_date(request.payment_date or request.receipt_date),
            "WHENPAID": format_date(request.payment_date or request.receipt_date),
            "CURRENCY": currency,
            "BASECURR": BASE_CURRENCY,
            "TOTALENTERED": money(total),
            "TRX_TOTALENTERED": money(total),
            "WHENCREATED": format_date(request.receipt_date),
            "AUWHENCREATED": stamp,
            "WHENMODIFIED": stamp,
        },
    )
    # Kept for the admin listing only (ARPYMTDETAIL is not an object the sandbox reads).
    payment["ARPYMTDETAILS"] = [
        {"RECORDKEY": key, "TRX_PAYMENTAMOUNT": money(amount)} for key, amount in request.details
    ]
    return payment


def apply_payment(data: CompanyData, invoice: Record, amount: Decimal, receipt: date, stamp: str) -> None:
    """Raise TOTALPAID and lower TOTALDUE; the state follows, WHENPAID is the receipt date once paid."""
    total = Decimal(invoice["TRX_TOTALENTERED"])
    paid = Decimal(invoice["TRX_TOTALPAID"]) + amount
    invoice.update(amounts(total, paid))
    invoice["STATE"] = invoice_state(total, paid)
    invoice["WHENPAID"] = format_date(receipt) if total - paid == 0 else ""
    invoice["WHENMODIFIED"] = stamp
    document = find_record(data, "SODOCUMENT", "PRRECORDKEY", invoice["RECORDNO"])
    if document is not None:
        copy_totals(invoice, document)


def create(context: CallContext, element: Element) -> FunctionOutput:
    """Generic create: ARPYMT here, every other object as customers.create has it (CUSTOMER only)."""
    objects = list(element)
    payments = [node for node in objects if node.tag.upper() == "ARPYMT"]
    if not payments:
        return customers.create(context, element)
    if len(payments) != len(objects):
        raise payment_failure("A <create> holds objects of one type: send ARPYMT in a <create> of its own.")
    data = Element("data", {"listtype": "objects", "count": str(len(payments))})
    for node in payments:
        payment = record_payment(context, read_arpymt(node))
        created = SubElement(data, "arpymt")
        add_text(created, "RECORDNO", payment["RECORDNO"])
    return FunctionOutput(data=data)


# ------------------------------------------------------------------ legacy create_arpayment


def create_arpayment(context: CallContext, element: Element) -> FunctionOutput:
    """The legacy function (XSD: customerid, paymentamount, batchkey|bankaccountid|undepfundsacct, refid,
    datereceived, paymentmethod, currency, arpaymentitem*(invoicekey, amount)); answers the payment's
    RECORDNO as `<key>`. The items must add up to paymentamount (the sandbox holds no unapplied money)."""
    total = parse_amount(child_text(element, "paymentamount"), "paymentamount")
    details: list[tuple[str, Decimal]] = []
    for number, item in enumerate(element.findall("arpaymentitem"), 1):
        amount = parse_amount(child_text(item, "amount"), f"amount on arpaymentitem {number}")
        details.append((child_text(item, "invoicekey"), amount))
    applied = sum((amount for _, amount in details), Decimal(0))
    if details and applied != total:
        raise payment_failure(
            f"The arpaymentitem amounts add up to {money(applied)}, not the paymentamount {money(total)}.",
            "The sandbox holds no unapplied payments: apply the whole payment.",
        )
    received = element.find("datereceived")
    receipt = context.now.date() if received is None else date_triple(received)
    request = PaymentRequest(
        customer_id=child_text(element, "customerid"),
        method=child_text(element, "paymentmethod"),
        receipt_date=receipt,
        payment_date=None,
        doc_number=child_text(element, "refid"),
        description="",
        financial_entity=child_text(element, "bankaccountid"),
        undeposited_account=child_text(element, "undepfundsacct"),
        batch=child_text(element, "batchkey"),
        currency=child_text(element, "currency"),
        details=tuple(details),
    )
    return FunctionOutput(key=record_payment(context, request)["RECORDNO"])


def date_triple(element: Element) -> date:
    try:
        return date(
            int(child_text(element, "year")),
            int(child_text(element, "month")),
            int(child_text(element, "day")),
        )
    except ValueError as error:
        raise payment_failure(
            "Invalid datereceived: year/month/day do not form a valid date.", "Send a valid calendar date."
        ) from error
