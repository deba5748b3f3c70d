"""The sync's decisions, in milliseconds: what is sent to Intacct, what is written back, what is logged.

Intacct, Salesforce, the crosswalk and the sync log are in-memory fakes (tests/fakes). The same tests
run again against the DynamoDB stores in tests/integration/test_sync_service.py, and the crosswalk fake
is held to the DynamoDB store by tests/integration/test_crosswalk.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sfintacct.crosswalk import CrosswalkKind, CrosswalkStatus
from sfintacct.intacct.client import SALES_DOCUMENT_LOOKUP_FIELDS
from sfintacct.intacct.errors import (
    AlreadyApplied,
    ControlFailure,
    FunctionFailed,
    IntacctUnavailable,
    OutcomeUnknown,
)
from sfintacct.intacct.models import Customer, SalesDocument
from sfintacct.mapping import DEFAULT_MAPPING_FILE, load_mapping
from sfintacct.salesforce.errors import TransientSalesforceError
from sfintacct.salesforce_ids import to_case_safe_id
from sfintacct.sync.ports import CrosswalkPort
from sfintacct.sync.service import SyncService
from sfintacct.sync_request import SyncRequest
from tests.fakes.stores import InMemoryCrosswalk, InMemorySyncLog
from tests.fakes.systems import FakeIntacct, FakeSalesforce

ORG_ID = "00D5g000004ZxYtEAK"
MODIFIED = "2026-11-28T10:00:00.000+0000"
EDITED = "2026-11-28T10:05:00.000+0000"


def new_id(prefix: str) -> str:
    return to_case_safe_id(f"{prefix}5g{uuid.uuid4().hex[:10]}")


class ManualClock:
    """Wall-clock time that moves only when a test advances it: leases run out exactly when told."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class World:
    service: SyncService
    intacct: FakeIntacct
    salesforce: FakeSalesforce
    sync_log: Any  # InMemorySyncLog or SyncLog: both have history(sf_id) with .status and .reason
    crosswalk: CrosswalkPort
    clock: ManualClock

    def handle(
        self,
        object_type: str,
        record_id: str,
        producer: str = "n-1",
        modified: datetime | None = None,
        **kwargs: Any,
    ) -> Any:
        return self.service.handle(request(object_type, record_id, producer, modified), **kwargs)


def make_world(
    crosswalk_on: Callable[[ManualClock], CrosswalkPort],
    sync_log: Any,
    *,
    mapping_file: Path | None = None,
    claim_lease_seconds: float = 120,
    lost_deal_order: str = "close",
) -> World:
    """A sync service on fakes of Intacct and Salesforce, with the crosswalk `crosswalk_on(clock)` builds."""
    intacct, salesforce, clock = FakeIntacct(), FakeSalesforce(), ManualClock()
    crosswalk = crosswalk_on(clock)
    service = SyncService(
        intacct=intacct,
        salesforce=salesforce,
        crosswalk=crosswalk,
        sync_log=sync_log,
        mapping=load_mapping(mapping_file or DEFAULT_MAPPING_FILE),
        transaction_type="Sales Order",
        claim_lease_seconds=claim_lease_seconds,
        lost_deal_order=lost_deal_order,  # type: ignore[arg-type]
        clock=clock,
    )
    return World(service, intacct, salesforce, sync_log, crosswalk, clock)


@pytest.fixture
def world_factory() -> Any:
    """Builds a world on the in-memory stores (the integration module gives DynamoDB ones)."""
    return lambda **options: make_world(InMemoryCrosswalk, InMemorySyncLog(), **options)


@pytest.fixture
def world(world_factory: Any) -> World:
    world: World = world_factory()
    return world


def new_account(world: World, modified: str = MODIFIED, account_type: str = "Customer - Direct") -> str:
    """An Account; of a customer type (the default mapping's create_when), it gets its customer at once."""
    account_id = new_id("001")
    world.salesforce.accounts[account_id] = {
        "Id": account_id,
        "Name": "Northwind",
        "Type": account_type,
        "LastModifiedDate": modified,
        "Intacct_Customer_Id__c": None,
        "Intacct_Sync_Status__c": None,
    }
    return account_id


