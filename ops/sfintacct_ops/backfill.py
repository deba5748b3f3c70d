"""`sfintacct backfill accounts|opportunities`: sync records that were never notified.

The records come from one SOQL query through the product's Salesforce client (which follows
nextRecordsUrl page after page): won Opportunities (IsWon = true), or every Account, narrowed by
`--since` (LastModifiedDate >=) and `--where` (any SOQL condition). Each becomes one SyncRequest, sent
with SendMessageBatch (10 per call) at no more than `rate` messages a second. The ids sent are appended
to a checkpoint file after every batch, so a run that was interrupted sends only the rest when run
again. Very large sets would be read with Bulk API 2.0 (a query job whose CSV result is streamed);
that is not implemented: the REST query holds the ids in memory (about 20 bytes each).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from sfintacct.intake.work_queues import MAX_BATCH_ENTRIES, QueueMessage, SqsQueueSender
from sfintacct.salesforce_ids import to_case_safe_id
from sfintacct.sync_request import SyncObjectType
from sfintacct_ops.deployment import Deployment, default_state_dir
from sfintacct_ops.records import new_producer_id, sync_request

BackfillKind = Literal["accounts", "opportunities"]
OBJECT_TYPES: dict[str, SyncObjectType] = {"accounts": "Account", "opportunities": "Opportunity"}
DEFAULT_RATE = 10.0
CHECKPOINT_HEADER = "# sfintacct backfill checkpoint; query: "
PROGRESS_EVERY_SECONDS = 5.0


class BackfillError(Exception):
    """The backfill cannot start or go on (bad option, checkpoint of another query, send refused)."""


def default_checkpoint(kind: BackfillKind) -> Path:
    return default_state_dir() / f"backfill-{kind}.checkpoint"


def since_literal(text: str) -> str:
    """A SOQL datetime literal (UTC) from YYYY-MM-DD or an ISO 8601 date-time (naive means UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BackfillError(f"--since {text!r} is not a date (YYYY-MM-DD) or ISO 8601 date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def backfill_query(kind: BackfillKind, *, since: str | None = None, where: str | None = None) -> str:
    """The SOQL that finds the records: won deals or all Accounts, narrowed by --since and --where."""
    object_type = OBJECT_TYPES[kind]
    conditions = ["IsWon = true"] if object_type == "Opportunity" else []
    if since:
        conditions.append(f"LastModifiedDate >= {since_literal(since)}")
    if where and where.strip():
        conditions.append(f"({where.strip()})")
    clause = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"SELECT Id FROM {object_type}{clause} ORDER BY Id"  # noqa: S608 - SOQL the operator gives


class Checkpoint:
    """The ids already sent for one query: a text file, the query on its first line, then one id a line.

    Appended (and flushed to disk) after every batch the queue accepted, so an interruption at any point
    loses nothing but the batch in flight, which the next run sends again (the workers answer a record
    already synced with `already_synced`).
    """

    def __init__(self, path: Path, query: str) -> None:
        self.path = path
        self.query = query

    def load(self, *, fresh: bool = False) -> set[str]:
        if fresh or not self.path.exists():
            return set()
        lines = self.path.read_text(encoding="utf-8").splitlines()
        if not lines or lines[0] != CHECKPOINT_HEADER + self.query:
            recorded = lines[0].removeprefix(CHECKPOINT_HEADER) if lines else "(empty file)"
            raise BackfillError(
                f"the checkpoint {self.path} is of another query ({recorded}); give --fresh to start over "
                "or --checkpoint another file"
            )
        return {line.strip() for line in lines[1:] if line.strip()}

    def start(self, *, fresh: bool) -> None:
        if fresh or not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(CHECKPOINT_HEADER + self.query + "\n", encoding="utf-8")

    def add(self, record_ids: Sequence[str]) -> None:
        with self.path.open("a", encoding="utf-8") as file:
            file.write("".join(f"{record_id}\n" for record_id in record_ids))
            file.flush()
            os.fsync(file.fileno())


@dataclass
class BackfillResult:
    object_type: str
    query: str
    found: int
    already_sent: int
    to_send: int
    sent: int = 0
    dry_run: bool = False
    checkpoint: str | None = None
    interrupted: bool = False
    error: str | None = None
    elapsed_seconds: float = 0.0
    records: list[str] = field(default_factory=list)  # the ids to send (dry run) or sent

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def backfill(
    deployment: Deployment,
    kind: BackfillKind,
    *,
    since: str | None = None,
    where: str | None = None,
    dry_run: bool = False,
    rate: float = DEFAULT_RATE,
    checkpoint_path: Path | None = None,
    fresh: bool = False,
    limit: int | None = None,
    progress: TextIO | None = sys.stderr,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> BackfillResult:
    """Find the records and enqueue one SyncRequest each (see the module doc)."""
    if rate <= 0:
        raise BackfillError("--rate must be a positive number of messages a second")
    query = backfill_query(kind, since=since, where=where)
    checkpoint = Checkpoint(checkpoint_path or default_checkpoint(kind), query)
    already = checkpoint.load(fresh=fresh)
    found = [to_case_safe_id(str(row["Id"])) for row in deployment.salesforce_client().query(query)]
    pending = [record_id for record_id in dict.fromkeys(found) if record_id not in already]
    if limit is not None:
        pending = pending[: max(0, limit)]
    result = BackfillResult(
        object_type=OBJECT_TYPES[kind],
        query=query,
        found=len(found),
        already_sent=len(already.intersection(found)),
        to_send=len(pending),
        dry_run=dry_run,
        checkpoint=None if dry_run else str(checkpoint.path),
    )
    if dry_run:
        result.records = pending
        return result
    checkpoint.start(fresh=fresh)
    org_id = deployment.org_id()
    queue_url = deployment.work_queue(OBJECT_TYPES[kind])
    sender = SqsQueueSender(deployment.sqs)
    batch_size = max(1, min(MAX_BATCH_ENTRIES, int(rate)))
    started = clock()
    last_progress = started
    try:
        for start in range(0, len(pending), batch_size):
            batch = pending[start : start + batch_size]
            # At most `rate` a second: the next batch goes when the ones sent so far have had their time.
            wait = started + result.sent / rate - clock()
            if wait > 0:
                sleep(wait)
            messages = [
                QueueMessage.for_request(sync_request(org_id, record_id, new_producer_id("backfill")))
                for record_id in batch
            ]
            sender.send_batch(queue_url, messages)
            checkpoint.add(batch)
            result.sent += len(batch)
            result.records.extend(batch)
            now = clock()
            if progress is not None and (progress.isatty() or now - last_progress >= PROGRESS_EVERY_SECONDS):
                _progress(progress, result, now - started)
                last_progress = now
    except KeyboardInterrupt:
        result.interrupted = True
    except Exception as error:
        result.error = f"{type(error).__name__}: {error}"
    result.elapsed_seconds = round(clock() - started, 2)
    if progress is not None and result.to_send:
        _progress(progress, result, result.elapsed_seconds, final=True)
    return result


def _progress(stream: TextIO, result: BackfillResult, elapsed: float, *, final: bool = False) -> None:
    speed = result.sent / elapsed if elapsed > 0 else 0.0
    line = (
        f"sent {result.sent}/{result.to_send} {result.object_type} requests"
        f" ({result.already_sent} sent by an earlier run), {speed:.1f}/s, {elapsed:.1f} s"
    )
    if stream.isatty():
        stream.write(f"\r{line}" + ("\n" if final else ""))
    else:
        stream.write(line + "\n")
    stream.flush()
