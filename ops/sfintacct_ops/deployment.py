"""Finding the deployment: a CloudFormation stack (`--stack NAME`) or the local stack (`--local [PATH]`).

Either way the result is one `Deployment`: the work queues and their dead-letter queues, the crosswalk,
sync log and idempotency tables, the Intacct and Salesforce secrets, and the non-secret worker settings
that shape the clients (endpoint, API version, CA files, transaction type). The Intacct and Salesforce
clients are built from the secrets with the product's own settings code, as the workers build them
(sfintacct.sync.runtime), so the command sees what the workers see.

A stack's queues and tables come from its Outputs (template.yaml); the secrets, the Intacct endpoint,
the transaction type, the Salesforce API version and the org ids from its Parameters (describe-stacks
returns both). The local stack's come from the stack.json `make stack` writes (<state dir>/stack.json:
$SFINTACCT_STATE_DIR or .local), and boto3 is pointed at its DynamoDB Local and moto endpoints.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from sfintacct.crosswalk import CrosswalkStore
from sfintacct.intacct import IntacctClient, IntacctSettings
from sfintacct.intacct.settings import settings_from_sources as intacct_settings_from_sources
from sfintacct.intake.work_queues import QueueRoutes
from sfintacct.mapping import load_mapping
from sfintacct.salesforce.client import SalesforceClient
from sfintacct.salesforce.models import OpportunityQueryFields
from sfintacct.salesforce.settings import SalesforceSettings
from sfintacct.salesforce.settings import settings_from_sources as salesforce_settings_from_sources
from sfintacct.salesforce_ids import ORGANIZATION_KEY_PREFIX, to_case_safe_id_with_prefix
from sfintacct.sync.runtime import DEFAULT_TRANSACTION_TYPE
from sfintacct.sync.sync_log import SyncLog
from sfintacct.sync_request import SyncObjectType

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE_DIR_VARIABLE = "SFINTACCT_STATE_DIR"
STACK_FILE_NAME = "stack.json"
# The local services take any credentials; these are the ones the local stack itself uses.
LOCAL_ACCESS_KEY_ID = "local"
LOCAL_SECRET_ACCESS_KEY = "local"  # noqa: S105 - not a secret
_CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"})

# template.yaml Outputs the command reads (queues and tables) ...
STACK_OUTPUTS = {
    "customer_queue_url": "CustomerUpsertQueueUrl",
    "customer_dead_letter_queue_url": "CustomerUpsertDeadLetterQueueUrl",
    "order_queue_url": "OpportunityToOrderQueueUrl",
    "order_dead_letter_queue_url": "OpportunityToOrderDeadLetterQueueUrl",
    "crosswalk_table": "CrosswalkTableName",
    "sync_log_table": "SyncLogTableName",
    "idempotency_table": "IdempotencyTableName",
}
# ... and Parameters (secrets and settings; the template has no Outputs for them).
STACK_SECRET_PARAMETERS = {
    "intacct_secret_id": "IntacctSecretArn",
    "salesforce_secret_id": "SalesforceSecretArn",
}
# Template parameter -> the worker variable it becomes (template.yaml, the workers' Environment).
STACK_WORKER_PARAMETERS = {
    "IntacctEndpointUrl": "INTACCT_ENDPOINT_URL",
    "IntacctTransactionType": "INTACCT_TRANSACTION_TYPE",
    "SalesforceApiVersion": "SALESFORCE_API_VERSION",
}
# stack.json logical ids (sandbox/stack.py: info["queues"], info["tables"], info["secrets"]).
LOCAL_QUEUES = {
    "customer_queue_url": "CustomerUpsertQueue",
    "customer_dead_letter_queue_url": "CustomerUpsertDeadLetterQueue",
    "order_queue_url": "OpportunityToOrderQueue",
    "order_dead_letter_queue_url": "OpportunityToOrderDeadLetterQueue",
}
LOCAL_TABLES = {
    "crosswalk_table": "CrosswalkTable",
    "sync_log_table": "SyncLogTable",
    "idempotency_table": "IdempotencyTable",
}


class DeploymentError(Exception):
    """The deployment cannot be found or read (the message says what is missing)."""


def default_state_dir() -> Path:
    """Where `make stack` writes stack.json: $SFINTACCT_STATE_DIR, else .local in the repository."""
    configured = os.environ.get(STATE_DIR_VARIABLE, "").strip()
    return Path(configured) if configured else REPO_ROOT / ".local"


def default_stack_file() -> Path:
    return default_state_dir() / STACK_FILE_NAME


@dataclass(frozen=True)
class AwsAccess:
    """How to reach AWS: a region and, for the local stack, endpoints per service and dummy credentials."""

    region: str | None = None
    profile: str | None = None
    endpoints: Mapping[str, str] = field(default_factory=dict)
    local: bool = False

    def client(self, service: str) -> Any:
        options: dict[str, Any] = {"config": _CLIENT_CONFIG}
        if service in self.endpoints:
            options["endpoint_url"] = self.endpoints[service]
        if self.local:
            session = boto3.session.Session(
                region_name=self.region,
                aws_access_key_id=LOCAL_ACCESS_KEY_ID,
                aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
            )
        else:
            session = boto3.session.Session(region_name=self.region, profile_name=self.profile)
        return session.client(service, **options)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Deployment:
    """One sfintacct deployment: its queues, tables, secrets and the clients the workers use."""

    description: str
    aws: AwsAccess
    customer_queue_url: str
    customer_dead_letter_queue_url: str
    order_queue_url: str
    order_dead_letter_queue_url: str
    crosswalk_table: str
    sync_log_table: str
    idempotency_table: str
    intacct_secret_id: str
    salesforce_secret_id: str
    # The worker variables that shape the clients (INTACCT_ENDPOINT_URL, SALESFORCE_API_VERSION, ...).
    worker_environment: Mapping[str, str] = field(default_factory=dict)
    org_ids: tuple[str, ...] = ()
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    # ------------------------------------------------------------------ where things are

    @property
    def transaction_type(self) -> str:
        return self.worker_environment.get("INTACCT_TRANSACTION_TYPE") or DEFAULT_TRANSACTION_TYPE

    @property
    def routes(self) -> QueueRoutes:
        return QueueRoutes(customer_queue_url=self.customer_queue_url, order_queue_url=self.order_queue_url)

    def work_queue(self, object_type: SyncObjectType) -> str:
        return self.routes.queue_for(object_type)

    def dead_letter_queue(self, object_type: SyncObjectType) -> str:
        if object_type == "Account":
            return self.customer_dead_letter_queue_url
        return self.order_dead_letter_queue_url

    def org_id(self) -> str:
        """The Salesforce org the deployment serves (SyncRequest.org_id); one, or ask for --org-id."""
        if len(self.org_ids) != 1:
            found = ", ".join(self.org_ids) or "none"
            raise DeploymentError(f"the deployment names {found} as its Salesforce org; give --org-id")
        return self.org_ids[0]

    # ------------------------------------------------------------------ AWS clients

    def _cached(self, key: str, make: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def sqs(self) -> SQSClient:
        client: SQSClient = self._cached("sqs", lambda: self.aws.client("sqs"))
        return client

    def dynamodb(self) -> DynamoDBClient:
        client: DynamoDBClient = self._cached("dynamodb", lambda: self.aws.client("dynamodb"))
        return client

    def secretsmanager(self) -> SecretsManagerClient:
        client: SecretsManagerClient = self._cached(
            "secretsmanager", lambda: self.aws.client("secretsmanager")
        )
        return client

    def crosswalk(self) -> CrosswalkStore:
        return CrosswalkStore(self.dynamodb(), self.crosswalk_table)

    def sync_log(self) -> SyncLog:
        return SyncLog(self.dynamodb(), self.sync_log_table)

    # ------------------------------------------------------------------ Intacct and Salesforce

    def _secret(self, secret_id: str, what: str) -> dict[str, Any]:
        try:
            text = self.secretsmanager().get_secret_value(SecretId=secret_id).get("SecretString", "")
        except (ClientError, BotoCoreError) as error:
            raise DeploymentError(f"cannot read the {what} secret {secret_id}: {error}") from error
        try:
            secret = json.loads(text)
        except ValueError:
            secret = None
        if not isinstance(secret, dict):
            raise DeploymentError(f"the {what} secret {secret_id} is not a JSON object")
        return secret

    def intacct_settings(self) -> IntacctSettings:
        """As the workers load them: the secret, then the worker variables on top."""
        secret = self._secret(self.intacct_secret_id, "Intacct")
        return intacct_settings_from_sources(secret, self.worker_environment)

    def salesforce_settings(self) -> SalesforceSettings:
        secret = self._secret(self.salesforce_secret_id, "Salesforce")
        return salesforce_settings_from_sources(secret, self.worker_environment)

    def intacct_client(self) -> IntacctClient:
        client: IntacctClient = self._cached("intacct", lambda: IntacctClient(self.intacct_settings()))
        return client

    def salesforce_client(self) -> SalesforceClient:
        """The workers' client (sfintacct.sync.runtime): their query fields, the mapping's fields added."""

        def make() -> SalesforceClient:
            mapped = load_mapping().query_fields()
            query_fields = OpportunityQueryFields.from_environment(self.worker_environment).with_extra(
                opportunity_fields=mapped.opportunity_fields,
                account_fields=mapped.account_fields,
                line_fields=mapped.line_fields,
            )
            return SalesforceClient(self.salesforce_settings(), query_fields=query_fields)

        client: SalesforceClient = self._cached("salesforce", make)
        return client

    def close(self) -> None:
        intacct = self._cache.pop("intacct", None)
        if isinstance(intacct, IntacctClient):
            intacct.close()


# ---------------------------------------------------------------------------- the local stack


def from_local(path: Path | None = None) -> Deployment:
    """The local stack described by stack.json at `path` (a file or the state dir holding it)."""
    stack_file = path or default_stack_file()
    if stack_file.is_dir():
        stack_file = stack_file / STACK_FILE_NAME
    try:
        info = json.loads(stack_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeploymentError(
            f"{stack_file} does not exist: is the local stack running (make stack)?"
        ) from None
    except (OSError, ValueError) as error:
        raise DeploymentError(f"cannot read {stack_file}: {error}") from error
    return deployment_from_stack_info(info, description=f"local stack ({stack_file})")


def deployment_from_stack_info(info: Mapping[str, Any], *, description: str) -> Deployment:
    """A Deployment from the content of a local stack's stack.json."""
    try:
        queues, tables, secrets = info["queues"], info["tables"], info["secrets"]
        intacct, salesforce = info["intacct"], info["salesforce"]
        endpoints = {
            "dynamodb": str(info["dynamodb_endpoint"]),
            "sqs": str(info["sqs_endpoint"]),
            "secretsmanager": str(info["secretsmanager_endpoint"]),
        }
        values = {
            **{name: str(queues[logical_id]) for name, logical_id in LOCAL_QUEUES.items()},
            **{name: str(tables[logical_id]) for name, logical_id in LOCAL_TABLES.items()},
        }
        worker_environment = {
            # What the stack gives every worker process (sandbox/stack.py WorkersPart._environment).
            "INTACCT_ENDPOINT_URL": str(intacct["endpoint"]),
            "INTACCT_CA_FILE": str(intacct.get("ca_file") or info["ca_file"]),
            "SALESFORCE_CA_FILE": str(salesforce.get("ca_file") or info["ca_file"]),
            "SALESFORCE_API_VERSION": str(salesforce["api_version"]),
            "INTACCT_TRANSACTION_TYPE": DEFAULT_TRANSACTION_TYPE,
        }
        return _deployment(
            description,
            AwsAccess(region=str(info.get("region") or "us-east-1"), endpoints=endpoints, local=True),
            {
                **values,
                "intacct_secret_id": str(secrets["intacct"]),
                "salesforce_secret_id": str(secrets["salesforce"]),
            },
            worker_environment,
            (str(salesforce["org_id"]),),
        )
    except (KeyError, TypeError) as error:
        raise DeploymentError(
            f"the local stack file lacks {error}: is it a stack.json of make stack?"
        ) from None