def won_deal(
    world: World, *, lines: int = 1, stage: str = "Closed Won", account_id: str | None = None
) -> tuple[str, str]:
    account_id = account_id or new_account(world)
    opportunity_id = new_id("006")
    world.salesforce.opportunities[opportunity_id] = {
        "Id": opportunity_id,
        "Name": "Platform deal",
        "AccountId": account_id,
        "StageName": stage,
        "IsWon": stage == "Closed Won",
        "CloseDate": "2026-11-28",
        "LastModifiedDate": MODIFIED,
        "Intacct_Order_Id__c": None,
        "Intacct_Sync_Status__c": None,
    }
    world.salesforce.lines[opportunity_id] = [
        {
            "Id": f"00k{index}",
            "Quantity": 1,
            "UnitPrice": Decimal(100),
            "Product2": {"ProductCode": "SUB-PLATFORM"},
        }
        for index in range(lines)
    ]
    return account_id, opportunity_id


def deal_of_a_synced_account(world: World) -> tuple[str, str]:
    """A won deal whose Account was synced before: the customer exists, the order goes alone."""
    account_id = new_account(world)
    world.handle("Account", account_id)
    return won_deal(world, account_id=account_id)


def request(
    object_type: str, record_id: str, producer_id: str = "n-1", modified: datetime | None = None
) -> SyncRequest:
    return SyncRequest(
        source="outbound_message",
        org_id=ORG_ID,
        object_type=object_type,  # type: ignore[arg-type]
        record_id=record_id,
        producer_id=f"{record_id}-{producer_id}",
        last_modified=modified,
        received_at=datetime.now(UTC),
    )


def writes(world: World) -> list[str]:
    return [name for name in world.intacct.requests if not name.startswith("find_")]


def assert_salesforce_shows_the_sync(
    world: World, account_id: str, opportunity_id: str | None = None
) -> None:
    account = world.salesforce.accounts[account_id]
    assert account["Intacct_Customer_Id__c"] == world.intacct.customers[0].customer_id
    assert account["Intacct_Sync_Status__c"] == "Synced"
    if opportunity_id is not None:
        opportunity = world.salesforce.opportunities[opportunity_id]
        [order] = [order for order in world.intacct.orders if order.reference_no == opportunity_id]
        assert opportunity["Intacct_Order_Id__c"] == order.doc_id
        assert opportunity["Intacct_Sync_Status__c"] == "Synced"


# ---------------------------------------------------------------------------- failures


def test_a_transient_failure_is_retried_without_telling_salesforce(world: World) -> None:
    _, opportunity_id = won_deal(world)
    world.intacct.fail_with = IntacctUnavailable("Intacct is temporarily off-line")

    with pytest.raises(IntacctUnavailable):
        world.handle("Opportunity", opportunity_id, final_attempt=False)

    assert world.salesforce.written == []
    assert [(e.status, e.reason) for e in world.sync_log.history(opportunity_id)] == [
        ("retrying", "transient")
    ]
    world.intacct.fail_with = None  # the same message, delivered again, takes its claim back at once
    outcome = world.handle("Opportunity", opportunity_id, final_attempt=False)
    assert outcome.status == "synced"
    assert len(world.intacct.orders) == 1


def test_on_the_last_receive_the_opportunity_says_it_failed_and_the_message_goes_to_the_dlq(
    world: World,
) -> None:
    _, opportunity_id = won_deal(world)
    world.intacct.fail_with = IntacctUnavailable("Intacct is temporarily off-line")

    with pytest.raises(IntacctUnavailable):
        world.handle("Opportunity", opportunity_id, final_attempt=True)

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

    outcome = world.handle("Opportunity", opportunity_id, "first")

    assert (outcome.status, outcome.reason) == ("failed", "intacct_rejected")
    [update] = world.salesforce.written
    assert update.fields == {
        "Intacct_Order_Id__c": None,  # no order of its own (a clone's copied id would be cleared)
        "Intacct_Sync_Status__c": "Failed",
        "Intacct_Sync_Error__c": "BL03000018 Invalid item NO-SUCH-ITEM",
    }
    world.intacct.fail_with = None  # fixed; a new notification (another producer) syncs at once
    assert world.handle("Opportunity", opportunity_id, "second").status == "synced"
    # Intacct may remember the refused control id: the corrected create carries a new one.
    order_control_ids = [c for c in world.intacct.control_ids if c.startswith("order-")]
    assert order_control_ids == [f"order-{opportunity_id}-0", f"order-{opportunity_id}-1"]


