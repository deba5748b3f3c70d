"""Crash plans: kill a local worker process for real at a step of the sync, like a Lambda that dies there.

The stack keeps the plan in a JSON file in its state dir (`crash-plan.json`):

    {"planned": [{"id": "...", "function": "OpportunityToOrderFunction", "step": "after_write_back",
                  "record_id": "006..." or null}],
     "done":    [{...the entry..., "killed_record_id": "006...", "pid": 1234, "at": 1700000000.0}]}

Each worker process (sandbox.lambda_runtime) replaces `SyncService.checkpoint` on the class with a hook
that reads the plan at every checkpoint. When an entry names its function and the step reached (and the
record, or no record: "the next record to reach this step"), the process moves the entry to "done" and
kills itself with SIGKILL: nothing unwinds, no failure path runs, nothing is logged or deleted, exactly as
when Lambda's execution environment dies. An entry is consumed exactly once, even when several worker
processes reach the step together: every change to the file happens under an exclusive flock of
`crash-plan.lock` and is written atomically (temporary file + rename).

The product code knows nothing of this: SyncService.checkpoint is a no-op there.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PLAN_FILE_NAME = "crash-plan.json"
WAIT_INTERVAL_SECONDS = 0.1


@dataclass(frozen=True)
class Crash:
    """A kill that happened: which process, at which step, of which record."""

    id: str
    function: str
    step: str
    record_id: str  # the record the process was working on when it died
    pid: int
    at: float  # epoch seconds


class PlannedCrash:
    """One entry of the plan: `happened()`, `wait(timeout)`, `crash` once it happened, `cancel()`."""

    def __init__(self, plan: CrashPlan, entry_id: str, function: str, step: str, record_id: str | None):
        self.plan = plan
        self.id = entry_id
        self.function = function
        self.step = step
        self.record_id = record_id

    @property
    def crash(self) -> Crash | None:
        """The kill, once it happened."""
        for crash in self.plan.crashes():
            if crash.id == self.id:
                return crash
        return None

    def happened(self) -> bool:
        return self.crash is not None

    def wait(self, timeout: float) -> bool:
        """Wait until a worker process was killed for this entry; False if not within `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.happened():
            if time.monotonic() >= deadline:
                return False
            time.sleep(WAIT_INTERVAL_SECONDS)
        return True

    def cancel(self) -> bool:
        """Take the entry out of the plan if no process consumed it yet; True if it was still planned."""
        return self.plan.cancel(self.id)

    def __repr__(self) -> str:
        record = self.record_id or "the next record"
        return f"PlannedCrash({self.function} at {self.step} for {record})"


class CrashPlan:
    """The plan file of one stack; the stack adds entries, worker processes consume them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_suffix(".lock")

    def reset(self) -> None:
        """An empty plan (no entries, no kills)."""
        with self._locked():
            self._write({"planned": [], "done": []})

    def add(self, function: str, step: str, record_id: str | None = None) -> PlannedCrash:
        entry_id = uuid.uuid4().hex
        entry = {"id": entry_id, "function": function, "step": step, "record_id": record_id}
        with self._locked():
            content = self._read()
            content["planned"].append(entry)
            self._write(content)
        return PlannedCrash(self, entry_id, function, step, record_id)

    def cancel(self, entry_id: str) -> bool:
        with self._locked():
            content = self._read()
            planned = [entry for entry in content["planned"] if entry["id"] != entry_id]
            if len(planned) == len(content["planned"]):
                return False
            content["planned"] = planned
            self._write(content)
        return True

    def clear(self) -> None:
        """Forget every planned entry (the kills done stay on record)."""
        with self._locked():
            content = self._read()
            content["planned"] = []
            self._write(content)

    def planned(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self._read()["planned"]
        return entries

    def crashes(self) -> list[Crash]:
        """Every kill done so far, oldest first."""
        return [
            Crash(
                id=str(done["id"]),
                function=str(done["function"]),
                step=str(done["step"]),
                record_id=str(done["killed_record_id"]),
                pid=int(done["pid"]),
                at=float(done["at"]),
            )
            for done in self._read()["done"]
        ]

    # ------------------------------------------------------------------ in the worker process

    def take(self, function: str, step: str, record_id: str) -> dict[str, Any] | None:
        """Consume the first entry for this function, step and record (or any record); None if none.

        Reading without the lock first keeps the common case (nothing planned) cheap: the file is only
        ever replaced whole, so a reader never sees half of it.
        """
        if not any(_matches(entry, function, step, record_id) for entry in self.planned()):
            return None
        with self._locked():
            content = self._read()
            for entry in content["planned"]:
                if _matches(entry, function, step, record_id):
                    content["planned"].remove(entry)
                    done = {**entry, "killed_record_id": record_id, "pid": os.getpid(), "at": time.time()}
                    content["done"].append(done)
                    self._write(content)
                    return done
        return None

    # ------------------------------------------------------------------ the file

    def _read(self) -> dict[str, Any]:
        try:
            content: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"planned": [], "done": []}
        content.setdefault("planned", [])
        content.setdefault("done", [])
        return content

    def _write(self, content: dict[str, Any]) -> None:
        descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(content, handle, indent=1)
            Path(temporary).replace(self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                Path(temporary).unlink()
            raise

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _matches(entry: dict[str, Any], function: str, step: str, record_id: str) -> bool:
    return (
        entry.get("function") == function
        and entry.get("step") == step
        and entry.get("record_id") in (None, record_id)
    )


def install_checkpoint_hook(plan_path: Path, function: str) -> bool:
    """In a worker process: make SyncService.checkpoint kill this process where the plan says.

    Returns False when the function's code has no SyncService (nothing to hook).
    """
    try:
        from sfintacct.sync.service import SyncService  # noqa: PLC0415 - only worker processes hook it
    except ImportError:
        return False
    plan = CrashPlan(plan_path)

    def checkpoint(self: SyncService, step: str, record_id: str) -> None:
        if plan.take(function, step, record_id) is None:
            return
        print(
            json.dumps(
                {
                    "type": "sandbox.crashPlan",
                    "message": f"crash plan: SIGKILL to this process (pid {os.getpid()}) "
                    f"at {step} of {record_id}",
                }
            ),
            file=sys.stderr,
            flush=True,
        )
        os.kill(os.getpid(), signal.SIGKILL)

    SyncService.checkpoint = checkpoint  # type: ignore[method-assign]
    return True
