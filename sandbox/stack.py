"""The local stack: every stand-in the integration needs, on 127.0.0.1, started by one command.

    python -m sandbox.stack            (make stack)   Ctrl-C stops everything it started

Parts start in order and stop in reverse; each part publishes what it offers into the stack info,
which is written to <state dir>/stack.json once everything is ready. New parts are added in
default_parts().

The intake (behind the local API) runs in this process, with its environment applied to os.environ
while the stack runs. The SQS workers run like Lambda's: the queue poller gives every concurrency slot
of a function its own process (sandbox.lambda_runtime) with the function's environment, killed when an
invocation passes its timeout or when a crash plan (sandbox.crash_plan) says so.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import json
import os
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from sandbox.aws_local import (
    LOCAL_ACCESS_KEY_ID,
    LOCAL_REGION,
    LOCAL_SECRET_ACCESS_KEY,
    MotoServer,
    create_queues,
    create_tables,
    dynamodb_client,
    put_secret,
    secretsmanager_client,
    sqs_client,
    start_moto_server,
)
from sandbox.crash_plan import PLAN_FILE_NAME, Crash, CrashPlan, PlannedCrash
from sandbox.dynamodb_local import DynamoDBLocal, start_dynamodb_local
from sandbox.lambda_runtime import FunctionRuntime, InvocationResult
from sandbox.poller import EventSourceMapping, QueuePoller, SlotStartError
from sandbox.schedules import ScheduledFunction
from sandbox.template_resources import (
    TEMPLATE_PATH,
    FunctionSettings,
    ResourceValues,
    Template,
    TemplateError,
)
from sandbox.tls import create_local_tls

if TYPE_CHECKING:
    from sandbox.intacct.server import IntacctSandbox
    from sandbox.local_api import LocalApi
    from sandbox.salesforce.server import SalesforceSandbox

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STATE_DIR = REPO_ROOT / ".local"
STATE_DIR_VARIABLE = "SFINTACCT_STATE_DIR"
STACK_FILE_NAME = "stack.json"
NAME_PREFIX = "sfintacct-local"
MAX_VISIBILITY_TIMEOUT_SECONDS = 43200  # SQS's limit
SETTLE_SECONDS = 60.0  # how long wait_until_settled waits by default


class StackStartError(Exception):
    """A part of the local stack could not start (the message says what is missing or wrong)."""


class StackContext:
    """What parts share while the stack starts: state dir, TLS files, ports, template and the info."""

    def __init__(
        self,
        *,
        state_dir: Path,
        template: Template,
        ports: Mapping[str, int],
        ephemeral: bool,
        region: str,
        name_prefix: str,
        queue_visibility_seconds: int | None = None,
        mapping_file: Path | None = None,
        schedule_seconds: float | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.template = template
        self.region = region
        self.name_prefix = name_prefix
        # None: the queues get the template's VisibilityTimeout; else every queue gets this one.
        self.queue_visibility_seconds = queue_visibility_seconds
        # None: the workers read the layer's mapping.toml; else this file (SFINTACCT_MAPPING_FILE).
        self.mapping_file = mapping_file
        # None: scheduled functions run only when asked (WorkersPart.run_scheduled); else this often.
        self.schedule_seconds = schedule_seconds
        self.tls = create_local_tls(state_dir / "tls")
        self.info: dict[str, Any] = {"region": region, "ca_file": str(self.tls.ca_file)}
        self.resources: dict[str, ResourceValues] = {}
        # Template parameter values: those given to start_local_stack, then those the parts publish.
        self.parameters: dict[str, str] = {}
        self._ports = dict(ports)
        self._ephemeral = ephemeral

    def port(self, part_name: str, default: int) -> int:
        """The port a part listens on: an explicit one, else 0 for an ephemeral stack, else its default."""
        if part_name in self._ports:
            return self._ports[part_name]
        return 0 if self._ephemeral else default

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def log_path(self, part_name: str) -> Path:
        return self.log_dir / f"{part_name}.log"

    def resolved_template(self) -> Template:
        """The template with every parameter value known so far (overrides included)."""
        return self.template.with_parameters(self.parameters)

    def put_secret(self, key: str, value: Mapping[str, str | list[str]]) -> str:
        """Store a JSON secret in the local Secrets Manager; its ARN goes to info["secrets"][key]."""
        endpoint = self.info.get("secretsmanager_endpoint")
        if not endpoint:
            raise StackStartError(
                f"secret {key!r}: the moto part must start before the parts that store secrets"
            )
        arn = put_secret(secretsmanager_client(endpoint, self.region), f"{self.name_prefix}/{key}", value)
        self.info.setdefault("secrets", {})[key] = arn
        return arn

    def aws_environment(self) -> dict[str, str]:
        """Environment variables that point boto3 (in handlers, tools, tests) at the local services."""
        environment = {
            "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }
        endpoints = {
            "AWS_ENDPOINT_URL_DYNAMODB": "dynamodb_endpoint",
            "AWS_ENDPOINT_URL_SQS": "sqs_endpoint",
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": "secretsmanager_endpoint",
        }
        for variable, key in endpoints.items():
            if key in self.info:
                environment[variable] = str(self.info[key])
        return environment

    def function_environment(
        self, logical_id: str, parameters: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """A function's environment from template.yaml, resolved to the local resources, plus the AWS one.

        Template parameters without a default come from the parts that started so far (e.g.
        IntacctSecretArn, IntacctEndpointUrl) or from `parameters`.
        """
        template = self.template.with_parameters({**self.parameters, **(parameters or {})})
        return {**template.function_environment(logical_id, self.resources), **self.aws_environment()}


class StackPart(Protocol):
    """One piece of the local stack."""

    name: str

    def start(self, context: StackContext) -> None:
        """Start and publish into context.info (and context.resources / context.parameters)."""

    def stop(self) -> None:
        """Stop whatever start() started; safe to call after a partial or failed start, and twice."""

    def summary(self) -> list[str]:
        """Lines for the readiness summary."""

    def pids(self) -> list[int]:
        """Child processes this part runs (for diagnostics and tests)."""


# ---------------------------------------------------------------------------- parts


class DynamoDBPart:
    """DynamoDB Local with every table of the template."""

    name = "dynamodb"
    default_port = 8000

    def __init__(self) -> None:
        self._server: DynamoDBLocal | None = None
        self._tables: dict[str, str] = {}

    def start(self, context: StackContext) -> None:
        self._server = start_dynamodb_local(
            context.port(self.name, self.default_port), log_path=context.log_path("dynamodb-local")
        )
        client = dynamodb_client(self._server.endpoint, context.region)
        tables = create_tables(client, context.resolved_template(), context.name_prefix)
        context.resources.update(tables)
        self._tables = {logical_id: values.ref for logical_id, values in tables.items()}
        context.info["dynamodb_endpoint"] = self._server.endpoint
        context.info["tables"] = self._tables

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def summary(self) -> list[str]:
        if self._server is None:
            return []
        tables = ", ".join(self._tables.values())
        return [f"DynamoDB Local   {self._server.endpoint}   (pid {self._server.pid})   tables: {tables}"]

    def pids(self) -> list[int]:
        return [self._server.pid] if self._server and self._server.process.is_running() else []


class MotoPart:
    """moto server (SQS, Secrets Manager) with every queue of the template."""

    name = "moto"
    default_port = 5000

    def __init__(self) -> None:
        self._server: MotoServer | None = None
        self._queues: dict[str, str] = {}

    def start(self, context: StackContext) -> None:
        self._server = start_moto_server(
            context.port(self.name, self.default_port), log_path=context.log_path("moto-server")
        )
        template = context.resolved_template()
        if context.queue_visibility_seconds is not None:
            template = template.with_queue_properties({"VisibilityTimeout": context.queue_visibility_seconds})
        queues = create_queues(
            sqs_client(self._server.endpoint, context.region), template, context.name_prefix
        )
        context.resources.update(queues)
        self._queues = {logical_id: values.ref for logical_id, values in queues.items()}
        context.info["sqs_endpoint"] = self._server.endpoint
        context.info["secretsmanager_endpoint"] = self._server.endpoint
        context.info["queues"] = self._queues
        context.info.setdefault("secrets", {})

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def summary(self) -> list[str]:
        if self._server is None:
            return []
        queues = ", ".join(url.rsplit("/", 1)[-1] for url in self._queues.values())
        return [f"SQS + Secrets    {self._server.endpoint}   (pid {self._server.pid})   queues: {queues}"]

    def pids(self) -> list[int]:
        return [self._server.pid] if self._server and self._server.process.is_running() else []


class IntacctPart:
    """The Intacct XML gateway sandbox over HTTPS, with generated credentials stored as a secret."""

    name = "intacct"
    default_port = 8444

    def __init__(self) -> None:
        self._sandbox: IntacctSandbox | None = None

    def start(self, context: StackContext) -> None:
        from sandbox.intacct.server import (  # noqa: PLC0415 - loaded only when this part starts
            IntacctSandboxCredentials,
            start_intacct_sandbox,
        )

        credentials = IntacctSandboxCredentials.generate()
        port = context.port(self.name, self.default_port)
        try:
            self._sandbox = start_intacct_sandbox(
                ssl_context=context.tls.server_context(), credentials=credentials, port=port
            )
        except OSError as error:
            raise StackStartError(
                f"the Intacct sandbox cannot listen on 127.0.0.1:{port}: {error}"
            ) from error
        secret = {
            "sender_id": credentials.sender_id,
            "sender_password": credentials.sender_password,
            "company_id": credentials.company_id,
            "user_id": credentials.user_id,
            "user_password": credentials.user_password,
        }
        arn = context.put_secret("intacct", secret)
        context.parameters["IntacctSecretArn"] = arn
        context.parameters["IntacctEndpointUrl"] = self._sandbox.gateway_url
        context.info["intacct"] = {
            "endpoint": self._sandbox.gateway_url,
            **secret,
            "ca_file": str(context.tls.ca_file),
            "admin_url": self._sandbox.admin_url,
        }

    def stop(self) -> None:
        if self._sandbox is not None:
            self._sandbox.stop()
            self._sandbox = None

    def summary(self) -> list[str]:
        if self._sandbox is None:
            return []
        return [f"Intacct sandbox  {self._sandbox.gateway_url}   admin: {self._sandbox.admin_url}"]

    def pids(self) -> list[int]:
        return []


class SalesforcePart:
    """The Salesforce sandbox over HTTPS: a generated org, connected app and JWT key, and the secret.

    The org is set up from the Salesforce package in salesforce/ (or `package_dir`): its custom fields
    and objects, and (once the local API runs) its Outbound Messages.
    """

    name = "salesforce"
    default_port = 8443

    def __init__(self, package_dir: Path | None = None) -> None:
        self._sandbox: SalesforceSandbox | None = None
        self._package_dir = package_dir

    @property
    def sandbox(self) -> SalesforceSandbox:
        if self._sandbox is None:
            raise StackStartError("the Salesforce sandbox has not started")
        return self._sandbox

    def start(self, context: StackContext) -> None:
        from sandbox.salesforce.oauth import (  # noqa: PLC0415 - loaded only when this part starts
            SalesforceSandboxCredentials,
            create_jwt_signing_key,
        )
        from sandbox.salesforce.server import start_salesforce_sandbox  # noqa: PLC0415

        signing_key = create_jwt_signing_key()
        key_file = context.state_dir / "salesforce-jwt-key.pem"
        key_file.write_text(signing_key.private_key_pem)
        key_file.chmod(0o600)
        credentials = SalesforceSandboxCredentials.generate(signing_key.certificate_pem)
        port = context.port(self.name, self.default_port)
        try:
            self._sandbox = start_salesforce_sandbox(
                ssl_context=context.tls.server_context(),
                credentials=credentials,
                port=port,
                package_dir=self._package_dir,
            )
        except ValueError as error:  # PackageError included
            raise StackStartError(f"the Salesforce sandbox cannot be set up: {error}") from error
        except OSError as error:
            raise StackStartError(
                f"the Salesforce sandbox cannot listen on 127.0.0.1:{port}: {error}"
            ) from error
        sandbox = self._sandbox
        arn = context.put_secret(
            "salesforce",
            {
                "client_id": credentials.client_id,
                "client_secret": credentials.client_secret,
                "username": credentials.username,
                "login_url": sandbox.instance_url,
            },
        )
        context.parameters.update(
            {
                "SalesforceSecretArn": arn,
                "SalesforceOrgIds": credentials.org_id,
                "SalesforceIntegrationUserId": credentials.integration_user_id,
                "SalesforceApiVersion": sandbox.api_version,
            }
        )
        context.info["salesforce"] = {
            "instance_url": sandbox.instance_url,
            "token_url": sandbox.token_url,
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
            "org_id": credentials.org_id,
            "api_version": sandbox.api_version,
            "ca_file": str(context.tls.ca_file),
            "admin_url": sandbox.admin_url,
            "username": credentials.username,
            "integration_user_id": credentials.integration_user_id,
            "jwt_private_key_file": str(key_file),
        }

    def stop(self) -> None:
        if self._sandbox is not None:
            self._sandbox.stop()
            self._sandbox = None

    def summary(self) -> list[str]:
        if self._sandbox is None:
            return []
        return [f"Salesforce sandbox {self._sandbox.instance_url}   admin: {self._sandbox.admin_url}"]

    def pids(self) -> list[int]:
        return []


class LocalApiPart:
    """The local API in front of the intake handler, and the Outbound Messages that call it.

    The intake runs in this process with the environment template.yaml gives IntakeFunction, resolved
    to the local resources. The Salesforce sandbox gets the Outbound Messages of the Salesforce package,
    as the deploy sets them up, with this API's URL in place of their endpoint variable
    (SFINTACCT_OUTBOUND_URL): Account on create or update (not for the integration user's own
    write-backs) and Opportunity when it becomes won.
    """

    name = "api"
    default_port = 3000

    def __init__(self, salesforce: SalesforcePart) -> None:
        self._salesforce = salesforce
        self._api: LocalApi | None = None
        self._environment = EnvironmentChanges()

    def start(self, context: StackContext) -> None:
        from sandbox.local_api import load_intake_handler, start_local_api  # noqa: PLC0415

        # The intake takes an Outbound Message only with a token of its secret (or a trusted client
        # certificate); the package's Outbound Messages carry it in their endpoint, as in production.
        outbound_token = secrets.token_urlsafe(32)
        intake_secret_arn = context.put_secret(
            "intake",
            {"event_signing_key": secrets.token_hex(32), "outbound_message_tokens": [outbound_token]},
        )
        intake_environment = context.function_environment(
            "IntakeFunction", {"IntakeSecretArn": intake_secret_arn}
        )
        self._environment.apply(intake_environment)
        port = context.port(self.name, self.default_port)
        try:
            self._api = start_local_api(load_intake_handler(), port=port)
        except OSError as error:
            raise StackStartError(f"the local API cannot listen on 127.0.0.1:{port}: {error}") from error
        context.info["api_url"] = self._api.url
        outbound_url = f"{self._api.url}/salesforce/outbound?token={outbound_token}"
        context.info["outbound_url"] = outbound_url
        sandbox = self._salesforce.sandbox
        # Every endpoint variable of the package's Outbound Messages is this API, with the token.
        variables = {
            message.endpoint_variable: outbound_url
            for message in sandbox.package.outbound_messages
            if message.endpoint_variable is not None
        }
        try:
            sandbox.set_outbound_messages(sandbox.package_outbound_messages(variables))
        except ValueError as error:
            raise StackStartError(f"the package's Outbound Messages cannot be set up: {error}") from error

    def stop(self) -> None:
        if self._api is not None:
            self._api.stop()
            self._api = None
        # The intake ran in this process: give the process its own environment back.
        self._environment.restore()

    def summary(self) -> list[str]:
        if self._api is None:
            return []
        return [f"Local API        {self._api.url}/salesforce/outbound  and  /salesforce/events"]

    def pids(self) -> list[int]:
        return []


# Concurrency of an SQS event without ScalingConfig.MaximumConcurrency (Lambda would scale out further).
DEFAULT_WORKER_CONCURRENCY = 2
# Powertools metrics need a namespace; this one is used when the template gives none.
LOCAL_METRICS_NAMESPACE = "SfIntacctLocal"
ORDER_FUNCTION = "OpportunityToOrderFunction"
# What a worker process takes from this process's environment (the rest is the function's own).
INHERITED_VARIABLES = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ")
# Worker processes read no AWS config or credential file of the machine, nor instance metadata.
ISOLATION_VARIABLES = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


class WorkersPart:
    """The template's SQS-triggered functions, run by the queue poller like Lambda runs them.

    Each function with an SQS event gets what Lambda's event source mapping would give it: its queue
    (Queue: !GetAtt X.Arn), BatchSize, MaximumBatchingWindowInSeconds, ScalingConfig.MaximumConcurrency,
    FunctionResponseTypes, and the function's Timeout and MemorySize, all resolved with the stack's
    parameter values (start_local_stack(parameters=...) included). The handler comes from CodeUri +
    Handler, the layers from Layers.

    Every concurrency slot is an execution environment of its own: a process (sandbox.lambda_runtime)
    that imports the handler once and serves invocation after invocation, killed with SIGKILL when an
    invocation passes the function timeout, and replaced by a fresh one (a cold start) whenever it dies.
    Its environment is the function's (template.yaml resolved to the local resources) plus
    INTACCT_CA_FILE and SALESFORCE_CA_FILE (the stack's CA) and a metrics namespace where the template
    gives none; nothing is shared with this process or the other functions. Its stdout and stderr go to
    <state dir>/logs/<LogicalId>-<slot>.log.

    With a local queue visibility timeout V, a function's timeout is cut to V, its Intacct HTTP timeout
    to max(1, V // 2), its Intacct retry budget to max(1, V // 3), and the order claim lease is set to
    outlast an attempt in flight: function timeout + Intacct timeout + 1.

    With a mapping file (start_local_stack(mapping_file=...)), every worker reads that file
    (SFINTACCT_MAPPING_FILE) instead of the layer's mapping.toml. A worker reads it again whenever it
    builds its sync service anew: when the service is older than SERVICE_MAX_AGE_SECONDS, and after a
    configuration fault. So a test may edit the file while the stack runs.

    crash_at() kills a worker process for real at a step of the sync (see sandbox.crash_plan).

    A function with a Schedule event (the finance run) gets one execution environment of its own
    (sandbox.schedules): run_scheduled(logical id) invokes it once and answers its result; with
    start_local_stack(schedule_seconds=S) it also runs every S seconds, one run at a time.
    """

    name = "workers"

    def __init__(self) -> None:
        self._poller: QueuePoller | None = None
        self._workers: dict[str, dict[str, Any]] = {}
        self._crash_plan: CrashPlan | None = None
        self._scheduled: dict[str, ScheduledFunction] = {}
        self._scheduled_info: dict[str, dict[str, Any]] = {}

    @property
    def poller(self) -> QueuePoller:
        if self._poller is None:
            raise StackStartError("the workers part has not started")
        return self._poller

    @property
    def crash_plan(self) -> CrashPlan:
        if self._crash_plan is None:
            raise StackStartError("the workers part has not started")
        return self._crash_plan

    def start(self, context: StackContext) -> None:
        endpoint = context.info.get("sqs_endpoint")
        if not endpoint:
            raise StackStartError("workers: the moto part must start before the workers part")
        self._crash_plan = CrashPlan(context.state_dir / PLAN_FILE_NAME)
        self._crash_plan.reset()
        template = context.resolved_template()
        mappings: list[EventSourceMapping] = []
        try:
            sources = template.sqs_event_sources(context.resources)
            functions = {
                source.function_logical_id: template.function_settings(source.function_logical_id)
                for source in sources
            }
            if len(functions) < len(sources):
                raise StackStartError("workers: a function with more than one SQS event cannot run locally")
            for source in sources:
                function = functions[source.function_logical_id]
                timeout_seconds = function.timeout_seconds
                if context.queue_visibility_seconds is not None:
                    timeout_seconds = min(timeout_seconds, context.queue_visibility_seconds)
                concurrency = source.maximum_concurrency or DEFAULT_WORKER_CONCURRENCY
                runtime = FunctionRuntime(
                    function_name=function.logical_id,
                    code_dir=function.code_dir,
                    handler=function.handler,
                    environment=self._environment(context, function, timeout_seconds),
                    log_dir=context.log_dir,
                    crash_plan=self._crash_plan.path,
                )
                queue_url = context.resources[source.queue_logical_id].ref
                mappings.append(
                    EventSourceMapping(
                        function_name=function.logical_id,
                        queue_url=queue_url,
                        runtime=runtime,
                        batch_size=source.batch_size,
                        maximum_batching_window_seconds=source.maximum_batching_window_seconds,
                        maximum_concurrency=concurrency,
                        function_timeout_seconds=timeout_seconds,
                        memory_size_mb=function.memory_size_mb,
                        report_batch_item_failures=source.report_batch_item_failures,
                    )
                )
                dead_letter_queue = template.dead_letter_queue(source.queue_logical_id, context.resources)
                self._workers[function.logical_id] = {
                    "queue_url": queue_url,
                    "dead_letter_queue_url": (
                        context.resources[dead_letter_queue].ref if dead_letter_queue is not None else None
                    ),
                    "batch_size": source.batch_size,
                    "maximum_batching_window_seconds": source.maximum_batching_window_seconds,
                    "maximum_concurrency": concurrency,
                    "timeout_seconds": timeout_seconds,
                    "log_files": [str(runtime.log_path(slot)) for slot in range(concurrency)],
                }
        except TemplateError as error:
            raise StackStartError(f"workers: {error}") from error
        poller = QueuePoller(sqs_client(endpoint, context.region), mappings, context.region)
        try:
            poller.start()
        except SlotStartError as error:
            function = functions[error.function_name]
            raise StackStartError(
                f"workers: cannot load {function.logical_id}'s handler {function.handler} from "
                f"{function.code_dir}: {error}"
            ) from error
        self._poller = poller
        self._start_scheduled(context, template)
        context.info["workers"] = self._workers
        context.info["crash_plan_file"] = str(self._crash_plan.path)

    def _start_scheduled(self, context: StackContext, template: Template) -> None:
        try:
            expressions = template.scheduled_functions(context.resources)
            for function_id, expression in expressions.items():
                function = template.function_settings(function_id)
                runtime = FunctionRuntime(
                    function_name=function_id,
                    code_dir=function.code_dir,
                    handler=function.handler,
                    environment=self._environment(context, function, function.timeout_seconds),
                    log_dir=context.log_dir,
                )
                scheduled = ScheduledFunction(
                    runtime,
                    timeout_seconds=function.timeout_seconds,
                    region=context.region,
                    period_seconds=context.schedule_seconds,
                )
                scheduled.start()
                self._scheduled[function_id] = scheduled
                self._scheduled_info[function_id] = {
                    "schedule": expression,
                    "local_period_seconds": context.schedule_seconds,
                    "timeout_seconds": function.timeout_seconds,
                    "log_files": [str(runtime.log_path(0))],
                }
        except TemplateError as error:
            raise StackStartError(f"workers: {error}") from error
        context.info["scheduled"] = self._scheduled_info

    def run_scheduled(self, function_id: str) -> InvocationResult:
        """Invoke a scheduled function once, as its schedule would (after a run in progress ends)."""
        if function_id not in self._scheduled:
            raise ValueError(f"no scheduled function {function_id!r}; there are {', '.join(self._scheduled)}")
        return self._scheduled[function_id].run_now()

    @staticmethod
    def _environment(
        context: StackContext, function: FunctionSettings, timeout_seconds: int
    ) -> dict[str, str]:
        """A worker process's whole environment."""
        short_timeouts: dict[str, str] = {}
        if context.queue_visibility_seconds is not None:
            intacct_timeout = max(1, context.queue_visibility_seconds // 2)
            short_timeouts = {
                "INTACCT_TIMEOUT_SECONDS": str(intacct_timeout),
                "INTACCT_RETRY_BUDGET_SECONDS": str(max(1, context.queue_visibility_seconds // 3)),
                # Longer than an attempt can be in flight, so a live attempt never loses its claim.
                "ORDER_CLAIM_LEASE_SECONDS": str(timeout_seconds + intacct_timeout + 1),
                # A failed message waits the local visibility timeout, then twice as long each time.
                "RETRY_FIRST_DELAY_SECONDS": str(context.queue_visibility_seconds),
                "RETRY_BACKOFF_FACTOR": "2",
                # Warm workers read the secrets again this often (5 minutes on AWS).
                "SERVICE_MAX_AGE_SECONDS": str(context.queue_visibility_seconds),
            }
        mapping = (
            {} if context.mapping_file is None else {"SFINTACCT_MAPPING_FILE": str(context.mapping_file)}
        )
        # The code directory comes first on sys.path (the working directory); then the layers, as
        # /opt/python on Lambda; then this repository, for the runtime (sandbox.lambda_runtime).
        python_path = [*(str(directory) for directory in function.layer_dirs), str(REPO_ROOT)]
        return {
            **{name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ},
            **ISOLATION_VARIABLES,
            "INTACCT_CA_FILE": str(context.tls.ca_file),
            "SALESFORCE_CA_FILE": str(context.tls.ca_file),
            "POWERTOOLS_METRICS_NAMESPACE": LOCAL_METRICS_NAMESPACE,
            **context.function_environment(function.logical_id),
            **short_timeouts,
            **mapping,
            "PYTHONPATH": os.pathsep.join(python_path),
        }

    # ------------------------------------------------------------------ crash plans

    def crash_at(
        self, step: str, function: str = ORDER_FUNCTION, record_id: str | None = None
    ) -> PlannedCrash:
        """Kill `function`'s worker process with SIGKILL when it reaches `step` (one of
        sfintacct.sync.service.CHECKPOINTS) for `record_id`, or for the next record when None.

        Exactly one process dies for each call; the returned PlannedCrash tells when (wait, happened,
        crash). The invocation ends as a kill in the poller stats; its messages come back after the
        queue's visibility timeout and a fresh process takes them.
        """
        from sfintacct.sync.service import CHECKPOINTS  # noqa: PLC0415 - only crash tests need it

        if step not in CHECKPOINTS:
            raise ValueError(f"unknown step {step!r}; the steps are {', '.join(CHECKPOINTS)}")
        if function not in self._workers:
            raise ValueError(f"no worker runs {function!r}; the workers are {', '.join(self._workers)}")
        return self.crash_plan.add(function, step, record_id)

    def crashes(self) -> list[Crash]:
        """Every kill a crash plan made so far, oldest first."""
        return self.crash_plan.crashes()

    def clear_crash_plan(self) -> None:
        """Forget the planned crashes that did not happen (the kills done stay on record)."""
        self.crash_plan.clear()

    def slot_pids(self) -> dict[str, list[int | None]]:
        """Per function, the process id of each slot (None while a slot has no process)."""
        return self.poller.slot_pids()

    # ------------------------------------------------------------------ part

    def stop(self) -> None:
        for scheduled in self._scheduled.values():
            scheduled.stop()
        if self._poller is not None:
            self._poller.stop()

    def summary(self) -> list[str]:
        if self._poller is None:
            return []
        pids = self._poller.slot_pids()
        return [
            f"Worker           {function_id} <- {worker['queue_url'].rsplit('/', 1)[-1]}   "
            f"batch {worker['batch_size']}, concurrency {worker['maximum_concurrency']}, "
            f"timeout {worker['timeout_seconds']} s   "
            f"(pids {', '.join(str(pid) for pid in pids.get(function_id, []))})   "
            f"logs: logs/{function_id}-<slot>.log"
            for function_id, worker in self._workers.items()
        ] + [
            f"Scheduled        {function_id} ({info['schedule']}; here "
            + (f"every {info['local_period_seconds']:g} s" if info["local_period_seconds"] else "when asked")
            + f")   logs: logs/{function_id}-0.log"
            for function_id, info in self._scheduled_info.items()
        ]

    def pids(self) -> list[int]:
        if self._poller is None:
            return []
        return [pid for pids in self._poller.slot_pids().values() for pid in pids if pid is not None]


class EnvironmentChanges:
    """Variables set in os.environ for in-process functions; restore() puts the earlier values back."""

    def __init__(self) -> None:
        self._earlier: dict[str, str | None] = {}

    def apply(self, variables: Mapping[str, str]) -> None:
        for name, value in variables.items():
            self._earlier.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def restore(self) -> None:
        for name, value in self._earlier.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._earlier = {}


def default_parts() -> list[StackPart]:
    """Every part of the local stack, in start order."""
    salesforce = SalesforcePart()
    return [DynamoDBPart(), MotoPart(), IntacctPart(), salesforce, LocalApiPart(salesforce), WorkersPart()]


# ---------------------------------------------------------------------------- the running stack


class LocalStack:
    """A started local stack: `.info` (the content of stack.json), `.stop()`, a context manager."""

    def __init__(self, *, context: StackContext, parts: Sequence[StackPart], stack_file: Path | None) -> None:
        self._context = context
        self.parts = list(parts)
        self.stack_file = stack_file
        self._stopped = False

    @property
    def info(self) -> dict[str, Any]:
        return self._context.info

    @property
    def state_dir(self) -> Path:
        return self._context.state_dir

    @property
    def ca_file(self) -> Path:
        return self._context.tls.ca_file

    @property
    def workers(self) -> WorkersPart:
        """The workers: crash_at(step, function, record_id), crashes(), slot_pids(), poller."""
        for part in self.parts:
            if isinstance(part, WorkersPart):
                return part
        raise LookupError("this local stack runs no workers part")

    @property
    def poller(self) -> QueuePoller:
        """The queue poller that runs the workers: wait_until_idle(timeout), stats(), invocations()."""
        return self.workers.poller

    def wait_until_settled(self, timeout: float = SETTLE_SECONDS) -> bool:
        """True once Salesforce has sent every Outbound Message and the workers have nothing left to do.

        Pending Outbound Messages are sent at once (not on their retry schedule); a write-back may make
        one more, so a quiet moment is checked twice.
        """
        from sandbox.salesforce.admin_client import SalesforceAdminClient  # noqa: PLC0415

        salesforce = self.info["salesforce"]
        admin = SalesforceAdminClient(salesforce["admin_url"], salesforce["ca_file"])

        def quiet(wait: float) -> bool:
            admin.flush_outbound()
            idle = self.poller.wait_until_idle(timeout=wait)
            return idle and not any(delivery["status"] == "pending" for delivery in admin.outbound())

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if quiet(max(0.1, deadline - time.monotonic())):
                time.sleep(0.3)
                if quiet(5.0):
                    return True
        return False

    def part(self, name: str) -> StackPart:
        for part in self.parts:
            if part.name == name:
                return part
        raise KeyError(name)

    def pids(self) -> list[int]:
        """Child processes of the stack that are running."""
        return [pid for part in self.parts for pid in part.pids()]

    def aws_environment(self) -> dict[str, str]:
        """Environment variables that point boto3 (in handlers, tools, tests) at the local services."""
        return self._context.aws_environment()

    def function_environment(
        self, logical_id: str, parameters: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """A function's environment from template.yaml, resolved to the local resources (see StackContext)."""
        return self._context.function_environment(logical_id, parameters)

    def summary(self) -> str:
        lines = [line for part in self.parts for line in part.summary()]
        if self.stack_file is not None:
            lines.append(f"stack file       {self.stack_file}")
        return "\n".join(lines)

    def stop(self) -> None:
        """Stop every part (in reverse order) and remove stack.json; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self.stack_file is not None:
            with contextlib.suppress(FileNotFoundError):
                self.stack_file.unlink()
        _stop_parts(self.parts)

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def start_local_stack(
    state_dir: Path | None = None,
    *,
    ports: Mapping[str, int] | None = None,
    ephemeral: bool = False,
    parts: Sequence[StackPart] | None = None,
    template_path: Path = TEMPLATE_PATH,
    region: str = LOCAL_REGION,
    write_stack_file: bool = True,
    queue_visibility_seconds: int | None = None,
    parameters: Mapping[str, str] | None = None,
    mapping_file: Path | None = None,
    schedule_seconds: float | None = None,
) -> LocalStack:
    """Start the local stack and return it running; on any failure everything started is stopped.

    `ports` maps part names ("dynamodb", "moto", "intacct", ...) to ports; `ephemeral=True` makes
    every other part pick a free port (tests). stack.json is written into `state_dir` when ready.
    `queue_visibility_seconds` gives every queue that VisibilityTimeout instead of the template's (so
    failed records come back within seconds) and cuts the workers' timeouts to it; None keeps the template's.
    `parameters` overrides template parameters, e.g. {"LogLevel": "WARNING"}.
    `mapping_file` is the field mapping the workers read (SFINTACCT_MAPPING_FILE) instead of the layer's
    mapping.toml; they read it again each time they rebuild their sync service, so edits reach warm
    workers (see WorkersPart). It must exist when the stack starts.
    `schedule_seconds` runs the scheduled functions (the finance run) every that many seconds; None runs
    them only when asked (`stack.workers.run_scheduled(logical id)`).
    """
    if (
        queue_visibility_seconds is not None
        and not 1 <= queue_visibility_seconds <= MAX_VISIBILITY_TIMEOUT_SECONDS
    ):
        raise ValueError(
            f"queue_visibility_seconds must be 1..{MAX_VISIBILITY_TIMEOUT_SECONDS}, "
            f"not {queue_visibility_seconds}"
        )
    if mapping_file is not None:
        mapping_file = mapping_file.resolve()
        if not mapping_file.is_file():
            raise ValueError(f"mapping_file {mapping_file} is not a file")
    state_dir = (state_dir or default_state_dir()).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        template = Template.load(template_path, region=region)
    except TemplateError as error:
        raise StackStartError(str(error)) from error
    context = StackContext(
        state_dir=state_dir,
        template=template,
        ports=ports or {},
        ephemeral=ephemeral,
        region=region,
        name_prefix=NAME_PREFIX,
        queue_visibility_seconds=queue_visibility_seconds,
        mapping_file=mapping_file,
        schedule_seconds=schedule_seconds,
    )
    context.parameters.update(parameters or {})
    chosen_parts = list(parts) if parts is not None else default_parts()
    started: list[StackPart] = []
    try:
        for part in chosen_parts:
            started.append(part)  # stop() is safe after a partial start
            part.start(context)
        stack_file = state_dir / STACK_FILE_NAME if write_stack_file else None
        if stack_file is not None:
            _write_private_json(stack_file, context.info)
    except BaseException:
        _stop_parts(started)
        raise
    return LocalStack(context=context, parts=started, stack_file=stack_file)


def default_state_dir() -> Path:
    configured = os.environ.get(STATE_DIR_VARIABLE)
    return Path(configured) if configured else DEFAULT_STATE_DIR


def read_stack_info(state_dir: Path | None = None) -> dict[str, Any]:
    """The stack.json of a running stack (raises FileNotFoundError if none is running there)."""
    path = (state_dir or default_state_dir()) / STACK_FILE_NAME
    info: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return info


SLOW_STOP_SECONDS = 3.0


def _stop_parts(parts: Sequence[StackPart]) -> None:
    """Stop parts in reverse order; a second Ctrl-C cannot interrupt this (no orphan processes)."""
    errors: list[str] = []
    with _signals_ignored():
        for part in reversed(parts):
            started_at = time.monotonic()
            try:
                part.stop()
            except Exception as error:
                errors.append(f"{part.name}: {error}")
            if (elapsed := time.monotonic() - started_at) > SLOW_STOP_SECONDS:
                print(f"stopping {part.name} took {elapsed:.1f} s", file=sys.stderr, flush=True)
    if errors:
        print("errors while stopping the local stack:\n  " + "\n  ".join(errors), file=sys.stderr)


def _write_private_json(path: Path, content: Mapping[str, Any]) -> None:
    """Write JSON readable by the owner only, atomically (readers never see half a file)."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(content, handle, indent=2, sort_keys=True)
            handle.write("\n")
        Path(temporary).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(temporary).unlink()
        raise


# ---------------------------------------------------------------------------- command line


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """Ignore SIGINT/SIGTERM for a moment (only the main thread can; elsewhere this does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _visibility_seconds(text: str) -> int:
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if not 1 <= seconds <= MAX_VISIBILITY_TIMEOUT_SECONDS:
        raise argparse.ArgumentTypeError(f"must be whole seconds, 1..{MAX_VISIBILITY_TIMEOUT_SECONDS}")
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.stack", description="Run the local stack in the foreground (Ctrl-C stops it)."
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help=f"where stack.json, TLS files and logs go (default: ${STATE_DIR_VARIABLE} or .local)",
    )
    parser.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="PART=PORT",
        help="override a part's port, e.g. --port dynamodb=8001 (0: any free port); repeatable",
    )
    parser.add_argument("--ephemeral", action="store_true", help="every part on a free port")
    parser.add_argument(
        "--visibility-timeout",
        type=_visibility_seconds,
        default=None,
        metavar="SECONDS",
        help="give every queue this visibility timeout instead of template.yaml's, so a failed record "
        "comes back after SECONDS; the workers' timeouts are cut to it (default: the template's)",
    )
    parser.add_argument(
        "--mapping-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="the field mapping the workers read instead of layers/sync/mapping.toml "
        "(SFINTACCT_MAPPING_FILE); edits reach running workers when they rebuild their service",
    )
    parser.add_argument(
        "--schedule-seconds",
        type=float,
        default=None,
        metavar="S",
        help="run the scheduled functions (the finance run) every S seconds; default: only when asked",
    )
    arguments = parser.parse_args(argv)
    try:
        ports = {name: int(port) for name, port in (item.split("=", 1) for item in arguments.port)}
    except ValueError:
        parser.error("--port takes PART=PORT, e.g. dynamodb=8001")

    # `kill -USR1 <pid>` prints every thread's stack to stderr: the way to see what a stuck stop waits on.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    # SIGTERM behaves like Ctrl-C, so start-up and shutdown clean up the same way (SIGINT is set too:
    # a shell that starts us in the background would otherwise leave it ignored).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _raise_keyboard_interrupt)
    stack: LocalStack | None = None
    try:
        print("starting the local stack...", flush=True)
        started_at = time.monotonic()
        stack = start_local_stack(
            arguments.state_dir,
            ports=ports,
            ephemeral=arguments.ephemeral,
            queue_visibility_seconds=arguments.visibility_timeout,
            mapping_file=arguments.mapping_file,
            schedule_seconds=arguments.schedule_seconds,
        )
        print(f"local stack ready in {time.monotonic() - started_at:.1f} s\n{stack.summary()}", flush=True)
        print("Ctrl-C stops it.", flush=True)
        # Not signal.pause(): the kernel may deliver Ctrl-C to another thread, and pause() in the main
        # thread would then never return. The handler runs on the main thread when the sleep ends.
        while True:
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("\nstopping the local stack...", flush=True)
        return 0
    except Exception as error:
        print(f"error: the local stack could not start: {error}", file=sys.stderr)
        return 1
    finally:
        if stack is not None:
            stack.stop()
        print("local stack stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
