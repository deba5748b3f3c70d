"""What the sync logic needs from Intacct, Salesforce and its two tables.

The clients (IntacctClient, SalesforceClient) and the DynamoDB stores (CrosswalkStore, SyncLog) satisfy
these; unit tests use in-memory fakes, and the same rules run against the real stores in the
integration tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from sfintacct.crosswalk import CrosswalkEntry, CrosswalkKind
from sfintacct.intacct.client import SALES_DOCUMENT_FIELDS, OrderRetirement
from sfintacct.intacct.models import (
    Customer,
    CustomerRef,
    CustomerUpdate,
    NewCustomer,
    SalesDocument,
    SalesDocumentLine,
    SalesTransaction,
)
from sfintacct.salesforce.models import OpportunitySnapshot, RecordUpdate
from sfintacct.sync.outcome import SyncOutcome


class IntacctPort(Protocol):
    def find_customers(
        self, field: str, value: str, *, extra_fields: Sequence[str] = ()
    ) -> list[Customer]: ...

    def create_customer(self, customer: NewCustomer, *, control_id: str) -> CustomerRef: ...

    def update_customer(self, changes: CustomerUpdate, *, control_id: str) -> CustomerRef: ...

    def write_customer_and_order(
        self,
        customer: NewCustomer | CustomerUpdate | None,
        order: SalesTransaction,
        *,
        customer_control_id: str,
        order_control_id: str,
        retired: OrderRetirement | None = None,
    ) -> tuple[CustomerRef | None, str]: ...

    def update_sotransaction(
        self, doc_id: str, order: SalesTransaction, *, existing_lines: int, control_id: str
    ) -> None: ...

    def retire_sotransaction(self, retirement: OrderRetirement) -> None: ...

    def get_sales_document_lines(
        self, doc_id: str, *, transaction_type: str | None = None, extra_fields: Sequence[str] = ()
    ) -> list[SalesDocumentLine]: ...

    def find_sales_documents(
        self,
        *,
        doc_id: str | None = None,
        reference_no: str | None = None,
        external_id: str | None = None,
        field_values: dict[str, str] | None = None,
        transaction_type: str | None = "Sales Order",
        extra_fields: Sequence[str] = (),
        fields: Sequence[str] = SALES_DOCUMENT_FIELDS,
    ) -> list[SalesDocument]: ...


class SalesforcePort(Protocol):
    def fetch_opportunity(self, opportunity_id: str) -> OpportunitySnapshot: ...

    def fetch_account(self, account_id: str) -> dict[str, Any]: ...

    def removed_account(self, account_id: str) -> dict[str, Any] | None: ...

    def merged_accounts(self, master_id: str) -> list[dict[str, Any]]: ...

    def write_back(self, updates: Sequence[RecordUpdate]) -> None: ...


class CrosswalkPort(Protocol):
    """Which Intacct object a Salesforce record is, and who is creating it (see sfintacct.crosswalk)."""

    def get(self, sf_id: str, kind: CrosswalkKind) -> CrosswalkEntry | None: ...

    def claim(
        self, sf_id: str, kind: CrosswalkKind, owner: str, lease_seconds: float, now: datetime | None = None
    ) -> CrosswalkEntry: ...

    def complete(
        self,
        sf_id: str,
        kind: CrosswalkKind,
        intacct_id: str,
        owner: str,
        source_modified_at: datetime | None = None,
        *,
        attributes: Mapping[str, str] | None = None,
        now: datetime | None = None,
    ) -> CrosswalkEntry: ...

    def put_mapping(
        self,
        sf_id: str,
        kind: CrosswalkKind,
        intacct_id: str,
        source_modified_at: datetime | None,
        *,
        attributes: Mapping[str, str] | None = None,
        replaces: str | None = None,
        now: datetime | None = None,
    ) -> CrosswalkEntry: ...

    def release(
        self,
        sf_id: str,
        kind: CrosswalkKind,
        owner: str,
        *,
        refused: bool,
        refused_source_modified_at: datetime | None = None,
        now: datetime | None = None,
    ) -> bool: ...


class SyncLogPort(Protocol):
    """Where every outcome is appended (see sfintacct.sync.sync_log)."""

    def record(self, outcome: SyncOutcome, *, producer_id: str, source: str) -> None: ...
