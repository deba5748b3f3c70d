"""The daily API request allowance (Sforce-Limit-Info) and request counts by kind for the admin API."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sandbox.salesforce.errors import ApiError, api_error

REQUEST_KINDS = ("token", "query", "sobject_read", "sobject_write", "composite", "other")


class ApiAllowance:
    """Counts API requests against the org's daily allowance (thread-safe)."""

    def __init__(self, allowance: int) -> None:
        self.allowance = allowance
        self._used = 0
        self._lock = threading.Lock()

    def consume(self) -> None:
        """Count one request, or raise REQUEST_LIMIT_EXCEEDED (403) when the allowance is spent."""
        with self._lock:
            if self._used >= self.allowance:
                raise limit_exceeded()
            self._used += 1

    def spend_all(self) -> None:
        with self._lock:
            self._used = max(self._used, self.allowance)

    def reset(self) -> None:
        with self._lock:
            self._used = 0

    @property
    def used(self) -> int:
        with self._lock:
            return self._used

    def header(self) -> str:
        """The Sforce-Limit-Info header value."""
        with self._lock:
            return f"api-usage={self._used}/{self.allowance}"


def limit_exceeded() -> ApiError:
    return api_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


@dataclass
class RequestCounts:
    """Protocol requests received, in total and by kind (thread-safe)."""

    requests: int = 0
    by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REQUEST_KINDS, 0))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, kind: str) -> None:
        with self._lock:
            self.requests += 1
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.by_kind = dict.fromkeys(REQUEST_KINDS, 0)

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self.requests, "by_kind": dict(self.by_kind)}
