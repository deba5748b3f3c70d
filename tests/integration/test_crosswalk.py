"""The crosswalk store against DynamoDB Local, on a table created from template.yaml.

The tests that take the `store` fixture run twice: against CrosswalkStore on DynamoDB Local and against
the in-memory crosswalk the unit tests use (tests/fakes/stores.py), so the fake cannot be more lenient
than the store it stands for.
"""

from __future__ import annotations

import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sandbox.aws_local import dynamodb_client
from sfintacct.crosswalk import (
    AlreadyClaimed,
    ClaimLost,
    CrosswalkKind,
    CrosswalkPermanentError,
    CrosswalkStatus,
    CrosswalkStore,
    CrosswalkTransientError,
    MappingConflict,
    StaleUpdate,
    is_transient_client_error,
)
from tests.fakes.stores import InMemoryCrosswalk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)
LEASE_SECONDS = 30


def new_sf_id(prefix: str = "006") -> str:
    """A fresh 18-character Salesforce-style id, so tests never share a record."""
    return (prefix + uuid.uuid4().hex)[:18]


@pytest.fixture(params=["dynamodb", "in-memory"])
def store(request: pytest.FixtureRequest, dynamodb: DynamoDBClient, crosswalk_table: str) -> CrosswalkStore:
    if request.param == "in-memory":
        return InMemoryCrosswalk()  # type: ignore[return-value]  # the same operations, checked here
    return CrosswalkStore(dynamodb, crosswalk_table)


def test_claim_of_a_new_record_is_held_by_its_owner(store: CrosswalkStore) -> None:
    sf_id = new_sf_id()

    entry = store.claim(sf_id, CrosswalkKind.ORDER, "worker-a", LEASE_SECONDS, now=T0)

    assert entry.status is CrosswalkStatus.CLAIMED
    assert entry.is_claimed_by("worker-a", T0)
    assert entry.lease_expires_at == T0 + timedelta(seconds=LEASE_SECONDS)
    assert store.get(sf_id, CrosswalkKind.ORDER) == entry
    assert store.get(sf_id, CrosswalkKind.CUSTOMER) is None


