"""Least privilege, checked on what CloudFormation receives: template.yaml translated by the SAM translator.

Each function may use exactly the actions its code calls, each on the one resource it calls it on:

- intake: SendMessageBatch to the two work queues (`intake/work_queues.py`; IAM authorises it as
  sqs:SendMessage), SendMessage to its dead-letter queue (EventInvokeConfig's on-failure destination is
  sent with the function's role), GetSecretValue of the intake secret (`intake/intake_secret.py`).
- workers: the SQS event source polls their own queue with their role (ReceiveMessage, DeleteMessage,
  GetQueueAttributes), and a worker delays the next receive of a failed message (ChangeMessageVisibility,
  `sync_worker.py`); the crosswalk is read with GetItem and written only with conditional UpdateItem
  (`crosswalk.py`); Powertools idempotency uses GetItem, PutItem, UpdateItem and DeleteItem; the sync
  log is appended with PutItem (`sync/sync_log.py`); GetSecretValue of the Intacct and Salesforce
  secrets (`settings_sources.py`). The crosswalk's reverse index and the sync log's history and status
  index are read by people, not by the workers, so no Query is granted.
- every function writes its own log group and X-Ray traces; metrics are EMF log lines, so no
  cloudwatch:PutMetricData.

The translator runs in a subprocess: SAM CLI's environment (.venv-sam) has it, and it pins pydantic
below the version the project itself uses, so it is not installed in the project's environment.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sfintacct.intake.platform_event import SIGNATURE_HEADER, SIGNATURE_TIMESTAMP_HEADER

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "template.yaml"
SAM_PYTHON = REPO / ".venv-sam" / "bin" / "python"
CODE = REPO / "layers" / "sync" / "sfintacct"

ACCOUNT = "123456789012"
REQUIRED_PARAMETERS = {
    "SalesforceOrgIds": "00D000000000001AAA",
    "IntakeSecretArn": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:intake-AbCdEf",
    "IntacctSecretArn": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:intacct-AbCdEf",
    "SalesforceSecretArn": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:salesforce-AbCdEf",
}
SECRETS_KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# Every optional protection switched on: the statements of both branches of each condition get checked.
EVERYTHING_ON = {
    "SecretsKmsKeyArn": SECRETS_KEY_ARN,
    "WafRateLimitPerFiveMinutes": "2000",
    "AllowedSourceCidrs": "13.108.0.0/14,2a01:111:f100::/48",
    "SalesforceEventBusName": "aws.partner/salesforce.com/00D000000000001AAA/0YLxx0000000001",
    "AlarmEmail": "ops@example.com",
}

XRAY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
SEND = {"sqs:SendMessage"}
CONSUME = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"}
READ_SECRET = {"secretsmanager:GetSecretValue"}
IDEMPOTENCY = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
CROSSWALK = {"dynamodb:GetItem", "dynamodb:UpdateItem"}
SYNC_LOG = {"dynamodb:PutItem"}


def _worker(queue: str, log_group: str) -> dict[str, set[str]]:
    return {
        queue: CONSUME,
        "CrosswalkTable": CROSSWALK,
        "IdempotencyTable": IDEMPOTENCY,
        "SyncLogTable": SYNC_LOG,
        "IntacctSecretArn": READ_SECRET,
        "SalesforceSecretArn": READ_SECRET,
        log_group: LOGS,
        "*": XRAY,
    }


# function -> resource (logical id, parameter name, or "*") -> actions. Nothing else is allowed.
EXPECTED_PERMISSIONS: dict[str, dict[str, set[str]]] = {
    "IntakeFunction": {
        "CustomerUpsertQueue": SEND,
        "OpportunityToOrderQueue": SEND,
        "IntakeDeadLetterQueue": SEND,
        "IntakeSecretArn": READ_SECRET,
        "IntakeLogGroup": LOGS,
        "*": XRAY,
    },
    "CustomerUpsertFunction": _worker("CustomerUpsertQueue", "CustomerUpsertLogGroup"),
    "OpportunityToOrderFunction": _worker("OpportunityToOrderQueue", "OpportunityToOrderLogGroup"),
    "FinanceStatusFunction": {
        "FinanceStatusTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:BatchGetItem"},
        "CrosswalkTable/index/by-intacct-id": {"dynamodb:Query"},
        "SyncLogTable": SYNC_LOG,
        "IntacctSecretArn": READ_SECRET,
        "SalesforceSecretArn": READ_SECRET,
        "FinanceStatusLogGroup": LOGS,
        "*": XRAY,
    },
}
OWN_SECRETS = {
    "IntakeFunction": ["IntakeSecretArn"],
    "CustomerUpsertFunction": ["IntacctSecretArn", "SalesforceSecretArn"],
    "OpportunityToOrderFunction": ["IntacctSecretArn", "SalesforceSecretArn"],
    "FinanceStatusFunction": ["IntacctSecretArn", "SalesforceSecretArn"],
}

# Where a statement of ours may name "*", and why. (policy owner, statement Sid) -> what and why.
WILDCARD_EXCEPTIONS: dict[tuple[str, str], dict[str, Any]] = {
    **{
        (f"{function}Role", "WriteTraces"): {
            "actions": set(),
            "any_resource": True,
            "why": "X-Ray has no resource-level permissions: PutTraceSegments and PutTelemetryRecords "
            "accept only Resource '*'; active tracing needs them",
        }
        for function in EXPECTED_PERMISSIONS
    },
    ("AlarmTopicKey", "AccountAdministersKey"): {
        "actions": {"kms:*"},
        "any_resource": True,
        "why": "the default key policy statement: the account (through its IAM policies) administers the "
        "key; a key policy without it leaves the key unmanageable. In a key policy '*' is the key itself",
    },
    ("AlarmTopicKey", "CloudWatchAlarmsPublish"): {
        "actions": {"kms:GenerateDataKey*"},
        "any_resource": True,
        "why": "CloudWatch alarms publish to an encrypted topic only with kms:Decrypt and "
        "kms:GenerateDataKey* granted to cloudwatch.amazonaws.com in the key policy, as SNS documents "
        "it. In a key policy '*' is the key itself",
    },
}


# ---------------------------------------------------------------------------- translation


_TRANSLATE = r"""
import json, sys
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

