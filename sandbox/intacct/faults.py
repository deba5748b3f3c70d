"""Runtime fault injection: latency, slow commits, 5xx, 429, 524 after commit, dropped connections, off-line.

The state is switched by the admin API (`POST /admin/faults`) and consulted by the server before and after
each gateway request. All methods expect the caller to hold the sandbox lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

DEFAULT_FAIL_STATUS = 503


class FaultConfigError(ValueError):
    """The admin API was sent a fault description it cannot use."""


class PreFault(Enum):
    """What to answer instead of executing a gateway request."""

    OFFLINE = "offline"
    FAIL = "fail"
    RATE_LIMIT = "rate_limit"


class PostFault(Enum):
    """What to do with a gateway request that was executed and committed."""

    TIMEOUT_524 = "timeout_524"
    DROP_CONNECTION = "drop_connection"


@dataclass
class CountedFault:
    """A fault that applies to the next `count` requests that contain `function` (any request if None)."""

    count: int = 0
    function: str | None = None

    def matches(self, function_names: set[str]) -> bool:
        return self.count > 0 and (self.function is None or self.function in function_names)

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "function": self.function}


@dataclass
class SlowFault(CountedFault):
    """The next `count` requests containing `function` wait `delay_ms` before they run and commit."""

    delay_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "delay_ms": self.delay_ms}


@dataclass
class FaultState:
    """The faults currently switched on."""

    latency_ms: int = 0
    fail_next_count: int = 0
    fail_next_status: int = DEFAULT_FAIL_STATUS
    rate_limit_next: int = 0
    timeout_after_commit_next: CountedFault = field(default_factory=CountedFault)
    drop_connection_next: CountedFault = field(default_factory=CountedFault)
    slow_next: SlowFault = field(default_factory=SlowFault)
    offline: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "fail_next": {"count": self.fail_next_count, "status": self.fail_next_status},
            "rate_limit_next": self.rate_limit_next,
            "timeout_after_commit_next": self.timeout_after_commit_next.to_json(),
            "drop_connection_next": self.drop_connection_next.to_json(),
            "slow_next": self.slow_next.to_json(),
            "offline": self.offline,
        }

    def take_pre_fault(self) -> tuple[PreFault, int] | None:
        """The fault that replaces this request (consuming one use of it), with its HTTP status."""
        if self.offline:
            return PreFault.OFFLINE, 503
        if self.fail_next_count > 0:
            self.fail_next_count -= 1
            return PreFault.FAIL, self.fail_next_status
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            return PreFault.RATE_LIMIT, 429
        return None

    def take_delay_ms(self, function_names: set[str]) -> int:
        """How long this request waits before it runs: the latency, plus a slow_next delay (one use)."""
        if self.slow_next.matches(function_names):
            self.slow_next.count -= 1
            return self.latency_ms + self.slow_next.delay_ms
        return self.latency_ms

    def take_post_fault(self, function_names: set[str]) -> PostFault | None:
        """The fault applied after a request containing `function_names` was committed (consumes one use)."""
        if self.drop_connection_next.matches(function_names):
            self.drop_connection_next.count -= 1
            return PostFault.DROP_CONNECTION
        if self.timeout_after_commit_next.matches(function_names):
            self.timeout_after_commit_next.count -= 1
            return PostFault.TIMEOUT_524
        return None


KNOWN_FAULT_KEYS = {
    "latency_ms",
    "fail_next",
    "rate_limit_next",
    "timeout_after_commit_next",
    "drop_connection_next",
    "slow_next",
    "offline",
    "expire_sessions",
}


def apply_fault_update(state: FaultState, update: dict[str, Any]) -> bool:
    """Validate `update` (a subset of the admin fault keys) and apply it to `state`.

    Returns True when the one-shot `expire_sessions` was requested (the caller expires the sessions).
    Nothing is changed when the update is invalid.
    """
    unknown = set(update) - KNOWN_FAULT_KEYS
    if unknown:
        raise FaultConfigError(f"unknown fault keys: {sorted(unknown)}")
    latency = _non_negative_int(update.get("latency_ms", state.latency_ms), "latency_ms")
    fail_count, fail_status = state.fail_next_count, state.fail_next_status
    if "fail_next" in update:
        fail_next = _object(update["fail_next"], "fail_next")
        fail_count = _non_negative_int(fail_next.get("count", 1), "fail_next.count")
        fail_status = _non_negative_int(fail_next.get("status", DEFAULT_FAIL_STATUS), "fail_next.status")
        if not 500 <= fail_status <= 599:
            raise FaultConfigError("fail_next.status must be a 5xx status")
    rate_limit = _non_negative_int(update.get("rate_limit_next", state.rate_limit_next), "rate_limit_next")
    timeout_fault = state.timeout_after_commit_next
    if "timeout_after_commit_next" in update:
        timeout_fault = _counted_fault(update["timeout_after_commit_next"], "timeout_after_commit_next")
    drop_fault = state.drop_connection_next
    if "drop_connection_next" in update:
        drop_fault = _counted_fault(update["drop_connection_next"], "drop_connection_next")
    slow_fault = state.slow_next
    if "slow_next" in update:
        description = _object(update["slow_next"], "slow_next")
        delay_ms = _non_negative_int(description.get("delay_ms", 0), "slow_next.delay_ms")
        counted = _counted_fault({k: v for k, v in description.items() if k != "delay_ms"}, "slow_next")
        slow_fault = SlowFault(count=counted.count, function=counted.function, delay_ms=delay_ms)
    offline = update.get("offline", state.offline)
    if not isinstance(offline, bool):
        raise FaultConfigError("offline must be true or false")
    expire_sessions = update.get("expire_sessions", False)
    if not isinstance(expire_sessions, bool):
        raise FaultConfigError("expire_sessions must be true or false")

    state.latency_ms = latency
    state.fail_next_count, state.fail_next_status = fail_count, fail_status
    state.rate_limit_next = rate_limit
    state.timeout_after_commit_next = timeout_fault
    state.drop_connection_next = drop_fault
    state.slow_next = slow_fault
    state.offline = offline
    return expire_sessions


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FaultConfigError(f"{name} must be an object")
    return value


def _non_negative_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FaultConfigError(f"{name} must be a non-negative integer")
    return value


def _counted_fault(value: Any, name: str) -> CountedFault:
    if isinstance(value, int) and not isinstance(value, bool):
        return CountedFault(count=_non_negative_int(value, f"{name}.count"))
    description = _object(value, name)
    unknown = set(description) - {"count", "function"}
    if unknown:
        raise FaultConfigError(f"unknown keys in {name}: {sorted(unknown)}")
    count = _non_negative_int(description.get("count", 1), f"{name}.count")
    function = description.get("function")
    if function is not None and (not isinstance(function, str) or not function):
        raise FaultConfigError(f"{name}.function must be a function name or null")
    return CountedFault(count=count, function=function)
