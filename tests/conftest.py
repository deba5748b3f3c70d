"""Root fixtures: dummy AWS settings, the local CA, DynamoDB Local, moto and the whole local stack.

Servers are started once per test session on free ports and stopped at its end; nothing here reuses a
stack a developer may be running with `make stack`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trustme

from sandbox.aws_local import create_tables, delete_tables, dynamodb_client, start_moto_server
from sandbox.dynamodb_local import start_dynamodb_local
from sandbox.stack import LocalStack, start_local_stack
from sandbox.template_resources import load_template

# Fixtures of the Salesforce sandbox (salesforce_sandbox, salesforce, start_salesforce).
pytest_plugins = ["tests.integration.salesforce_fixtures"]

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Set before any test module creates a boto3 client: no test can reach (or sign for) real AWS.
_DUMMY_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
os.environ.update(_DUMMY_AWS_ENVIRONMENT)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_DEFAULT_PROFILE", None)


@pytest.fixture(scope="session")
def local_ca() -> trustme.CA:
    """A throw-away certificate authority for HTTPS servers in tests."""
    return trustme.CA(organization_name="sfintacct tests")


@pytest.fixture(scope="session")
def dynamodb_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One DynamoDB Local for the whole session, on a free port."""
    server = start_dynamodb_local(
        0, log_path=tmp_path_factory.mktemp("dynamodb-local") / "dynamodb-local.log"
    )
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One moto server (SQS, Secrets Manager, ...) for the whole session, on a free port."""
    server = start_moto_server(0, log_path=tmp_path_factory.mktemp("moto-server") / "moto-server.log")
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dynamodb(dynamodb_endpoint: str) -> DynamoDBClient:
    """A DynamoDB client for the session's DynamoDB Local."""
    return dynamodb_client(dynamodb_endpoint)


@pytest.fixture(scope="module")
def crosswalk_table(dynamodb: DynamoDBClient) -> Iterator[str]:
    """A fresh crosswalk table for the test module, created from template.yaml's CrosswalkTable."""
    template = load_template()
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    tables = create_tables(dynamodb, template, prefix, logical_ids=["CrosswalkTable"])
    try:
        yield tables["CrosswalkTable"].ref
    finally:
        delete_tables(dynamodb, tables)


# The session's stack gives its queues this visibility timeout (template.yaml: 360/720 s), so a record a
# worker fails comes back within seconds; the workers' timeouts are cut to it.
LOCAL_STACK_VISIBILITY_SECONDS = 10


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The whole local stack on free ports in a temporary state dir, for the session."""
    state_dir: Path = tmp_path_factory.mktemp("local-stack")
    with start_local_stack(
        state_dir, ephemeral=True, queue_visibility_seconds=LOCAL_STACK_VISIBILITY_SECONDS
    ) as stack:
        yield stack
