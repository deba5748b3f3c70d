"""Scheduled functions of the local stack (sandbox.schedules): a real execution environment process,
invoked with EventBridge's scheduled event, on demand and on a period, never two runs at once."""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from pathlib import Path

import pytest

from sandbox.lambda_runtime import FunctionRuntime
from sandbox.schedules import ScheduledFunction

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
HANDLER = """
import json, os, time

def lambda_handler(event, context):
    started = time.time()
    time.sleep(0.3)
    with open(os.environ["RUNS_FILE"], "a") as runs:
        runs.write(json.dumps({"start": started, "end": time.time(), "detail_type": event["detail-type"],
                               "source": event["source"], "function": context.function_name}) + "\\n")
    return {"ran": True}
"""


def scheduled(tmp_path: Path, period: float | None) -> ScheduledFunction:
    (tmp_path / "app.py").write_text(HANDLER, encoding="utf-8")
    runtime = FunctionRuntime(
        function_name="FinanceLike",
        code_dir=tmp_path,
        handler="app.lambda_handler",
        environment={
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO_ROOT),
            "RUNS_FILE": str(tmp_path / "runs.jsonl"),
        },
        log_dir=tmp_path / "logs",
    )
    return ScheduledFunction(runtime, timeout_seconds=10, region="us-east-1", period_seconds=period)


def runs(tmp_path: Path) -> list[dict[str, float | str]]:
    path = tmp_path / "runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_run_now_invokes_the_function_with_eventbridges_scheduled_event(tmp_path: Path) -> None:
    function = scheduled(tmp_path, period=None)
    try:
        result = function.run_now()
    finally:
        function.stop()

    assert (result.status, result.response) == ("returned", {"ran": True})
    [run] = runs(tmp_path)
    assert (run["detail_type"], run["source"], run["function"]) == (
        "Scheduled Event",
        "aws.events",
        "FinanceLike",
    )


def test_on_a_period_it_runs_again_and_again_but_never_twice_at_once(tmp_path: Path) -> None:
    function = scheduled(tmp_path, period=0.1)
    function.start()
    asked = threading.Thread(target=function.run_now)  # asked for while the schedule also runs it
    time.sleep(0.5)
    asked.start()
    time.sleep(1.5)
    asked.join(timeout=10)
    function.stop()

    done = sorted(runs(tmp_path), key=lambda run: float(run["start"]))
    assert len(done) >= 3
    for earlier, later in itertools.pairwise(done):
        assert float(later["start"]) >= float(earlier["end"])
