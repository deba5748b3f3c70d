"""Local AWS: a moto server (SQS, Secrets Manager) and the template's tables, queues and secrets.

The moto server runs in a child process (`python -m sandbox.aws_local --port N`), so its state is its
own: moto keeps state per process, and tests that use moto's in-process mocks would otherwise reset
the stack's queues. The child ends when its stdin closes, i.e. when the process that started it ends.

moto 5 picks a visible message and marks it received without a lock, so two concurrent receives (the
poller's threads, several workers) can both get the same message at once. SQS's standard queues deliver
at least once, but a duplicate there is rare; here it was frequent under load. The child therefore makes
each receive's pick atomic (`_atomic_receives`); the product's handling of duplicates is tested with
duplicates sent on purpose.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config

from sandbox.processes import ChildProcess
from sandbox.template_resources import ResourceValues, Template

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

LOCAL_REGION = "us-east-1"
# Dummy credentials: local servers accept any; real AWS refuses these.
LOCAL_ACCESS_KEY_ID = "local"
LOCAL_SECRET_ACCESS_KEY = "local"  # noqa: S105 - not a secret
START_TIMEOUT_SECONDS = 60.0
_CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"})


class AwsLocalError(Exception):
    """The moto server could not be started or a local resource could not be created."""


# ---------------------------------------------------------------------------- clients


def dynamodb_client(endpoint_url: str, region: str = LOCAL_REGION) -> DynamoDBClient:
    return boto3.client("dynamodb", **_client_options(endpoint_url, region))


def sqs_client(endpoint_url: str, region: str = LOCAL_REGION) -> SQSClient:
    return boto3.client("sqs", **_client_options(endpoint_url, region))


def secretsmanager_client(endpoint_url: str, region: str = LOCAL_REGION) -> SecretsManagerClient:
    return boto3.client("secretsmanager", **_client_options(endpoint_url, region))


def _client_options(endpoint_url: str, region: str) -> dict[str, Any]:
    return {
        "endpoint_url": endpoint_url,
        "region_name": region,
        "aws_access_key_id": LOCAL_ACCESS_KEY_ID,
        "aws_secret_access_key": LOCAL_SECRET_ACCESS_KEY,
        "config": _CLIENT_CONFIG,
    }


# ---------------------------------------------------------------------------- moto server


class MotoServer:
    """A running moto server child process; stop() ends it."""

    def __init__(self, process: ChildProcess, endpoint: str) -> None:
        self.process = process
        self.endpoint = endpoint

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.stop()


def start_moto_server(
    port: int = 0, *, log_path: Path | None = None, timeout: float = START_TIMEOUT_SECONDS
) -> MotoServer:
    """Start a moto server on 127.0.0.1:`port` (0: a free port) in a child process and wait for it."""
    if log_path is None:
        log_path = Path(tempfile.mkdtemp(prefix="moto-server-")) / "moto-server.log"
    process = ChildProcess(
        "moto-server",
        [sys.executable, "-m", "sandbox.aws_local", "--port", str(port)],
        cwd=Path(__file__).resolve().parents[1],
        log_path=log_path,
        pipe_stdio=True,
    )
    try:
        line = process.read_line(timeout)
        if not line:
            raise AwsLocalError(f"the moto server did not start on port {port}:\n{process.log_tail()}")
        endpoint = str(json.loads(line)["endpoint"])
    except BaseException:
        process.stop()
        raise
    return MotoServer(process, endpoint)


def _atomic_receives() -> None:
    """Make moto's SQS receive pick and mark its messages under one lock; long polls wait outside it."""
    from moto.sqs.models import SQSBackend  # noqa: PLC0415 - heavy import, only in the child

    pick = SQSBackend.receive_message
    lock = threading.Lock()

    def receive_message(  # noqa: PLR0917 - moto's own signature, called positionally
        self: SQSBackend,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> Any:
        polling_ends = time.monotonic() + wait_seconds_timeout
        while True:
            with lock:
                received = pick(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            remaining = polling_ends - time.monotonic()
            if received or remaining <= 0:
                return received
            self.get_queue(queue_name).wait_for_messages(min(1, remaining))  # type: ignore[arg-type]

    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]


def _serve(port: int) -> int:
    """Child process: serve moto on 127.0.0.1 until stdin closes (the parent ended or stopped us)."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - heavy import, only in the child

    _atomic_receives()

    def fail_on_server_error(args: threading.ExceptHookArgs) -> None:
        print(f"moto server failed: {args.exc_type.__name__}: {args.exc_value}", file=sys.stderr, flush=True)
        os._exit(1)

    threading.excepthook = fail_on_server_error
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound_port = server.get_host_and_port()
    print(json.dumps({"endpoint": f"http://{host}:{bound_port}"}), flush=True)
    sys.stdin.read()
    server.stop()
    return 0


# ---------------------------------------------------------------------------- template resources


def create_tables(
    client: DynamoDBClient,
    template: Template,
    name_prefix: str,
    logical_ids: Collection[str] | None = None,
) -> dict[str, ResourceValues]:
    """Create the DynamoDB tables of the template (all, or those named) as "<prefix>-<logical id>".

    Keys, indexes and TTL come from the template; returns Ref/GetAtt values by logical id.
    """
    created: dict[str, ResourceValues] = {}
    for table in template.tables():
        if logical_ids is not None and table.logical_id not in logical_ids:
            continue
        name = f"{name_prefix}-{table.logical_id}"
        description = client.create_table(**table.create_table_request(name))["TableDescription"]
        _wait_for_table(client, name)
        if table.ttl_attribute:
            client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": table.ttl_attribute, "Enabled": True},
            )
        attributes = {"Arn": description.get("TableArn", "")}
        if "LatestStreamArn" in description:
            attributes["StreamArn"] = description["LatestStreamArn"]
        created[table.logical_id] = ResourceValues(ref=name, attributes=attributes)
    return created


def delete_tables(client: DynamoDBClient, tables: Mapping[str, ResourceValues]) -> None:
    for table in tables.values():
        client.delete_table(TableName=table.ref)


def _wait_for_table(client: DynamoDBClient, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        table = client.describe_table(TableName=name)["Table"]
        indexes = table.get("GlobalSecondaryIndexes", [])
        if table.get("TableStatus") == "ACTIVE" and all(
            index.get("IndexStatus") == "ACTIVE" for index in indexes
        ):
            return
        time.sleep(0.1)
    raise AwsLocalError(f"table {name} did not become ACTIVE within {timeout:.0f} s")


def create_queues(client: SQSClient, template: Template, name_prefix: str) -> dict[str, ResourceValues]:
    """Create every SQS queue of the template (dead-letter queues first), by logical id."""
    created: dict[str, ResourceValues] = {}
    for queue in template.queues():
        name = queue.queue_name(name_prefix)
        attributes = cast("dict[QueueAttributeNameType, str]", template.queue_attributes(queue, created))
        url = client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        created[queue.logical_id] = ResourceValues(
            ref=url, attributes={"Arn": arn, "QueueName": name, "QueueUrl": url}
        )
    return created


def put_secret(client: SecretsManagerClient, name: str, value: Mapping[str, str | list[str]]) -> str:
    """Create (or update) a JSON secret; returns its ARN."""
    secret_string = json.dumps(dict(value))
    try:
        return client.create_secret(Name=name, SecretString=secret_string)["ARN"]
    except client.exceptions.ResourceExistsException:
        return client.put_secret_value(SecretId=name, SecretString=secret_string)["ARN"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Serve moto (SQS, Secrets Manager) on 127.0.0.1 until stdin closes."
    )
    parser.add_argument("--port", type=int, default=5000)
    return _serve(parser.parse_args(argv).port)


if __name__ == "__main__":
    sys.exit(main())
