"""SyncService decisions that the end-to-end tests cannot reach quickly: the last receive, permanent
failures, older changes, unchanged data, Intacct numbering.

The crosswalk and the sync log are real tables on DynamoDB Local (made from template.yaml); Intacct and
Salesforce are small fakes that record what they were asked.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sandbox.aws_local import create_tables, delete_tables
from sandbox.template_resources import load_template
from sfintacct.crosswalk import CrosswalkKind, CrosswalkStore
from sfintacct.intacct.errors import FunctionFailed, IntacctUnavailable
from sfintacct.intacct.models import (
    Customer,
    CustomerRef,
    CustomerUpdate,
    NewCustomer,
    SalesDocument,
    SalesTransaction,
)
from sfintacct.mapping import DEFAULT_MAPPING_FILE, load_mapping
from sfintacct.salesforce.models import OpportunitySnapshot, RecordUpdate
from sfintacct.salesforce_ids import to_case_safe_id
from sfintacct.sync.service import SyncService
from sfintacct.sync.sync_log import SyncLog
from sfintacct.sync_request import SyncRequest

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ORG_ID = "00D5g000004ZxYtEAK"
MODIFIED = "2026-11-28T10:00:00.000+0000"


def new_id(prefix: str) -> str:
    return to_case_safe_id(f"{prefix}5g{uuid.uuid4().hex[:10]}")


@dataclass
class FakeIntacct:
    customers: list[Customer] = field(default_factory=list)
    orders: list[SalesDocument] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    fail_with: Exception | None = None

    def find_customers(
        self, field_name: str, value: str, *, extra_fields: Sequence[str] = ()
    ) -> list[Customer]:
        self.requests.append("find_customers")
        return [c for c in self.customers if c.fields.get(field_name) == value]

    def create_customer(self, customer: NewCustomer, *, control_id: str) -> CustomerRef:
        self.requests.append("create_customer")
        return self._add_customer(customer, customer.customer_id or f"C-{len(self.customers) + 1}")

    def update_customer(self, changes: CustomerUpdate, *, control_id: str) -> CustomerRef:
        self.requests.append("update_customer")
        assert changes.customer_id is not None
        return CustomerRef(record_no="1", customer_id=changes.customer_id)

    def write_customer_and_order(
        self,
        customer: NewCustomer | CustomerUpdate | None,
        order: SalesTransaction,
        *,
        customer_control_id: str,
        order_control_id: str,
    ) -> tuple[CustomerRef | None, str]:
        self.requests.append("write_customer_and_order")
        if self.fail_with is not None:
            raise self.fail_with
        reference = None
        if isinstance(customer, NewCustomer):
            reference = self._add_customer(customer, customer.customer_id or "")
        doc_id = f"Sales Order-SO{len(self.orders) + 1:04d}"
        self.orders.append(
            SalesDocument.from_record(
                {"DOCID": doc_id, "PONUMBER": order.reference_no, "CUSTVENDID": order.customer_id}
            )
        )
        return reference, doc_id

    def find_sales_documents(self, *, reference_no: str | None = None, **_: Any) -> list[SalesDocument]:
        self.requests.append("find_sales_documents")
        return [order for order in self.orders if order.reference_no == reference_no]

    def _add_customer(self, customer: NewCustomer, customer_id: str) -> CustomerRef:
        self.customers.append(
            Customer.from_record({"CUSTOMERID": customer_id, "NAME": customer.name, **customer.custom_fields})
        )
        return CustomerRef(record_no=str(len(self.customers)), customer_id=customer_id)


@dataclass
class FakeSalesforce:
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    opportunities: dict[str, OpportunitySnapshot] = field(default_factory=dict)
    reads: int = 0
    written: list[RecordUpdate] = field(default_factory=list)

    def fetch_opportunity(self, opportunity_id: str) -> OpportunitySnapshot:
        self.reads += 1
        return self.opportunities[opportunity_id]

    def fetch_account(self, account_id: str) -> dict[str, Any]:
        self.reads += 1
        return dict(self.accounts[account_id])

    def write_back(self, updates: Sequence[RecordUpdate]) -> None:
        self.written.extend(updates)


@pytest.fixture(scope="module")
def tables(dynamodb: DynamoDBClient) -> Iterator[dict[str, str]]:
    created = create_tables(
        dynamodb,
        load_template(),
        f"test-{uuid.uuid4().hex[:12]}",
        logical_ids=["CrosswalkTable", "SyncLogTable"],
    )
    try:
        yield {logical_id: values.ref for logical_id, values in created.items()}
    finally:
        delete_tables(dynamodb, created)


@dataclass
class World:
    service: SyncService
    intacct: FakeIntacct
    salesforce: FakeSalesforce
    sync_log: SyncLog
    crosswalk: CrosswalkStore


def make_world(
    dynamodb: DynamoDBClient, tables: dict[str, str], mapping_file: Path = DEFAULT_MAPPING_FILE
) -> World:
    intacct, salesforce = FakeIntacct(), FakeSalesforce()
    crosswalk = CrosswalkStore(dynamodb, tables["CrosswalkTable"])
    sync_log = SyncLog(dynamodb, tables["SyncLogTable"])
    service = SyncService(
        intacct=intacct,
        salesforce=salesforce,
        crosswalk=crosswalk,
        sync_log=sync_log,
        mapping=load_mapping(mapping_file),
        transaction_type="Sales Order",
        claim_lease_seconds=120,
    )
    return World(service, intacct, salesforce, sync_log, crosswalk)


@pytest.fixture
def world(dynamodb: DynamoDBClient, tables: dict[str, str]) -> World:
    return make_world(dynamodb, tables)


def account(account_id: str, name: str = "Northwind", modified: str = MODIFIED) -> dict[str, Any]:
    return {"Id": account_id, "Name": name, "LastModifiedDate": modified, "Intacct_Customer_Id__c": None}


def won_deal(world: World, *, lines: int = 1, stage: str = "Closed Won") -> tuple[str, str]:
    account_id, opportunity_id = new_id("001"), new_id("006")
    world.salesforce.accounts[account_id] = account(account_id)
    world.salesforce.opportunities[opportunity_id] = OpportunitySnapshot(
        opportunity={
            "Id": opportunity_id,
            "Name": "Platform deal",
            "AccountId": account_id,
            "StageName": stage,
            "IsWon": stage == "Closed Won",
            "CloseDate": "2026-11-28",
            "LastModifiedDate": MODIFIED,
        },
        account=account(account_id),
        lines=[
            {
                "Id": f"00k{index}",
                "Quantity": 1,
                "UnitPrice": Decimal(100),
                "Product2": {"ProductCode": "SUB-PLATFORM"},
            }
            for index in range(lines)
        ],
    )
    return account_id, opportunity_id


def request(
    object_type: str, record_id: str, producer_id: str = "n-1", modified: datetime | None = None
) -> SyncRequest:
    return SyncRequest(
        source="outbound_message",
        org_id=ORG_ID,
        object_type=object_type,  # type: ignore[arg-type]
        record_id=record_id,
        producer_id=f"{record_id}-{producer_id}",
        fields={},
        last_modified=modified,
        received_at=datetime.now(UTC),
    )


# ---------------------------------------------------------------------------- failures


def test_a_transient_failure_is_retried_without_telling_salesforce(world: World) -> None:
    _, opportunity_id = won_deal(world)
    world.intacct.fail_with = IntacctUnavailable("Intacct is temporarily off-line")

    with pytest.raises(IntacctUnavailable):
        world.service.handle(request("Opportunity", opportunity_id), final_attempt=False)

    assert world.salesforce.written == []
    assert [(e.status, e.reason) for e in world.sync_log.history(opportunity_id)] == [
        ("retrying", "transient")
    ]
    world.intacct.fail_with = None  # the same message, delivered again, takes its claim back at once
    outcome = world.service.handle(request("Opportunity", opportunity_id), final_attempt=False)
    assert outcome.status == "synced"
    assert len(world.intacct.orders) == 1


def test_on_the_last_receive_the_opportunity_says_it_failed_and_the_message_goes_to_the_dlq(
    world: World,
) -> None:
    _, opportunity_id = won_deal(world)
    world.intacct.fail_with = IntacctUnavailable("Intacct is temporarily off-line")

    with pytest.raises(IntacctUnavailable):
        world.service.handle(request("Opportunity", opportunity_id), final_attempt=True)

    [update] = world.salesforce.written
    assert update.record_id == opportunity_id
    assert update.fields["Intacct_Sync_Status__c"] == "Failed"
    assert "off-line" in str(update.fields["Intacct_Sync_Error__c"])
    assert "dead-letter queue" in str(update.fields["Intacct_Sync_Error__c"])
    assert world.sync_log.history(opportunity_id)[-1].status == "dead_lettered"


def test_a_permanent_failure_is_written_back_and_frees_the_opportunity_for_a_corrected_retry(
    world: World,
) -> None:
    _, opportunity_id = won_deal(world)
    world.intacct.fail_with = FunctionFailed("BL03000018 Invalid item NO-SUCH-ITEM")

    outcome = world.service.handle(request("Opportunity", opportunity_id, "first"))

    assert (outcome.status, outcome.reason) == ("failed", "intacct_rejected")
    [update] = world.salesforce.written
    assert update.fields == {
        "Intacct_Sync_Status__c": "Failed",
        "Intacct_Sync_Error__c": "BL03000018 Invalid item NO-SUCH-ITEM",
    }
    world.intacct.fail_with = None  # fixed; a new notification (another producer) syncs at once
    assert world.service.handle(request("Opportunity", opportunity_id, "second")).status == "synced"


def test_an_opportunity_without_lines_fails_with_a_reason_and_sends_nothing(world: World) -> None:
    _, opportunity_id = won_deal(world, lines=0)

    outcome = world.service.handle(request("Opportunity", opportunity_id))

    assert (outcome.status, outcome.reason) == ("failed", "bad_record")
    assert "line" in outcome.message
    assert "write_customer_and_order" not in world.intacct.requests


def test_an_open_opportunity_is_skipped_and_nothing_is_written(world: World) -> None:
    _, opportunity_id = won_deal(world, stage="Negotiation/Review")

    outcome = world.service.handle(request("Opportunity", opportunity_id))

    assert (outcome.status, outcome.reason) == ("skipped", "not_won")
    assert world.intacct.requests == []
    assert world.salesforce.written == []


def test_an_already_synced_opportunity_gets_its_lost_write_back_again_and_no_second_order(
    world: World,
) -> None:
    _, opportunity_id = won_deal(world)
    first = world.service.handle(request("Opportunity", opportunity_id, "first"))
    world.salesforce.written.clear()  # as if it never reached Salesforce: the snapshot has no order id

    again = world.service.handle(request("Opportunity", opportunity_id, "second"))

    assert (again.status, again.reason) == ("already_synced", "order_exists")
    assert len(world.intacct.orders) == 1
    [update] = world.salesforce.written
    assert update.record_id == opportunity_id
    assert update.fields["Intacct_Order_Id__c"] == first.intacct_order_id
    world.salesforce.opportunities[opportunity_id].opportunity["Intacct_Order_Id__c"] = first.intacct_order_id
    world.salesforce.written.clear()
    assert world.service.handle(request("Opportunity", opportunity_id, "third")).status == "already_synced"
    assert world.salesforce.written == []  # nothing to repair once Salesforce shows the order


# ---------------------------------------------------------------------------- customers


def test_an_older_account_change_is_skipped_without_reading_salesforce(world: World) -> None:
    account_id = new_id("001")
    world.salesforce.accounts[account_id] = account(account_id, modified="2026-11-28T10:00:05.000+0000")
    world.service.handle(
        request("Account", account_id, "newer", datetime(2026, 11, 28, 10, 0, 5, tzinfo=UTC))
    )
    reads = world.salesforce.reads

    outcome = world.service.handle(
        request(
            "Account",
            account_id,
            "older",
            datetime(2026, 11, 28, 10, 0, 5, tzinfo=UTC) - timedelta(seconds=3),
        )
    )

    assert (outcome.status, outcome.reason) == ("skipped", "older_change")
    assert world.salesforce.reads == reads


def test_an_account_change_that_does_not_touch_mapped_fields_sends_nothing_to_intacct(world: World) -> None:
    account_id = new_id("001")
    world.salesforce.accounts[account_id] = account(account_id)
    assert world.service.handle(request("Account", account_id, "1")).reason == "created"
    world.salesforce.accounts[account_id]["LastModifiedDate"] = (
        "2026-11-28T11:00:00.000+0000"  # e.g. our write-back
    )
    before = list(world.intacct.requests)

    outcome = world.service.handle(request("Account", account_id, "2"))

    assert (outcome.status, outcome.reason) == ("already_synced", "up_to_date")
    assert world.intacct.requests == before
    world.salesforce.accounts[account_id]["Name"] = "Northwind Traders"
    assert world.service.handle(request("Account", account_id, "3")).reason == "updated"


def test_a_customer_already_in_intacct_is_adopted_not_duplicated(world: World) -> None:
    account_id = new_id("001")
    world.salesforce.accounts[account_id] = account(account_id)
    world.intacct.customers.append(
        Customer.from_record({"CUSTOMERID": "C-0042", "SALESFORCE_ID": account_id})
    )

    outcome = world.service.handle(request("Account", account_id))

    assert (outcome.reason, outcome.intacct_customer_id) == ("adopted", "C-0042")
    assert "create_customer" not in world.intacct.requests
    assert world.salesforce.written[-1].fields["Intacct_Customer_Id__c"] == "C-0042"


def test_with_intacct_numbering_the_customer_is_created_first_then_the_order(
    dynamodb: DynamoDBClient, tables: dict[str, str], tmp_path: Path
) -> None:
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(
        DEFAULT_MAPPING_FILE.read_text(encoding="utf-8").replace(
            'customer_id = "salesforce_id"', 'customer_id = "intacct"'
        ),
        encoding="utf-8",
    )
    world = make_world(dynamodb, tables, mapping_file)
    account_id, opportunity_id = won_deal(world)

    outcome = world.service.handle(request("Opportunity", opportunity_id))

    assert outcome.status == "synced"
    assert world.intacct.requests == ["find_customers", "create_customer", "write_customer_and_order"]
    assert world.intacct.orders[0].customer_id == "C-1"
    assert world.crosswalk.get(account_id, CrosswalkKind.CUSTOMER).intacct_id == "C-1"  # type: ignore[union-attr]
