"""Faults of the set-up on a running local stack: the deals wait, say so, and sync by themselves once the
set-up is fixed (or the service is back), on the same warm workers, with nothing dead-lettered.

The module runs its own local stack with short timings: a queue visibility timeout of 5 s, a failed
message waiting 5 s, then twice as long each time, for 5 receives (155 s before the dead-letter queue,
where the fixed 5 s delay of before gave 25 s), and warm workers reading their secrets again every 5 s
(5 minutes on AWS). The workers read their field mapping from a copy of mapping.toml that a test may
edit (they read it again whenever they rebuild their service); the test puts the right content back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sandbox.aws_local import secretsmanager_client
from sandbox.intacct.admin_client import IntacctAdminClient
from sandbox.sales_rep import Line, SalesRep
from sandbox.salesforce.admin_client import SalesforceAdminClient
from sandbox.stack import LocalStack, start_local_stack
from sfintacct.mapping import DEFAULT_MAPPING_FILE
from sfintacct.sync.sync_log import SyncLog
from tests.e2e.conftest import orders_of, queue_depth, settle

pytestmark = pytest.mark.e2e

ONE_LINE = (Line("SUB-PLATFORM", Decimal(1), Decimal(1000)),)
VISIBILITY_SECONDS = 5
LONGEST_WAIT = 120.0
# The Opportunity field that fills the order's message, misspelt: the org has no such field.
RIGHT_MESSAGE_ENTRY = '\nmessage = "Name"\n'
MISSPELT_FIELD = "Descripton"


@pytest.fixture(scope="module")
def mapping_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mapping the module's workers read: a copy of the default one."""
    path: Path = tmp_path_factory.mktemp("set-up-faults-mapping") / "mapping.toml"
    path.write_text(DEFAULT_MAPPING_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, mapping_file: Path) -> Iterator[LocalStack]:
    """A local stack of this module's own, with the short timings above."""
    state_dir: Path = tmp_path_factory.mktemp("set-up-faults-stack")
    with start_local_stack(
        state_dir, ephemeral=True, queue_visibility_seconds=VISIBILITY_SECONDS, mapping_file=mapping_file
    ) as started:
        yield started


def wait_until(condition: Callable[[], bool], timeout: float = LONGEST_WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


@pytest.fixture(autouse=True)
def nothing_dead_lettered(stack: LocalStack) -> Iterator[None]:
    yield
    for queue in ("CustomerUpsertDeadLetterQueue", "OpportunityToOrderDeadLetterQueue"):
        assert queue_depth(stack, queue) == 0, queue


def closed_deal(rep: SalesRep, name: str, *, not_before: float = 0.0) -> str:
    """A new Account's deal, won once time.monotonic() reaches `not_before`."""
    account_id = rep.create("Account", {"Name": name, "BillingCity": "Denver"})
    opportunity_id = rep.deal(account_id, f"{name} deal", ONE_LINE)
    time.sleep(max(0.0, not_before - time.monotonic()))
    rep.close_won(opportunity_id)
    return opportunity_id


def after_workers_rebuild() -> float:
    """From when on every warm worker builds its sync service afresh (secrets and mapping as they are
    now) before its next record: its service is then older than SERVICE_MAX_AGE_SECONDS (5 s here)."""
    return time.monotonic() + VISIBILITY_SECONDS + 1


def replace_text(path: Path, text: str) -> None:
    """Give the file new content at once: a worker never reads half of it."""
    draft = path.with_name(f".{path.name}.draft")
    draft.write_text(text, encoding="utf-8")
    draft.replace(path)


@contextmanager
def secret_changed(stack: LocalStack, which: str, change: dict[str, str]) -> Iterator[None]:
    """The stack's `which` secret with `change` applied while the block runs; then as it was."""
    secrets = secretsmanager_client(stack.info["secretsmanager_endpoint"])
    secret_id = stack.info["secrets"][which]
    right = json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])
    secrets.put_secret_value(SecretId=secret_id, SecretString=json.dumps({**right, **change}))
    try:
        yield
    finally:
        secrets.put_secret_value(SecretId=secret_id, SecretString=json.dumps(right))


def assert_synced_by_itself(
    rep: SalesRep, intacct: IntacctAdminClient, sync_log: SyncLog, opportunity_id: str
) -> None:
    """Nothing is sent again from Salesforce: the held message comes back and syncs."""
    assert wait_until(lambda: rep.read("Opportunity", opportunity_id)["Intacct_Sync_Status__c"] == "Synced")
    assert len(orders_of(intacct, opportunity_id)) == 1
    assert statuses(sync_log, opportunity_id)[-1] == ("synced", "created")


def statuses(sync_log: SyncLog, opportunity_id: str) -> list[tuple[str, str]]:
    return [(entry.status, entry.reason) for entry in sync_log.history(opportunity_id)]


