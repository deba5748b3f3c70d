"""The finance fields written on Salesforce records (read-only for sales; the package holds them), and the
values a record should show.

Opportunity: the invoice made from its order (numbers, state, amount due). Account: AR balance, the days
past due of its oldest open invoice, and the collections flag once that passes the threshold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sfintacct.finance.invoices import ZERO, Invoice, combined_state
from sfintacct.salesforce.models import FieldValue, RecordUpdate

INVOICE_NUMBER = "Intacct_Invoice_Number__c"
INVOICE_STATE = "Intacct_Invoice_State__c"
AMOUNT_DUE = "Intacct_Amount_Due__c"
AR_BALANCE = "Intacct_AR_Balance__c"
DAYS_PAST_DUE = "Intacct_Days_Past_Due__c"
IN_COLLECTIONS = "Intacct_In_Collections__c"
INVOICE_NUMBER_LENGTH = 255
CENT = Decimal("0.01")

Values = Mapping[str, FieldValue]


def opportunity_values(invoices: Sequence[Invoice]) -> dict[str, FieldValue]:
    """The Opportunity's invoice fields from every invoice made from its order (or made for it)."""
    ordered = sorted(invoices, key=lambda invoice: invoice.number)
    numbers = ", ".join(invoice.number for invoice in ordered)
    return {
        INVOICE_NUMBER: numbers[:INVOICE_NUMBER_LENGTH],
        INVOICE_STATE: combined_state(ordered).value,
        AMOUNT_DUE: money(sum((invoice.due for invoice in ordered), ZERO)),
    }


def account_values(
    open_invoices: Sequence[Invoice], today: date, threshold_days: int
) -> dict[str, FieldValue]:
    """The Account's AR fields from the customer's open invoices (none: nothing owed, nothing late)."""
    balance = sum((invoice.due for invoice in open_invoices), ZERO)
    late = max((invoice.days_past_due(today) for invoice in open_invoices), default=0)
    return {
        AR_BALANCE: money(balance),
        DAYS_PAST_DUE: late,
        IN_COLLECTIONS: late >= threshold_days,
    }


@dataclass(frozen=True)
class Change:
    """The fields of one record that differ from what was last written there."""

    object_type: str
    record_id: str
    values: dict[str, FieldValue]

    def update(self) -> RecordUpdate:
        return RecordUpdate(object_type=self.object_type, record_id=self.record_id, fields=self.values)


def changed(object_type: str, record_id: str, wanted: Values, written: Values | None) -> Change | None:
    """Only the fields whose value is not the one last written (all of them the first time)."""
    different = {
        name: value
        for name, value in wanted.items()
        if written is None or written.get(name) != stored_form(value)
    }
    return Change(object_type, record_id, different) if different else None


def money(amount: Decimal) -> Decimal:
    """An amount to two decimals. It goes to Salesforce as a JSON number (what the REST API documents for
    a currency field) and is remembered as its text (`stored_form`)."""
    return amount.quantize(CENT)


def stored_form(value: FieldValue) -> FieldValue:
    """How a written value is remembered (JSON): an amount as its text, "600.00"; the rest as it is."""
    return str(value) if isinstance(value, Decimal) else value


def stored(values: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
    return {name: stored_form(value) for name, value in values.items()}
