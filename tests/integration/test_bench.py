"""`make bench` with two deals per scenario: it runs, its JSON line has every figure, the targets pass.

The benchmark starts a local stack of its own, so it runs in a subprocess (the intake it measures
runs in that process, with its environment).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
PER_OPPORTUNITY_FIGURES = {
    "salesforce_reads",
    "salesforce_writes",
    "intacct_requests",
    "intacct_requests_without_log_in",
    "dynamodb_operations",
    "worker_cpu_ms",
}


def run_bench(opportunities: int) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(["layers/sync", "ops", "."])}
    completed = subprocess.run(
        [sys.executable, "-m", "sandbox.bench", "--opportunities", str(opportunities), "--invoices", "100"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    assert lines, f"no output; stderr:\n{completed.stderr}"
    document: dict[str, Any] = json.loads(lines[-1])
    return completed, document


def test_the_benchmark_reports_every_figure_per_opportunity_and_meets_its_targets() -> None:
    completed, document = run_bench(2)

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert document["passed"] is True
    assert document["opportunities"] == 2
    assert set(document["scenarios"]) == {"customer_synced", "new_customer"}
    for name, scenario in document["scenarios"].items():
        assert scenario["problems"] == [], name
        assert set(scenario["per_opportunity"]) == PER_OPPORTUNITY_FIGURES, name
        assert scenario["per_opportunity"]["dynamodb_operations"] > 0, name
        assert scenario["per_opportunity"]["worker_cpu_ms"] > 0, name
        assert scenario["intake_cpu_ms_per_notification"] > 0, name
        # The idempotency layer's own boto3 client is counted too.
        assert any("IdempotencyTable.PutItem" in call for call in scenario["totals"]["dynamodb_by_call"])
    assert len(document["targets"]) == 4
    assert all(target["passed"] for target in document["targets"])
    assert set(document["cold_import_ms"]) == {
        "intake",
        "customer_upsert",
        "opportunity_to_order",
        "finance_status",
    }
    finance = document["finance"]  # 100 invoices of 25 customers: 125 records, one Salesforce call
    assert (finance["invoices"], finance["accounts"], finance["written"]) == (100, 25, 125)
    assert finance["salesforce_write_calls"] == finance["salesforce_write_calls_target"] == 1
    assert finance["intacct_requests"] == finance["intacct_pages"] + finance["intacct_link_queries"] == 2 + 1
    assert finance["second_run_salesforce_writes"] == 0
    assert all(milliseconds > 0 for milliseconds in document["cold_import_ms"].values())
    assert "PASS" in completed.stdout
    assert "FAIL" not in completed.stdout