request = json.load(sys.stdin)
template = yaml_parse(request["template"])
for resource in template["Resources"].values():
    properties = resource.get("Properties", {})
    for name in ("CodeUri", "ContentUri"):  # as `sam package` would have uploaded them
        if isinstance(properties.get(name), str):
            properties[name] = "s3://artifacts/" + properties[name].strip("/")
translated = Translator(managed_policy_map={}, sam_parser=Parser()).translate(
    template, parameter_values=request["parameters"], get_managed_policy_map=lambda: {}
)
json.dump(translated, sys.stdout)
"""


def _translator_python() -> str:
    if importlib.util.find_spec("samtranslator") is not None:
        return sys.executable
    if SAM_PYTHON.exists():
        return str(SAM_PYTHON)
    pytest.fail("the SAM translator is missing: `make setup` installs SAM CLI, with it, in .venv-sam")


def translate(overrides: dict[str, str] | None = None) -> Translation:
    parameters = {**REQUIRED_PARAMETERS, **(overrides or {})}
    request = {"template": TEMPLATE_PATH.read_text(encoding="utf-8"), "parameters": parameters}
    completed = subprocess.run(
        [_translator_python(), "-c", _TRANSLATE],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return Translation(json.loads(completed.stdout), parameters)


class Translation:
    """A translated template with its parameter values: conditions and Fn::If resolved on demand."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, str]) -> None:
        self.template = template
        self.resources: dict[str, dict[str, Any]] = template["Resources"]
        declared = template.get("Parameters", {})
        self.values = {name: str(spec.get("Default", "")) for name, spec in declared.items()}
        self.values.update(parameters)

    def condition(self, name: str) -> bool:
        return self._truth(self.template["Conditions"][name])

    def _truth(self, expression: dict[str, Any]) -> bool:
        ((function, argument),) = expression.items()
        if function == "Fn::Not":
            return not self._truth(argument[0])
        if function == "Fn::And":
            return all(self._truth(item) for item in argument)
        if function == "Fn::Or":
            return any(self._truth(item) for item in argument)
        if function == "Fn::Equals":
            return self._text(argument[0]) == self._text(argument[1])
        if function == "Condition":
            return self.condition(argument)
        raise AssertionError(f"condition function {function} is not understood here")

    def _text(self, value: Any) -> str:
        if isinstance(value, dict) and set(value) == {"Ref"}:
            return self.values[value["Ref"]]
        if isinstance(value, dict) and set(value) == {"Fn::Join"}:
            delimiter, items = value["Fn::Join"]
            joined = self.resolve(items)
            parts = joined if isinstance(joined, list) else [joined]
            return delimiter.join(self._text(part) for part in parts)
        return str(value)

    def resolve(self, value: Any) -> Any:
        """`value` with each Fn::If replaced by its branch and AWS::NoValue removed."""
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if not _is_no_value(item)]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Fn::If"}:
            name, when_true, when_false = value["Fn::If"]
            return self.resolve(when_true if self.condition(name) else when_false)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if not _is_no_value(item)}

    def created(self) -> dict[str, dict[str, Any]]:
        """The resources CloudFormation creates with these parameter values."""
        return {
            logical_id: resource
            for logical_id, resource in self.resources.items()
            if "Condition" not in resource or self.condition(resource["Condition"])
        }

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {rid: res for rid, res in self.created().items() if res["Type"] == resource_type}


