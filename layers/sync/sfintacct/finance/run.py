"""One finance run: what accounting did in Intacct since the last run, onto the Salesforce records.

1. Read the AR invoices modified since the watermark (one paged `query` of ARINVOICE on WHENMODIFIED,
   reaching back OVERLAP before it: Intacct stamps WHENMODIFIED inside long transactions, so a record can
   commit after a later one was read). Once a day, also every open invoice (TOTALDUE > 0), so days past
   due grow without any change in Intacct.
2. Find each invoice's deal: its Sales Invoice (SODOCUMENT whose PRRECORDKEY is the invoice's RECORDNO)
   was converted from the deal's order (CREATEDFROM), or made for the deal itself; the crosswalk knows
   which Opportunity each is. Its customer's Account comes from the crosswalk too.
3. Compute the Opportunity's invoice fields (from all its invoices) and the Account's AR fields (from all
   the customer's open invoices), compare them with the values last written, and write only what
   differs with sObject Collections (200 records a call).
4. Remember what was written, then move the watermark to the newest WHENMODIFIED read.

A run stopped part-way (Salesforce's allowance spent, Intacct rate-limited or down) keeps its watermark:
the next run reads the same invoices again and writes only what is still not on the records.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sfintacct.crosswalk import CrosswalkEntry, CrosswalkKind
from sfintacct.finance.fields import Change, account_values, changed, opportunity_values, stored
from sfintacct.finance.invoices import (
    INVOICE_DOCUMENT_FIELDS,
    INVOICE_FIELDS,
    Invoice,
    format_timestamp,
)
from sfintacct.finance.state import RunState
from sfintacct.intacct.models import text_of
from sfintacct.intacct.query import Filter, all_of, greater_than, greater_than_or_equal_to, in_list
from sfintacct.salesforce.client import MAX_COLLECTION_RECORDS, SaveResult
from sfintacct.salesforce.models import FieldValue, RecordUpdate
from sfintacct.salesforce_ids import OPPORTUNITY_KEY_PREFIX, InvalidSalesforceId, to_case_safe_id

logger = logging.getLogger(__name__)

OVERLAP = timedelta(hours=1)
KEYS_PER_QUERY = 100  # `in` lists of Intacct queries
PAGE_SIZE = 1000


class IntacctReads(Protocol):
    def query(
        self,
        object_name: str,
        fields: Sequence[str],
        *,
        query_filter: Filter | None = None,
        order_by: Sequence[tuple[str, bool]] = (),
        case_insensitive: bool = False,
        page_size: int = ...,
        docparid: str | None = None,
    ) -> Iterator[dict[str, Any]]: ...


class SalesforceWrites(Protocol):
    def update_records(self, updates: Sequence[RecordUpdate]) -> list[SaveResult]: ...


class CrosswalkReads(Protocol):
    def find_by_intacct_id(self, kind: CrosswalkKind, intacct_id: str) -> CrosswalkEntry | None: ...


class StateStore(Protocol):
    def run_state(self) -> RunState: ...

    def save_run_state(self, state: RunState) -> None: ...

    def written(self, record_ids: Sequence[str]) -> dict[str, dict[str, FieldValue]]: ...

    def remember(self, record_id: str, values: Mapping[str, FieldValue]) -> None: ...


@dataclass(frozen=True)
class FinanceSettings:
    invoice_transaction_type: str = "Sales Invoice"
    collections_threshold_days: int = 120


@dataclass
class RunSummary:
    """What a run read, wrote and refused (for the log, the metrics and `make bench`)."""

    changed_invoices: int = 0
    open_invoices_aged: int = 0
    opportunities: int = 0
    accounts: int = 0
    written: int = 0
    unchanged: int = 0
    refused: list[SaveResult] = field(default_factory=list)
    unmatched_invoices: list[str] = field(default_factory=list)
    aged: bool = False
    watermark: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "changed_invoices": self.changed_invoices,
            "open_invoices_aged": self.open_invoices_aged,
            "opportunities": self.opportunities,
            "accounts": self.accounts,
            "written": self.written,
            "unchanged": self.unchanged,
            "refused": [f"{r.object_type} {r.record_id}: {r.message}" for r in self.refused],
            "unmatched_invoices": self.unmatched_invoices,
            "aged": self.aged,
            "watermark": self.watermark.isoformat() if self.watermark else None,
        }


def run_finance(
    *,
    intacct: IntacctReads,
    salesforce: SalesforceWrites,
    crosswalk: CrosswalkReads,
    state: StateStore,
    today: date,
    settings: FinanceSettings,
    on_written: Callable[[Change], None] = lambda change: None,
) -> RunSummary:
    """One run (see the module's docstring). Errors of Intacct, Salesforce or the state table propagate
    after what was written is remembered; the watermark then stays where it was."""
    summary = RunSummary()
    before = state.run_state()
    since = before.watermark - OVERLAP if before.watermark else None
    changed_invoices = _modified_since(intacct, since)
    summary.changed_invoices = len(changed_invoices)
    age_today = before.aged_on != today
    aged = list(_invoices(intacct, greater_than("TOTALDUE", "0"))) if age_today else []
    summary.open_invoices_aged, summary.aged = len(aged), age_today

    deals = _deals_of(intacct, crosswalk, changed_invoices, settings, summary)
    customers = {invoice.customer_id for invoice in changed_invoices} | {i.customer_id for i in aged}
    open_by_customer = _open_by_customer(intacct, customers, aged if age_today else None)

    wanted: dict[tuple[str, str], dict[str, FieldValue]] = {}
    for opportunity_id, invoices in deals.items():
        wanted["Opportunity", opportunity_id] = opportunity_values(invoices)
    for customer_id in sorted(customers):
        account_id = _account_of(crosswalk, customer_id)
        if account_id is None:
            continue
        wanted["Account", account_id] = account_values(
            open_by_customer.get(customer_id, []), today, settings.collections_threshold_days
        )
    summary.opportunities = sum(1 for object_type, _ in wanted if object_type == "Opportunity")
    summary.accounts = len(wanted) - summary.opportunities

    last = state.written([record_id for _, record_id in wanted])
    changes = [
        change
        for (object_type, record_id), values in wanted.items()
        if (change := changed(object_type, record_id, values, last.get(record_id))) is not None
    ]
    summary.unchanged = len(wanted) - len(changes)
    for start in range(0, len(changes), MAX_COLLECTION_RECORDS):
        chunk = changes[start : start + MAX_COLLECTION_RECORDS]
        results = salesforce.update_records([change.update() for change in chunk])
        for change, result in zip(chunk, results, strict=True):
            if result.success:  # remembered call by call: a run stopped later does not write it again
                state.remember(change.record_id, {**last.get(change.record_id, {}), **stored(change.values)})
                summary.written += 1
                on_written(change)
            else:
                summary.refused.append(result)
                logger.error(
                    "%s %s refused the finance fields %s: %s",
                    result.object_type,
                    result.record_id,
                    ", ".join(change.values),
                    result.message,
                )
    newest = max((i.modified_at for i in changed_invoices if i.modified_at), default=None)
    summary.watermark = max(filter(None, (newest, before.watermark)), default=None)
    state.save_run_state(
        RunState(watermark=summary.watermark, aged_on=today if age_today else before.aged_on)
    )
    return summary


# ---------------------------------------------------------------------------- reads


def _invoices(intacct: IntacctReads, query_filter: Filter | None) -> Iterator[Invoice]:
    records = intacct.query("ARINVOICE", INVOICE_FIELDS, query_filter=query_filter, page_size=PAGE_SIZE)
    return (Invoice.from_record(record) for record in records)


def _modified_since(intacct: IntacctReads, since: datetime | None) -> list[Invoice]:
    return list(
        _invoices(
            intacct, greater_than_or_equal_to("WHENMODIFIED", format_timestamp(since)) if since else None
        )
    )


def _open_by_customer(
    intacct: IntacctReads, customers: Iterable[str], every_open: list[Invoice] | None
) -> dict[str, list[Invoice]]:
    """The open invoices (TOTALDUE > 0) of each customer: from the day's read of every open invoice, or
    read now for the customers given (`in` lists of 100)."""
    by_customer: dict[str, list[Invoice]] = defaultdict(list)
    if every_open is not None:
        source: Iterable[Invoice] = every_open
    else:
        source = (
            invoice
            for chunk in _chunks(sorted(customers))
            for invoice in _invoices(
                intacct, all_of(in_list("CUSTOMERID", chunk), greater_than("TOTALDUE", "0"))
            )
        )
    for invoice in source:
        by_customer[invoice.customer_id].append(invoice)
    return by_customer


def _deals_of(
    intacct: IntacctReads,
    crosswalk: CrosswalkReads,
    invoices: Sequence[Invoice],
    settings: FinanceSettings,
    summary: RunSummary,
) -> dict[str, list[Invoice]]:
    """Opportunity id -> every invoice of its deal, for the deals of the changed invoices.

    A changed invoice's Sales Invoice (PRRECORDKEY) names the order it was converted from (CREATEDFROM)
    or is the deal's own document; the crosswalk says whose. A deal invoiced in parts has other Sales
    Invoices from the same order: they are read too, so the deal's fields count all of them."""
    known = {invoice.record_no: invoice for invoice in invoices}
    documents = _invoice_documents(intacct, settings, "PRRECORDKEY", sorted(known))
    sources = {_source_of(document) for document in documents} - {""}
    documents += [
        document
        for document in _invoice_documents(intacct, settings, "CREATEDFROM", sorted(sources))
        if text_of(document, "PRRECORDKEY") not in known
    ]
    missing = sorted({text_of(d, "PRRECORDKEY") for d in documents} - set(known) - {""})
    for chunk in _chunks(missing):
        known.update((i.record_no, i) for i in _invoices(intacct, in_list("RECORDNO", chunk)))
    deals: dict[str, dict[str, Invoice]] = defaultdict(dict)
    for document in documents:
        invoice = known.get(text_of(document, "PRRECORDKEY"))
        opportunity_id = _deal_of(crosswalk, document)
        if invoice is not None and opportunity_id is not None:
            deals[opportunity_id][invoice.record_no] = invoice
    matched = {record_no for deal in deals.values() for record_no in deal}
    summary.unmatched_invoices = sorted({invoice.record_no for invoice in invoices} - matched)
    return {opportunity_id: list(deal.values()) for opportunity_id, deal in deals.items()}


def _invoice_documents(
    intacct: IntacctReads, settings: FinanceSettings, field_name: str, values: Sequence[str]
) -> list[dict[str, Any]]:
    """The Sales Invoice documents whose `field_name` is one of `values`."""
    return [
        document
        for chunk in _chunks(values)
        for document in intacct.query(
            "SODOCUMENT",
            INVOICE_DOCUMENT_FIELDS,
            query_filter=in_list(field_name, chunk),
            docparid=settings.invoice_transaction_type,
            page_size=PAGE_SIZE,
        )
    ]


def _source_of(document: dict[str, Any]) -> str:
    return text_of(document, "CREATEDFROM")


def _deal_of(crosswalk: CrosswalkReads, document: dict[str, Any]) -> str | None:
    """The Opportunity of a Sales Invoice: the one whose order it was made from, or made for it, or the
    Opportunity its reference names."""
    for doc_id in (_source_of(document), text_of(document, "DOCID")):
        if doc_id:
            entry = crosswalk.find_by_intacct_id(CrosswalkKind.ORDER, doc_id)
            if entry is not None:
                return entry.sf_id
    try:
        record_id = to_case_safe_id(text_of(document, "PONUMBER"))
    except InvalidSalesforceId:
        return None
    return record_id if record_id.startswith(OPPORTUNITY_KEY_PREFIX) else None


def _account_of(crosswalk: CrosswalkReads, customer_id: str) -> str | None:
    entry = crosswalk.find_by_intacct_id(CrosswalkKind.CUSTOMER, customer_id)
    return entry.sf_id if entry is not None else None


def _chunks(values: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), KEYS_PER_QUERY):
        yield list(values[start : start + KEYS_PER_QUERY])