def test_a_refused_deal_notified_again_unchanged_costs_no_salesforce_or_intacct_call(world: World) -> None:
    """A repeat or a replay of the notification Intacct refused is answered from the crosswalk alone."""
    _, opportunity_id = won_deal(world)
    closed_at = datetime.fromisoformat(MODIFIED)
    world.intacct.fail_with = FunctionFailed("BL03000018 Invalid item NO-SUCH-ITEM")
    assert world.handle("Opportunity", opportunity_id, "first", modified=closed_at).status == "failed"
    reads, requests, written = (
        world.salesforce.reads,
        len(world.intacct.requests),
        len(world.salesforce.written),
    )

    replays = [
        world.handle("Opportunity", opportunity_id, f"replay-{n}", modified=closed_at) for n in range(3)
    ]

    assert {(outcome.status, outcome.reason) for outcome in replays} == {
        ("skipped", "unchanged_since_refusal")
    }
    assert "Retry sync" in replays[0].message
    assert (world.salesforce.reads, len(world.intacct.requests)) == (reads, requests)
    assert len(world.salesforce.written) == written
    assert world.sync_log.history(opportunity_id)[-1].reason == "unchanged_since_refusal"


@pytest.mark.parametrize(
    "modified", [datetime.fromisoformat(EDITED), None], ids=["changed since", "retry asked for"]
)
def test_a_refused_deal_is_sent_again_once_it_changed_or_a_retry_is_asked_for(
    world: World, modified: datetime | None
) -> None:
    _, opportunity_id = won_deal(world)
    world.intacct.fail_with = FunctionFailed("BL03000018 Invalid item NO-SUCH-ITEM")
    world.handle("Opportunity", opportunity_id, "first", modified=datetime.fromisoformat(MODIFIED))
    world.intacct.fail_with = None  # the item now exists in Intacct

    outcome = world.handle("Opportunity", opportunity_id, "second", modified=modified)

    assert (outcome.status, outcome.reason) == ("synced", "created")
    assert world.intacct.requests.count("write_customer_and_order") == 2


def test_an_opportunity_without_lines_fails_with_a_reason_and_sends_nothing(world: World) -> None:
    _, opportunity_id = won_deal(world, lines=0)

    outcome = world.handle("Opportunity", opportunity_id)

    assert (outcome.status, outcome.reason) == ("failed", "bad_record")
    assert "line" in outcome.message
    assert "write_customer_and_order" not in world.intacct.requests


def test_an_open_opportunity_is_skipped_and_nothing_is_written(world: World) -> None:
    _, opportunity_id = won_deal(world, stage="Negotiation/Review")

    outcome = world.handle("Opportunity", opportunity_id)

    assert (outcome.status, outcome.reason) == ("skipped", "not_won")
    assert world.intacct.requests == []
    assert world.salesforce.written == []


# ---------------------------------------------------------------------------- write-backs are repaired


def test_an_account_whose_write_back_failed_gets_it_on_redelivery_without_another_intacct_request(
    world: World,
) -> None:
    account_id = new_account(world)
    world.salesforce.failing_write_backs = 1  # the customer is made and recorded; Salesforce answers 503

    with pytest.raises(TransientSalesforceError):
        world.handle("Account", account_id)
    assert world.salesforce.accounts[account_id]["Intacct_Customer_Id__c"] is None
    sent = list(world.intacct.requests)

    outcome = world.handle("Account", account_id)  # the same message, delivered again

    assert outcome.status == "already_synced"
    assert_salesforce_shows_the_sync(world, account_id)
    assert world.intacct.requests == sent  # the crosswalk knew the customer: Intacct was not asked again
    assert len(world.intacct.customers) == 1


def test_the_same_account_change_delivered_again_repairs_a_lost_write_back(world: World) -> None:
    """A redelivery carrying the LastModifiedDate already applied is checked in Salesforce, not dropped."""
    account_id = new_account(world)
    changed = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    world.salesforce.failing_write_backs = 1
    with pytest.raises(TransientSalesforceError):
        world.service.handle(request("Account", account_id, "n-1", changed))

    outcome = world.service.handle(request("Account", account_id, "n-1", changed))

    assert (outcome.status, outcome.reason) == ("already_synced", "up_to_date")
    assert_salesforce_shows_the_sync(world, account_id)
    assert writes(world) == ["create_customer"]


