"""The Salesforce fields sfintacct reads and writes, per object: the one list that the Salesforce package
(salesforce/) and the Salesforce sandbox are checked against.

No field name is written here a second time; every name comes from the code that uses it:

- Read: the fields of the one Opportunity query (`OpportunityQueryFields` defaults plus every field the
  default mapping file reads), on the Opportunity, its Account, its line items and the line items'
  parents (`Product2.ProductCode` is the field ProductCode of Product2). Fields added per deployment
  through SALESFORCE_*_FIELDS or a mapping file of your own are not in it.
- Written: the updates `sfintacct.sync.write_back` builds and the values the finance run writes
  (`sfintacct.finance.fields`, from sample AR invoices in every payment state), made twice with
  different records. A text value that is the same both times does not come from the record: the code
  writes it as it is (such as "Synced", or the invoice state "Paid"), so a picklist field must offer it.

Values are told apart by their Python type: text, an amount (a Decimal, sent as a JSON number, as the
REST API documents currency and number fields), a whole number, a boolean, a date-time, or None (the
field is cleared). The package's tests check that each amount fits the field's digits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from types import MappingProxyType

from sfintacct.finance.fields import account_values, opportunity_values
from sfintacct.finance.invoices import Invoice
from sfintacct.finance.run import FinanceSettings
from sfintacct.mapping import DEFAULT_MAPPING_FILE, load_mapping
from sfintacct.salesforce.models import RecordUpdate
from sfintacct.sync.write_back import (
    MAX_ERROR_TEXT,
    account_synced,
    failed,
    opportunity_changed_after_sync,
    opportunity_order_retired,
    opportunity_synced,
    waiting,
)

# The object each query reads from, and the parent relationships its field paths go through.
QUERIED_OBJECTS = ("Opportunity", "Account", "OpportunityLineItem")
RELATIONSHIP_OBJECTS: Mapping[str, str] = MappingProxyType(
    {
        "Account": "Account",
        "Opportunity": "Opportunity",
        "PricebookEntry": "PricebookEntry",
        "Pricebook2": "Pricebook2",
        "Product2": "Product2",
    }
)
# Invoices in the finance samples: more than the Opportunity's invoice numbers hold, so the cut shows.
MANY_INVOICES = 40


@dataclass(frozen=True)
class WrittenField:
    """A field the workers write back: what kinds of values, and which text they write as it is."""

    object_type: str
    name: str
    # "text", "decimal" (an amount, e.g. Decimal("600.00")), "number" (a whole number), "boolean", "datetime",
    # "null" (the field is cleared)
    value_kinds: frozenset[str]
    constant_values: frozenset[str]  # text written whatever the record is, e.g. "Synced"


def read_fields() -> Mapping[str, tuple[str, ...]]:
    """Object -> the fields the workers read from it, in query order."""
    return _read_fields()


def written_fields() -> tuple[WrittenField, ...]:
    """Every field the workers write, by object and name."""
    return _written_fields()


def write_back_updates(error_message: str) -> tuple[RecordUpdate, ...]:
    """One update of each kind the workers send, the messages `error_message` (as they cut it), and the
    finance run's updates of an Opportunity and an Account in each state they can show."""
    return _updates("1", datetime(2026, 1, 1, tzinfo=UTC), error_message)


def _updates(number: str, now: datetime, message: str) -> tuple[RecordUpdate, ...]:
    account_id, opportunity_id = f"00100000000000{number}AAA", f"00600000000000{number}AAA"
    return (
        *_sync_updates(number, now, message, account_id=account_id, opportunity_id=opportunity_id),
        *_finance_updates(int(number), now.date(), account_id, opportunity_id),
    )


def _sync_updates(
    number: str, now: datetime, message: str, *, account_id: str, opportunity_id: str
) -> tuple[RecordUpdate, ...]:
    order_id = f"Sales Order-SO000{number}"
    return (
        account_synced(account_id, f"C-000{number}", now),
        account_synced(account_id, f"C-000{number}", now, warnings=[message]),
        opportunity_synced(opportunity_id, order_id, now),
        opportunity_synced(opportunity_id, order_id, now, warnings=[message]),
        opportunity_order_retired(opportunity_id, order_id, message, now),
        opportunity_order_retired(opportunity_id, None, message, now),
        opportunity_changed_after_sync(opportunity_id, order_id, message),
        failed("Account", account_id, message, None),
        failed("Account", account_id, message, f"C-000{number}"),
        failed("Opportunity", opportunity_id, message, None),
        failed("Opportunity", opportunity_id, message, order_id),
        waiting("Account", account_id, message),
        waiting("Opportunity", opportunity_id, message),
    )


