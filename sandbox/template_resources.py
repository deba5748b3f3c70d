"""Read the SAM/CloudFormation template: tables, queues, functions and their SQS events for the local stack.

The local stack creates exactly what template.yaml declares (key schemas, indexes, TTL, redrive
policies, timeouts), so nothing here copies a definition: it is all read and resolved from the template.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_PATH = Path(__file__).resolve().parents[1] / "template.yaml"

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_STACK_NAME = "sfintacct-local"

TABLE_TYPE = "AWS::DynamoDB::Table"
QUEUE_TYPE = "AWS::SQS::Queue"
FUNCTION_TYPE = "AWS::Serverless::Function"
LAYER_TYPE = "AWS::Serverless::LayerVersion"

# What Lambda and SAM use when neither the function nor Globals say.
DEFAULT_FUNCTION_TIMEOUT_SECONDS = 3
DEFAULT_FUNCTION_MEMORY_SIZE_MB = 128
DEFAULT_SQS_BATCH_SIZE = 10

# CloudFormation property -> SQS queue attribute, for the attributes a local queue can honour.
_SQS_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)
_CAPACITY_KEYS = ("ReadCapacityUnits", "WriteCapacityUnits")
_GSI_KEYS = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class TemplateError(Exception):
    """The template cannot be read or a value in it cannot be resolved locally."""


class _NoValue:
    """AWS::NoValue: the property it stands for is removed."""


NO_VALUE = _NoValue()


class CloudFormationLoader(yaml.SafeLoader):
    """A safe YAML loader that turns short tags (!Ref X, !GetAtt A.B, !Sub ...) into their long form."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - yaml has no other node kinds
        raise TemplateError(f"unexpected YAML node for !{tag_suffix}")
    return {name: value}


CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


