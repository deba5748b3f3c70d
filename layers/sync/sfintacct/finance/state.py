"""What the finance run remembers between runs (DynamoDB, the FinanceStatusTable, key `sf_id`):

- per Salesforce record, the finance values last written there (so a run writes only what changed);
- one item `#run`: the watermark (the newest WHENMODIFIED of the invoices read by the last run that
  finished, in Intacct's own text and zone) and the day open invoices were last re-aged.

Values are kept as JSON text, so what is read back compares equal to what was written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from sfintacct.finance.invoices import format_timestamp, parse_timestamp
from sfintacct.salesforce.models import FieldValue

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RUN_KEY = "#run"
BATCH_GET_LIMIT = 100


class FinanceStateError(Exception):
    """The finance state table could not be read or written (transient: the next run tries again)."""


@dataclass(frozen=True)
class RunState:
    watermark: datetime | None = None
    aged_on: date | None = None


class FinanceState:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    def run_state(self) -> RunState:
        item = self._call(
            lambda: self._client.get_item(
                TableName=self._table_name, Key={"sf_id": {"S": RUN_KEY}}, ConsistentRead=True
            )
        ).get("Item", {})
        watermark = parse_timestamp(item["watermark"]["S"]) if "watermark" in item else None
        aged_on = date.fromisoformat(item["aged_on"]["S"]) if "aged_on" in item else None
        return RunState(watermark=watermark, aged_on=aged_on)

    def save_run_state(self, state: RunState) -> None:
        item: dict[str, Any] = {"sf_id": {"S": RUN_KEY}, "updated_at": {"S": _now()}}
        if state.watermark is not None:
            item["watermark"] = {"S": format_timestamp(state.watermark)}
        if state.aged_on is not None:
            item["aged_on"] = {"S": state.aged_on.isoformat()}
        self._call(lambda: self._client.put_item(TableName=self._table_name, Item=item))

    def written(self, record_ids: Sequence[str]) -> dict[str, dict[str, FieldValue]]:
        """The values last written on each record (records never written are absent)."""
        found: dict[str, dict[str, FieldValue]] = {}
        unique = list(dict.fromkeys(record_ids))
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            keys: list[Any] = [
                {"sf_id": {"S": record_id}} for record_id in unique[start : start + BATCH_GET_LIMIT]
            ]
            while keys:
                answer = self._call(
                    lambda keys=keys: self._client.batch_get_item(
                        RequestItems={self._table_name: {"Keys": keys, "ConsistentRead": True}}
                    )
                )
                for item in answer.get("Responses", {}).get(self._table_name, []):
                    found[item["sf_id"]["S"]] = json.loads(item["values"]["S"])
                keys = list(answer.get("UnprocessedKeys", {}).get(self._table_name, {}).get("Keys", []))
        return found

    def remember(self, record_id: str, values: Mapping[str, FieldValue]) -> None:
        """The values now on the record (merged over what was written before)."""
        self._call(
            lambda: self._client.put_item(
                TableName=self._table_name,
                Item={
                    "sf_id": {"S": record_id},
                    "values": {"S": json.dumps(dict(values), sort_keys=True)},
                    "updated_at": {"S": _now()},
                },
            )
        )

    def _call(self, operation: Any) -> Any:
        try:
            return operation()
        except (BotoCoreError, ClientError) as error:
            raise FinanceStateError(f"the finance state table {self._table_name}: {error}") from error


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
