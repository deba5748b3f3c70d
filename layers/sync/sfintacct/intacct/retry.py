"""Retrying transient failures with jittered exponential backoff inside a time budget.

    attempt = policy.start()
    while True:
        try:
            return call()
        except TransientIntacctError as error:
            attempt.backoff_or_raise(error)   # sleeps, or re-raises when out of attempts or time

Sleep, clock and randomness are injected so tests run instantly and deterministically.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sfintacct.intacct.errors import TransientIntacctError
from sfintacct.intacct.settings import IntacctSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """At most `max_attempts` attempts, never sleeping past `budget_seconds` after the first one."""

    max_attempts: int
    budget_seconds: float
    base_delay_seconds: float
    max_delay_seconds: float
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    random_fraction: Callable[[], float] = field(default=random.random, repr=False)

    @classmethod
    def from_settings(
        cls,
        settings: IntacctSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        random_fraction: Callable[[], float] = random.random,
    ) -> RetryPolicy:
        return cls(
            max_attempts=settings.max_attempts,
            budget_seconds=settings.retry_budget_seconds,
            base_delay_seconds=settings.retry_base_delay_seconds,
            max_delay_seconds=settings.retry_max_delay_seconds,
            sleep=sleep,
            clock=clock,
            random_fraction=random_fraction,
        )

    def start(self) -> RetryState:
        """Begin counting attempts and time for one logical call."""
        return RetryState(self, started_at=self.clock())

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        """Equal-jitter backoff for the n-th retry (1-based), at least the server's Retry-After."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * float(2 ** (retry_number - 1)))
        delay: float = ceiling / 2 + self.random_fraction() * ceiling / 2
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay


@dataclass
class RetryState:
    """Attempts and elapsed time of one logical call."""

    policy: RetryPolicy
    started_at: float
    failed_attempts: int = 0

    def elapsed(self) -> float:
        return self.policy.clock() - self.started_at

    def backoff_or_raise(self, error: TransientIntacctError) -> None:
        """Sleep before the next attempt, or re-raise `error` when attempts or time are spent."""
        self.failed_attempts += 1
        policy = self.policy
        if self.failed_attempts >= policy.max_attempts:
            logger.warning(
                "Intacct call failed after %d attempts, giving up: %s", self.failed_attempts, error.message
            )
            raise error
        delay = policy.delay(self.failed_attempts, error.retry_after)
        if self.elapsed() + delay > policy.budget_seconds:
            logger.warning(
                "Intacct call failed; the retry budget of %.1fs is spent after %d attempts: %s",
                policy.budget_seconds,
                self.failed_attempts,
                error.message,
            )
            raise error
        logger.info(
            "Intacct call failed transiently (attempt %d), retrying in %.2fs: %s",
            self.failed_attempts,
            delay,
            error.message,
        )
        policy.sleep(delay)
