"""Every failure the workers and the intake count has an alarm that notifies the alarm topic.

The workers count each outcome that needs attention once more with the `service` dimension alone
(`sync_worker.ALARMED_METRICS` names those metrics); the intake counts refused messages in
`MessagesRefused`; a fault of the set-up is counted in `ConfigurationFault`. A new failure metric
without its alarm fails here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sandbox.template_resources import parse_template
from sfintacct.finance.runtime import FINANCE_ALARMED_METRICS, REFUSED_METRIC, RUN_STOPPED_METRIC
from sfintacct.sync_worker import ALARMED_METRICS

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
NAMESPACE = "SfIntacct"
SERVICE = "sfintacct"
WATCHED_METRICS = (*ALARMED_METRICS, "ConfigurationFault", "MessagesRefused")
# The finance run's: refusals over its 15-minute schedule, and stops only once they last an hour.
FINANCE_ALARMS = {
    REFUSED_METRIC: (900, "GreaterThanThreshold", 0),
    RUN_STOPPED_METRIC: (3600, "GreaterThanOrEqualToThreshold", 3),
}
# CloudFormation's limit for AlarmDescription.
MAX_DESCRIPTION = 1024


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return parse_template(TEMPLATE_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every CloudWatch alarm's properties, by logical id."""
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def alarms_on(alarms: dict[str, dict[str, Any]], metric: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: properties
        for logical_id, properties in alarms.items()
        if properties.get("Namespace") == NAMESPACE and properties.get("MetricName") == metric
    }


def test_the_alarmed_metrics_are_the_failures_of_both_workers() -> None:
    assert set(ALARMED_METRICS) == {
        "AccountFailed",
        "AccountDeadLettered",
        "AccountWaiting",
        "OpportunityFailed",
        "OpportunityDeadLettered",
        "OpportunityChangedAfterSync",
        "OpportunityWaiting",
    }


def test_the_metrics_namespace_and_service_are_the_ones_the_functions_emit_with(
    template: dict[str, Any],
) -> None:
    environment = template["Globals"]["Function"]["Environment"]["Variables"]

    assert environment["POWERTOOLS_METRICS_NAMESPACE"] == NAMESPACE
    assert environment["POWERTOOLS_SERVICE_NAME"] == SERVICE


@pytest.mark.parametrize("metric", WATCHED_METRICS)
def test_every_failure_metric_has_an_alarm_that_notifies_the_topic(
    alarms: dict[str, dict[str, Any]], metric: str
) -> None:
    watching = alarms_on(alarms, metric)

    assert watching, f"no alarm watches {NAMESPACE}/{metric}"
    for logical_id, alarm in watching.items():
        # Exactly the metric the code emits without its reason: any other dimension set is another metric.
        assert alarm["Dimensions"] == [{"Name": "service", "Value": SERVICE}], logical_id
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], logical_id
        assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 300, 1), (
            logical_id
        )
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold", logical_id
        assert alarm["TreatMissingData"] == "notBreaching", logical_id
        expected_threshold = {"Ref": "IntakeRefusalAlarmThreshold"} if metric == "MessagesRefused" else 0
        assert alarm["Threshold"] == expected_threshold, logical_id


def test_no_alarm_watches_a_metric_nobody_counts(alarms: dict[str, dict[str, Any]]) -> None:
    ours = {alarm["MetricName"] for alarm in alarms.values() if alarm.get("Namespace") == NAMESPACE}

    assert ours == {*WATCHED_METRICS, *FINANCE_ALARMED_METRICS}


@pytest.mark.parametrize("metric", FINANCE_ALARMED_METRICS)
def test_the_finance_runs_failures_have_alarms_that_notify_the_topic(
    alarms: dict[str, dict[str, Any]], metric: str
) -> None:
    [alarm] = alarms_on(alarms, metric).values()
    period, comparison, threshold = FINANCE_ALARMS[metric]

    assert alarm["Dimensions"] == [{"Name": "service", "Value": SERVICE}]
    assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": "AlarmTopic"}]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", period, 1)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == (comparison, threshold)


def test_the_configuration_fault_and_waiting_alarms_also_say_when_they_end(
    alarms: dict[str, dict[str, Any]],
) -> None:
    """A fault of the set-up lasts until someone fixes it: the OK notification says the fix worked."""
    for metric in ("ConfigurationFault", "AccountWaiting", "OpportunityWaiting"):
        for logical_id, alarm in alarms_on(alarms, metric).items():
            assert alarm["OKActions"] == [{"Ref": "AlarmTopic"}], logical_id


def test_every_alarm_says_what_it_means_within_cloudformations_limit(
    alarms: dict[str, dict[str, Any]],
) -> None:
    for logical_id, alarm in alarms.items():
        description = alarm.get("AlarmDescription")
        assert isinstance(description, str), logical_id
        assert 40 <= len(description) <= MAX_DESCRIPTION, logical_id


def test_the_refusal_alarm_says_salesforce_messages_are_being_dropped(
    alarms: dict[str, dict[str, Any]],
) -> None:
    (description,) = [alarm["AlarmDescription"] for alarm in alarms_on(alarms, "MessagesRefused").values()]
    text = " ".join(description.split())

    assert "Salesforce messages may be being dropped" in text
    assert "org id" in text
    assert "token" in text
