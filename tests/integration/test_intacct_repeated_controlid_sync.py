"""The sync against the Intacct sandbox when the repeat of an order write is refused, in each of the words the
sandbox can use (Intacct's are not documented): one order, and the Opportunity shown as synced.

The first attempt's create is slow to commit and its client gives up (outcome unknown); the same message,
delivered again, looks the order up before anything else, misses it (it is still being committed) and
sends the create again with the same control id. That repeat is slow too, so it runs after the first one
committed and is refused: as "already recorded", in other words, or as a generic failure. The sync then
looks the order up by its reference, finds it, and records it as the Opportunity's order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal

import pytest

from sfintacct.intacct import IntacctClient, OutcomeUnknown, SessionCache
from sfintacct.mapping import DEFAULT_MAPPING_FILE, load_mapping
from sfintacct.sync.service import SyncService
from tests.fakes.stores import InMemoryCrosswalk, InMemorySyncLog
from tests.fakes.systems import FakeSalesforce
from tests.integration.conftest import IntacctSandboxHandle
from tests.integration.test_intacct_client import client_settings
from tests.unit.sync.test_sync_rules import MODIFIED, new_id, request

pytestmark = pytest.mark.integration

COMMIT_DELAY_MS = 1000  # how long each create waits before it runs and commits
IMPATIENT_TIMEOUT_SECONDS = 0.4  # the first attempt's client gives up well before its create commits


class Workers:
    """Two attempts at the same work, sharing Salesforce, the crosswalk and the sync log: the first one's
    Intacct client times out early, the second one's waits."""

    def __init__(self, sandbox: IntacctSandboxHandle) -> None:
        self.salesforce = FakeSalesforce()
        self.crosswalk = InMemoryCrosswalk()
        self.sync_log = InMemorySyncLog()
        sessions = SessionCache()
        self.impatient_client = IntacctClient(
            client_settings(sandbox, timeout_seconds=IMPATIENT_TIMEOUT_SECONDS), sessions=sessions
        )
        self.patient_client = IntacctClient(client_settings(sandbox), sessions=sessions)
        self.first = self.service(self.impatient_client)
        self.second = self.service(self.patient_client)

    def service(self, client: IntacctClient) -> SyncService:
        return SyncService(
            intacct=client,
            salesforce=self.salesforce,
            crosswalk=self.crosswalk,
            sync_log=self.sync_log,
            mapping=load_mapping(DEFAULT_MAPPING_FILE),
            transaction_type="Sales Order",
            claim_lease_seconds=120,
        )

    def close(self) -> None:
        self.impatient_client.close()
        self.patient_client.close()

    def won_deal(self) -> tuple[str, str]:
        account_id, opportunity_id = new_id("001"), new_id("006")
        self.salesforce.accounts[account_id] = {
            "Id": account_id,
            "Name": "Northwind",
            "Type": "Customer - Direct",  # the Account alone makes its customer first
            "LastModifiedDate": MODIFIED,
            "Intacct_Customer_Id__c": None,
            "Intacct_Sync_Status__c": None,
        }
        self.salesforce.opportunities[opportunity_id] = {
            "Id": opportunity_id,
            "Name": "Platform deal",
            "AccountId": account_id,
            "StageName": "Closed Won",
            "IsWon": True,
            "CloseDate": "2026-11-28",
            "LastModifiedDate": MODIFIED,
            "Intacct_Order_Id__c": None,
            "Intacct_Sync_Status__c": None,
        }
        self.salesforce.lines[opportunity_id] = [
            {
                "Id": "00k1",
                "Quantity": 1,
                "UnitPrice": Decimal(100),
                "Product2": {"ProductCode": "SUB-PLATFORM"},
            }
        ]
        return account_id, opportunity_id


@pytest.fixture
def workers(intacct: IntacctSandboxHandle) -> Iterator[Workers]:
    both = Workers(intacct)
    try:
        yield both
    finally:
        both.close()


@pytest.mark.parametrize("answer", ["already_recorded", "other_wording", "generic_failure"])
def test_a_refused_repeat_of_the_order_makes_one_order_and_the_opportunity_is_synced_whatever_the_words(
    intacct: IntacctSandboxHandle, workers: Workers, answer: str, caplog: pytest.LogCaptureFixture
) -> None:
    intacct.admin.configure(duplicate_controlid_answer=answer)
    account_id, opportunity_id = workers.won_deal()
    assert workers.first.handle(request("Account", account_id)).status == "synced"  # the customer exists
    intacct.admin.set_faults(
        slow_next={"count": 2, "function": "create_sotransaction", "delay_ms": COMMIT_DELAY_MS}
    )

    with pytest.raises(OutcomeUnknown):
        workers.first.handle(request("Opportunity", opportunity_id))
    with caplog.at_level(logging.WARNING, logger="sfintacct.sync.service"):
        outcome = workers.second.handle(request("Opportunity", opportunity_id))  # the same message again

    # The repeat was refused (it ran after the first create committed), and the order was found after it.
    [refused] = [record.getMessage() for record in caplog.records if "order write" in record.getMessage()]
    assert f"The order write for {opportunity_id} failed" in refused

    [order] = intacct.admin.records("SODOCUMENT")
    assert order["PONUMBER"] == opportunity_id
    assert (outcome.status, outcome.intacct_order_id) == ("synced", order["DOCID"])
    opportunity = workers.salesforce.opportunities[opportunity_id]
    assert (opportunity["Intacct_Order_Id__c"], opportunity["Intacct_Sync_Status__c"]) == (
        order["DOCID"],
        "Synced",
    )
    assert [entry.status for entry in workers.sync_log.history(opportunity_id)] == ["retrying", "synced"]
    assert intacct.admin.counts()["functions"]["create_sotransaction"] == 2  # the first and its repeat
