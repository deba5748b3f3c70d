"""Scheduled functions of the local stack: a template function with a Schedule event runs in an execution
environment of its own, one invocation at a time (its reserved concurrency of 1), when asked
(`run_now()`, what tests and the demo use) and, if the stack is started with a schedule period, every
that many seconds (the template's rate would be minutes; locally the period is given, not parsed).

Each invocation gets the event EventBridge sends a scheduled rule's target ("Scheduled Event", source
aws.events) and a Lambda context with the function's timeout. A run that overlaps the next tick is not
doubled: the tick waits, as the reserved concurrency would make EventBridge's invocation wait (throttled
and retried).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sandbox.lambda_runtime import (
    EnvironmentStartError,
    ExecutionEnvironment,
    FunctionRuntime,
    InvocationResult,
)

logger = logging.getLogger(__name__)


def scheduled_event(function_arn: str, region: str, account: str) -> dict[str, Any]:
    """The event of an EventBridge scheduled rule (detail-type "Scheduled Event", an empty detail)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account}:rule/{function_arn.rsplit(':', 1)[-1]}-schedule"],
        "detail": {},
    }


class ScheduledFunction:
    """One scheduled function: its execution environment, run now or every `period_seconds`."""

    def __init__(
        self,
        runtime: FunctionRuntime,
        *,
        timeout_seconds: int,
        region: str,
        account: str = "123456789012",
        period_seconds: float | None = None,
    ) -> None:
        self.runtime = runtime
        self.timeout_seconds = timeout_seconds
        self.region = region
        self.account = account
        self.period_seconds = period_seconds
        self.results: list[InvocationResult] = []
        self._environment = ExecutionEnvironment(runtime, 0)
        self._lock = threading.Lock()  # one invocation at a time
        self._stopping = threading.Event()
        self._timer: threading.Thread | None = None

    @property
    def function_name(self) -> str:
        return self.runtime.function_name

    def start(self) -> None:
        if self.period_seconds:
            self._timer = threading.Thread(
                target=self._tick, name=f"{self.function_name}-schedule", daemon=True
            )
            self._timer.start()

    def run_now(self) -> InvocationResult:
        """Invoke the function once (waiting for a run in progress to end first)."""
        with self._lock:
            if not self._environment.is_alive():
                self._environment.start()  # a cold start; EnvironmentStartError if init fails
            arn = f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name}"
            deadline = time.time() + self.timeout_seconds
            context = {
                "function_name": self.function_name,
                "invoked_function_arn": arn,
                "memory_limit_in_mb": 512,
                "aws_request_id": str(uuid.uuid4()),
                "log_group_name": f"/aws/lambda/{self.function_name}",
                "log_stream_name": f"{time.strftime('%Y/%m/%d', time.gmtime())}/[$LATEST]{uuid.uuid4().hex}",
                "deadline_ms": int(deadline * 1000),
            }
            result = self._environment.invoke(
                scheduled_event(arn, self.region, self.account), context, deadline
            )
            self.results.append(result)
            return result

    def stop(self) -> None:
        self._stopping.set()
        if self._timer is not None:
            self._timer.join(timeout=self.timeout_seconds + 5)
        with self._lock:
            self._environment.stop()

    def _tick(self) -> None:
        assert self.period_seconds is not None
        while not self._stopping.wait(self.period_seconds):
            try:
                result = self.run_now()
            except EnvironmentStartError as error:
                logger.error("%s: the execution environment cannot start: %s", self.function_name, error)
                continue
            if result.status != "returned":
                logger.error("%s: scheduled run %s: %s", self.function_name, result.status, result.error)
