"""`sfintacct preflight` output and exit status, with the checks' results given (no stack needed)."""

from __future__ import annotations

import importlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT / "ops") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "ops"))
ops_cli = importlib.import_module("sfintacct_ops.cli")
ops_preflight = importlib.import_module("sfintacct_ops.preflight")
CheckResult = ops_preflight.CheckResult

PASSED = CheckResult("intacct_login", True, "sender S (control) and user U (login) signed in")
FAILED = CheckResult(
    "intacct_custom_fields", False, "no custom field CUSTOMER.SALESFORCE_ID", "create the custom field"
)
# What from_local needs of a stack.json; nothing is contacted until a check runs.
STACK_INFO = {
    "queues": {
        name: f"http://127.0.0.1:1/{name}"
        for name in (
            "CustomerUpsertQueue",
            "CustomerUpsertDeadLetterQueue",
            "OpportunityToOrderQueue",
            "OpportunityToOrderDeadLetterQueue",
        )
    },
    "tables": {name: name for name in ("CrosswalkTable", "SyncLogTable", "IdempotencyTable")},
    "secrets": {"intacct": "intacct-secret", "salesforce": "salesforce-secret"},
    "intacct": {"endpoint": "https://127.0.0.1:1/ia/xml/xmlgw.phtml"},
    "salesforce": {"api_version": "62.0", "org_id": "00D000000000001EAA"},
    "dynamodb_endpoint": "http://127.0.0.1:1",
    "sqs_endpoint": "http://127.0.0.1:1",
    "secretsmanager_endpoint": "http://127.0.0.1:1",
    "ca_file": "ca.pem",
}


def run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, results: list[Any], *arguments: str
) -> tuple[int, str]:
    stack_file = tmp_path / "stack.json"
    stack_file.write_text(json.dumps(STACK_INFO), encoding="utf-8")
    monkeypatch.setattr(ops_cli, "preflight", lambda deployment: results)
    out = io.StringIO()
    code = ops_cli.main(
        ["--local", str(stack_file), "preflight", *arguments], stdout=out, stderr=io.StringIO()
    )
    return code, out.getvalue()


def test_a_failed_check_prints_its_fix_and_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = run(tmp_path, monkeypatch, [PASSED, FAILED])
    assert code == 1
    lines = out.splitlines()
    assert lines[1] == "PASS  intacct_login          sender S (control) and user U (login) signed in"
    assert lines[2] == "FAIL  intacct_custom_fields  no custom field CUSTOMER.SALESFORCE_ID"
    assert lines[3] == "                             fix: create the custom field"
    assert lines[4] == "1 of 2 checks passed; failed: intacct_custom_fields"


def test_json_for_scripts_and_exit_0_when_every_check_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out = run(tmp_path, monkeypatch, [PASSED], "--json")
    assert code == 0
    report = json.loads(out)
    assert report["passed"] is True
    assert report["checks"] == [{"name": "intacct_login", "passed": True, "detail": PASSED.detail, "fix": ""}]
    code, out = run(tmp_path, monkeypatch, [PASSED, FAILED], "--json")
    assert code == 1
    assert json.loads(out)["passed"] is False