def test_an_order_whose_write_back_failed_gets_it_on_redelivery_and_no_second_order(world: World) -> None:
    account_id, opportunity_id = won_deal(world)
    world.salesforce.failing_write_backs = 1

    with pytest.raises(TransientSalesforceError):
        world.handle("Opportunity", opportunity_id)
    assert world.salesforce.opportunities[opportunity_id]["Intacct_Order_Id__c"] is None
    sent = list(world.intacct.requests)

    again = world.handle("Opportunity", opportunity_id)

    assert (again.status, again.reason) == ("already_synced", "order_exists")
    assert_salesforce_shows_the_sync(world, account_id, opportunity_id)  # the Account's fields too
    assert world.intacct.requests == sent
    assert len(world.intacct.orders) == 1
    world.salesforce.written.clear()
    assert world.handle("Opportunity", opportunity_id, "third").status == "already_synced"
    assert world.salesforce.written == []  # nothing to repair once Salesforce shows the order


def test_an_account_shown_as_failed_is_set_back_to_synced_by_the_next_delivery(world: World) -> None:
    account_id = new_account(world)
    world.handle("Account", account_id, "1")
    world.salesforce.accounts[account_id]["Intacct_Sync_Status__c"] = "Failed"  # e.g. an older failure

    world.handle("Account", account_id, "2")

    assert world.salesforce.accounts[account_id]["Intacct_Sync_Status__c"] == "Synced"
    assert writes(world) == ["create_customer"]


# ---------------------------------------------------------------------------- one order, whatever happens


def test_an_edit_after_close_while_the_first_create_is_still_running_makes_one_order(
    world_factory: Any,
) -> None:
    world: World = world_factory(claim_lease_seconds=0.05)
    account_id, opportunity_id = deal_of_a_synced_account(world)  # its customer exists already
    world.intacct.hold_next_write = True  # Intacct takes the order but answers too late

    with pytest.raises(Exception, match="timed out"):
        world.handle("Opportunity", opportunity_id, "closed-won")
    world.salesforce.opportunities[opportunity_id]["LastModifiedDate"] = EDITED  # the rep edits the deal
    world.clock.advance(0.1)  # the first attempt's claim runs out while its order is still being committed

    outcome = world.handle("Opportunity", opportunity_id, "edited")
    world.intacct.commit_held()

    assert outcome.status == "synced"
    assert len([order for order in world.intacct.orders if order.reference_no == opportunity_id]) == 1
    assert_salesforce_shows_the_sync(world, account_id, opportunity_id)


# How Intacct refuses a repeated control id under uniqueid=true is not documented: the text the client
# recognises (AlreadyApplied), other words or another error number (a permanent FunctionFailed), a generic
# failure, or anything else that can come back.
REPEAT_REFUSALS = {
    "recognised": lambda control_id: AlreadyApplied(
        f"A successful transaction has already been recorded with the control id {control_id}.",
        control_id=control_id,
    ),
    "other words": lambda control_id: FunctionFailed(
        f"XL03000012: Duplicate request. Function with control ID {control_id} has already been executed."
    ),
    "generic failure": lambda control_id: FunctionFailed("BL01001973: Unable to complete the request."),
    "transient": lambda control_id: IntacctUnavailable("Intacct answered HTTP 503"),
}


@pytest.mark.parametrize("refusal", REPEAT_REFUSALS.values(), ids=REPEAT_REFUSALS.keys())
def test_a_repeat_refused_in_any_words_finds_the_order_committed_meanwhile_and_makes_no_second(
    world_factory: Any, refusal: Any
) -> None:
    world: World = world_factory(claim_lease_seconds=0.05)
    account_id, opportunity_id = deal_of_a_synced_account(world)
    world.intacct.hold_next_write = True  # Intacct takes the order but answers too late
    with pytest.raises(OutcomeUnknown):
        world.handle("Opportunity", opportunity_id, "closed-won")
    world.clock.advance(0.1)  # the first attempt's claim runs out while its order is still being committed
    world.intacct.repeat_refusal = refusal

    # The look-up misses the order still in flight; the repeat (same control id) is refused.
    outcome = world.handle("Opportunity", opportunity_id, "redelivered")

    assert outcome.status == "synced"
    assert len(world.intacct.orders) == 1
    assert_salesforce_shows_the_sync(world, account_id, opportunity_id)
    assert outcome.intacct_order_id == world.intacct.orders[0].doc_id
    assert [c for c in world.intacct.control_ids if c.startswith("order-")] == [
        f"order-{opportunity_id}-0"
    ] * 2
    assert [entry.status for entry in world.sync_log.history(opportunity_id)] == ["retrying", "synced"]
    entry = world.crosswalk.get(opportunity_id, CrosswalkKind.ORDER)
    assert entry is not None
    assert entry.intacct_id == world.intacct.orders[0].doc_id


