"""Faults of the set-up, not of the record (sfintacct.faults): the work waits, says so, and goes on by
itself once the set-up is fixed. In-memory fakes, as in test_sync_rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sfintacct.crosswalk import CrosswalkKind
from sfintacct.intacct.errors import AuthenticationFailed, SenderRejected
from sfintacct.salesforce.errors import SalesforceApiLimitExceeded, SalesforceErrorDetail

# world_factory: the in-memory stores (tests/integration/test_sync_service.py runs the rules on DynamoDB).
from tests.unit.sync.test_sync_rules import World, won_deal, world_factory  # noqa: F401

CLOSED = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


@pytest.fixture
def world(world_factory: Any) -> World:  # noqa: F811 - the fixture imported above
    made: World = world_factory()
    return made


class FailingFetch:
    """Salesforce answering every read with `error` until `error` is None."""

    def __init__(self, world: World, error: Exception) -> None:
        self.error: Exception | None = error
        self.fetch = world.salesforce.fetch_opportunity
        world.salesforce.fetch_opportunity = self  # type: ignore[method-assign]

    def __call__(self, opportunity_id: str) -> Any:
        if self.error is not None:
            raise self.error
        return self.fetch(opportunity_id)


@pytest.mark.parametrize(
    "fault",
    [
        SenderRejected(
            "Intacct refused the Web Services sender (control failure): "
            "XMLGW_JPP0002 Sign-in information is incorrect"
        ),
        AuthenticationFailed(
            "Intacct refused the company sign-in: XL03000006 Sign-in information is incorrect"
        ),
    ],
)
def test_an_intacct_credential_fault_holds_the_deal_and_it_syncs_once_fixed(
    world: World, fault: Exception
) -> None:
    _, opportunity_id = won_deal(world)
    world.intacct.fail_with = fault

    with pytest.raises(type(fault)):
        world.handle("Opportunity", opportunity_id, "closed", CLOSED)

    [logged] = world.sync_log.history(opportunity_id)
    assert (logged.status, logged.reason) == ("waiting", fault.kind)  # type: ignore[attr-defined]
    record = world.salesforce.opportunities[opportunity_id]
    assert record["Intacct_Sync_Status__c"] == "Waiting"
    assert record["Intacct_Sync_Error__c"].startswith("Waiting: ")
    assert "Sign-in information is incorrect" in record["Intacct_Sync_Error__c"]
    entry = world.crosswalk.get(opportunity_id, CrosswalkKind.ORDER)
    assert entry is not None
    assert (entry.refused_source_modified_at, entry.attempt) == (None, 0)  # not the record's refusal

    world.intacct.fail_with = None  # the secret is fixed; the held message comes back unchanged
    outcome = world.handle("Opportunity", opportunity_id, "closed", CLOSED)

    assert outcome.status == "synced"
    assert world.salesforce.opportunities[opportunity_id]["Intacct_Sync_Status__c"] == "Synced"


def test_a_spent_salesforce_allowance_holds_the_deal_without_calling_salesforce_again(world: World) -> None:
    _, opportunity_id = won_deal(world)
    limit = SalesforceApiLimitExceeded(
        "Reading Opportunity failed (HTTP 403): REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.",
        status=403,
        details=[SalesforceErrorDetail("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")],
    )
    reads = FailingFetch(world, limit)

    with pytest.raises(SalesforceApiLimitExceeded):
        world.handle("Opportunity", opportunity_id, "closed")

    assert world.salesforce.written == []  # no write-back tried while the allowance is spent
    assert [(e.status, e.reason) for e in world.sync_log.history(opportunity_id)] == [
        ("waiting", "salesforce_api_limit")
    ]
    reads.error = None
    assert world.handle("Opportunity", opportunity_id, "closed").status == "synced"


def test_on_the_last_receive_a_fault_of_the_set_up_is_kept_in_the_dead_letter_queue(world: World) -> None:
    _, opportunity_id = won_deal(world)
    world.intacct.fail_with = AuthenticationFailed("Intacct refused the company sign-in: XL03000006")

    with pytest.raises(AuthenticationFailed):
        world.handle("Opportunity", opportunity_id, "closed", final_attempt=True)

    assert world.sync_log.history(opportunity_id)[-1].status == "dead_lettered"
    record = world.salesforce.opportunities[opportunity_id]
    assert record["Intacct_Sync_Status__c"] == "Failed"
    assert "dead-letter queue" in record["Intacct_Sync_Error__c"]
