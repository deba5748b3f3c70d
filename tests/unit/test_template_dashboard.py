"""What the operator looks at: the dashboard shows metrics the code emits, and the saved Logs Insights
queries read the functions' own log groups by the keys the code logs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sandbox.template_resources import parse_template
from sfintacct.sync.outcome import OutcomeStatus
from sfintacct.sync_worker import ALARMED_METRICS, metric_name

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "template.yaml"
FUNCTIONS = ("IntakeFunction", "CustomerUpsertFunction", "OpportunityToOrderFunction")
WORK_QUEUES = ("CustomerUpsertQueue", "OpportunityToOrderQueue")
DEAD_LETTER_QUEUES = (
    "CustomerUpsertDeadLetterQueue",
    "OpportunityToOrderDeadLetterQueue",
    "IntakeDeadLetterQueue",
)
INTAKE_ACCEPTED = ("OutboundNotificationsAccepted", "SignedEventsAccepted", "RelayedRequestsAccepted")
PSEUDO_PARAMETERS = {"AWS::Region", "AWS::StackName", "AWS::AccountId", "AWS::Partition", "AWS::URLSuffix"}
SUB_VARIABLE = re.compile(r"\$\{([^}!]*)\}")
EXPRESSION_METRIC = re.compile(r'MetricName="(\w+)"')


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return parse_template(TEMPLATE_PATH.read_text(encoding="utf-8"))


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {rid: res for rid, res in template["Resources"].items() if res["Type"] == resource_type}


@pytest.fixture(scope="module")
def dashboard(template: dict[str, Any]) -> dict[str, Any]:
    """The dashboard body, every ${...} of its !Sub replaced by `<name>` after checking it resolves."""
    (resource,) = of_type(template, "AWS::CloudWatch::Dashboard").values()
    body = resource["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str), "the body is one !Sub string"
    for variable in SUB_VARIABLE.findall(body):
        name = variable.split(".", 1)[0]
        assert (
            variable in PSEUDO_PARAMETERS or name in template["Parameters"] or name in template["Resources"]
        ), f"${{{variable}}} names nothing in the template"
    document: dict[str, Any] = json.loads(SUB_VARIABLE.sub(lambda match: f"<{match.group(1)}>", body))
    return document


def metrics_shown(dashboard: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(namespace, metric, dimension value) of each metric of each widget; expressions' SfIntacct metrics
    as (SfIntacct, metric, "search")."""
    shown: set[tuple[str, str, str]] = set()
    for widget in dashboard["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            if isinstance(row[0], dict):
                for metric in EXPRESSION_METRIC.findall(row[0]["expression"]):
                    shown.add(("SfIntacct", metric, "search"))
                continue
            namespace, metric, _dimension, value = row[:4]
            shown.add((namespace, metric, value))
    return shown


def emitted_metrics() -> set[str]:
    """The SfIntacct metrics the code counts: every worker outcome, the intake's counters, and the
    configuration faults the workers count."""
    intake = (REPO / "functions" / "intake" / "app.py").read_text(encoding="utf-8")
    worker = {
        metric_name(kind, status.value) for kind in ("Account", "Opportunity") for status in OutcomeStatus
    }
    # add_metric(name="...") and the refusal counter chosen by `metric = "..." if ... else "..."`
    intake_counters = set(re.findall(r'name="(\w+)"', intake)) | {
        name for line in intake.splitlines() if "metric = " in line for name in re.findall(r'"(\w+)"', line)
    }
    return worker | intake_counters | {"ConfigurationFault"}


def test_the_dashboard_is_laid_out_on_the_grid(dashboard: dict[str, Any]) -> None:
    for widget in dashboard["widgets"]:
        assert widget["x"] + widget["width"] <= 24, widget
        assert widget["type"] in ("metric", "text"), widget


def test_the_dashboard_shows_only_metrics_the_code_emits(dashboard: dict[str, Any]) -> None:
    ours = {metric for namespace, metric, _ in metrics_shown(dashboard) if namespace == "SfIntacct"}

    assert ours <= emitted_metrics()


def test_the_dashboard_shows_intake_outcomes_and_failures_by_reason(dashboard: dict[str, Any]) -> None:
    shown = metrics_shown(dashboard)

    for metric in (*INTAKE_ACCEPTED, "MessagesRefused", *ALARMED_METRICS, "ConfigurationFault"):
        assert ("SfIntacct", metric, "sfintacct") in shown, metric
    # Synced and already synced carry a reason only: summed over a SEARCH of the reason dimension.
    for kind in ("Account", "Opportunity"):
        for status in ("Synced", "AlreadySynced", "Failed"):
            assert ("SfIntacct", f"{kind}{status}", "search") in shown, (kind, status)


def test_the_dashboard_shows_every_queue_and_function(dashboard: dict[str, Any]) -> None:
    shown = metrics_shown(dashboard)

    for queue in WORK_QUEUES:
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", f"<{queue}.QueueName>") in shown
        assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", f"<{queue}.QueueName>") in shown
    for queue in DEAD_LETTER_QUEUES:
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", f"<{queue}.QueueName>") in shown
    for function in FUNCTIONS:
        assert ("AWS/Lambda", "Errors", f"<{function}>") in shown
        assert ("AWS/Lambda", "Duration", f"<{function}>") in shown


def test_the_stack_outputs_the_dashboard_name(template: dict[str, Any]) -> None:
    (dashboard_id,) = of_type(template, "AWS::CloudWatch::Dashboard")

    assert template["Outputs"]["DashboardName"]["Value"] == {"Ref": dashboard_id}


@pytest.fixture(scope="module")
def queries(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Saved queries by the name they start with (the stack name follows in parentheses)."""
    found: dict[str, dict[str, Any]] = {}
    for resource in of_type(template, "AWS::Logs::QueryDefinition").values():
        properties = resource["Properties"]
        found[properties["Name"]["Fn::Sub"].split(" (", 1)[0]] = properties
    return found


def test_the_saved_queries_read_the_log_group_of_every_function(
    template: dict[str, Any], queries: dict[str, dict[str, Any]]
) -> None:
    log_groups = {
        logical_id: resource["Properties"]["LogGroupName"]
        for logical_id, resource in of_type(template, "AWS::Logs::LogGroup").items()
    }
    function_groups = {
        logical_id
        for logical_id, name in log_groups.items()
        if name in [{"Fn::Sub": f"/aws/lambda/${{{f}}}"} for f in FUNCTIONS]
    }

    assert set(queries) == {"sfintacct: what happened to a record", "sfintacct: failures today"}
    assert len(function_groups) == len(FUNCTIONS)
    for query in queries.values():
        assert {group["Ref"] for group in query["LogGroupNames"]} == function_groups


def test_the_record_query_filters_on_the_keys_the_workers_log(queries: dict[str, dict[str, Any]]) -> None:
    worker = (REPO / "layers" / "sync" / "sfintacct" / "sync_worker.py").read_text(encoding="utf-8")
    text = queries["sfintacct: what happened to a record"]["QueryString"]

    assert "salesforce_id=request.record_id" in worker
    assert '"outcome":' in worker
    assert re.search(r"filter salesforce_id = \"", text)
    for key in ("producer_id", "source", "outcome.status", "outcome.reason", "outcome.message"):
        assert key in text, key


def test_the_failures_query_finds_errors_and_outcomes_that_need_attention(
    queries: dict[str, dict[str, Any]],
) -> None:
    text = queries["sfintacct: failures today"]["QueryString"]
    (statuses,) = re.findall(r"outcome\.status in \[([^\]]*)\]", text)

    assert 'level = "ERROR"' in text
    assert {status.strip().strip('"') for status in statuses.split(",")} == {
        OutcomeStatus.FAILED.value,
        OutcomeStatus.DEAD_LETTERED.value,
        OutcomeStatus.WAITING.value,
    }