FAILED_WRITES = {
    "refused": FunctionFailed("BL01001973: Could not create Document record!"),
    "refused as a whole": ControlFailure("XL03000006: Incorrect Intacct XML Partner ID or password."),
    "transient": IntacctUnavailable("Intacct answered HTTP 502"),
    "outcome unknown": OutcomeUnknown("the request timed out; it may still be applied"),
    "not an Intacct error": RuntimeError("connection pool closed"),
}


@pytest.mark.parametrize("failure", FAILED_WRITES.values(), ids=FAILED_WRITES.keys())
def test_after_any_failed_order_write_an_order_intacct_holds_under_the_reference_is_the_order(
    world: World, failure: Exception
) -> None:
    account_id, opportunity_id = deal_of_a_synced_account(world)
    world.intacct.orders.append(  # made by an earlier attempt that Salesforce and the crosswalk never saw
        SalesDocument.from_record(
            {
                "DOCID": "Sales Order-SO0042",
                "DOCPARID": "Sales Order",
                "PONUMBER": opportunity_id,
                "CUSTVENDID": account_id,
            }
        )
    )
    world.intacct.fail_with = failure

    outcome = world.handle("Opportunity", opportunity_id)

    assert (outcome.status, outcome.intacct_order_id) == ("synced", "Sales Order-SO0042")
    assert writes(world)[-1] == "write_customer_and_order"
    assert world.intacct.requests[-1] == "find_sales_documents"  # looked up after the failure
    assert len(world.intacct.orders) == 1
    assert_salesforce_shows_the_sync(world, account_id, opportunity_id)
    assert all(update.fields.get("Intacct_Sync_Status__c") != "Failed" for update in world.salesforce.written)


def test_a_refusal_with_no_order_under_the_reference_still_fails_after_the_look_up(world: World) -> None:
    _, opportunity_id = deal_of_a_synced_account(world)
    world.intacct.fail_with = FunctionFailed("BL01001973: Could not create Document record!")

    outcome = world.handle("Opportunity", opportunity_id)

    assert (outcome.status, outcome.reason) == ("failed", "intacct_rejected")
    # Looked up under each type the mapping makes (Sales Order, and Sales Invoice for approved deals).
    assert world.intacct.requests[-3:] == ["write_customer_and_order", *["find_sales_documents"] * 2]
    assert world.salesforce.opportunities[opportunity_id]["Intacct_Sync_Status__c"] == "Failed"


def test_the_order_look_up_selects_only_fields_the_evidence_confirms(world_factory: Any) -> None:
    world: World = world_factory(claim_lease_seconds=0.05)
    _, opportunity_id = deal_of_a_synced_account(world)
    world.intacct.hold_next_write = True
    with pytest.raises(OutcomeUnknown):
        world.handle("Opportunity", opportunity_id, "first")
    world.clock.advance(0.1)
    world.handle("Opportunity", opportunity_id, "second")

    assert world.intacct.order_search_fields  # the recovery look-up and the look-up after the refusal
    assert set(world.intacct.order_search_fields) == {SALES_DOCUMENT_LOOKUP_FIELDS}


def test_a_new_customer_and_its_order_held_in_flight_are_made_once(world_factory: Any) -> None:
    world: World = world_factory(claim_lease_seconds=0.05)
    account_id, opportunity_id = won_deal(world)
    world.intacct.hold_next_write = True

    with pytest.raises(Exception, match="timed out"):
        world.handle("Opportunity", opportunity_id, "closed-won")
    world.salesforce.opportunities[opportunity_id]["LastModifiedDate"] = EDITED
    world.clock.advance(0.1)
    world.handle("Opportunity", opportunity_id, "edited")
    world.intacct.commit_held()

    assert len(world.intacct.customers) == 1
    assert len(world.intacct.orders) == 1
    assert_salesforce_shows_the_sync(world, account_id, opportunity_id)