def test_racing_claims_have_exactly_one_winner(dynamodb_endpoint: str, crosswalk_table: str) -> None:
    sf_id = new_sf_id()
    racers = 12
    barrier = threading.Barrier(racers)
    winners: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()

    def race(owner: str, store: CrosswalkStore) -> None:
        barrier.wait()
        try:
            store.claim(sf_id, CrosswalkKind.ORDER, owner, LEASE_SECONDS)
        except AlreadyClaimed:
            with lock:
                refused.append(owner)
        else:
            with lock:
                winners.append(owner)

    # One client per worker, made here: creating boto3 clients is not thread-safe.
    threads = [
        threading.Thread(
            target=race,
            args=(f"worker-{n}", CrosswalkStore(dynamodb_client(dynamodb_endpoint), crosswalk_table)),
        )
        for n in range(racers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(winners) == 1
    assert len(refused) == racers - 1
    stored = CrosswalkStore(dynamodb_client(dynamodb_endpoint), crosswalk_table).get(
        sf_id, CrosswalkKind.ORDER
    )
    assert stored is not None
    assert stored.claim_owner == winners[0]


def test_a_live_claim_is_refused_and_an_expired_one_is_taken_over(store: CrosswalkStore) -> None:
    sf_id = new_sf_id()
    store.claim(sf_id, CrosswalkKind.ORDER, "worker-a", LEASE_SECONDS, now=T0)

    with pytest.raises(AlreadyClaimed) as refused:
        store.claim(sf_id, CrosswalkKind.ORDER, "worker-b", LEASE_SECONDS, now=T0 + timedelta(seconds=29))
    assert refused.value.current is not None
    assert refused.value.current.claim_owner == "worker-a"

    later = T0 + timedelta(seconds=LEASE_SECONDS + 1)
    taken_over = store.claim(sf_id, CrosswalkKind.ORDER, "worker-b", LEASE_SECONDS, now=later)
    assert taken_over.is_claimed_by("worker-b", later)

    # The first owner woke up late: its work may no longer be recorded.
    with pytest.raises(ClaimLost) as lost:
        store.complete(sf_id, CrosswalkKind.ORDER, "Sales Order-SO0001", "worker-a", now=later)
    assert lost.value.current is not None
    assert lost.value.current.claim_owner == "worker-b"


def test_the_owner_can_renew_its_own_lease(store: CrosswalkStore) -> None:
    sf_id = new_sf_id()
    store.claim(sf_id, CrosswalkKind.ORDER, "worker-a", LEASE_SECONDS, now=T0)

    renewed = store.claim(
        sf_id, CrosswalkKind.ORDER, "worker-a", LEASE_SECONDS, now=T0 + timedelta(seconds=20)
    )

    assert renewed.lease_expires_at == T0 + timedelta(seconds=20 + LEASE_SECONDS)


def test_only_the_owner_completes_and_a_completed_record_is_not_claimed_again(store: CrosswalkStore) -> None:
    sf_id = new_sf_id()
    store.claim(sf_id, CrosswalkKind.ORDER, "worker-a", LEASE_SECONDS, now=T0)

    with pytest.raises(ClaimLost):
        store.complete(sf_id, CrosswalkKind.ORDER, "Sales Order-SO0002", "worker-b")

    modified = datetime(2026, 11, 28, 15, 59, 30, 123000, tzinfo=UTC)
    done = store.complete(
        sf_id,
        CrosswalkKind.ORDER,
        "Sales Order-SO0001",
        "worker-a",
        modified,
        attributes={"controlid": "order-" + sf_id},
        now=T0 + timedelta(seconds=5),
    )
    assert done.is_complete
    assert done.intacct_id == "Sales Order-SO0001"
    assert done.source_modified_at == modified
    assert done.claim_owner is None
    assert done.lease_expires_at is None
    assert done.attributes == {"controlid": "order-" + sf_id}

    # A redelivered message claims again much later: it is told the work is done, nothing changes.
    again = store.claim(sf_id, CrosswalkKind.ORDER, "worker-c", LEASE_SECONDS, now=T0 + timedelta(hours=1))
    assert again == done
    assert store.get(sf_id, CrosswalkKind.ORDER) == done

    # The owner retrying its completion (e.g. after a lost reply) gets the same entry back.
    assert store.complete(sf_id, CrosswalkKind.ORDER, "Sales Order-SO0001", "worker-a") == done
    with pytest.raises(ClaimLost):
        store.complete(sf_id, CrosswalkKind.ORDER, "Sales Order-SO0009", "worker-a")


def test_complete_without_a_claim_is_refused(store: CrosswalkStore) -> None:
    sf_id = new_sf_id()

    with pytest.raises(ClaimLost) as lost:
        store.complete(sf_id, CrosswalkKind.ORDER, "Sales Order-SO0001", "worker-a")

    assert lost.value.current is None
    assert store.get(sf_id, CrosswalkKind.ORDER) is None


def test_released_claim_can_be_taken_at_once(store: CrosswalkStore) -> None:
    sf_id = new_sf_id()
    store.claim(sf_id, CrosswalkKind.ORDER, "worker-a", LEASE_SECONDS, now=T0)

    assert store.release(sf_id, CrosswalkKind.ORDER, "worker-b", refused=False) is False
    assert store.release(sf_id, CrosswalkKind.ORDER, "worker-a", refused=False) is True

    taken = store.claim(sf_id, CrosswalkKind.ORDER, "worker-b", LEASE_SECONDS, now=T0 + timedelta(seconds=1))
    assert taken.claim_owner == "worker-b"


def test_the_attempt_number_survives_claims_and_goes_up_only_when_a_refused_claim_is_released(
    store: CrosswalkStore,
) -> None:
    sf_id = new_sf_id()
    assert store.claim(sf_id, CrosswalkKind.ORDER, "worker-a", LEASE_SECONDS, now=T0).attempt == 0
    later = T0 + timedelta(seconds=LEASE_SECONDS + 1)
    assert store.claim(sf_id, CrosswalkKind.ORDER, "worker-b", LEASE_SECONDS, now=later).attempt == 0

    assert store.release(sf_id, CrosswalkKind.ORDER, "worker-b", refused=True, now=later)
    again = store.claim(sf_id, CrosswalkKind.ORDER, "worker-c", LEASE_SECONDS, now=later)
    assert again.attempt == 1
    assert store.release(sf_id, CrosswalkKind.ORDER, "worker-c", refused=False, now=later)  # not refused
    assert store.claim(sf_id, CrosswalkKind.ORDER, "worker-c", LEASE_SECONDS, now=later).attempt == 1
    assert store.release(sf_id, CrosswalkKind.ORDER, "worker-c", refused=True, now=later)
    third = store.claim(sf_id, CrosswalkKind.ORDER, "worker-c", LEASE_SECONDS, now=later)
    assert third.attempt == 2

    done = store.complete(sf_id, CrosswalkKind.ORDER, "Sales Order-SO0001", "worker-c", now=later)
    assert done.attempt == 2
    assert store.get(sf_id, CrosswalkKind.ORDER) == done


def test_a_refused_release_keeps_the_state_that_was_refused_until_the_next_refusal(
    store: CrosswalkStore,
) -> None:
    sf_id = new_sf_id()
    closed = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)
    edited = closed + timedelta(minutes=5)
    store.claim(sf_id, CrosswalkKind.ORDER, "worker-a", LEASE_SECONDS, now=T0)
    assert store.release(
        sf_id, CrosswalkKind.ORDER, "worker-a", refused=True, refused_source_modified_at=closed, now=T0
    )
    assert store.get(sf_id, CrosswalkKind.ORDER).refused_source_modified_at == closed  # type: ignore[union-attr]

    store.claim(sf_id, CrosswalkKind.ORDER, "worker-b", LEASE_SECONDS, now=T0)
    assert store.release(
        sf_id, CrosswalkKind.ORDER, "worker-b", refused=False, now=T0
    )  # a crash, not a refusal
    assert store.get(sf_id, CrosswalkKind.ORDER).refused_source_modified_at == closed  # type: ignore[union-attr]

    store.claim(sf_id, CrosswalkKind.ORDER, "worker-c", LEASE_SECONDS, now=T0)
    store.release(
        sf_id, CrosswalkKind.ORDER, "worker-c", refused=True, refused_source_modified_at=edited, now=T0
    )
    entry = store.get(sf_id, CrosswalkKind.ORDER)
    assert entry is not None
    assert (entry.refused_source_modified_at, entry.attempt) == (edited, 2)


def test_an_older_change_never_overwrites_a_newer_mapping(store: CrosswalkStore) -> None:
    sf_id = new_sf_id("001")
    newer = datetime(2026, 11, 28, 16, 5, tzinfo=UTC)
    older = newer - timedelta(seconds=1)

    stored = store.put_mapping(
        sf_id, CrosswalkKind.CUSTOMER, "C-00001", newer, attributes={"name": "Acme Ltd"}
    )

    with pytest.raises(StaleUpdate) as stale:
        store.put_mapping(sf_id, CrosswalkKind.CUSTOMER, "C-00001", older, attributes={"name": "Acme"})
    assert stale.value.current == stored
    assert store.get(sf_id, CrosswalkKind.CUSTOMER) == stored

    # The same change again is harmless; a newer one is applied.
    assert store.put_mapping(sf_id, CrosswalkKind.CUSTOMER, "C-00001", newer).source_modified_at == newer
    newest = store.put_mapping(sf_id, CrosswalkKind.CUSTOMER, "C-00001", newer + timedelta(minutes=1))
    assert newest.source_modified_at == newer + timedelta(minutes=1)


def test_timestamps_in_other_offsets_compare_by_instant(store: CrosswalkStore) -> None:
    sf_id = new_sf_id("001")
    paris = timezone(timedelta(hours=1))
    store.put_mapping(sf_id, CrosswalkKind.CUSTOMER, "C-00002", datetime(2026, 11, 28, 17, 0, tzinfo=paris))

    # 16:30 UTC is 17:30 in Paris: newer, although its wall-clock reading is smaller.
    applied = store.put_mapping(
        sf_id, CrosswalkKind.CUSTOMER, "C-00002", datetime(2026, 11, 28, 16, 30, tzinfo=UTC)
    )
    assert applied.source_modified_at == datetime(2026, 11, 28, 16, 30, tzinfo=UTC)
    with pytest.raises(StaleUpdate):
        store.put_mapping(
            sf_id, CrosswalkKind.CUSTOMER, "C-00002", datetime(2026, 11, 28, 17, 15, tzinfo=paris)
        )


def test_a_record_is_never_remapped_to_another_intacct_object(store: CrosswalkStore) -> None:
    sf_id = new_sf_id("001")
    store.put_mapping(sf_id, CrosswalkKind.CUSTOMER, "C-00003", T0)

    with pytest.raises(MappingConflict) as conflict:
        store.put_mapping(sf_id, CrosswalkKind.CUSTOMER, "C-00004", T0 + timedelta(minutes=1))

    assert conflict.value.current is not None
    assert conflict.value.current.intacct_id == "C-00003"


def test_reverse_lookup_finds_the_salesforce_record_of_an_intacct_object(
    dynamodb: DynamoDBClient, crosswalk_table: str
) -> None:
    store = CrosswalkStore(dynamodb, crosswalk_table)  # the reverse index is DynamoDB's own
    account_id, opportunity_id = new_sf_id("001"), new_sf_id("006")
    store.put_mapping(account_id, CrosswalkKind.CUSTOMER, "C-10001", T0)
    store.claim(opportunity_id, CrosswalkKind.ORDER, "worker-a", LEASE_SECONDS)
    store.complete(opportunity_id, CrosswalkKind.ORDER, "Sales Order-SO0101", "worker-a")

    customer = store.find_by_intacct_id(CrosswalkKind.CUSTOMER, "C-10001")
    order = store.find_by_intacct_id(CrosswalkKind.ORDER, "Sales Order-SO0101")

    assert customer is not None
    assert customer.sf_id == account_id
    assert order is not None
    assert order.sf_id == opportunity_id
    assert store.find_by_intacct_id(CrosswalkKind.ORDER, "C-10001") is None
    assert store.find_by_intacct_id(CrosswalkKind.CUSTOMER, "C-99999") is None


def test_bad_input_is_refused_before_any_write(store: CrosswalkStore) -> None:
    with pytest.raises(ValueError, match="18-character"):
        store.claim("0061234", CrosswalkKind.ORDER, "worker-a", LEASE_SECONDS)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.put_mapping(new_sf_id(), CrosswalkKind.CUSTOMER, "C-1", datetime(2026, 1, 1))


def test_a_missing_table_is_a_permanent_error(dynamodb: DynamoDBClient) -> None:
    store = CrosswalkStore(dynamodb, f"no-such-table-{uuid.uuid4().hex[:8]}")

    with pytest.raises(CrosswalkPermanentError, match="ResourceNotFoundException"):
        store.get(new_sf_id(), CrosswalkKind.ORDER)


def test_an_unreachable_dynamodb_is_a_transient_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1),
    )

    with pytest.raises(CrosswalkTransientError):
        CrosswalkStore(client, "crosswalk").get(new_sf_id(), CrosswalkKind.ORDER)


@pytest.mark.parametrize(
    ("code", "status", "transient"),
    [
        ("ProvisionedThroughputExceededException", 400, True),
        ("ThrottlingException", 400, True),
        ("InternalServerError", 500, True),
        ("SomethingNew", 503, True),
        ("ValidationException", 400, False),
        ("ResourceNotFoundException", 400, False),
        ("AccessDeniedException", 400, False),
    ],
)
def test_dynamodb_errors_are_classified(code: str, status: int, transient: bool) -> None:
    response: Any = {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    error = ClientError(response, "GetItem")
    assert is_transient_client_error(error) is transient
