"""What the sync logic needs from Intacct and Salesforce: the clients satisfy these, tests may fake them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sfintacct.intacct.models import (
    Customer,
    CustomerRef,
    CustomerUpdate,
    NewCustomer,
    SalesDocument,
    SalesTransaction,
)
from sfintacct.salesforce.models import OpportunitySnapshot, RecordUpdate


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
    ) -> tuple[CustomerRef | None, str]: ...

    def find_sales_documents(
        self,
        *,
        doc_id: str | None = None,
        reference_no: str | None = None,
        external_id: str | None = None,
        field_values: dict[str, str] | None = None,
        transaction_type: str | None = "Sales Order",
        extra_fields: Sequence[str] = (),
    ) -> list[SalesDocument]: ...


class SalesforcePort(Protocol):
    def fetch_opportunity(self, opportunity_id: str) -> OpportunitySnapshot: ...

    def fetch_account(self, account_id: str) -> dict[str, Any]: ...

    def write_back(self, updates: Sequence[RecordUpdate]) -> None: ...