def test_a_wrong_intacct_sender_password_holds_the_deals_and_fixing_the_secret_syncs_them(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, sync_log: SyncLog
) -> None:
    with secret_changed(stack, "intacct", {"sender_password": "wrong"}):
        opportunity_id = closed_deal(rep, "Held By Sender", not_before=after_workers_rebuild())
        assert wait_until(lambda: ("waiting", "intacct_sender") in statuses(sync_log, opportunity_id))
        held = rep.read("Opportunity", opportunity_id)
        assert held["Intacct_Sync_Status__c"] == "Waiting"
        assert held["Intacct_Sync_Error__c"].startswith("Waiting: ")
        assert "sender" in held["Intacct_Sync_Error__c"]
        assert orders_of(intacct, opportunity_id) == []

    assert_synced_by_itself(rep, intacct, sync_log, opportunity_id)


def test_a_wrong_salesforce_consumer_key_holds_the_deals_and_fixing_the_secret_syncs_them(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, sync_log: SyncLog
) -> None:
    with secret_changed(stack, "salesforce", {"client_id": "3MVG9wrongConsumerKey"}):
        opportunity_id = closed_deal(rep, "Held By Consumer Key", not_before=after_workers_rebuild())
        assert wait_until(lambda: ("waiting", "salesforce_credentials") in statuses(sync_log, opportunity_id))
        # Salesforce refuses the token request as it refuses an unknown consumer key. (The record cannot
        # say "Waiting": Salesforce itself is what refuses us.)
        waiting = [entry for entry in sync_log.history(opportunity_id) if entry.status == "waiting"]
        assert "invalid_client_id" in waiting[0].message
        assert orders_of(intacct, opportunity_id) == []

    assert_synced_by_itself(rep, intacct, sync_log, opportunity_id)


def test_a_mapping_naming_a_missing_salesforce_field_holds_the_deals_and_says_which_field(
    stack: LocalStack, mapping_file: Path, rep: SalesRep, intacct: IntacctAdminClient, sync_log: SyncLog
) -> None:
    right = mapping_file.read_text(encoding="utf-8")
    assert RIGHT_MESSAGE_ENTRY in right
    replace_text(mapping_file, right.replace(RIGHT_MESSAGE_ENTRY, f'\nmessage = "{MISSPELT_FIELD}"\n'))
    try:
        opportunity_id = closed_deal(rep, "Held By Mapping", not_before=after_workers_rebuild())
        assert wait_until(lambda: ("waiting", "mapping") in statuses(sync_log, opportunity_id))
        held = rep.read("Opportunity", opportunity_id)
        assert held["Intacct_Sync_Status__c"] == "Waiting"
        assert held["Intacct_Sync_Error__c"].startswith("Waiting: ")
        assert f"No such column '{MISSPELT_FIELD}' on entity 'Opportunity'" in held["Intacct_Sync_Error__c"]
        assert orders_of(intacct, opportunity_id) == []
    finally:
        replace_text(mapping_file, right)

    assert_synced_by_itself(rep, intacct, sync_log, opportunity_id)


def test_a_spent_salesforce_api_allowance_holds_the_deals_until_it_comes_back(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, sync_log: SyncLog
) -> None:
    admin = SalesforceAdminClient(stack.info["salesforce"]["admin_url"], stack.info["salesforce"]["ca_file"])
    settle(stack)
    opportunity_id = closed_deal(rep, "Held By Allowance")
    admin.set_faults(spend_api_allowance=True)  # before the worker reads the deal
    try:
        assert wait_until(lambda: ("waiting", "salesforce_api_limit") in statuses(sync_log, opportunity_id))
        assert orders_of(intacct, opportunity_id) == []
    finally:
        admin.set_config(api_usage=0)  # the next day's allowance

    assert wait_until(lambda: rep.read("Opportunity", opportunity_id)["Intacct_Sync_Status__c"] == "Synced")
    assert len(orders_of(intacct, opportunity_id)) == 1


def test_an_intacct_outage_longer_than_the_old_retry_window_dead_letters_nothing(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, sync_log: SyncLog
) -> None:
    settle(stack)
    intacct.set_faults(offline=True)
    try:
        opportunity_ids = [closed_deal(rep, f"Outage {index}") for index in range(3)]
        time.sleep(5 * VISIBILITY_SECONDS + 3)  # longer than 5 receives at the fixed delay of before
        retried: list[Any] = [statuses(sync_log, opportunity_id) for opportunity_id in opportunity_ids]
        assert all(("retrying", "transient") in history for history in retried), retried
    finally:
        intacct.set_faults(offline=False)

    for opportunity_id in opportunity_ids:
        assert wait_until(
            lambda opportunity_id=opportunity_id: (
                rep.read("Opportunity", opportunity_id)["Intacct_Sync_Status__c"] == "Synced"
            )
        )
        assert len(orders_of(intacct, opportunity_id)) == 1
