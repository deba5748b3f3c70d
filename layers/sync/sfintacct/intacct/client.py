"""IntacctClient: typed operations on customers, items and sales transactions, plus generic queries.

    with IntacctClient(settings) as client:
        ref = client.create_customer(NewCustomer(name="Acme"), control_id="cust-001Ab-v3")
        doc_id = client.create_sotransaction(order, control_id="so-006Ab-v1")

Writes need a control id chosen by the caller, derived from what the write stands for (e.g. the
Salesforce record and its version): repeating the same write with the same control id is refused by
Intacct (AlreadyApplied) instead of applied twice. Reads page transparently (iterators).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Literal, Self
from xml.etree.ElementTree import Element

import httpx

from sfintacct.intacct import functions as builders
from sfintacct.intacct.classify import first_failure
from sfintacct.intacct.errors import IntacctProtocolError, IntacctRequestError
from sfintacct.intacct.gateway import IntacctGateway
from sfintacct.intacct.models import (
    Customer,
    CustomerRef,
    CustomerUpdate,
    Item,
    NewCustomer,
    SalesDocument,
    SalesDocumentLine,
    SalesTransaction,
)
from sfintacct.intacct.query import Filter, all_of, equal_to, in_list
from sfintacct.intacct.request import IntacctFunction
from sfintacct.intacct.response import FunctionResult, Record
from sfintacct.intacct.retry import RetryPolicy
from sfintacct.intacct.session import SESSIONS, SessionCache, utc_now
from sfintacct.intacct.settings import IntacctSettings
from sfintacct.intacct.transport import HttpTransport, default_http_client
from sfintacct.intacct.writers import (
    customer_update_element,
    new_customer_element,
    sotransaction_delete_element,
    sotransaction_element,
    sotransaction_state_element,
    sotransaction_update_element,
)

CUSTOMER_FIELDS = ("RECORDNO", "CUSTOMERID", "NAME", "STATUS", "TERMNAME", "CURRENCY", "WHENMODIFIED")
ITEM_FIELDS = ("RECORDNO", "ITEMID", "NAME", "STATUS", "BASEPRICE", "UOM")
# SODOCUMENT and SODOCUMENTENTRY field names, and the evidence that the real objects have them, are in
# sandbox/intacct/README.md ("SODOCUMENT fields the client selects"). A `query` that selects a field its
# object lacks fails as a whole, so:
# - the order look-up the sync depends on selects only fields named by Intacct's docs or by several
#   independent clients of real companies;
SALES_DOCUMENT_LOOKUP_FIELDS = ("RECORDNO", "DOCNO", "DOCID", "DOCPARID", "STATE", "CUSTVENDID", "PONUMBER")
# - the default header and line selects add what callers read back (dates, message, totals, line amounts),
#   some of it UNCERTAIN (MESSAGE, TOTAL, MEMO); other fields are asked for with `extra_fields`.
SALES_DOCUMENT_FIELDS = (
    *SALES_DOCUMENT_LOOKUP_FIELDS,
    "WHENCREATED",
    "WHENDUE",
    "MESSAGE",
    "CURRENCY",
    "TOTAL",
)
SALES_DOCUMENT_LINE_FIELDS = (
    "RECORDNO",
    "DOCHDRID",
    "LINE_NO",
    "ITEMID",
    "QUANTITY",
    "PRICE",
    "TOTAL",
    "MEMO",
)
ITEM_IDS_PER_QUERY = 100
DEFAULT_PAGE_SIZE = 1000


class IntacctClient:
    """One Intacct company through the XML gateway. Close it (or use `with`) to release connections."""

    def __init__(
        self,
        settings: IntacctSettings,
        *,
        http_client: httpx.Client | None = None,
        sessions: SessionCache = SESSIONS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utc_now,
        random_fraction: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self._owns_http_client = http_client is None
        self.transport = HttpTransport(http_client or default_http_client(settings))
        retry = RetryPolicy.from_settings(settings, sleep=sleep, clock=clock, random_fraction=random_fraction)
        self.gateway = IntacctGateway(settings, self.transport, retry, sessions, now)

    def close(self) -> None:
        if self._owns_http_client:
            self.transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ generic execution

    def execute(
        self, functions: Sequence[IntacctFunction], *, transaction: bool = False
    ) -> list[FunctionResult]:
        """Run several functions in one request; results in order, failures left for the caller to judge.

        Use classify.error_for_result(result) to turn a failed result into its typed error.
        """
        return self.gateway.execute(functions, transaction=transaction)

    def execute_checked(
        self, functions: Sequence[IntacctFunction], *, transaction: bool = False
    ) -> list[FunctionResult]:
        """Like execute, but raise the typed error of the first failed function.

        Under transaction=true that is the function that failed, not an `aborted` companion.
        """
        results = self.gateway.execute(functions, transaction=transaction)
        error = first_failure(results)
        if error is not None:
            raise error
        return results

    def run(self, function: IntacctFunction) -> FunctionResult:
        """One function in its own request; raises its typed error when it fails."""
        return self.execute_checked([function])[0]

    # ------------------------------------------------------------------ customers

    def create_customer(self, customer: NewCustomer, *, control_id: str) -> CustomerRef:
        """Create a CUSTOMER (generic create). DuplicateRecord if the CUSTOMERID exists."""
        result = self.run(builders.create([new_customer_element(customer)], control_id=control_id))
        return _customer_ref(result)

    def update_customer(self, changes: CustomerUpdate, *, control_id: str) -> CustomerRef:
        """Update a CUSTOMER by RECORDNO or CUSTOMERID (generic update)."""
        result = self.run(builders.update([customer_update_element(changes)], control_id=control_id))
        return _customer_ref(result)

    def get_customer(self, customer_id: str, *, extra_fields: Sequence[str] = ()) -> Customer | None:
        """The customer with this CUSTOMERID, or None."""
        found = self.find_customers("CUSTOMERID", customer_id, extra_fields=extra_fields)
        return found[0] if found else None

    def find_customers(self, field: str, value: str, *, extra_fields: Sequence[str] = ()) -> list[Customer]:
        """Customers whose `field` (standard or custom, e.g. SALESFORCE_ID) equals `value`."""
        fields = _unique([*CUSTOMER_FIELDS, *extra_fields, field])
        records = self.query("CUSTOMER", fields, query_filter=equal_to(field, value))
        return [Customer.from_record(record) for record in records]

    # ------------------------------------------------------------------ items

    def get_items(self, item_ids: Iterable[str]) -> dict[str, Item]:
        """The items with these ITEMIDs (active or not), by ITEMID; unknown ids are simply absent."""
        wanted = _unique([item_id for item_id in item_ids if item_id])
        items: dict[str, Item] = {}
        for start in range(0, len(wanted), ITEM_IDS_PER_QUERY):
            chunk = wanted[start : start + ITEM_IDS_PER_QUERY]
            for record in self.query("ITEM", ITEM_FIELDS, query_filter=in_list("ITEMID", chunk)):
                item = Item.from_record(record)
                items[item.item_id] = item
        return items

    # ------------------------------------------------------------------ sales transactions

    def create_sotransaction(self, transaction: SalesTransaction, *, control_id: str) -> str:
        """Create an Order Entry transaction (Sales Order by default); returns its DOCID key."""
        function = builders.write_function(sotransaction_element(transaction), control_id)
        return _document_key(self.run(function))

    def write_customer_and_order(
        self,
        customer: NewCustomer | CustomerUpdate | None,
        order: SalesTransaction,
        *,
        customer_control_id: str,
        order_control_id: str,
        retired: OrderRetirement | None = None,
    ) -> tuple[CustomerRef | None, str]:
        """Create or update the customer (optional), retire an earlier order (optional: close or delete
        it) and create the order, in ONE request.

        With more than one function the request is one transaction: all are written or none is. Returns
        the customer reference (None without a customer write) and the new order's DOCID key.
        """
        functions: list[IntacctFunction] = []
        if isinstance(customer, NewCustomer):
            functions.append(
                builders.create([new_customer_element(customer)], control_id=customer_control_id)
            )
        elif isinstance(customer, CustomerUpdate):
            functions.append(
                builders.update([customer_update_element(customer)], control_id=customer_control_id)
            )
        if retired is not None:
            functions.append(retired.function())
        functions.append(builders.write_function(sotransaction_element(order), order_control_id))
        results = self.execute_checked(functions, transaction=len(functions) > 1)
        return (_customer_ref(results[0]) if customer is not None else None), _document_key(results[-1])

    def update_sotransaction(
        self, doc_id: str, order: SalesTransaction, *, existing_lines: int, control_id: str
    ) -> None:
        """Rewrite an open order in place: header and lines (it has `existing_lines`; more are added)."""
        element = sotransaction_update_element(doc_id, order, existing_lines)
        self.run(builders.write_function(element, control_id))

    def retire_sotransaction(self, retirement: OrderRetirement) -> None:
        """Take an open order out of open business: close it, or delete it."""
        self.run(retirement.function())

    def find_sales_documents(
        self,
        *,
        doc_id: str | None = None,
        reference_no: str | None = None,
        external_id: str | None = None,
        field_values: Mapping[str, str] | None = None,
        transaction_type: str | None = "Sales Order",
        extra_fields: Sequence[str] = (),
        fields: Sequence[str] = SALES_DOCUMENT_FIELDS,
    ) -> list[SalesDocument]:
        """SODOCUMENT headers matching every given criterion (reference_no is PONUMBER).

        `fields` is the select (SALES_DOCUMENT_LOOKUP_FIELDS for a look-up that must not fail on an
        uncertain field name), plus `extra_fields` and the names in `field_values`.
        """
        criteria: list[Filter] = []
        if doc_id is not None:
            criteria.append(equal_to("DOCID", doc_id))
        if reference_no is not None:
            criteria.append(equal_to("PONUMBER", reference_no))
        if external_id is not None:
            criteria.append(equal_to("EXTERNALID", external_id))
        for name, value in (field_values or {}).items():
            criteria.append(equal_to(name, value))
        if not criteria:
            raise IntacctRequestError("find_sales_documents needs at least one criterion")
        selected = _unique([*fields, *extra_fields, *(field_values or {})])
        records = self.query(
            "SODOCUMENT", selected, query_filter=all_of(*criteria), docparid=transaction_type
        )
        return [SalesDocument.from_record(record) for record in records]

    def get_sales_document_lines(
        self, doc_id: str, *, transaction_type: str | None = None, extra_fields: Sequence[str] = ()
    ) -> list[SalesDocumentLine]:
        """The SODOCUMENTENTRY lines of a document (by DOCID), in line order."""
        records = self.query(
            "SODOCUMENTENTRY",
            _unique([*SALES_DOCUMENT_LINE_FIELDS, *extra_fields]),
            query_filter=equal_to("DOCHDRID", doc_id),
            order_by=[("LINE_NO", False)],
            docparid=transaction_type,
        )
        lines = [SalesDocumentLine.from_record(record) for record in records]
        return sorted(lines, key=lambda line: line.line_no)

    # ------------------------------------------------------------------ object definitions

    def lookup_fields(self, object_name: str, *, docparid: str | None = None) -> list[ObjectField]:
        """The fields of an object as `lookup` defines them, standard and custom (e.g. SALESFORCE_ID)."""
        result = self.run(builders.lookup(object_name, docparid=docparid))
        if result.data is None:
            raise IntacctProtocolError(f"lookup of {object_name} succeeded but returned no <data>")
        return [
            ObjectField.from_element(element)
            for element in result.data.iter("Field")
            if (element.findtext("ID") or "").strip()
        ]

    # ------------------------------------------------------------------ queries with paging

    def query(
        self,
        object_name: str,
        fields: Sequence[str],
        *,
        query_filter: Filter | None = None,
        order_by: Sequence[tuple[str, bool]] = (),
        case_insensitive: bool = False,
        page_size: int = DEFAULT_PAGE_SIZE,
        docparid: str | None = None,
    ) -> Iterator[Record]:
        """Every record matching the `query` function, fetched page by page (offset paging)."""
        offset = 0
        while True:
            function = builders.query(
                object_name,
                fields,
                query_filter=query_filter,
                order_by=order_by,
                case_insensitive=case_insensitive,
                page_size=page_size,
                offset=offset,
                docparid=docparid,
            )
            result = self.run(function)
            records = result.records()
            yield from records
            remaining = result.data_number("numremaining") or 0
            if remaining == 0:
                return
            if not records:
                raise IntacctProtocolError("query reported remaining records but returned an empty page")
            offset += len(records)

    def read_by_query(
        self,
        object_name: str,
        *,
        query_text: str = "",
        fields: Sequence[str] = ("*",),
        page_size: int = DEFAULT_PAGE_SIZE,
        docparid: str | None = None,
    ) -> Iterator[Record]:
        """Every record of a legacy readByQuery, following readMore with the resultId."""
        function = builders.read_by_query(
            object_name, query_text=query_text, fields=fields, page_size=page_size, docparid=docparid
        )
        result = self.run(function)
        while True:
            records = result.records()
            yield from records
            remaining = result.data_number("numremaining") or 0
            if remaining == 0:
                return
            result_id = result.data_attribute("resultId")
            if not result_id or not records:
                raise IntacctProtocolError(
                    "readByQuery reported remaining records but gave no way to read them"
                )
            result = self.run(builders.read_more(result_id))


def _customer_ref(result: FunctionResult) -> CustomerRef:
    records = result.records()
    if not records:
        raise IntacctProtocolError(f"{result.function} of CUSTOMER succeeded but returned no record")
    record = records[0]
    return CustomerRef(
        record_no=str(record.get("RECORDNO", "")).strip(),
        customer_id=str(record.get("CUSTOMERID", "")).strip(),
    )


def _document_key(result: FunctionResult) -> str:
    """The DOCID key a successful create_sotransaction answers with."""
    if not result.key:
        raise IntacctProtocolError("create_sotransaction succeeded but returned no <key>")
    return result.key


def _unique(names: Iterable[str]) -> list[str]:
    """Names in first-seen order without repeats."""
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class ObjectField:
    """One `<Field>` of a `lookup` answer: its integration name (ID) and what Intacct says of it."""

    name: str
    label: str = ""
    data_type: str = ""
    required: bool = False
    read_only: bool = False
    custom: bool = False

    @classmethod
    def from_element(cls, element: Element) -> ObjectField:
        def text(tag: str) -> str:
            return (element.findtext(tag) or "").strip()

        return cls(
            name=text("ID"),
            label=text("LABEL"),
            data_type=text("DATATYPE"),
            required=text("REQUIRED").lower() == "true",
            read_only=text("READONLY").lower() == "true",
            custom=text("ISCUSTOM").lower() == "true",
        )


@dataclass(frozen=True)
class OrderRetirement:
    """How an open order leaves open business: `close` (state Closed, kept for the audit trail) or
    `delete` (removed)."""

    doc_id: str
    how: Literal["close", "delete"]
    control_id: str

    def function(self) -> IntacctFunction:
        if self.how == "close":
            element = sotransaction_state_element(self.doc_id, "Closed")
        else:
            element = sotransaction_delete_element(self.doc_id)
        return builders.write_function(element, self.control_id)