def test_customer_data_that_went_down_with_a_refused_repeat_of_the_order_is_sent_alone(
    world_factory: Any,
) -> None:
    world: World = world_factory(claim_lease_seconds=0.05)
    account_id, opportunity_id = deal_of_a_synced_account(world)  # its customer exists already
    world.salesforce.accounts[account_id].update(Name="Northwind Traders", LastModifiedDate=EDITED)
    world.intacct.hold_next_write = True  # the customer update and the order, still being committed

    with pytest.raises(Exception, match="timed out"):
        world.handle("Opportunity", opportunity_id, "closed-won")
    world.salesforce.accounts[account_id].update(
        Name="Northwind Traders Ltd", LastModifiedDate="2026-11-28T10:06:00.000+0000"
    )
    world.clock.advance(0.1)
    world.handle("Opportunity", opportunity_id, "retry")  # refused as a repeat: its customer update too

    assert world.intacct.customer_updates[-1].name == "Northwind Traders Ltd"  # so it was sent alone
    assert len(world.intacct.orders) == 1
    sent = list(world.intacct.requests)
    assert world.handle("Account", account_id, "later").reason == "up_to_date"
    assert writes(world) == [name for name in sent if not name.startswith("find_")]


def test_a_retry_holding_an_older_copy_of_the_account_never_overwrites_the_newer_customer(
    world_factory: Any,
) -> None:
    world: World = world_factory(claim_lease_seconds=0.05)
    account_id, opportunity_id = deal_of_a_synced_account(world)  # its customer exists already
    world.salesforce.accounts[account_id].update(Name="Old Name", LastModifiedDate=EDITED)
    world.crosswalk.claim(opportunity_id, CrosswalkKind.ORDER, "killed-attempt", 0.05)  # a killed attempt
    world.clock.advance(0.1)

    def rep_renames_the_account() -> None:  # while the retry looks for the order in Intacct
        world.salesforce.accounts[account_id].update(
            Name="New Name", LastModifiedDate="2026-11-28T10:07:00.000+0000"
        )
        assert world.handle("Account", account_id, "renamed").reason == "updated"

    world.intacct.during_next_order_search = rep_renames_the_account
    outcome = world.handle("Opportunity", opportunity_id, "retry")  # read the Account before the rename

    assert outcome.status == "synced"
    assert world.intacct.customer_updates[-1].name == "New Name"
    assert world.handle("Account", account_id, "later").reason == "up_to_date"


def test_the_order_control_id_does_not_change_when_the_opportunity_is_edited(world_factory: Any) -> None:
    world: World = world_factory(claim_lease_seconds=0.05)
    _, opportunity_id = won_deal(world)
    world.intacct.fail_with = IntacctUnavailable("Intacct is temporarily off-line")
    with pytest.raises(IntacctUnavailable):
        world.handle("Opportunity", opportunity_id, "first")
    world.salesforce.opportunities[opportunity_id]["LastModifiedDate"] = EDITED
    world.intacct.fail_with = None
    world.clock.advance(0.1)

    world.handle("Opportunity", opportunity_id, "second")

    order_control_ids = {c for c in world.intacct.control_ids if c.startswith("order-")}
    assert order_control_ids == {f"order-{opportunity_id}-0"}


def test_a_claim_held_by_a_running_attempt_makes_the_other_wait(world: World) -> None:
    _, opportunity_id = won_deal(world)
    world.crosswalk.claim(opportunity_id, CrosswalkKind.ORDER, "someone-else", 120)

    with pytest.raises(Exception, match="another worker is creating the order"):
        world.handle("Opportunity", opportunity_id)

    assert writes(world) == []
    entry = world.crosswalk.get(opportunity_id, CrosswalkKind.ORDER)
    assert entry is not None
    assert entry.status is CrosswalkStatus.CLAIMED


# ---------------------------------------------------------------------------- customers


def test_an_older_account_change_is_skipped_without_reading_salesforce(world: World) -> None:
    account_id = new_account(world, modified="2026-11-28T10:00:05.000+0000")
    newer = datetime(2026, 11, 28, 10, 0, 5, tzinfo=UTC)
    world.service.handle(request("Account", account_id, "newer", newer))
    reads = world.salesforce.reads

    outcome = world.service.handle(request("Account", account_id, "older", newer - timedelta(seconds=3)))

    assert (outcome.status, outcome.reason) == ("skipped", "older_change")
    assert world.salesforce.reads == reads