def _finance_updates(
    sample: int, today: date, account_id: str, opportunity_id: str
) -> tuple[RecordUpdate, ...]:
    """What the finance run writes (`sfintacct.finance.fields`) for invoices open, partly paid, paid and
    overdue; amounts, numbers and days differ from sample to sample, the states do not."""
    threshold = FinanceSettings().collections_threshold_days

    def invoice(index: int, total: str, paid: str, days_overdue: int) -> Invoice:
        amount, settled = Decimal(total) * sample, Decimal(paid) * sample
        return Invoice(
            record_no=f"{sample}{index:03d}",
            number=f"INV-{sample}{index:04d}",
            customer_id=f"C-000{sample}",
            total=amount,
            paid=settled,
            due=amount - settled,
            due_date=today - timedelta(days=days_overdue * sample),
            modified_at=None,
        )

    open_invoice = invoice(1, "600.00", "0", 0)
    partly_paid = invoice(2, "1250.50", "250.25", 10)
    paid = invoice(3, "99.99", "99.99", 0)
    late = invoice(4, "12000.00", "0", threshold + 10)
    many = [invoice(10 + index, "10.00", "0", 0) for index in range(MANY_INVOICES)]
    opportunities = (
        [open_invoice],
        [partly_paid],
        [paid],
        [open_invoice, paid],
        [paid, invoice(5, "5.00", "5.00", 0)],
        many,
    )
    accounts: tuple[list[Invoice], ...] = (
        [],
        [open_invoice],
        [open_invoice, partly_paid],
        [partly_paid, late],
    )
    return (
        *(
            RecordUpdate(
                object_type="Opportunity", record_id=opportunity_id, fields=opportunity_values(invoices)
            )
            for invoices in opportunities
        ),
        *(
            RecordUpdate(
                object_type="Account",
                record_id=account_id,
                fields=account_values(invoices, today, threshold),
            )
            for invoices in accounts
        ),
    )


def longest_error_message() -> str:
    """A failure message longer than the workers ever write, so the updates show their cut."""
    return "x" * (MAX_ERROR_TEXT * 2)


@cache
def _read_fields() -> Mapping[str, tuple[str, ...]]:
    query = load_mapping(DEFAULT_MAPPING_FILE).query_fields()
    by_object: dict[str, list[str]] = {}
    for object_type, paths in zip(
        QUERIED_OBJECTS, (query.opportunity_fields, query.account_fields, query.line_fields), strict=True
    ):
        for path in paths:
            target, name = _field_of_path(object_type, path)
            names = by_object.setdefault(target, [])
            if name not in names:
                names.append(name)
    return MappingProxyType({object_type: tuple(names) for object_type, names in by_object.items()})


def _field_of_path(object_type: str, path: str) -> tuple[str, str]:
    """("OpportunityLineItem", "Product2.ProductCode") -> ("Product2", "ProductCode")."""
    *relationships, name = path.split(".")
    for relationship in relationships:
        if relationship not in RELATIONSHIP_OBJECTS:
            raise ValueError(
                f"{object_type}.{path}: add the relationship {relationship!r} to RELATIONSHIP_OBJECTS"
            )
        object_type = RELATIONSHIP_OBJECTS[relationship]
    return object_type, name


@cache
def _written_fields() -> tuple[WrittenField, ...]:
    first = write_back_updates("The first record failed")
    second = _second_sample()
    kinds: dict[tuple[str, str], set[str]] = {}
    values: dict[tuple[str, str], list[set[object]]] = {}
    for sample, updates in enumerate((first, second)):
        for update in updates:
            for name, value in update.fields.items():
                key = (update.object_type, name)
                kinds.setdefault(key, set()).add(_kind(value))
                values.setdefault(key, [set(), set()])[sample].add(value)
    return tuple(
        WrittenField(
            object_type=object_type,
            name=name,
            value_kinds=frozenset(kinds[object_type, name]),
            constant_values=frozenset(
                value
                for value in values[object_type, name][0] & values[object_type, name][1]
                if isinstance(value, str)
            ),
        )
        for object_type, name in sorted(kinds)
    )


def _second_sample() -> tuple[RecordUpdate, ...]:
    """The same updates for other records, at another time, with another message."""
    return _updates("2", datetime(2026, 6, 30, 12, 30, tzinfo=UTC), "The second record failed differently")


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, bool):  # before int: a bool is an int in Python
        return "boolean"
    if isinstance(value, int):
        return "number"
    if isinstance(value, Decimal):  # an amount: a JSON number on the wire
        return "decimal"
    if isinstance(value, str):
        return "text"
    raise TypeError(f"a write-back value of an unexpected type: {value!r}")
