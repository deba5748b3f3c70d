"""AR invoices as Intacct holds them, and what sales sees of them.

Intacct posts an ARINVOICE for every Sales Invoice (the SODOCUMENT's PRRECORDKEY is the ARINVOICE's
RECORDNO; the Sales Invoice's CREATEDFROM is the Sales Order it was converted from). Payments raise
TOTALPAID and lower TOTALDUE. The state shown in Salesforce is derived from those amounts, not from
ARINVOICE.STATE, whose exact words ("Posted", "Partially Paid", "Paid", ...) no source confirms:
sources: developer.intacct.com order-entry-transactions and ar-payments pages; fylein/sageintacct-sdk-py
apis/constants.py (the ARINVOICE fields real clients select).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sfintacct.intacct.models import date_of, decimal_of, text_of

INVOICE_FIELDS = (
    "RECORDNO",
    "RECORDID",
    "CUSTOMERID",
    "STATE",
    "TOTALENTERED",
    "TOTALPAID",
    "TOTALDUE",
    "WHENDUE",
    "WHENPAID",
    "WHENMODIFIED",
)
# The SODOCUMENT fields that link an AR invoice to its Sales Invoice and the order it came from.
INVOICE_DOCUMENT_FIELDS = ("RECORDNO", "DOCID", "PRRECORDKEY", "CREATEDFROM", "PONUMBER", "CUSTVENDID")
# Intacct's date-time text (query answers and filters): mm/dd/yyyy hh:mm:ss.
TIMESTAMP_FORMAT = "%m/%d/%Y %H:%M:%S"
ZERO = Decimal("0.00")


class PaymentState(StrEnum):
    """What sales sees: the Salesforce picklist values."""

    OPEN = "Open"
    PARTIALLY_PAID = "Partially paid"
    PAID = "Paid"


@dataclass(frozen=True)
class Invoice:
    record_no: str
    number: str
    customer_id: str
    total: Decimal
    paid: Decimal
    due: Decimal
    due_date: date | None
    modified_at: datetime | None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Invoice:
        total = decimal_of(record, "TOTALENTERED") or ZERO
        paid = decimal_of(record, "TOTALPAID") or ZERO
        due = decimal_of(record, "TOTALDUE")
        return cls(
            record_no=text_of(record, "RECORDNO"),
            number=text_of(record, "RECORDID") or text_of(record, "RECORDNO"),
            customer_id=text_of(record, "CUSTOMERID"),
            total=total,
            paid=paid,
            due=total - paid if due is None else due,
            due_date=date_of(record, "WHENDUE"),
            modified_at=parse_timestamp(text_of(record, "WHENMODIFIED")),
        )

    @property
    def is_open(self) -> bool:
        return self.due > 0

    @property
    def state(self) -> PaymentState:
        if not self.is_open:
            return PaymentState.PAID
        return PaymentState.PARTIALLY_PAID if self.paid > 0 else PaymentState.OPEN

    def days_past_due(self, today: date) -> int:
        """Days since the due date of an invoice still open (0 before it is due, or once paid)."""
        if not self.is_open or self.due_date is None:
            return 0
        return max((today - self.due_date).days, 0)


def parse_timestamp(text: str) -> datetime | None:
    """Intacct's mm/dd/yyyy hh:mm:ss (or a date alone), naive: in whatever zone Intacct answers in."""
    for pattern in (TIMESTAMP_FORMAT, "%m/%d/%Y"):
        try:
            return datetime.strptime(text.strip(), pattern)
        except ValueError:
            continue
    return None


def format_timestamp(moment: datetime) -> str:
    return moment.strftime(TIMESTAMP_FORMAT)


def combined_state(invoices: Iterable[Invoice]) -> PaymentState:
    """The state of a deal with one or more invoices (a partly converted order has several)."""
    states = {invoice.state for invoice in invoices}
    if states == {PaymentState.PAID}:
        return PaymentState.PAID
    if states == {PaymentState.OPEN}:
        return PaymentState.OPEN
    return PaymentState.PARTIALLY_PAID