# ---------------------------------------------------------------------------- a CloudFormation stack


def from_cloudformation(
    stack_name: str, *, region: str | None = None, profile: str | None = None
) -> Deployment:
    """The deployed stack `stack_name`: its Outputs and Parameters (describe-stacks)."""
    aws = AwsAccess(region=region, profile=profile)
    try:
        stacks = aws.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except (ClientError, BotoCoreError) as error:
        raise DeploymentError(f"cannot describe the stack {stack_name}: {error}") from error
    if not stacks:
        raise DeploymentError(f"no stack named {stack_name}")
    stack = stacks[0]
    outputs = {item["OutputKey"]: item.get("OutputValue", "") for item in stack.get("Outputs", [])}
    parameters = {
        item["ParameterKey"]: item.get("ResolvedValue") or item.get("ParameterValue", "")
        for item in stack.get("Parameters", [])
    }
    return deployment_from_outputs(stack_name, outputs, parameters, aws)


def deployment_from_outputs(
    stack_name: str, outputs: Mapping[str, str], parameters: Mapping[str, str], aws: AwsAccess
) -> Deployment:
    missing = [name for name in STACK_OUTPUTS.values() if not outputs.get(name)]
    missing += [name for name in STACK_SECRET_PARAMETERS.values() if not parameters.get(name)]
    if missing:
        raise DeploymentError(
            f"the stack {stack_name} has no {', '.join(missing)}: is it an sfintacct stack?"
        )
    org_ids = tuple(
        to_case_safe_id_with_prefix(org_id.strip(), ORGANIZATION_KEY_PREFIX, "an organization")
        for org_id in parameters.get("SalesforceOrgIds", "").split(",")
        if org_id.strip()
    )
    worker_environment = {
        variable: parameters[parameter]
        for parameter, variable in STACK_WORKER_PARAMETERS.items()
        if parameters.get(parameter)
    }
    names = {
        **{name: outputs[output] for name, output in STACK_OUTPUTS.items()},
        **{name: parameters[parameter] for name, parameter in STACK_SECRET_PARAMETERS.items()},
    }
    return _deployment(f"stack {stack_name}", aws, names, worker_environment, org_ids)


def _deployment(
    description: str,
    aws: AwsAccess,
    names: Mapping[str, str],
    worker_environment: Mapping[str, str],
    org_ids: tuple[str, ...],
) -> Deployment:
    return Deployment(
        description=description,
        aws=aws,
        customer_queue_url=names["customer_queue_url"],
        customer_dead_letter_queue_url=names["customer_dead_letter_queue_url"],
        order_queue_url=names["order_queue_url"],
        order_dead_letter_queue_url=names["order_dead_letter_queue_url"],
        crosswalk_table=names["crosswalk_table"],
        sync_log_table=names["sync_log_table"],
        idempotency_table=names["idempotency_table"],
        intacct_secret_id=names["intacct_secret_id"],
        salesforce_secret_id=names["salesforce_secret_id"],
        worker_environment=dict(worker_environment),
        org_ids=org_ids,
    )
