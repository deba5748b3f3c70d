"""Intacct and Salesforce as the sync sees them through its ports, in memory, recording what they were asked.

FakeIntacct keeps Intacct's uniqueid rule (a function control id that completed once is refused, with
AlreadyApplied unless `repeat_refusal` makes the refusal another error, as an answer in other words
would be classified) and can hold a write "in flight": accepted, not yet committed, while the caller gets
OutcomeUnknown, as when the HTTP exchange times out and Intacct commits later. FakeSalesforce applies
write-backs to its records, so a later read shows them, and can fail the next write-backs with a 503.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sfintacct.intacct.client import OrderRetirement
from sfintacct.intacct.errors import AlreadyApplied, DuplicateRecord, OutcomeUnknown, PermanentIntacctError
from sfintacct.intacct.models import (
    Customer,
    CustomerRef,
    CustomerUpdate,
    NewCustomer,
    SalesDocument,
    SalesDocumentLine,
    SalesTransaction,
)
from sfintacct.salesforce.errors import RecordNotFound, TransientSalesforceError
from sfintacct.salesforce.models import OpportunitySnapshot, RecordUpdate


@dataclass
class _HeldWrite:
    control_ids: tuple[str, ...]
    customer: NewCustomer | CustomerUpdate | None
    order: SalesTransaction
    retired: OrderRetirement | None = None


@dataclass
class FakeIntacct:
    customers: list[Customer] = field(default_factory=list)
    orders: list[SalesDocument] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    control_ids: list[str] = field(default_factory=list)  # of every write, in order
    completed: set[str] = field(default_factory=set)
    fail_with: Exception | None = None  # raised by the order writes until cleared
    fail_customer_writes_with: Exception | None = None  # raised by customer creates and updates until cleared
    hold_next_write: bool = False
    held: list[_HeldWrite] = field(default_factory=list)
    commit_held_at_next_create: bool = False  # the held writes commit just as a customer create arrives
    customer_updates: list[CustomerUpdate] = field(default_factory=list)
    during_next_order_search: Callable[[], None] | None = None  # runs while a slow order search waits
    # How a repeated control id is refused (given the control id); None: AlreadyApplied, as classified
    # from Intacct's "already been recorded with the control id" text.
    repeat_refusal: Callable[[str], Exception] | None = None
    order_search_fields: list[tuple[str, ...]] = field(default_factory=list)  # selected by each search
    contents: dict[str, SalesTransaction] = field(default_factory=dict)  # what each order holds, by DOCID

    # -------------------------------------------------------------- reads

    def find_customers(
        self, field_name: str, value: str, *, extra_fields: Sequence[str] = ()
    ) -> list[Customer]:
        self.requests.append("find_customers")
        return [c for c in self.customers if c.fields.get(field_name) == value]

    def find_sales_documents(
        self,
        *,
        reference_no: str | None = None,
        transaction_type: str | None = None,
        fields: Sequence[str] = (),
        **_: Any,
    ) -> list[SalesDocument]:
        """Documents under the reference, of `transaction_type` only (a query's docparid), as Intacct."""
        self.requests.append("find_sales_documents")
        self.order_search_fields.append(tuple(fields))
        if self.during_next_order_search is not None:
            meanwhile, self.during_next_order_search = self.during_next_order_search, None
            meanwhile()
        return [
            order
            for order in self.orders
            if order.reference_no == reference_no
            and (transaction_type is None or order.transaction_type == transaction_type)
        ]

    # -------------------------------------------------------------- writes

    def create_customer(self, customer: NewCustomer, *, control_id: str) -> CustomerRef:
        self.requests.append("create_customer")
        if self.commit_held_at_next_create:
            self.commit_held_at_next_create = False
            self.commit_held()
        self._check_unique(control_id)
        if self.fail_customer_writes_with is not None:
            raise self.fail_customer_writes_with
        reference = self._add_customer(customer)
        self.completed.add(control_id)
        return reference

    def update_customer(self, changes: CustomerUpdate, *, control_id: str) -> CustomerRef:
        self.requests.append("update_customer")
        self._check_unique(control_id)
        if self.fail_customer_writes_with is not None:
            raise self.fail_customer_writes_with
        assert changes.customer_id is not None
        self.customer_updates.append(changes)
        self.completed.add(control_id)
        return CustomerRef(record_no="1", customer_id=changes.customer_id)

    def write_customer_and_order(
        self,
        customer: NewCustomer | CustomerUpdate | None,
        order: SalesTransaction,
        *,
        customer_control_id: str,
        order_control_id: str,
        retired: OrderRetirement | None = None,
    ) -> tuple[CustomerRef | None, str]:
        self.requests.append("write_customer_and_order")
        control_ids = (customer_control_id,) if customer is not None else ()
        control_ids += (retired.control_id,) if retired is not None else ()
        control_ids += (order_control_id,)
        for control_id in control_ids:
            self._check_unique(control_id)
        if self.fail_with is not None:
            raise self.fail_with
        if self.hold_next_write:
            self.hold_next_write = False
            self.held.append(_HeldWrite(control_ids, customer, order, retired))
            raise OutcomeUnknown("the request timed out; it may still be applied", control_ids=control_ids)
        return self._apply(control_ids, customer, order, retired)

    def update_sotransaction(
        self, doc_id: str, order: SalesTransaction, *, existing_lines: int, control_id: str
    ) -> None:
        self.requests.append("update_sotransaction")
        self._check_unique(control_id)
        if self.fail_with is not None:
            raise self.fail_with
        assert len(order.lines) >= existing_lines == len(self.contents[doc_id].lines)
        self._open_order(doc_id)
        self.contents[doc_id] = order
        self.completed.add(control_id)

    def retire_sotransaction(self, retirement: OrderRetirement) -> None:
        self.requests.append(f"retire_sotransaction:{retirement.how}")
        self._check_unique(retirement.control_id)
        self._retire(retirement)
        self.completed.add(retirement.control_id)

    def get_sales_document_lines(self, doc_id: str, **_: Any) -> list[SalesDocumentLine]:
        self.requests.append("get_sales_document_lines")
        return [
            SalesDocumentLine.from_record(
                {"DOCHDRID": doc_id, "LINE_NO": str(number), "ITEMID": line.item_id}
            )
            for number, line in enumerate(self.contents[doc_id].lines)
        ]

    def set_state(self, doc_id: str, state: str) -> None:
        """Finance moves the order on (e.g. Converted, when an invoice is made from it)."""
        index = self._index(doc_id)
        self.orders[index] = SalesDocument.from_record({**self.orders[index].fields, "STATE": state})

    def order_of(self, reference_no: str) -> SalesTransaction:
        """What the one open order under the reference holds."""
        [document] = [d for d in self.orders if d.reference_no == reference_no and d.is_open]
        return self.contents[document.doc_id]

    def commit_held(self) -> None:
        """The writes held in flight commit now."""
        while self.held:
            write = self.held.pop(0)
            self._apply(write.control_ids, write.customer, write.order, write.retired)

    # -------------------------------------------------------------- inside

    def _check_unique(self, control_id: str) -> None:
        self.control_ids.append(control_id)
        # A write still running with this control id finishes first (Intacct runs a company's
        # writes one after the other), then the repeat is refused.
        if any(control_id in write.control_ids for write in self.held):
            self.commit_held()
        if control_id in self.completed:
            if self.repeat_refusal is not None:
                raise self.repeat_refusal(control_id)
            raise AlreadyApplied(
                f"A successful transaction has already been recorded with the control id {control_id}.",
                control_id=control_id,
            )

    def _apply(
        self,
        control_ids: tuple[str, ...],
        customer: NewCustomer | CustomerUpdate | None,
        order: SalesTransaction,
        retired: OrderRetirement | None = None,
    ) -> tuple[CustomerRef | None, str]:
        if retired is not None:
            self._retire(retired)
        reference = self._add_customer(customer) if isinstance(customer, NewCustomer) else None
        if isinstance(customer, CustomerUpdate):
            self.customer_updates.append(customer)
        number = len(self.contents) + 1
        doc_id = f"{order.transaction_type}-SO{number:04d}"
        self.orders.append(
            SalesDocument.from_record(
                {
                    "RECORDNO": str(number),
                    "DOCID": doc_id,
                    "DOCPARID": order.transaction_type,
                    "PONUMBER": order.reference_no,
                    "CUSTVENDID": order.customer_id,
                    "STATE": "Pending",
                }
            )
        )
        self.contents[doc_id] = order
        self.completed.update(control_ids)
        return reference, doc_id

    def _index(self, doc_id: str) -> int:
        [index] = [number for number, document in enumerate(self.orders) if document.doc_id == doc_id]
        return index

    def _open_order(self, doc_id: str) -> int:
        index = self._index(doc_id)
        if not self.orders[index].is_open:
            raise PermanentIntacctError(
                f"BL01001973 {doc_id} is {self.orders[index].state} and cannot be changed"
            )
        return index

    def _retire(self, retirement: OrderRetirement) -> None:
        index = self._open_order(retirement.doc_id)
        if retirement.how == "delete":
            del self.orders[index]
        else:
            self.set_state(retirement.doc_id, "Closed")

    def _add_customer(self, customer: NewCustomer) -> CustomerRef:
        customer_id = customer.customer_id or f"C-{len(self.customers) + 1}"
        if any(existing.customer_id == customer_id for existing in self.customers):
            raise DuplicateRecord(f"Another Customer with the given value(s) {customer_id} already exists")
        self.customers.append(
            Customer.from_record({"CUSTOMERID": customer_id, "NAME": customer.name, **customer.custom_fields})
        )
        return CustomerRef(record_no=str(len(self.customers)), customer_id=customer_id)


@dataclass
class FakeSalesforce:
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    opportunities: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    reads: int = 0
    written: list[RecordUpdate] = field(default_factory=list)
    failing_write_backs: int = 0  # the next write-backs answer 503 and change nothing
    removed: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # deleted Accounts, as queryAll reads them

    def fetch_opportunity(self, opportunity_id: str) -> OpportunitySnapshot:
        self.reads += 1
        if opportunity_id not in self.opportunities:
            raise RecordNotFound(f"Opportunity {opportunity_id} does not exist")
        opportunity = copy.deepcopy(self.opportunities[opportunity_id])
        account_id = opportunity.get("AccountId")
        account = copy.deepcopy(self.accounts[account_id]) if account_id in self.accounts else None
        return OpportunitySnapshot(opportunity, account, copy.deepcopy(self.lines.get(opportunity_id, [])))

    def fetch_account(self, account_id: str) -> dict[str, Any]:
        self.reads += 1
        if account_id not in self.accounts:
            raise RecordNotFound(f"Account {account_id} does not exist")
        return copy.deepcopy(self.accounts[account_id])

    def removed_account(self, account_id: str) -> dict[str, Any] | None:
        self.reads += 1
        return copy.deepcopy(self.removed.get(account_id))

    def merged_accounts(self, master_id: str) -> list[dict[str, Any]]:
        self.reads += 1
        return [copy.deepcopy(a) for a in self.removed.values() if a.get("MasterRecordId") == master_id]

    def delete_account(self, account_id: str, master_id: str | None = None) -> None:
        """Delete the Account; with `master_id`, as a merge into it does (its deals move to the master)."""
        account = self.accounts.pop(account_id)
        self.removed[account_id] = {**account, "IsDeleted": True, "MasterRecordId": master_id}
        if master_id is not None:
            for opportunity in self.opportunities.values():
                if opportunity.get("AccountId") == account_id:
                    opportunity["AccountId"] = master_id

    def write_back(self, updates: Sequence[RecordUpdate]) -> None:
        if self.failing_write_backs:
            self.failing_write_backs -= 1
            raise TransientSalesforceError("503 Service Unavailable", status=503)
        self.written.extend(updates)
        for update in updates:
            records = self.accounts if update.object_type == "Account" else self.opportunities
            records[update.record_id].update(update.fields)
