"""The operational promises of template.yaml: redrive, timeouts, batch failures, data protection, secrets."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from sfintacct.sync.sync_log import STATUS_INDEX

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"

WORK_QUEUES = {
    "CustomerUpsertQueue": "CustomerUpsertDeadLetterQueue",
    "OpportunityToOrderQueue": "OpportunityToOrderDeadLetterQueue",
}
WORKERS = ("CustomerUpsertFunction", "OpportunityToOrderFunction")
TABLES = ("CrosswalkTable", "IdempotencyTable", "SyncLogTable")
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
SECRET_LIKE_NAME = re.compile(r"secret|password|token|key|credential", re.IGNORECASE)


class CloudFormationLoader(yaml.SafeLoader):
    """A YAML loader that turns short tags (!Ref X, !GetAtt A.B, !Sub ...) into their long form."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(
            None, None, f"unexpected node for !{tag_suffix}", node.start_mark
        )
    return {name: value}


CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(text: str) -> dict[str, Any]:
    template = yaml.load(text, Loader=CloudFormationLoader)  # a SafeLoader subclass
    assert isinstance(template, dict)
    return template


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    template_resources: dict[str, Any] = template["Resources"]
    return template_resources


def properties(resources: dict[str, Any], logical_id: str) -> dict[str, Any]:
    props: dict[str, Any] = resources[logical_id].get("Properties", {})
    return props


def sqs_events(resources: dict[str, Any], function_id: str) -> list[dict[str, Any]]:
    events = properties(resources, function_id).get("Events", {})
    return [event["Properties"] for event in events.values() if event["Type"] == "SQS"]


def function_timeout(template: dict[str, Any], function_id: str) -> int:
    props = properties(template["Resources"], function_id)
    timeout = props.get("Timeout", template["Globals"]["Function"].get("Timeout", 3))
    assert isinstance(timeout, int), f"{function_id}: Timeout must be a literal number"
    return timeout


def test_loader_understands_short_tags() -> None:
    loaded = load_template("a: !Ref X\nb: !GetAtt Q.Arn\nc: !Sub 'x-${X}'\nd: !If [C, 1, 2]\n")

    assert loaded == {
        "a": {"Ref": "X"},
        "b": {"Fn::GetAtt": ["Q", "Arn"]},
        "c": {"Fn::Sub": "x-${X}"},
        "d": {"Fn::If": ["C", 1, 2]},
    }


def test_every_work_queue_redrives_to_its_own_dead_letter_queue(resources: dict[str, Any]) -> None:
    for queue_id, dlq_id in WORK_QUEUES.items():
        redrive = properties(resources, queue_id)["RedrivePolicy"]

        assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
        assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
        assert resources[dlq_id]["Type"] == "AWS::SQS::Queue"
        assert properties(resources, dlq_id)["MessageRetentionPeriod"] == DLQ_RETENTION_SECONDS
        assert "RedrivePolicy" not in properties(resources, dlq_id)


def test_every_queue_is_encrypted(resources: dict[str, Any]) -> None:
    queues = [rid for rid, res in resources.items() if res["Type"] == "AWS::SQS::Queue"]

    assert set(WORK_QUEUES) | set(WORK_QUEUES.values()) <= set(queues)
    for queue_id in queues:
        assert properties(resources, queue_id).get("SqsManagedSseEnabled") is True, queue_id


def test_every_queue_outlives_the_stack(resources: dict[str, Any]) -> None:
    queues = {rid: res for rid, res in resources.items() if res["Type"] == "AWS::SQS::Queue"}

    assert set(WORK_QUEUES) | set(WORK_QUEUES.values()) | {"IntakeDeadLetterQueue"} <= set(queues)
    for queue_id, queue in queues.items():
        assert queue.get("DeletionPolicy") == "Retain", queue_id
        assert queue.get("UpdateReplacePolicy") == "Retain", queue_id


