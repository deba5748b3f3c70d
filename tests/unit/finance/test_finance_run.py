"""The finance run on fakes: which invoices it reads, what it writes on which record, and what it never
writes twice. The Intacct fake answers `query` by evaluating the run's filters on its records."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from sfintacct.crosswalk import CrosswalkKind
from sfintacct.finance.fields import (
    AMOUNT_DUE,
    AR_BALANCE,
    DAYS_PAST_DUE,
    IN_COLLECTIONS,
    INVOICE_NUMBER,
    INVOICE_STATE,
)
from sfintacct.finance.invoices import TIMESTAMP_FORMAT, parse_timestamp
from sfintacct.finance.run import FinanceSettings, RunSummary, run_finance
from sfintacct.finance.state import RunState
from sfintacct.intacct.errors import IntacctRateLimited, IntacctUnavailable
from sfintacct.intacct.query import AllOf, AnyOf, Condition, Filter
from sfintacct.salesforce.client import SaveResult
from sfintacct.salesforce.errors import SalesforceApiLimitExceeded, TransientSalesforceError
from sfintacct.salesforce.models import FieldValue, RecordUpdate
from tests.fakes.stores import InMemoryCrosswalk

TODAY = date(2027, 1, 10)
ACCOUNT = "0015g00000AcmeXAAA"
DEAL = "0065g00000Deal1AAA"
OTHER_DEAL = "0065g00000Deal2AAA"
CUSTOMER = ACCOUNT  # the default mapping: CUSTOMERID is the Account id


# ---------------------------------------------------------------------------- fakes


def _matches(record: Mapping[str, str], query_filter: Filter | None) -> bool:
    if query_filter is None:
        return True
    if isinstance(query_filter, AllOf):
        return all(_matches(record, part) for part in query_filter.filters)
    if isinstance(query_filter, AnyOf):
        return any(_matches(record, part) for part in query_filter.filters)
    assert isinstance(query_filter, Condition)
    value = record.get(query_filter.field, "")
    if query_filter.operator == "in":
        return value in query_filter.values
    if query_filter.operator == "greaterthan":
        return Decimal(value or "0") > Decimal(query_filter.values[0])
    if query_filter.operator == "greaterthanorequalto":
        moment, since = parse_timestamp(value), parse_timestamp(query_filter.values[0])
        assert moment is not None
        assert since is not None
        return moment >= since
    raise AssertionError(f"the fake does not know {query_filter.operator}")


@dataclass
class FakeReceivables:
    """ARINVOICE and Sales Invoice SODOCUMENT records; `query` counts each call (one page each)."""

    invoices: list[dict[str, str]] = field(default_factory=list)
    documents: list[dict[str, str]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    now: datetime = datetime(2027, 1, 10, 9, 0, 0)
    fail_next_query: Exception | None = None
    fail_mid_page: int | None = None  # the next ARINVOICE read breaks off after this many records

    def query(
        self,
        object_name: str,
        fields: Sequence[str],
        *,
        query_filter: Filter | None = None,
        docparid: str | None = None,
        **_: Any,
    ) -> Iterator[dict[str, Any]]:
        if self.fail_next_query is not None:
            error, self.fail_next_query = self.fail_next_query, None
            raise error
        self.queries.append(object_name)
        records = self.invoices if object_name == "ARINVOICE" else self.documents
        if object_name == "SODOCUMENT":
            assert docparid == "Sales Invoice"
        found = [{name: r.get(name, "") for name in fields} for r in records if _matches(r, query_filter)]
        if object_name == "ARINVOICE" and self.fail_mid_page is not None:
            cut, self.fail_mid_page = self.fail_mid_page, None
            return self._breaking_off(found[:cut])
        return iter(found)

    @staticmethod
    def _breaking_off(records: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """The first records of a paged read, then Intacct answers the next page with a 502."""
        yield from records
        raise IntacctUnavailable("Intacct answered HTTP 502 (Bad Gateway)")

    def tick(self) -> str:
        self.now += timedelta(minutes=1)
        return self.now.strftime(TIMESTAMP_FORMAT)

    def invoice(self, order_id: str, total: str, *, due: date, customer: str = CUSTOMER) -> str:
        """The accountant converts the order (or part of it) to a Sales Invoice; it posts to AR."""
        record_no = str(len(self.invoices) + 1)
        self.invoices.append(
            {
                "RECORDNO": record_no,
                "RECORDID": f"INV{int(record_no):04d}",
                "CUSTOMERID": customer,
                "STATE": "Posted",
                "TOTALENTERED": total,
                "TOTALPAID": "0.00",
                "TOTALDUE": total,
                "WHENDUE": due.strftime("%m/%d/%Y"),
                "WHENMODIFIED": self.tick(),
            }
        )
        self.documents.append(
            {
                "DOCID": f"Sales Invoice-INV{int(record_no):04d}",
                "PRRECORDKEY": record_no,
                "CREATEDFROM": order_id,
                "CUSTVENDID": customer,
            }
        )
        return record_no

    def pay(self, record_no: str, amount: str) -> None:
        [invoice] = [i for i in self.invoices if i["RECORDNO"] == record_no]
        paid = Decimal(invoice["TOTALPAID"]) + Decimal(amount)
        invoice.update(
            TOTALPAID=str(paid),
            TOTALDUE=str(Decimal(invoice["TOTALENTERED"]) - paid),
            WHENMODIFIED=self.tick(),
        )


@dataclass
class FakeSalesforce:
    records: dict[str, dict[str, FieldValue]] = field(default_factory=dict)
    calls: list[list[RecordUpdate]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    fail_call: int | None = None  # the number of the call that fails as a whole
    fail_call_with: Exception = field(
        default_factory=lambda: SalesforceApiLimitExceeded(
            "REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded."
        )
    )

    def update_records(self, updates: Sequence[RecordUpdate]) -> list[SaveResult]:
        assert len(updates) <= 200
        if self.fail_call == len(self.calls) + 1:
            self.fail_call = None
            raise self.fail_call_with
        self.calls.append(list(updates))
        results = []
        for update in updates:
            if update.record_id in self.refuse:
                results.append(SaveResult(update.object_type, update.record_id, False, ("X",), "refused"))
                continue
            self.records.setdefault(update.record_id, {}).update(update.fields)
            results.append(SaveResult(update.object_type, update.record_id, True))
        return results

    def written_fields(self) -> list[tuple[str, tuple[str, ...]]]:
        return [(u.record_id, tuple(sorted(u.fields))) for call in self.calls for u in call]


@dataclass
class InMemoryState:
    run: RunState = field(default_factory=RunState)
    values: dict[str, dict[str, FieldValue]] = field(default_factory=dict)

    def run_state(self) -> RunState:
        return self.run

    def save_run_state(self, state: RunState) -> None:
        self.run = state

    def written(self, record_ids: Sequence[str]) -> dict[str, dict[str, FieldValue]]:
        return {
            record_id: dict(self.values[record_id]) for record_id in record_ids if record_id in self.values
        }

    def remember(self, record_id: str, values: Mapping[str, FieldValue]) -> None:
        self.values[record_id] = dict(values)


@dataclass
class World:
    intacct: FakeReceivables
    salesforce: FakeSalesforce
    state: InMemoryState
    crosswalk: InMemoryCrosswalk

    def run(self, today: date = TODAY, threshold: int = 120) -> RunSummary:
        return run_finance(
            intacct=self.intacct,
            salesforce=self.salesforce,
            crosswalk=self.crosswalk,
            state=self.state,
            today=today,
            settings=FinanceSettings(collections_threshold_days=threshold),
        )


@pytest.fixture
def world() -> World:
    crosswalk = InMemoryCrosswalk()
    crosswalk.put_mapping(ACCOUNT, CrosswalkKind.CUSTOMER, CUSTOMER, None)
    for deal, order in ((DEAL, "Sales Order-SO0001"), (OTHER_DEAL, "Sales Order-SO0002")):
        crosswalk.put_mapping(deal, CrosswalkKind.ORDER, order, datetime(2027, 1, 1, tzinfo=UTC))
    return World(FakeReceivables(), FakeSalesforce(), InMemoryState(), crosswalk)


def shown(world: World, record_id: str) -> dict[str, FieldValue]:
    return world.salesforce.records.get(record_id, {})


# ---------------------------------------------------------------------------- the story


def test_an_invoice_payments_and_aging_reach_the_deal_and_the_account(world: World) -> None:
    invoice = world.intacct.invoice("Sales Order-SO0001", "1000.00", due=TODAY + timedelta(days=30))

    world.run()
    assert shown(world, DEAL) == {
        INVOICE_NUMBER: "INV0001",
        INVOICE_STATE: "Open",
        AMOUNT_DUE: Decimal("1000.00"),
    }
    assert shown(world, ACCOUNT) == {AR_BALANCE: Decimal("1000.00"), DAYS_PAST_DUE: 0, IN_COLLECTIONS: False}
    assert len(world.salesforce.calls) == 1  # the deal and the Account in one call

    world.intacct.pay(invoice, "400.00")
    world.run()
    assert shown(world, DEAL)[INVOICE_STATE] == "Partially paid"
    assert shown(world, DEAL)[AMOUNT_DUE] == Decimal("600.00")
    assert shown(world, ACCOUNT)[AR_BALANCE] == Decimal("600.00")
    # Only what changed is written: not the invoice number again, not the days past due.
    assert world.salesforce.written_fields()[-2:] == [
        (DEAL, (AMOUNT_DUE, INVOICE_STATE)),
        (ACCOUNT, (AR_BALANCE,)),
    ]

    late = TODAY + timedelta(days=30 + 130)  # nothing changes in Intacct; the invoice grows old
    world.run(today=late)
    assert shown(world, ACCOUNT)[DAYS_PAST_DUE] == 130
    assert shown(world, ACCOUNT)[IN_COLLECTIONS] is True
    assert world.salesforce.written_fields()[-1] == (ACCOUNT, (DAYS_PAST_DUE, IN_COLLECTIONS))

    world.intacct.pay(invoice, "600.00")
    world.run(today=late)
    assert shown(world, DEAL)[INVOICE_STATE] == "Paid"
    assert shown(world, DEAL)[AMOUNT_DUE] == Decimal("0.00")
    assert shown(world, ACCOUNT) == {AR_BALANCE: Decimal("0.00"), DAYS_PAST_DUE: 0, IN_COLLECTIONS: False}


def test_a_run_with_nothing_changed_writes_nothing(world: World) -> None:
    world.intacct.invoice("Sales Order-SO0001", "1000.00", due=TODAY)
    world.run()
    calls = len(world.salesforce.calls)

    summary = world.run()

    assert len(world.salesforce.calls) == calls
    assert (summary.written, summary.unchanged) == (0, 2)  # read again (the overlap), same values


def test_the_open_invoices_are_read_once_a_day_not_every_run(world: World) -> None:
    world.intacct.invoice("Sales Order-SO0001", "1000.00", due=TODAY)
    first = world.run()
    second = world.run()
    next_day = world.run(today=TODAY + timedelta(days=1))

    assert (first.aged, second.aged, next_day.aged) == (True, False, True)
    assert shown(world, ACCOUNT)[DAYS_PAST_DUE] == 1


def test_a_deal_invoiced_in_two_parts_shows_both_when_one_changes(world: World) -> None:
    first = world.intacct.invoice("Sales Order-SO0001", "600.00", due=TODAY)
    world.intacct.invoice("Sales Order-SO0001", "400.00", due=TODAY)
    world.run()
    assert shown(world, DEAL)[INVOICE_NUMBER] == "INV0001, INV0002"
    world.state.run = RunState(watermark=world.intacct.now + timedelta(hours=2), aged_on=TODAY)

    world.intacct.now += timedelta(hours=3)
    world.intacct.pay(first, "600.00")  # only this invoice is modified since the watermark
    world.run()

    assert shown(world, DEAL)[INVOICE_STATE] == "Partially paid"
    assert shown(world, DEAL)[AMOUNT_DUE] == Decimal("400.00")


def test_an_invoice_made_straight_from_an_approved_deal_is_the_deals_own(world: World) -> None:
    world.crosswalk.put_mapping(
        OTHER_DEAL, CrosswalkKind.ORDER, "Sales Invoice-INV0001", None, replaces="Sales Order-SO0002"
    )
    world.intacct.invoice("", "250.00", due=TODAY)

    world.run()

    assert shown(world, OTHER_DEAL)[INVOICE_NUMBER] == "INV0001"


def test_an_invoice_of_no_synced_deal_is_counted_not_written(world: World) -> None:
    world.intacct.invoice("Sales Order-SO9999", "100.00", due=TODAY, customer="C-UNKNOWN")

    summary = world.run()

    assert summary.unmatched_invoices == ["1"]
    assert world.salesforce.calls == []


# ---------------------------------------------------------------------------- stopped part-way


@pytest.mark.parametrize(
    "failure",
    [
        SalesforceApiLimitExceeded("REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded."),
        TransientSalesforceError("HTTP 429 Too Many Requests", status=429),
    ],
    ids=["allowance spent", "429"],
)
def test_a_run_stopped_by_salesforce_mid_run_resumes_without_writing_anything_twice(
    world: World, failure: Exception
) -> None:
    for number in range(150):  # 150 deals of 150 Accounts: 300 records, two calls
        account, deal = f"0015g00000{number:05d}AAA", f"0065g00000{number:05d}AAA"
        world.crosswalk.put_mapping(account, CrosswalkKind.CUSTOMER, account, None)
        world.crosswalk.put_mapping(deal, CrosswalkKind.ORDER, f"Sales Order-X{number}", None)
        world.intacct.invoice(f"Sales Order-X{number}", "10.00", due=TODAY, customer=account)
    world.salesforce.fail_call, world.salesforce.fail_call_with = 2, failure

    with pytest.raises(type(failure)):
        world.run()
    assert world.state.run.watermark is None  # not moved: the next run reads the same invoices
    assert sum(len(call) for call in world.salesforce.calls) == 200

    summary = world.run()

    written = [update.record_id for call in world.salesforce.calls for update in call]
    assert len(written) == len(set(written)) == 300
    assert summary.written == 100
    assert summary.watermark is not None


def test_intacct_rate_limited_mid_run_writes_nothing_and_keeps_the_watermark(world: World) -> None:
    world.intacct.invoice("Sales Order-SO0001", "1000.00", due=TODAY)
    world.intacct.fail_next_query = IntacctRateLimited("GW-0010 rate limited")

    with pytest.raises(IntacctRateLimited):
        world.run()

    assert world.salesforce.calls == []
    assert world.state.run == RunState()
    world.run()
    assert shown(world, DEAL)[INVOICE_STATE] == "Open"


def test_a_record_salesforce_refuses_is_written_again_next_run(world: World) -> None:
    world.intacct.invoice("Sales Order-SO0001", "1000.00", due=TODAY)
    world.salesforce.refuse = {DEAL}

    summary = world.run()
    assert [result.record_id for result in summary.refused] == [DEAL]
    world.salesforce.refuse = set()

    world.run()
    assert shown(world, DEAL)[INVOICE_STATE] == "Open"


def test_an_invoice_stamped_before_the_watermark_but_committed_after_it_is_still_read(world: World) -> None:
    world.intacct.invoice("Sales Order-SO0001", "1000.00", due=TODAY)
    world.run()
    late = world.intacct.invoice("Sales Order-SO0002", "500.00", due=TODAY)
    # Stamped inside a long transaction: 30 minutes older than what the last run already saw.
    world.intacct.invoices[-1]["WHENMODIFIED"] = (world.intacct.now - timedelta(minutes=31)).strftime(
        TIMESTAMP_FORMAT
    )
    assert late == "2"

    world.run()

    assert shown(world, OTHER_DEAL)[INVOICE_NUMBER] == "INV0002"


def test_an_intacct_5xx_mid_page_writes_nothing_and_the_next_run_reads_it_all(world: World) -> None:
    for number in range(5):
        world.intacct.invoice("Sales Order-SO0001", f"{number + 1}00.00", due=TODAY)
    world.intacct.fail_mid_page = 2

    with pytest.raises(IntacctUnavailable):
        world.run()
    assert world.salesforce.calls == []
    assert world.state.run == RunState()

    world.run()
    assert shown(world, DEAL)[INVOICE_NUMBER] == "INV0001, INV0002, INV0003, INV0004, INV0005"
    assert shown(world, DEAL)[AMOUNT_DUE] == Decimal("1500.00")
    assert len(world.salesforce.calls) == 1
