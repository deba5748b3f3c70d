"""The sync log: every outcome of every request, queryable by Salesforce id (DynamoDB).

One item per outcome: pk `sf_id` (the Account or Opportunity id), sk `at` (ISO time + a short random
suffix so two outcomes in the same millisecond both stay), and the outcome's fields. Items expire
after the configured retention (TTL attribute `expires_at`). The Opportunity's entries also name its
Account, and vice versa, so "what happened to this deal" is one query.

The index `by-status` (pk `status`, sk `at`, every attribute projected) answers "what failed since T"
with a Query: `at` is UTC ISO text, so it sorts by time. Status and time are written with every
outcome anyway, so the index needs no attribute of its own and covers outcomes logged before it existed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from sfintacct.sync.outcome import SyncOutcome

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

DEFAULT_RETENTION_DAYS = 90
STATUS_INDEX = "by-status"


class SyncLogError(Exception):
    """The sync log could not be written or read (DynamoDB refused or was unreachable)."""


@dataclass(frozen=True)
class SyncLogEntry:
    sf_id: str
    at: datetime
    status: str
    reason: str
    object_type: str
    message: str
    producer_id: str
    source: str
    intacct_customer_id: str | None
    intacct_order_id: str | None
    account_id: str | None


class SyncLog:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._table_name = table_name
        self._retention = timedelta(days=retention_days)
        self._clock = clock

    def record(self, outcome: SyncOutcome, *, producer_id: str, source: str) -> None:
        """Append one outcome to the log of its Salesforce record."""
        now = self._clock().astimezone(UTC)  # one offset, so `at` sorts by time in the status index
        item: dict[str, AttributeValueTypeDef] = {
            "sf_id": {"S": outcome.salesforce_id},
            "at": {"S": f"{now.isoformat(timespec='milliseconds')}#{secrets.token_hex(3)}"},
            "status": {"S": outcome.status.value},
            "reason": {"S": outcome.reason.value},
            "object_type": {"S": outcome.object_type},
            "message": {"S": outcome.message},
            "producer_id": {"S": producer_id},
            "source": {"S": source},
            "expires_at": {"N": str(int((now + self._retention).timestamp()))},
        }
        for name in ("intacct_customer_id", "intacct_order_id", "account_id"):
            value = getattr(outcome, name)
            if value:
                item[name] = {"S": value}
        try:
            self._client.put_item(TableName=self._table_name, Item=item)
        except (ClientError, BotoCoreError) as error:
            raise SyncLogError(f"cannot write the sync log of {outcome.salesforce_id}: {error}") from error

    def history(self, sf_id: str) -> list[SyncLogEntry]:
        """Every logged outcome of a Salesforce record, oldest first."""
        entries: list[SyncLogEntry] = []
        arguments: dict[str, Any] = {
            "TableName": self._table_name,
            "KeyConditionExpression": "sf_id = :sf_id",
            "ExpressionAttributeValues": {":sf_id": {"S": sf_id}},
            "ConsistentRead": True,
        }
        try:
            while True:
                page = self._client.query(**arguments)
                entries.extend(_entry(item) for item in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    return entries
                arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as error:
            raise SyncLogError(f"cannot read the sync log of {sf_id}: {error}") from error

    def by_status(
        self, status: str, since: datetime, limit: int | None = None, *, page_size: int | None = None
    ) -> list[SyncLogEntry]:
        """The logged outcomes with this status (`failed`, `waiting`, ...) at or after `since`, newest
        first: at most `limit` of them (None: all). One Query of the status index per page; `page_size`
        items per page (None: DynamoDB's 1 MB pages)."""
        if since.tzinfo is None:
            raise ValueError("since must be an aware datetime (e.g. datetime(..., tzinfo=UTC))")
        if (limit is not None and limit < 1) or (page_size is not None and page_size < 1):
            raise ValueError("limit and page_size must be at least 1")
        entries: list[SyncLogEntry] = []
        arguments: dict[str, Any] = {
            "TableName": self._table_name,
            "IndexName": STATUS_INDEX,
            # both are DynamoDB reserved words
            "KeyConditionExpression": "#status = :status AND #at >= :since",
            "ExpressionAttributeNames": {"#status": "status", "#at": "at"},
            "ExpressionAttributeValues": {
                ":status": {"S": status},
                ":since": {"S": since.astimezone(UTC).isoformat(timespec="milliseconds")},
            },
            "ScanIndexForward": False,
        }
        try:
            while limit is None or len(entries) < limit:
                remaining = None if limit is None else limit - len(entries)
                sizes = [size for size in (page_size, remaining) if size is not None]
                if sizes:
                    arguments["Limit"] = min(sizes)
                page = self._client.query(**arguments)
                entries.extend(_entry(item) for item in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    break
                arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as error:
            raise SyncLogError(f"cannot read the {status} outcomes of the sync log: {error}") from error
        return entries if limit is None else entries[:limit]


def _entry(item: dict[str, Any]) -> SyncLogEntry:
    def text(name: str) -> str | None:
        value = item.get(name)
        return str(value["S"]) if value else None

    return SyncLogEntry(
        sf_id=text("sf_id") or "",
        at=datetime.fromisoformat((text("at") or "").split("#", 1)[0]),
        status=text("status") or "",
        reason=text("reason") or "",
        object_type=text("object_type") or "",
        message=text("message") or "",
        producer_id=text("producer_id") or "",
        source=text("source") or "",
        intacct_customer_id=text("intacct_customer_id"),
        intacct_order_id=text("intacct_order_id"),
        account_id=text("account_id"),
    )
