"""Faults switched on through the admin API: latency, the next N requests failing with a status."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


class FaultConfigError(ValueError):
    """A fault update the admin API refuses."""


@dataclass(frozen=True)
class FaultActions:
    """One-shot actions a fault update asks for."""

    expire_tokens: bool = False
    spend_api_allowance: bool = False


class Faults:
    """The current faults (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latency_ms = 0
        self.fail_count = 0
        self.fail_status = 500
        self.fail_path = ""  # only requests whose path contains this fail ("" = every request)

    def clear(self) -> None:
        with self._lock:
            self.latency_ms = 0
            self.fail_count = 0
            self.fail_status = 500
            self.fail_path = ""

    def update(self, update: dict[str, Any]) -> FaultActions:
        """Apply {"latency_ms", "fail_next": {"count", "status", "path"}, "expire_tokens",
        "spend_api_allowance"}."""
        known = {"latency_ms", "fail_next", "expire_tokens", "spend_api_allowance"}
        unknown = set(update) - known
        if unknown:
            raise FaultConfigError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        latency = update.get("latency_ms")
        if latency is not None and (not isinstance(latency, int) or isinstance(latency, bool) or latency < 0):
            raise FaultConfigError("latency_ms must be a non-negative integer")
        fail_next = update.get("fail_next")
        count = status = None
        path = ""
        if fail_next is not None:
            if not isinstance(fail_next, dict):
                raise FaultConfigError('fail_next must be {"count": int, "status": int, "path": str}')
            count = fail_next.get("count", 1)
            status = fail_next.get("status", 500)
            path = fail_next.get("path", "")
            if not isinstance(path, str):
                raise FaultConfigError("fail_next.path must be text (part of the request path)")
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise FaultConfigError("fail_next.count must be a non-negative integer")
            if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
                raise FaultConfigError("fail_next.status must be an HTTP error status (400-599)")
        for flag in ("expire_tokens", "spend_api_allowance"):
            if flag in update and not isinstance(update[flag], bool):
                raise FaultConfigError(f"{flag} must be true or false")
        with self._lock:
            if latency is not None:
                self.latency_ms = latency
            if count is not None and status is not None:
                self.fail_count = count
                self.fail_status = status
                self.fail_path = path
        return FaultActions(
            expire_tokens=bool(update.get("expire_tokens")),
            spend_api_allowance=bool(update.get("spend_api_allowance")),
        )

    def take_failure(self, path: str) -> int | None:
        """The status to fail this request with, if a fail_next fault is pending for its path."""
        with self._lock:
            if self.fail_count <= 0 or self.fail_path not in path:
                return None
            self.fail_count -= 1
            return self.fail_status

    def latency_seconds(self) -> float:
        with self._lock:
            return self.latency_ms / 1000

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "latency_ms": self.latency_ms,
                "fail_next": {"count": self.fail_count, "status": self.fail_status, "path": self.fail_path},
            }