def test_an_account_change_that_does_not_touch_mapped_fields_sends_nothing_to_intacct(world: World) -> None:
    account_id = new_account(world)
    assert world.handle("Account", account_id, "1").reason == "created"
    world.salesforce.accounts[account_id]["LastModifiedDate"] = "2026-11-28T11:00:00.000+0000"
    before = list(world.intacct.requests)

    outcome = world.handle("Account", account_id, "2")

    assert (outcome.status, outcome.reason) == ("already_synced", "up_to_date")
    assert world.intacct.requests == before
    world.salesforce.accounts[account_id]["Name"] = "Northwind Traders"
    assert world.handle("Account", account_id, "3").reason == "updated"


def test_a_customer_update_whose_answer_was_lost_is_sent_again_not_taken_as_done(world_factory: Any) -> None:
    world: World = world_factory(claim_lease_seconds=0.05)
    account_id = new_account(world)
    world.handle("Account", account_id, "1")
    world.salesforce.accounts[account_id].update(Name="Northwind Traders", LastModifiedDate=EDITED)
    world.intacct.fail_customer_writes_with = OutcomeUnknown("the request timed out; it may still be applied")

    with pytest.raises(OutcomeUnknown):
        world.handle("Account", account_id, "2")
    world.intacct.fail_customer_writes_with = None
    outcome = world.handle("Account", account_id, "2")  # the same change, delivered again

    assert (outcome.status, outcome.reason) == ("synced", "updated")
    assert world.intacct.requests.count("update_customer") == 2


def test_a_customer_created_meanwhile_from_older_data_is_brought_up_to_date_by_the_account_sync(
    world_factory: Any,
) -> None:
    world: World = world_factory(claim_lease_seconds=0.05)
    account_id, opportunity_id = won_deal(world)
    world.intacct.hold_next_write = True  # the order and its new customer, still being committed
    with pytest.raises(Exception, match="timed out"):
        world.handle("Opportunity", opportunity_id)
    world.salesforce.accounts[account_id].update(Name="Northwind Traders", LastModifiedDate=EDITED)
    with pytest.raises(Exception, match="another worker is writing the customer"):
        world.handle("Account", account_id, "too-early")  # the first write may still commit
    world.clock.advance(0.1)  # its lease ends
    world.intacct.commit_held_at_next_create = True  # it commits between the look-up and the create

    outcome = world.handle("Account", account_id)

    assert outcome.status == "synced"
    assert len(world.intacct.customers) == 1
    assert world.intacct.customer_updates[-1].name == "Northwind Traders"
    assert world.salesforce.accounts[account_id]["Intacct_Customer_Id__c"] == account_id


def test_a_customer_already_in_intacct_is_adopted_not_duplicated(world: World) -> None:
    account_id = new_account(world)
    world.intacct.customers.append(
        Customer.from_record({"CUSTOMERID": "C-0042", "SALESFORCE_ID": account_id})
    )

    outcome = world.handle("Account", account_id)

    assert (outcome.reason, outcome.intacct_customer_id) == ("adopted", "C-0042")
    assert "create_customer" not in world.intacct.requests
    assert world.salesforce.accounts[account_id]["Intacct_Customer_Id__c"] == "C-0042"


def test_with_intacct_numbering_the_customer_is_created_first_then_the_order(
    world_factory: Any, tmp_path: Path
) -> None:
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(
        DEFAULT_MAPPING_FILE.read_text(encoding="utf-8").replace(
            'customer_id = "salesforce_id"', 'customer_id = "intacct"'
        ),
        encoding="utf-8",
    )
    world: World = world_factory(mapping_file=mapping_file)
    account_id, opportunity_id = won_deal(world)

    outcome = world.handle("Opportunity", opportunity_id)

    assert outcome.status == "synced"
    assert world.intacct.requests == ["find_customers", "create_customer", "write_customer_and_order"]
    assert world.intacct.orders[0].customer_id == "C-1"
    assert world.crosswalk.get(account_id, CrosswalkKind.CUSTOMER).intacct_id == "C-1"  # type: ignore[union-attr]
