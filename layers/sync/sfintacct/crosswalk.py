"""The crosswalk: which Intacct object belongs to which Salesforce record, and who is creating it now.

One DynamoDB item per (Salesforce record, Intacct object kind):

    pk = "SF#<18-char Salesforce id>", sk = "CUSTOMER" | "ORDER" | "CUSTOMER_WRITE" (a lock: claimed and
                                          released around each write of the Account's customer)
    status              CLAIMED (someone is creating the Intacct object) | COMPLETE (it exists)
    intacct_id          CUSTOMERID or DOCID, once known
    intacct_key         "<KIND>#<intacct_id>", the key of the reverse-lookup index "by-intacct-id"
    claim_owner         who holds the claim (CLAIMED only)
    lease_expires_at    epoch seconds after which another worker may take the claim over (CLAIMED only)
    source_modified_at  Salesforce LastModifiedDate applied last (ISO 8601, UTC)
    attempt             how many times Intacct refused the record's create and its claim was released; part
                        of the Intacct control id, so the control id stays the same for as long as an
                        earlier attempt might still commit, and changes only after a refusal
    updated_at          time of the last write (ISO 8601, UTC)
    attributes          free string attributes (a map)

Every write is conditional, so concurrent workers cannot both create the same Intacct object and an
older Salesforce change never overwrites a newer one. Reads of the reverse index are eventually
consistent on AWS (a just-written mapping may not be found there for a moment).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

REVERSE_INDEX_NAME = "by-intacct-id"
SALESFORCE_ID = re.compile(r"^[a-zA-Z0-9]{18}$")

_TRANSIENT_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionInProgressException",
        "LimitExceededException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


class CrosswalkKind(StrEnum):
    """The Intacct object a Salesforce record maps to."""

    CUSTOMER = "CUSTOMER"
    ORDER = "ORDER"
    CUSTOMER_WRITE = "CUSTOMER_WRITE"  # a lock item only (claim / release): who is writing the customer now
    ORDER_WRITE = "ORDER_WRITE"  # a lock item only: who is changing (updating, closing) a synced order now


class CrosswalkStatus(StrEnum):
    CLAIMED = "CLAIMED"
    COMPLETE = "COMPLETE"


@dataclass(frozen=True)
class CrosswalkEntry:
    """One crosswalk item, as stored."""

    sf_id: str
    kind: CrosswalkKind
    status: CrosswalkStatus
    updated_at: datetime
    intacct_id: str | None = None
    claim_owner: str | None = None
    lease_expires_at: datetime | None = None
    source_modified_at: datetime | None = None
    attempt: int = 0
    attributes: Mapping[str, str] = field(default_factory=dict)
    # The record's LastModifiedDate as read when Intacct last refused its write (release(refused=True)).
    refused_source_modified_at: datetime | None = None

    @property
    def is_complete(self) -> bool:
        return self.status is CrosswalkStatus.COMPLETE

    def is_claimed_by(self, owner: str, now: datetime) -> bool:
        """True if `owner` holds an unexpired claim at `now`."""
        return (
            self.status is CrosswalkStatus.CLAIMED
            and self.claim_owner == owner
            and self.lease_expires_at is not None
            and self.lease_expires_at > now
        )


# ---------------------------------------------------------------------------- errors


class CrosswalkError(Exception):
    """Base of every crosswalk error."""


class CrosswalkTransientError(CrosswalkError):
    """Throttling, a DynamoDB 5xx or a network failure: retrying later may succeed."""


class CrosswalkPermanentError(CrosswalkError):
    """Validation error, missing table, access denied...: retrying will not help."""


class CrosswalkConflict(CrosswalkError):
    """A conditional write was refused; `current` is the item as it is now (None if it is gone)."""

    def __init__(self, message: str, current: CrosswalkEntry | None) -> None:
        super().__init__(message)
        self.current = current


class AlreadyClaimed(CrosswalkConflict):
    """Another owner holds an unexpired claim on the record."""


class ClaimLost(CrosswalkConflict):
    """The caller no longer holds the claim (it expired and was taken over, or never existed)."""


class StaleUpdate(CrosswalkConflict):
    """The stored mapping was applied from a newer Salesforce change than the one offered."""


class MappingConflict(CrosswalkConflict):
    """The record is already mapped to a different Intacct object."""


class DuplicateMapping(CrosswalkPermanentError):
    """More than one Salesforce record maps to the same Intacct object."""


# ---------------------------------------------------------------------------- the store


class CrosswalkStore:
    """Typed, conditional operations on the crosswalk table."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._client = client
        self._table_name = table_name
        self._clock = clock or _utc_now

    @property
    def table_name(self) -> str:
        return self._table_name

    def get(self, sf_id: str, kind: CrosswalkKind) -> CrosswalkEntry | None:
        """The entry of a Salesforce record (strongly consistent read), or None."""
        with _translated_errors():
            response = self._client.get_item(
                TableName=self._table_name, Key=_key(sf_id, kind), ConsistentRead=True
            )
        item = response.get("Item")
        return _entry_from_item(item) if item else None

    def claim(
        self,
        sf_id: str,
        kind: CrosswalkKind,
        owner: str,
        lease_seconds: float,
        now: datetime | None = None,
    ) -> CrosswalkEntry:
        """Claim the right to create the Intacct object of a record.

        Succeeds only if there is no entry or the entry is CLAIMED with an expired lease (or held by
        `owner` already: the lease is renewed); returns the CLAIMED entry held by `owner`, with the
        record's `attempt` number kept. If the record is already COMPLETE, returns that entry unchanged
        (check `entry.is_complete`: the work is done). Raises AlreadyClaimed while another owner's lease
        runs.
        """
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        now = _aware(now or self._clock(), "now")
        lease_expires_at = now.timestamp() + lease_seconds
        try:
            with _translated_errors():
                response = self._client.update_item(
                    TableName=self._table_name,
                    Key=_key(sf_id, kind),
                    UpdateExpression=(
                        "SET #status = :claimed, claim_owner = :owner, lease_expires_at = :lease,"
                        " updated_at = :updated_at"
                    ),
                    ConditionExpression=(
                        "attribute_not_exists(pk)"
                        " OR (#status = :claimed AND (lease_expires_at < :now OR claim_owner = :owner))"
                    ),
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":claimed": {"S": CrosswalkStatus.CLAIMED.value},
                        ":now": {"N": _epoch_text(now.timestamp())},
                        ":owner": {"S": owner},
                        ":lease": {"N": _epoch_text(lease_expires_at)},
                        ":updated_at": {"S": _iso(now)},
                    },
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except _ConditionFailed as refused:
            current = refused.current or self.get(sf_id, kind)
            if current is not None and current.is_complete:
                return current
            holder = current.claim_owner if current else None
            raise AlreadyClaimed(f"SF#{sf_id}/{kind}: claimed by {holder}", current) from None
        return _entry_from_item(response["Attributes"])

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
    ) -> CrosswalkEntry:
        """Record the Intacct object created under a claim; only the claim's owner may do so.

        Completing again with the same Intacct id is accepted (returns the stored entry). Raises
        ClaimLost if the claim is held by someone else or is gone.
        """
        _require_text(intacct_id, "intacct_id")
        now = _aware(now or self._clock(), "now")
        try:
            with _translated_errors():
                response = self._client.update_item(
                    **self._completion_update(
                        sf_id,
                        kind,
                        intacct_id=intacct_id,
                        source_modified_at=source_modified_at,
                        attributes=attributes,
                        now=now,
                        condition="#status = :claimed AND claim_owner = :owner",
                        condition_values={
                            ":owner": {"S": owner},
                            ":claimed": {"S": CrosswalkStatus.CLAIMED.value},
                        },
                    ),
                )
        except _ConditionFailed as refused:
            current = refused.current or self.get(sf_id, kind)
            if current is not None and current.is_complete and current.intacct_id == intacct_id:
                return current
            holder = current.claim_owner if current else None
            raise ClaimLost(
                f"SF#{sf_id}/{kind}: {owner} does not hold the claim (holder: {holder})", current
            ) from None
        return _entry_from_item(response["Attributes"])

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
    ) -> CrosswalkEntry:
        """Record (or refresh) a COMPLETE mapping without a claim, e.g. after a customer upsert.

        Refused with StaleUpdate if the stored source_modified_at is newer than the one given (an equal
        one is accepted, so re-applying the same change is harmless), and with MappingConflict if the
        record is already mapped to another Intacct id than `replaces` (the object it was mapped to, when
        a new one took its place). Clears any claim on the record.
        """
        _require_text(intacct_id, "intacct_id")
        now = _aware(now or self._clock(), "now")
        condition = "(attribute_not_exists(intacct_id) OR intacct_id = :intacct_id"
        condition += " OR intacct_id = :replaced)" if replaces else ")"
        if source_modified_at is not None:
            condition += (
                " AND (attribute_not_exists(source_modified_at) OR source_modified_at <= :source_modified_at)"
            )
        try:
            with _translated_errors():
                response = self._client.update_item(
                    **self._completion_update(
                        sf_id,
                        kind,
                        intacct_id=intacct_id,
                        source_modified_at=source_modified_at,
                        attributes=attributes,
                        now=now,
                        condition=condition,
                        condition_values={":replaced": {"S": replaces}} if replaces else None,
                    ),
                )
        except _ConditionFailed as refused:
            current = refused.current or self.get(sf_id, kind)
            if current is not None and current.intacct_id not in (None, intacct_id, replaces):
                raise MappingConflict(
                    f"SF#{sf_id}/{kind} is mapped to {current.intacct_id}, not {intacct_id}", current
                ) from None
            stored = current.source_modified_at if current else None
            raise StaleUpdate(
                f"SF#{sf_id}/{kind}: stored change {stored and _iso(stored)} is newer than "
                f"{source_modified_at and _iso(source_modified_at)}",
                current,
            ) from None
        return _entry_from_item(response["Attributes"])

    def release(
        self,
        sf_id: str,
        kind: CrosswalkKind,
        owner: str,
        *,
        refused: bool,
        refused_source_modified_at: datetime | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Give up a claim whose attempt has nothing on its way to Intacct, so the next can start at once.

        `refused`: Intacct refused the write; the record's `attempt` goes up by one, so the next create
        carries a new control id (Intacct may remember the refused one), and `refused_source_modified_at`
        (the record's LastModifiedDate as read for the refused attempt) is kept, so a notification of that
        same state can be answered without another try. False if `owner` did not hold the claim.
        """
        now = _aware(now or self._clock(), "now")
        assignments = "SET lease_expires_at = :expired, updated_at = :now"
        values: dict[str, AttributeValueTypeDef] = {
            ":expired": {"N": "0"},
            ":added": {"N": "1" if refused else "0"},
            ":now": {"S": _iso(now)},
            ":claimed": {"S": CrosswalkStatus.CLAIMED.value},
            ":owner": {"S": owner},
        }
        if refused and refused_source_modified_at is not None:
            assignments += ", refused_source_modified_at = :refused_modified"
            values[":refused_modified"] = {"S": _iso(_aware(refused_source_modified_at, "modified_at"))}
        try:
            with _translated_errors():
                self._client.update_item(
                    TableName=self._table_name,
                    Key=_key(sf_id, kind),
                    UpdateExpression=f"{assignments} REMOVE claim_owner ADD attempt :added",
                    ConditionExpression="#status = :claimed AND claim_owner = :owner",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues=values,
                )
        except _ConditionFailed:
            return False
        return True

    def find_by_intacct_id(self, kind: CrosswalkKind, intacct_id: str) -> CrosswalkEntry | None:
        """The entry mapped to an Intacct object (reverse lookup through the by-intacct-id index)."""
        _require_text(intacct_id, "intacct_id")
        with _translated_errors():
            response = self._client.query(
                TableName=self._table_name,
                IndexName=REVERSE_INDEX_NAME,
                KeyConditionExpression="intacct_key = :intacct_key",
                ExpressionAttributeValues={":intacct_key": {"S": _intacct_key(kind, intacct_id)}},
                Limit=2,
            )
        items = response.get("Items", [])
        if len(items) > 1:
            sf_ids = ", ".join(str(item["pk"].get("S")) for item in items)
            raise DuplicateMapping(f"{kind} {intacct_id} is mapped from more than one record: {sf_ids}")
        return _entry_from_item(items[0]) if items else None

    def _completion_update(
        self,
        sf_id: str,
        kind: CrosswalkKind,
        *,
        intacct_id: str,
        source_modified_at: datetime | None,
        attributes: Mapping[str, str] | None,
        now: datetime,
        condition: str,
        condition_values: Mapping[str, AttributeValueTypeDef] | None = None,
    ) -> dict[str, Any]:
        """Conditional UpdateItem arguments that make the entry COMPLETE (complete and put_mapping)."""
        assignments = [
            "#status = :complete",
            "intacct_id = :intacct_id",
            "intacct_key = :intacct_key",
            "updated_at = :now",
        ]
        values: dict[str, AttributeValueTypeDef] = {
            ":complete": {"S": CrosswalkStatus.COMPLETE.value},
            ":intacct_id": {"S": intacct_id},
            ":intacct_key": {"S": _intacct_key(kind, intacct_id)},
            ":now": {"S": _iso(now)},
            **(condition_values or {}),
        }
        if source_modified_at is not None:
            assignments.append("source_modified_at = :source_modified_at")
            values[":source_modified_at"] = {"S": _iso(_aware(source_modified_at, "source_modified_at"))}
        if attributes:
            assignments.append("attributes = :attributes")
            values[":attributes"] = {"M": {name: {"S": value} for name, value in attributes.items()}}
        return {
            "TableName": self._table_name,
            "Key": _key(sf_id, kind),
            "UpdateExpression": f"SET {', '.join(assignments)} REMOVE claim_owner, lease_expires_at",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }


# ---------------------------------------------------------------------------- error translation


class _ConditionFailed(Exception):
    def __init__(self, current: CrosswalkEntry | None) -> None:
        super().__init__("conditional check failed")
        self.current = current


def is_transient_client_error(error: ClientError) -> bool:
    """True for throttling and server-side (5xx) DynamoDB errors."""
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in _TRANSIENT_ERROR_CODES or status >= 500


@contextmanager
def _translated_errors() -> Iterator[None]:
    """Turn botocore errors into crosswalk errors: condition failures, transient and permanent ones."""
    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ConditionalCheckFailedException":
            item = error.response.get("Item")
            current = _entry_from_item(item) if item else None  # type: ignore[arg-type]
            raise _ConditionFailed(current) from None
        message = error.response.get("Error", {}).get("Message", str(error))
        if is_transient_client_error(error):
            raise CrosswalkTransientError(f"DynamoDB {code}: {message}") from error
        raise CrosswalkPermanentError(f"DynamoDB {code}: {message}") from error
    except (ConnectionError, HTTPClientError) as error:
        raise CrosswalkTransientError(f"DynamoDB unreachable: {error}") from error
    except BotoCoreError as error:
        raise CrosswalkPermanentError(f"DynamoDB client error: {error}") from error


# ---------------------------------------------------------------------------- item encoding


def _key(sf_id: str, kind: CrosswalkKind) -> dict[str, AttributeValueTypeDef]:
    if not SALESFORCE_ID.match(sf_id):
        raise ValueError(f"not an 18-character Salesforce id: {sf_id!r}")
    return {"pk": {"S": f"SF#{sf_id}"}, "sk": {"S": CrosswalkKind(kind).value}}


def _intacct_key(kind: CrosswalkKind, intacct_id: str) -> str:
    return f"{CrosswalkKind(kind).value}#{intacct_id}"


def _entry_from_item(item: Mapping[str, Any]) -> CrosswalkEntry:
    def text(name: str) -> str | None:
        value = item.get(name)
        return str(value["S"]) if value and "S" in value else None

    lease = item.get("lease_expires_at")
    attempt = item.get("attempt")
    source_modified_at = text("source_modified_at")
    refused_source_modified_at = text("refused_source_modified_at")
    attributes = item.get("attributes", {}).get("M", {})
    return CrosswalkEntry(
        sf_id=str(item["pk"]["S"]).removeprefix("SF#"),
        kind=CrosswalkKind(str(item["sk"]["S"])),
        status=CrosswalkStatus(str(item["status"]["S"])),
        updated_at=_from_iso(str(item["updated_at"]["S"])),
        intacct_id=text("intacct_id"),
        claim_owner=text("claim_owner"),
        lease_expires_at=_from_epoch(str(lease["N"])) if lease and "N" in lease else None,
        source_modified_at=_from_iso(source_modified_at) if source_modified_at else None,
        attempt=int(attempt["N"]) if attempt and "N" in attempt else 0,
        attributes={str(name): str(value.get("S", "")) for name, value in attributes.items()},
        refused_source_modified_at=(
            _from_iso(refused_source_modified_at) if refused_source_modified_at else None
        ),
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment


def _iso(moment: datetime) -> str:
    """UTC, millisecond precision, fixed width: these strings sort in time order."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _epoch_text(seconds: float) -> str:
    return str(Decimal(seconds).quantize(Decimal("0.001")))


def _from_epoch(text: str) -> datetime:
    return datetime.fromtimestamp(float(text), tz=UTC)


def _require_text(value: str, name: str) -> None:
    if not value:
        raise ValueError(f"{name} must not be empty")