def _is_no_value(value: Any) -> bool:
    return value == {"Ref": "AWS::NoValue"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def defaults() -> Translation:
    return translate()


@pytest.fixture(scope="module")
def everything_on() -> Translation:
    return translate(EVERYTHING_ON)


# ---------------------------------------------------------------------------- permissions of a role


def role_of(translation: Translation, function_id: str) -> str:
    role = translation.resources[function_id]["Properties"]["Role"]
    assert set(role) == {"Fn::GetAtt"}, f"{function_id}: the role must be one of the template's"
    role_id, attribute = role["Fn::GetAtt"]
    assert attribute == "Arn"
    return str(role_id)


def role_statements(translation: Translation, role_id: str) -> list[dict[str, Any]]:
    """Every statement that applies to the role: its inline policies and policies attached to it."""
    documents = [
        policy["PolicyDocument"]
        for policy in translation.resolve(translation.resources[role_id]["Properties"].get("Policies", []))
    ]
    for resource in translation.created().values():
        properties = translation.resolve(resource.get("Properties", {}))
        if resource["Type"] == "AWS::IAM::RolePolicy" and properties["RoleName"] == {"Ref": role_id}:
            documents.append(properties["PolicyDocument"])
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and {"Ref": role_id} in (
            properties.get("Roles", [])
        ):
            documents.append(properties["PolicyDocument"])
    return [statement for document in documents for statement in _as_list(document["Statement"])]


def resource_name(resource: Any) -> str:
    """A statement's resource as the logical id or parameter it comes from, or "*"."""
    if resource == "*":
        return "*"
    if isinstance(resource, dict) and set(resource) == {"Fn::GetAtt"}:
        logical_id, attribute = resource["Fn::GetAtt"]
        assert attribute == "Arn", resource
        return str(logical_id)
    if isinstance(resource, dict) and set(resource) == {"Ref"}:
        return str(resource["Ref"])
    if isinstance(resource, dict) and set(resource) == {"Fn::Sub"}:  # a table's index: "${T.Arn}/index/N"
        match = re.fullmatch(r"\$\{(\w+)\.Arn\}(/index/[\w-]+)", str(resource["Fn::Sub"]))
        assert match is not None, resource
        return match.group(1) + match.group(2)
    raise AssertionError(f"a resource written as {resource!r} cannot be checked; name it by Ref or GetAtt")


def permissions(translation: Translation, function_id: str) -> dict[str, set[str]]:
    granted: dict[str, set[str]] = defaultdict(set)
    for statement in role_statements(translation, role_of(translation, function_id)):
        assert statement["Effect"] == "Allow", statement
        assert "NotAction" not in statement, statement
        assert "NotResource" not in statement, statement
        for resource in _as_list(statement["Resource"]):
            granted[resource_name(resource)] |= set(_as_list(statement["Action"]))
    return dict(granted)


# ---------------------------------------------------------------------------- the tests


def test_the_template_declares_the_functions_checked_here(defaults: Translation) -> None:
    assert set(defaults.of_type("AWS::Lambda::Function")) == set(EXPECTED_PERMISSIONS)


@pytest.mark.parametrize("function_id", sorted(EXPECTED_PERMISSIONS))
def test_each_function_may_use_exactly_the_actions_its_code_calls(
    defaults: Translation, function_id: str
) -> None:
    assert permissions(defaults, function_id) == EXPECTED_PERMISSIONS[function_id]


@pytest.mark.parametrize("function_id", sorted(EXPECTED_PERMISSIONS))
def test_with_a_secrets_key_a_function_may_decrypt_only_its_own_secrets_through_secrets_manager(
    everything_on: Translation, function_id: str
) -> None:
    expected = {**EXPECTED_PERMISSIONS[function_id], "SecretsKmsKeyArn": {"kms:Decrypt"}}
    (decrypt,) = [
        statement
        for statement in role_statements(everything_on, role_of(everything_on, function_id))
        if "kms:Decrypt" in _as_list(statement["Action"])
    ]
    conditions = decrypt["Condition"]["StringEquals"]

    assert permissions(everything_on, function_id) == expected
    assert set(decrypt["Condition"]) == {"StringEquals"}
    assert conditions["kms:ViaService"] == {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}
    assert _as_list(conditions["kms:EncryptionContext:SecretARN"]) == [
        {"Ref": secret} for secret in OWN_SECRETS[function_id]
    ]


def test_the_order_worker_cannot_send_to_any_queue(everything_on: Translation) -> None:
    granted = permissions(everything_on, "OpportunityToOrderFunction")

    assert not any(action.startswith("sqs:Send") for actions in granted.values() for action in actions)
    assert "CustomerUpsertQueue" not in granted


def test_a_function_role_trusts_only_lambda_and_carries_no_managed_policy(everything_on: Translation) -> None:
    roles = everything_on.of_type("AWS::IAM::Role")

    assert set(roles) == {role_of(everything_on, function) for function in EXPECTED_PERMISSIONS}
    for role_id, role in roles.items():
        properties = role["Properties"]
        (trust,) = properties["AssumeRolePolicyDocument"]["Statement"]
        assert trust == {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }, role_id
        assert not properties.get("ManagedPolicyArns"), role_id


def policy_documents(translation: Translation) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner, policy document) of every identity and resource policy the stack creates."""
    for logical_id, resource in translation.created().items():
        properties = translation.resolve(resource.get("Properties", {}))
        kind = resource["Type"]
        if kind == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                yield logical_id, policy["PolicyDocument"]
        elif kind in ("AWS::IAM::RolePolicy", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            owners = [properties["RoleName"]] if "RoleName" in properties else properties.get("Roles", [])
            for owner in owners:
                yield str(owner["Ref"]), properties["PolicyDocument"]
        elif kind in ("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
            yield logical_id, properties["PolicyDocument"]
        elif kind == "AWS::KMS::Key":
            yield logical_id, properties["KeyPolicy"]
        elif kind == "AWS::ApiGateway::RestApi":
            for document in (properties.get("Policy"), properties["Body"].get("x-amazon-apigateway-policy")):
                if document:
                    yield logical_id, document


@pytest.mark.parametrize("parameters", ["defaults", "everything_on"])
def test_no_statement_grants_every_action_or_every_resource_except_where_aws_requires_it(
    request: pytest.FixtureRequest, parameters: str
) -> None:
    translation: Translation = request.getfixturevalue(parameters)
    used: set[tuple[str, str]] = set()
    for owner, document in policy_documents(translation):
        for statement in _as_list(document["Statement"]):
            assert "NotAction" not in statement, (owner, statement)
            assert "NotResource" not in statement, (owner, statement)
            wildcard_actions = {action for action in _as_list(statement["Action"]) if "*" in action}
            any_resource = "*" in _as_list(statement.get("Resource", []))
            if not wildcard_actions and not any_resource:
                continue
            key = (owner, statement.get("Sid", ""))
            exception = WILDCARD_EXCEPTIONS.get(key)
            assert exception is not None, f"{owner}: a wildcard nobody explained in {statement}"
            assert wildcard_actions <= exception["actions"], (owner, statement)
            assert not any_resource or exception["any_resource"], (owner, statement)
            used.add(key)
    if parameters == "everything_on":
        assert used == set(WILDCARD_EXCEPTIONS), "an exception no longer needed: remove it"


def test_the_code_calls_only_the_aws_operations_the_permissions_were_written_for() -> None:
    """A new AWS call in the core needs its permission: this names the calls the table above covers."""
    calls: dict[str, set[str]] = defaultdict(set)
    for path in sorted(CODE.rglob("*.py")):
        for operation in re.findall(r"_client\.(\w+)\(", path.read_text(encoding="utf-8")):
            calls[path.relative_to(CODE).as_posix()].add(operation)
    aws_calls = {module: ops for module, ops in calls.items() if not module.startswith("intacct/")}

    assert aws_calls == {
        # get/claim/complete/put_mapping/release; query is find_by_intacct_id: the finance run's, no worker's
        "crosswalk.py": {"get_item", "update_item", "query"},
        # the finance run's state: run_state, save_run_state, written, remember
        "finance/state.py": {"get_item", "put_item", "batch_get_item"},
        # record; query is history() and by_status(), for people reading the log, not for the workers
        "sync/sync_log.py": {"put_item", "query"},
        "intake/work_queues.py": {"send_message_batch"},
    }
    assert "find_by_intacct_id" not in (CODE / "sync" / "service.py").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------- who may call the API


def api_policy(translation: Translation) -> dict[str, Any]:
    body = translation.resolve(translation.resources["WebhookApi"]["Properties"]["Body"])
    document: dict[str, Any] = body["x-amazon-apigateway-policy"]
    return document


def deployment_ids(translation: Translation) -> set[str]:
    return set(translation.of_type("AWS::ApiGateway::Deployment"))


def test_without_allowed_cidrs_the_api_policy_lets_anyone_call(defaults: Translation) -> None:
    allow, deny = api_policy(defaults)["Statement"]

    assert allow == {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "execute-api:Invoke",
        "Resource": "execute-api:/*",
    }
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"NotIpAddress": {"aws:SourceIp": ["0.0.0.0/0", "::/0"]}}


def test_with_allowed_cidrs_every_other_source_is_denied_and_the_api_is_redeployed(
    defaults: Translation, everything_on: Translation
) -> None:
    _, deny = api_policy(everything_on)["Statement"]
    cidrs = deny["Condition"]["NotIpAddress"]["aws:SourceIp"]

    assert deny["Action"] == "execute-api:Invoke"
    assert deny["Resource"] == "execute-api:/*"
    assert cidrs == {"Fn::Split": [",", EVERYTHING_ON["AllowedSourceCidrs"]]}
    # A resource policy takes effect with a new deployment: another list must make another one.
    other_list = translate({**EVERYTHING_ON, "AllowedSourceCidrs": "13.108.0.0/14"})
    assert len(deployment_ids(everything_on)) == 1
    assert deployment_ids(other_list) != deployment_ids(everything_on)
    assert deployment_ids(defaults) != deployment_ids(everything_on)


def test_the_web_acl_guards_the_api_stage_only_when_a_rate_limit_is_set(
    defaults: Translation, everything_on: Translation
) -> None:
    association = everything_on.of_type("AWS::WAFv2::WebACLAssociation")["WebhookWebAclAssociation"]
    (rule,) = everything_on.resources["WebhookWebAcl"]["Properties"]["Rules"]

    assert not defaults.of_type("AWS::WAFv2::WebACL")
    assert not defaults.of_type("AWS::WAFv2::WebACLAssociation")
    assert association["Properties"]["ResourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${WebhookApi}"
        "/stages/${WebhookApiStage}"
    }
    assert everything_on.resources["WebhookApiStage"]["Type"] == "AWS::ApiGateway::Stage"
    assert rule["Action"] == {"Block": {}}
    assert rule["Statement"]["RateBasedStatement"] == {
        "AggregateKeyType": "IP",
        "EvaluationWindowSec": 300,
        "Limit": {"Ref": "WafRateLimitPerFiveMinutes"},
    }


def test_api_gateway_refuses_a_request_without_the_headers_of_its_route(defaults: Translation) -> None:
    body = defaults.resolve(defaults.resources["WebhookApi"]["Properties"]["Body"])
    validators = body["x-amazon-apigateway-request-validators"]

    def required_headers(path: str) -> set[str]:
        method = body["paths"][path]["post"]
        validator = validators[method["x-amazon-apigateway-request-validator"]]
        assert validator == {"validateRequestParameters": True, "validateRequestBody": False}
        assert method["x-amazon-apigateway-integration"]["type"] == "aws_proxy"
        return {p["name"] for p in method["parameters"] if p["in"] == "header" and p["required"]}

    assert required_headers("/salesforce/outbound") == {"Content-Type"}
    assert required_headers("/salesforce/events") == {
        "Content-Type",
        SIGNATURE_HEADER,
        SIGNATURE_TIMESTAMP_HEADER,
    }