def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_publish_with(
    resources: dict[str, Any],
) -> None:
    topic = properties(resources, "AlarmTopic")
    key = resources["AlarmTopicKey"]
    statements = {s["Sid"]: s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    cloudwatch = statements["CloudWatchAlarmsPublish"]

    # Not alias/aws/sns: the AWS managed key's policy cannot let CloudWatch alarms publish.
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert sorted(cloudwatch["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert set(statements) == {"AccountAdministersKey", "CloudWatchAlarmsPublish"}


def test_max_receive_count_parameter_is_bounded(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["MaxReceiveCount"]

    assert parameter["Type"] == "Number"
    assert parameter["MinValue"] >= 1
    assert parameter["Default"] >= 3


def test_each_worker_consumes_one_work_queue(resources: dict[str, Any]) -> None:
    consumed = []
    for function_id in WORKERS:
        events = sqs_events(resources, function_id)
        assert len(events) == 1, function_id
        consumed.append(events[0]["Queue"]["Fn::GetAtt"][0])

    assert sorted(consumed) == sorted(WORK_QUEUES)


def test_visibility_timeout_is_at_least_six_times_the_function_timeout(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    for function_id in WORKERS:
        for event in sqs_events(resources, function_id):
            queue_id = event["Queue"]["Fn::GetAtt"][0]
            visibility = properties(resources, queue_id)["VisibilityTimeout"]
            window = event.get("MaximumBatchingWindowInSeconds", 0)

            assert visibility >= 6 * function_timeout(template, function_id) + window, queue_id


def test_sqs_events_report_partial_failures_and_cap_concurrency(template: dict[str, Any]) -> None:
    for function_id in WORKERS:
        for event in sqs_events(template["Resources"], function_id):
            assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"], function_id
            assert event["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "WorkerMaximumConcurrency"}
            assert 1 <= event["BatchSize"] <= 10, function_id

    concurrency = template["Parameters"]["WorkerMaximumConcurrency"]
    assert concurrency["MinValue"] == 2  # the lowest value Lambda accepts
    assert concurrency["Default"] == 2


@pytest.mark.parametrize("table_id", TABLES)
def test_tables_survive_stack_deletion_and_can_be_restored(resources: dict[str, Any], table_id: str) -> None:
    table = resources[table_id]
    props = table["Properties"]

    assert table["Type"] == "AWS::DynamoDB::Table"
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    assert props["DeletionProtectionEnabled"] is True
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["BillingMode"] == "PAY_PER_REQUEST"


def test_crosswalk_keys_and_reverse_lookup_index(resources: dict[str, Any]) -> None:
    props = properties(resources, "CrosswalkTable")
    attributes = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    (index,) = props["GlobalSecondaryIndexes"]

    assert attributes == {"pk": "S", "sk": "S", "intacct_key": "S"}
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert index["IndexName"] == "by-intacct-id"
    assert index["KeySchema"] == [{"AttributeName": "intacct_key", "KeyType": "HASH"}]
    assert index["Projection"] == {"ProjectionType": "ALL"}


def test_idempotency_table_expires_records(resources: dict[str, Any]) -> None:
    props = properties(resources, "IdempotencyTable")

    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


def test_workers_use_every_table_with_idempotency_on(resources: dict[str, Any]) -> None:
    """What each worker may do with the tables is checked in test_template_iam.py."""
    for function_id in WORKERS:
        env = properties(resources, function_id)["Environment"]["Variables"]

        assert env["CROSSWALK_TABLE"] == {"Ref": "CrosswalkTable"}
        assert env["IDEMPOTENCY_TABLE"] == {"Ref": "IdempotencyTable"}
        assert env["SYNC_LOG_TABLE"] == {"Ref": "SyncLogTable"}
        assert env["MAX_RECEIVE_COUNT"] == {"Ref": "MaxReceiveCount"}
        assert env.get("POWERTOOLS_IDEMPOTENCY_DISABLED", "false") == "false"


def test_no_parameter_default_looks_like_a_secret(template: dict[str, Any]) -> None:
    for name, parameter in template["Parameters"].items():
        default = str(parameter.get("Default", ""))
        if SECRET_LIKE_NAME.search(name):
            # Secrets (and their key) are passed by reference only: an ARN parameter without a default
            # value, which takes nothing but an ARN (or, when it is optional, nothing at all).
            pattern = parameter["AllowedPattern"]
            assert name.endswith("Arn"), name
            assert default == "", name
            assert pattern.startswith(("^arn:", "^(arn:")), name
            assert re.fullmatch(pattern, "not-an-arn") is None, name
            assert ("Default" in parameter) == (re.fullmatch(pattern, "") is not None), name
        # A long unbroken run of token characters is what keys and passwords look like.
        assert not re.fullmatch(r"[A-Za-z0-9+/=_\-]{20,}", default), name


def test_secret_environment_variables_hold_only_arn_references(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    functions = [res for res in template["Resources"].values() if res["Type"] == "AWS::Serverless::Function"]
    variables = [template["Globals"]["Function"]["Environment"]["Variables"]]
    variables += [fn["Properties"].get("Environment", {}).get("Variables", {}) for fn in functions]

    secret_like = {k: v for env in variables for k, v in env.items() if SECRET_LIKE_NAME.search(k)}

    assert secret_like, "expected the secret ARN variables"
    for key, value in secret_like.items():
        assert key.endswith("_ARN"), key
        assert isinstance(value, dict), key
        assert value["Ref"] in parameters, key
        assert value["Ref"].endswith("Arn"), key


def test_layer_is_built_for_the_functions_runtime_and_architecture(template: dict[str, Any]) -> None:
    layer = template["Resources"]["SyncLayer"]
    function_globals = template["Globals"]["Function"]

    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["ContentUri"] == "layers/sync/"
    assert function_globals["Runtime"] in layer["Properties"]["CompatibleRuntimes"]
    assert function_globals["Architectures"] == layer["Properties"]["CompatibleArchitectures"]
    assert function_globals["Layers"] == [{"Ref": "SyncLayer"}]


def test_intake_serves_both_webhook_routes_on_the_rest_api(resources: dict[str, Any]) -> None:
    events = properties(resources, "IntakeFunction")["Events"].values()
    routes = {
        (e["Properties"]["Path"], e["Properties"]["Method"].lower()) for e in events if e["Type"] == "Api"
    }

    assert routes == {("/salesforce/outbound", "post"), ("/salesforce/events", "post")}
    assert all(e["Properties"]["RestApiId"] == {"Ref": "WebhookApi"} for e in events if e["Type"] == "Api")
    assert resources["WebhookApi"]["Type"] == "AWS::Serverless::Api"


def test_event_relay_rule_exists_only_when_a_bus_is_configured(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    rule = resources["SalesforceEventRule"]
    (target,) = rule["Properties"]["Targets"]

    assert template["Parameters"]["SalesforceEventBusName"]["Default"] == ""
    assert template["Conditions"][rule["Condition"]] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SalesforceEventBusName"}, ""]}]
    }
    assert resources["SalesforceEventRulePermission"]["Condition"] == rule["Condition"]
    assert rule["Properties"]["EventPattern"]["source"] == [{"prefix": "aws.partner/salesforce.com"}]
    assert target["Arn"] == {"Fn::GetAtt": ["IntakeFunction", "Arn"]}
    assert "DeadLetterConfig" in target
    assert "RetryPolicy" in target


def test_every_dead_letter_queue_raises_an_alarm(resources: dict[str, Any]) -> None:
    dead_letter_queues = {rid for rid in resources if rid.endswith("DeadLetterQueue")}
    watched = {
        res["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for res in resources.values()
        if res["Type"] == "AWS::CloudWatch::Alarm"
        and res["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    }

    assert set(WORK_QUEUES.values()) <= dead_letter_queues
    assert watched == dead_letter_queues


def test_worker_errors_and_api_5xx_raise_alarms(resources: dict[str, Any]) -> None:
    alarms = [res["Properties"] for res in resources.values() if res["Type"] == "AWS::CloudWatch::Alarm"]
    error_functions = {a["Dimensions"][0]["Value"]["Ref"] for a in alarms if a["MetricName"] == "Errors"}

    assert set(WORKERS) <= error_functions
    assert any(a["Namespace"] == "AWS/ApiGateway" and a["MetricName"] == "5XXError" for a in alarms)
    assert all(a["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms)


def test_outputs_give_the_webhook_url(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]

    assert outputs["WebhookUrl"]["Value"] == {
        "Fn::Sub": "https://${WebhookApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}/salesforce/outbound"
    }
    assert outputs["EventsUrl"]["Value"]["Fn::Sub"].endswith("/${Stage}/salesforce/events")


def test_sync_log_is_read_by_salesforce_id_and_expires(resources: dict[str, Any]) -> None:
    props = properties(resources, "SyncLogTable")

    assert props["KeySchema"] == [
        {"AttributeName": "sf_id", "KeyType": "HASH"},
        {"AttributeName": "at", "KeyType": "RANGE"},
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_sync_log_is_read_by_status_and_time_through_an_index(resources: dict[str, Any]) -> None:
    """Failures since a time are a Query of the status index (SyncLog.by_status), never a Scan."""
    props = properties(resources, "SyncLogTable")
    (index,) = props["GlobalSecondaryIndexes"]

    assert index == {
        "IndexName": STATUS_INDEX,
        "KeySchema": [
            {"AttributeName": "status", "KeyType": "HASH"},
            {"AttributeName": "at", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }
    assert {"AttributeName": "status", "AttributeType": "S"} in props["AttributeDefinitions"]


@pytest.mark.parametrize(
    ("function_id", "queue_id"),
    [
        ("OpportunityToOrderFunction", "OpportunityToOrderQueue"),
        ("CustomerUpsertFunction", "CustomerUpsertQueue"),
    ],
)
def test_a_claim_outlives_the_attempt_that_took_it(
    resources: dict[str, Any], function_id: str, queue_id: str
) -> None:
    """No second attempt may write an order or a customer while the first can still be in flight: the
    worker runs at most Timeout, and a request it sent just before it was stopped may take
    INTACCT_TIMEOUT_SECONDS more."""
    props = properties(resources, function_id)
    env = props["Environment"]["Variables"]
    longest_attempt = props["Timeout"] + int(env["INTACCT_TIMEOUT_SECONDS"])

    assert int(env["ORDER_CLAIM_LEASE_SECONDS"]) > longest_attempt
    # ... and the message comes back only after the lease is over, so a redelivery finds it free.
    assert resources[queue_id]["Properties"]["VisibilityTimeout"] > int(env["ORDER_CLAIM_LEASE_SECONDS"])


def test_intacct_retries_end_before_the_worker_times_out(resources: dict[str, Any]) -> None:
    for function_id in WORKERS:
        props = properties(resources, function_id)
        env = props["Environment"]["Variables"]

        worst_case = int(env["INTACCT_RETRY_BUDGET_SECONDS"]) + int(env["INTACCT_TIMEOUT_SECONDS"])
        assert worst_case < props["Timeout"], function_id


def test_the_edge_options_are_off_by_default_and_say_what_they_do(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    waf = parameters["WafRateLimitPerFiveMinutes"]
    cidrs = parameters["AllowedSourceCidrs"]
    resources = template["Resources"]

    assert (waf["Type"], waf["Default"], waf["MinValue"], waf["MaxValue"]) == ("Number", 0, 0, 2_000_000_000)
    assert "0 (default): no web ACL" in " ".join(waf["Description"].split())
    assert template["Conditions"]["HasWafRateLimit"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "WafRateLimitPerFiveMinutes"}, "0"]}]
    }
    assert resources["WebhookWebAcl"]["Condition"] == "HasWafRateLimit"
    assert resources["WebhookWebAclAssociation"]["Condition"] == "HasWafRateLimit"
    assert cidrs["Default"] == ""
    assert cidrs["Description"].startswith("Salesforce's published IP ranges")
    assert template["Conditions"]["HasAllowedSourceCidrs"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AllowedSourceCidrs"}, ""]}]
    }


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("13.108.0.0/14", True),
        ("13.108.0.0/14,101.53.160.0/19,2a01:111:f100::/48", True),
        ("13.108.0.0/14, 101.53.160.0/19", False),
        ("13.108.0.0", False),
        ("salesforce", False),
    ],
)
def test_allowed_source_cidrs_take_only_a_comma_list_of_ranges(
    template: dict[str, Any], value: str, accepted: bool
) -> None:
    pattern = template["Parameters"]["AllowedSourceCidrs"]["AllowedPattern"]

    assert (re.fullmatch(pattern, value) is not None) is accepted


def test_the_intake_has_reserved_concurrency_that_can_stop_it(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["IntakeReservedConcurrency"]
    intake = properties(template["Resources"], "IntakeFunction")

    assert intake["ReservedConcurrentExecutions"] == {"Ref": "IntakeReservedConcurrency"}
    assert (parameter["Type"], parameter["Default"], parameter["MinValue"]) == ("Number", 20, 0)
    assert "0 stops the intake" in " ".join(parameter["Description"].split())


INTAKE_SOURCES = [
    TEMPLATE_PATH.parent / "functions" / "intake" / "app.py",
    *sorted((TEMPLATE_PATH.parent / "layers" / "sync" / "sfintacct" / "intake").glob("*.py")),
]


def access_log_format(template: dict[str, Any]) -> dict[str, str]:
    setting = properties(template["Resources"], "WebhookApi")["AccessLogSetting"]
    condition, enabled, disabled = setting["Fn::If"]
    assert template["Conditions"][condition] == {"Fn::Equals": [{"Ref": "ApiAccessLogs"}, "Enabled"]}
    assert disabled == {"Ref": "AWS::NoValue"}
    fields: dict[str, str] = json.loads(enabled["Format"])
    return fields


def test_api_access_logs_are_on_by_default_with_what_it_takes_to_follow_a_request(
    template: dict[str, Any],
) -> None:
    fields = access_log_format(template)
    variables = set(fields.values())

    assert template["Parameters"]["ApiAccessLogs"]["Default"] == "Enabled"
    assert {
        "$context.requestId",
        "$context.xrayTraceId",
        "$context.identity.sourceIp",
        "$context.identity.userAgent",
        "$context.status",
        "$context.error.message",
        "$context.integrationErrorMessage",
        "$context.responseLength",
    } <= variables
    # The Outbound Message token travels in the query string: no variable that carries it.
    assert not any("querystring" in v.lower() or "$input" in v or "$method" in v for v in variables)
    assert "$context.path" not in variables


def test_the_refusal_alarm_watches_the_metric_the_intake_emits(template: dict[str, Any]) -> None:
    alarm = properties(template["Resources"], "IntakeRefusalsAlarm")
    environment = template["Globals"]["Function"]["Environment"]["Variables"]
    intake_code = "\n".join(path.read_text(encoding="utf-8") for path in INTAKE_SOURCES)

    assert f'"{alarm["MetricName"]}"' in intake_code, "the intake no longer emits this metric"
    assert alarm["Namespace"] == environment["POWERTOOLS_METRICS_NAMESPACE"]
    assert alarm["Dimensions"] == [{"Name": "service", "Value": environment["POWERTOOLS_SERVICE_NAME"]}]
    assert alarm["Threshold"] == {"Ref": "IntakeRefusalAlarmThreshold"}
    assert (alarm["Statistic"], alarm["Period"], alarm["ComparisonOperator"]) == (
        "Sum",
        300,
        "GreaterThanThreshold",
    )
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_every_request_can_be_traced(template: dict[str, Any]) -> None:
    functions = [
        rid for rid, res in template["Resources"].items() if res["Type"] == "AWS::Serverless::Function"
    ]

    assert template["Globals"]["Function"]["Tracing"] == "Active"
    for function_id in functions:
        assert properties(template["Resources"], function_id).get("Tracing", "Active") == "Active"
    assert properties(template["Resources"], "WebhookApi")["TracingEnabled"] is True
    assert access_log_format(template)["xrayTraceId"] == "$context.xrayTraceId"


def test_mutual_tls_is_all_or_nothing_and_reaches_the_intake(template: dict[str, Any]) -> None:
    """The custom domain with a truststore exists only when asked for, and never without the subject the
    intake needs to tell Salesforce's certificate from any other certificate that CA signed."""
    resources = template["Resources"]
    assert resources["MutualTlsDomain"]["Condition"] == "HasMutualTls"
    assert resources["MutualTlsBasePathMapping"]["Condition"] == "HasMutualTls"
    mutual_tls = resources["MutualTlsDomain"]["Properties"]["MutualTlsAuthentication"]
    assert mutual_tls["TruststoreUri"] == {"Ref": "MutualTlsTruststoreUri"}
    assert resources["MutualTlsDomain"]["Properties"]["SecurityPolicy"] == "TLS_1_2"

    required = {
        assertion["Assert"]["Fn::Not"][0]["Fn::Equals"][0]["Ref"]
        for assertion in template["Rules"]["MutualTlsIsComplete"]["Assertions"]
    }
    assert required == {"MutualTlsCertificateArn", "MutualTlsTruststoreUri", "OutboundClientCertSubject"}

    environment = resources["IntakeFunction"]["Properties"]["Environment"]["Variables"]
    assert environment["OUTBOUND_CLIENT_CERT_SUBJECT"] == {"Ref": "OutboundClientCertSubject"}
    assert environment["OUTBOUND_CLIENT_CERT_ISSUER"] == {"Ref": "OutboundClientCertIssuer"}
    assert environment["OUTBOUND_CLIENT_CERT_SERIALS"] == {"Ref": "OutboundClientCertSerials"}