def parse_template(text: str) -> dict[str, Any]:
    """Parse template text (YAML or JSON) into its long-form document."""
    document = yaml.load(text, Loader=CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError("not a CloudFormation template: no Resources mapping")
    return document


@dataclass(frozen=True)
class ResourceValues:
    """What `!Ref` and `!GetAtt` of one created resource give, e.g. a queue's URL and its Arn."""

    ref: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TableDefinition:
    """An AWS::DynamoDB::Table of the template, resolved."""

    logical_id: str
    attribute_definitions: list[dict[str, Any]]
    key_schema: list[dict[str, Any]]
    global_secondary_indexes: list[dict[str, Any]]
    local_secondary_indexes: list[dict[str, Any]]
    billing_mode: str
    provisioned_throughput: dict[str, Any] | None
    ttl_attribute: str | None

    def create_table_request(self, table_name: str) -> dict[str, Any]:
        """Keyword arguments for DynamoDB CreateTable (TTL is set separately with UpdateTimeToLive)."""
        request: dict[str, Any] = {
            "TableName": table_name,
            "AttributeDefinitions": self.attribute_definitions,
            "KeySchema": self.key_schema,
            "BillingMode": self.billing_mode,
        }
        if self.global_secondary_indexes:
            request["GlobalSecondaryIndexes"] = self.global_secondary_indexes
        if self.local_secondary_indexes:
            request["LocalSecondaryIndexes"] = self.local_secondary_indexes
        if self.billing_mode == "PROVISIONED":
            request["ProvisionedThroughput"] = self.provisioned_throughput or {
                "ReadCapacityUnits": 5,
                "WriteCapacityUnits": 5,
            }
        return request


@dataclass(frozen=True)
class QueueDefinition:
    """An AWS::SQS::Queue of the template; its properties are resolved once its dependencies exist."""

    logical_id: str
    properties: Mapping[str, Any]
    dependencies: frozenset[str]

    @property
    def fifo(self) -> bool:
        return str(self.properties.get("FifoQueue", "false")).lower() == "true"

    def queue_name(self, name_prefix: str) -> str:
        name = f"{name_prefix}-{self.logical_id}"
        return f"{name}.fifo" if self.fifo else name


@dataclass(frozen=True)
class FunctionSettings:
    """Where a function's code is and how it runs: its properties, else Globals, else Lambda's defaults."""

    logical_id: str
    code_dir: Path  # CodeUri, relative to the template's directory
    handler: str  # "module.function", e.g. app.lambda_handler
    timeout_seconds: int
    memory_size_mb: int
    layer_dirs: tuple[Path, ...] = ()  # ContentUri of each layer of the template it uses, in order


@dataclass(frozen=True)
class SqsEventSource:
    """An enabled SQS event of a function (Events[*].Type SQS), resolved against the created queues."""

    function_logical_id: str
    event_name: str
    queue_logical_id: str  # the queue whose Arn the event's Queue gives
    batch_size: int
    maximum_batching_window_seconds: int
    maximum_concurrency: int | None  # ScalingConfig.MaximumConcurrency; None: not set
    report_batch_item_failures: bool  # FunctionResponseTypes has ReportBatchItemFailures


class Template:
    """A loaded template with its parameter values, able to resolve intrinsic functions locally."""

    def __init__(
        self,
        document: Mapping[str, Any],
        *,
        parameter_overrides: Mapping[str, Any] | None = None,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
        stack_name: str = DEFAULT_STACK_NAME,
        base_dir: Path = TEMPLATE_PATH.parent,
    ) -> None:
        self.document = document
        self.region = region
        self.account_id = account_id
        self.stack_name = stack_name
        self.base_dir = base_dir  # CodeUri paths are relative to it
        self._parameter_overrides = dict(parameter_overrides or {})
        self._condition_values: dict[str, bool] = {}

    @classmethod
    def load(cls, path: Path = TEMPLATE_PATH, **options: Any) -> Template:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise TemplateError(f"cannot read template {path}: {error}") from error
        options.setdefault("base_dir", path.resolve().parent)
        return cls(parse_template(text), **options)

    def with_parameters(self, overrides: Mapping[str, Any]) -> Template:
        """The same template with more parameter values (e.g. the ARN of a local secret)."""
        return self._copy(self.document, {**self._parameter_overrides, **overrides})

    def with_queue_properties(self, properties: Mapping[str, Any]) -> Template:
        """The same template with `properties` set on every queue (e.g. a shorter local VisibilityTimeout)."""
        resources = {
            logical_id: (
                {**resource, "Properties": {**resource.get("Properties", {}), **properties}}
                if resource.get("Type") == QUEUE_TYPE
                else resource
            )
            for logical_id, resource in self.resources.items()
        }
        return self._copy({**self.document, "Resources": resources}, self._parameter_overrides)

    def _copy(self, document: Mapping[str, Any], parameter_overrides: Mapping[str, Any]) -> Template:
        return Template(
            document,
            parameter_overrides=parameter_overrides,
            region=self.region,
            account_id=self.account_id,
            stack_name=self.stack_name,
            base_dir=self.base_dir,
        )

    # ------------------------------------------------------------------ resources

    @property
    def resources(self) -> Mapping[str, Mapping[str, Any]]:
        resources: Mapping[str, Mapping[str, Any]] = self.document["Resources"]
        return resources

    def resources_of_type(self, resource_type: str) -> dict[str, Mapping[str, Any]]:
        """Resources of one type whose Condition (if any) holds, by logical id, in template order."""
        selected: dict[str, Mapping[str, Any]] = {}
        for logical_id, resource in self.resources.items():
            if resource.get("Type") != resource_type:
                continue
            condition = resource.get("Condition")
            if condition is not None and not self.condition(str(condition)):
                continue
            selected[logical_id] = resource
        return selected

    def tables(self) -> list[TableDefinition]:
        """Every DynamoDB table of the template, resolved."""
        return [
            self._table(logical_id, resource)
            for logical_id, resource in self.resources_of_type(TABLE_TYPE).items()
        ]

    def _table(self, logical_id: str, resource: Mapping[str, Any]) -> TableDefinition:
        properties = self.resolve(resource.get("Properties", {}))
        if not isinstance(properties, dict) or "KeySchema" not in properties:
            raise TemplateError(f"{logical_id}: a table needs Properties.KeySchema")
        indexes = [
            {key: index[key] for key in _GSI_KEYS if key in index}
            for index in properties.get("GlobalSecondaryIndexes", [])
        ]
        ttl = properties.get("TimeToLiveSpecification") or {}
        ttl_enabled = str(ttl.get("Enabled", "false")).lower() == "true"
        return TableDefinition(
            logical_id=logical_id,
            attribute_definitions=_with_int_values(properties.get("AttributeDefinitions", [])),
            key_schema=list(properties["KeySchema"]),
            global_secondary_indexes=_with_int_values(indexes),
            local_secondary_indexes=_with_int_values(properties.get("LocalSecondaryIndexes", [])),
            billing_mode=str(properties.get("BillingMode", "PROVISIONED")),
            provisioned_throughput=_with_int_values(properties.get("ProvisionedThroughput")),
            ttl_attribute=str(ttl["AttributeName"]) if ttl_enabled and "AttributeName" in ttl else None,
        )

    def queues(self) -> list[QueueDefinition]:
        """Every SQS queue of the template, ordered so that a queue comes after the queues it references."""
        definitions = {
            logical_id: QueueDefinition(
                logical_id=logical_id,
                properties=resource.get("Properties", {}),
                dependencies=frozenset(_referenced_resources(resource.get("Properties", {}))),
            )
            for logical_id, resource in self.resources_of_type(QUEUE_TYPE).items()
        }
        ordered: list[QueueDefinition] = []
        placed: set[str] = set()
        visiting: set[str] = set()

        def place(logical_id: str) -> None:
            if logical_id in placed:
                return
            if logical_id in visiting:
                raise TemplateError(f"queues reference each other in a cycle through {logical_id}")
            visiting.add(logical_id)
            for dependency in sorted(definitions[logical_id].dependencies):
                if dependency in definitions:
                    place(dependency)
            visiting.discard(logical_id)
            placed.add(logical_id)
            ordered.append(definitions[logical_id])

        for logical_id in definitions:
            place(logical_id)
        return ordered

    def queue_attributes(
        self, queue: QueueDefinition, created: Mapping[str, ResourceValues]
    ) -> dict[str, str]:
        """SQS CreateQueue attributes of a queue, resolved against the resources created so far."""
        properties = self.resolve(dict(queue.properties), created)
        attributes: dict[str, str] = {}
        for name in _SQS_ATTRIBUTES:
            if name in properties:
                attributes[name] = _sqs_attribute_value(properties[name])
        return attributes

    def function_environment(self, logical_id: str, created: Mapping[str, ResourceValues]) -> dict[str, str]:
        """A function's environment variables (Globals first, then its own), resolved."""
        resource = self._function(logical_id)
        global_variables = (
            self.document.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        )
        own_variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        environment: dict[str, str] = {}
        for name, value in {**global_variables, **own_variables}.items():
            resolved = self.resolve(value, created)
            if resolved is not NO_VALUE:
                environment[str(name)] = _scalar_text(resolved)
        return environment

    def function_settings(self, logical_id: str) -> FunctionSettings:
        """A function's CodeUri, Handler, Timeout and MemorySize (its own, else Globals, else defaults)."""
        resource = self._function(logical_id)
        code_uri = self._function_property(resource, "CodeUri", None)
        handler = self._function_property(resource, "Handler", None)
        if not isinstance(code_uri, str) or not code_uri:
            raise TemplateError(
                f"{logical_id}: CodeUri must be a local directory to run the function locally"
            )
        if not isinstance(handler, str) or "." not in handler:
            raise TemplateError(f"{logical_id}: Handler must be module.function, not {handler!r}")
        return FunctionSettings(
            logical_id=logical_id,
            code_dir=(self.base_dir / code_uri).resolve(),
            handler=handler,
            timeout_seconds=_whole_number(
                self._function_property(resource, "Timeout", DEFAULT_FUNCTION_TIMEOUT_SECONDS),
                f"{logical_id}.Timeout",
            ),
            memory_size_mb=_whole_number(
                self._function_property(resource, "MemorySize", DEFAULT_FUNCTION_MEMORY_SIZE_MB),
                f"{logical_id}.MemorySize",
            ),
            layer_dirs=self._layer_dirs(logical_id, resource),
        )

    def _layer_dirs(self, logical_id: str, resource: Mapping[str, Any]) -> tuple[Path, ...]:
        """The local directories of a function's Layers (each a !Ref to a LayerVersion of the template)."""
        properties = resource.get("Properties", {})
        layers = properties.get(
            "Layers", self.document.get("Globals", {}).get("Function", {}).get("Layers", [])
        )
        directories: list[Path] = []
        for layer in layers or []:
            name = layer.get("Ref") if isinstance(layer, dict) else None
            declared = self.resources.get(str(name)) if name else None
            content_uri = (declared or {}).get("Properties", {}).get("ContentUri")
            if declared is None or declared.get("Type") != LAYER_TYPE or not isinstance(content_uri, str):
                raise TemplateError(
                    f"{logical_id}: layer {layer!r} is not a LayerVersion of the template with a local "
                    "ContentUri, so it cannot run locally"
                )
            directories.append((self.base_dir / content_uri).resolve())
        return tuple(directories)

    def scheduled_functions(self, created: Mapping[str, ResourceValues]) -> dict[str, str]:
        """Function logical id -> the schedule expression of its (enabled) Schedule event."""
        scheduled: dict[str, str] = {}
        for function_id, resource in self.resources_of_type(FUNCTION_TYPE).items():
            for event_name, event in resource.get("Properties", {}).get("Events", {}).items():
                if event.get("Type") != "Schedule":
                    continue
                properties = self.resolve(event.get("Properties", {}), created)
                if str(properties.get("Enabled", "true")).lower() == "false":
                    continue
                expression = properties.get("Schedule")
                if not isinstance(expression, str) or function_id in scheduled:
                    raise TemplateError(
                        f"{function_id}.Events.{event_name}: one Schedule expression a function runs locally"
                    )
                scheduled[function_id] = expression
        return scheduled

    def sqs_event_sources(self, created: Mapping[str, ResourceValues]) -> list[SqsEventSource]:
        """Every enabled SQS event of every function, in template order; Queue must be a created queue."""
        sources: list[SqsEventSource] = []
        for function_id, resource in self.resources_of_type(FUNCTION_TYPE).items():
            for event_name, event in resource.get("Properties", {}).get("Events", {}).items():
                if event.get("Type") != "SQS":
                    continue
                where = f"{function_id}.Events.{event_name}"
                properties = self.resolve(event.get("Properties", {}), created)
                if str(properties.get("Enabled", "true")).lower() == "false":
                    continue
                scaling = properties.get("ScalingConfig") or {}
                concurrency = scaling.get("MaximumConcurrency")
                sources.append(
                    SqsEventSource(
                        function_logical_id=function_id,
                        event_name=event_name,
                        queue_logical_id=_created_with_arn(
                            properties.get("Queue"), created, f"{where}.Queue"
                        ),
                        batch_size=_whole_number(
                            properties.get("BatchSize", DEFAULT_SQS_BATCH_SIZE), f"{where}.BatchSize"
                        ),
                        maximum_batching_window_seconds=_whole_number(
                            properties.get("MaximumBatchingWindowInSeconds", 0),
                            f"{where}.MaximumBatchingWindowInSeconds",
                        ),
                        maximum_concurrency=(
                            None
                            if concurrency is None
                            else _whole_number(concurrency, f"{where}.ScalingConfig.MaximumConcurrency")
                        ),
                        report_batch_item_failures="ReportBatchItemFailures"
                        in properties.get("FunctionResponseTypes", []),
                    )
                )
        return sources

    def dead_letter_queue(self, queue_logical_id: str, created: Mapping[str, ResourceValues]) -> str | None:
        """The logical id of the queue a queue's RedrivePolicy moves messages to, or None without one."""
        resource = self.resources.get(queue_logical_id)
        if resource is None or resource.get("Type") != QUEUE_TYPE:
            raise TemplateError(f"{queue_logical_id} is not a queue of the template")
        redrive_policy = self.resolve(resource.get("Properties", {}).get("RedrivePolicy"), created)
        if not isinstance(redrive_policy, dict):
            return None
        return _created_with_arn(
            redrive_policy.get("deadLetterTargetArn"), created, f"{queue_logical_id}.RedrivePolicy"
        )

    def _function(self, logical_id: str) -> Mapping[str, Any]:
        resource = self.resources.get(logical_id)
        if resource is None or resource.get("Type") != FUNCTION_TYPE:
            raise TemplateError(f"{logical_id} is not a function of the template")
        return resource

    def _function_property(self, resource: Mapping[str, Any], name: str, default: Any) -> Any:
        """A function property, else the one of Globals.Function, else `default`; resolved."""
        properties = resource.get("Properties", {})
        if name in properties:
            return self.resolve(properties[name])
        global_properties = self.document.get("Globals", {}).get("Function", {})
        return self.resolve(global_properties.get(name, default))

    # ------------------------------------------------------------------ parameters and conditions

    def parameter(self, name: str) -> Any:
        """A parameter's value: the override if given, else its Default (a Number becomes int/float)."""
        declared = self.document.get("Parameters", {}).get(name)
        if declared is None:
            raise TemplateError(f"unknown parameter {name}")
        if name in self._parameter_overrides:
            value = self._parameter_overrides[name]
        elif "Default" in declared:
            value = declared["Default"]
        else:
            raise TemplateError(f"parameter {name} has no Default and no local value")
        if declared.get("Type") == "Number" and isinstance(value, str):
            return float(value) if "." in value else int(value)
        return value

    def condition(self, name: str) -> bool:
        if name not in self._condition_values:
            conditions = self.document.get("Conditions", {})
            if name not in conditions:
                raise TemplateError(f"unknown condition {name}")
            self._condition_values[name] = bool(self.resolve(conditions[name]))
        return self._condition_values[name]

    # ------------------------------------------------------------------ intrinsic functions

    def resolve(self, value: Any, created: Mapping[str, ResourceValues] | None = None) -> Any:
        """Resolve intrinsic functions in a value; `created` gives Ref/GetAtt of resources that exist."""
        created = created or {}
        if isinstance(value, list):
            items = [self.resolve(item, created) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key.startswith("Fn::") or (key in ("Ref", "Condition") and isinstance(argument, str)):
                return self._intrinsic(key, argument, created)
        resolved = {key: self.resolve(item, created) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _intrinsic(self, function: str, argument: Any, created: Mapping[str, ResourceValues]) -> Any:
        if function == "Ref":
            return self._ref(str(argument), created)
        if function == "Condition":
            return self.condition(str(argument))
        if function == "Fn::GetAtt":
            parts = argument.split(".", 1) if isinstance(argument, str) else argument
            return self._get_att(str(parts[0]), str(parts[1]), created)
        if function == "Fn::Sub":
            return self._sub(argument, created)
        if function == "Fn::If":
            condition_name, when_true, when_false = argument
            return self.resolve(when_true if self.condition(str(condition_name)) else when_false, created)
        if function == "Fn::Equals":
            left, right = (self.resolve(item, created) for item in argument)
            return _scalar_text(left) == _scalar_text(right)
        if function == "Fn::Not":
            return not self.resolve(argument[0], created)
        if function == "Fn::And":
            return all(self.resolve(item, created) for item in argument)
        if function == "Fn::Or":
            return any(self.resolve(item, created) for item in argument)
        if function == "Fn::Join":
            delimiter, items = argument
            return str(delimiter).join(_scalar_text(item) for item in self.resolve(items, created))
        if function == "Fn::Select":
            index, items = argument
            return self.resolve(items, created)[int(self.resolve(index, created))]
        if function == "Fn::Split":
            delimiter, text = argument
            return _scalar_text(self.resolve(text, created)).split(str(delimiter))
        if function == "Fn::FindInMap":
            map_name, top_key, second_key = (_scalar_text(self.resolve(item, created)) for item in argument)
            try:
                return self.document["Mappings"][map_name][top_key][second_key]
            except KeyError as error:
                raise TemplateError(f"Fn::FindInMap: no {map_name}/{top_key}/{second_key}") from error
        if function == "Fn::Base64":
            text = _scalar_text(self.resolve(argument, created))
            return base64.b64encode(text.encode("utf-8")).decode("ascii")
        raise TemplateError(f"{function} cannot be resolved locally")

    def _ref(self, name: str, created: Mapping[str, ResourceValues]) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": (
                f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/local"
            ),
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.document.get("Parameters", {}):
            return self.parameter(name)
        if name in created:
            return created[name].ref
        if name in self.resources:
            raise TemplateError(f"!Ref {name}: that resource does not exist locally (yet)")
        raise TemplateError(f"!Ref {name}: no such parameter or resource")

    def _get_att(self, logical_id: str, attribute: str, created: Mapping[str, ResourceValues]) -> str:
        if logical_id not in created:
            raise TemplateError(
                f"!GetAtt {logical_id}.{attribute}: that resource does not exist locally (yet)"
            )
        attributes = created[logical_id].attributes
        if attribute not in attributes:
            raise TemplateError(f"!GetAtt {logical_id}.{attribute}: attribute not known locally")
        return attributes[attribute]

    def _sub(self, argument: Any, created: Mapping[str, ResourceValues]) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], argument[1]
        else:
            text, variables = argument, {}
        local_values = {name: self.resolve(value, created) for name, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in local_values:
                return _scalar_text(local_values[expression])
            if "." in expression and not expression.startswith("AWS::"):
                logical_id, attribute = expression.split(".", 1)
                return self._get_att(logical_id, attribute, created)
            return _scalar_text(self._ref(expression, created))

        return _SUB_VARIABLE.sub(replace, str(text))


def load_template(path: Path = TEMPLATE_PATH, **options: Any) -> Template:
    """Load template.yaml (or another template) for local resolution."""
    return Template.load(path, **options)


def _referenced_resources(value: Any) -> set[str]:
    """Logical ids named by Ref/GetAtt/Sub anywhere in a value (parameters are filtered by the caller)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= _referenced_resources(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(str(item.split(".", 1)[0] if isinstance(item, str) else item[0]))
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                found |= {name.split(".", 1)[0] for name in _SUB_VARIABLE.findall(str(text))}
                if isinstance(item, list):
                    found |= _referenced_resources(item[1])
            else:
                found |= _referenced_resources(item)
    return found


def _created_with_arn(arn: Any, created: Mapping[str, ResourceValues], where: str) -> str:
    """The logical id of the created resource whose Arn is `arn` (e.g. what !GetAtt Queue.Arn gives)."""
    for logical_id, values in created.items():
        if arn and values.attributes.get("Arn") == arn:
            return logical_id
    raise TemplateError(f"{where}: {arn!r} is not the ARN of a resource created locally")


def _whole_number(value: Any, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as error:
        raise TemplateError(f"{where}: {value!r} is not a whole number") from error


def _with_int_values(value: Any) -> Any:
    """Capacity units written as strings in the template ("5") become ints, as the DynamoDB API wants."""
    if isinstance(value, list):
        return [_with_int_values(item) for item in value]
    if isinstance(value, dict):
        return {
            key: int(item) if key in _CAPACITY_KEYS and isinstance(item, str) else _with_int_values(item)
            for key, item in value.items()
        }
    return value


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _sqs_attribute_value(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return _scalar_text(value)
