"""The local stack: what stack.json promises is reachable, the workers run, stopping leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from defusedxml import ElementTree as SafeET

from sandbox.aws_local import dynamodb_client, secretsmanager_client, sqs_client
from sandbox.dynamodb_local import DynamoDBLocalError, find_install_dir, start_dynamodb_local
from sandbox.intacct.admin_client import IntacctAdminClient
from sandbox.salesforce.admin_client import SalesforceAdminClient
from sandbox.salesforce.package import load_package
from sandbox.stack import (
    STACK_FILE_NAME,
    DynamoDBPart,
    LocalStack,
    MotoPart,
    StackContext,
    StackPart,
    StackStartError,
    WorkersPart,
    main,
    start_local_stack,
)
from sandbox.template_resources import load_template
from tests.conftest import LOCAL_STACK_VISIBILITY_SECONDS

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template()
PROCESS_EXIT_SECONDS = 15.0


# ---------------------------------------------------------------------------- helpers


def process_gone(pid: int) -> bool:
    """True if no such process runs (a zombie waiting for its parent counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


def wait_until(condition: Callable[[], bool], timeout: float = PROCESS_EXIT_SECONDS) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def port_open(url: str) -> bool:
    host_port = url.split("://", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def communicate_or_dump_threads(command: subprocess.Popen[str]) -> str:
    """The command's remaining output once it exits; if it hangs, fail with every thread's stack."""
    try:
        output, _ = command.communicate(timeout=PROCESS_EXIT_SECONDS)
    except subprocess.TimeoutExpired:
        command.send_signal(signal.SIGUSR1)  # the stack prints its threads' stacks (faulthandler)
        time.sleep(1)
        command.kill()
        output, _ = command.communicate()
        pytest.fail(f"the stack did not stop within {PROCESS_EXIT_SECONDS} s:\n{output}")
    return output


def get_api_session(endpoint: str, credentials: dict[str, str], verify: ssl.SSLContext) -> ET.Element:
    """Send getAPISession with login credentials; returns the parsed <response>."""
    request = ET.Element("request")
    control = ET.SubElement(request, "control")
    for name, value in (
        ("senderid", credentials["sender_id"]),
        ("password", credentials["sender_password"]),
        ("controlid", f"stack-test-{uuid.uuid4()}"),
        ("uniqueid", "false"),
        ("dtdversion", "3.0"),
        ("includewhitespace", "false"),
    ):
        ET.SubElement(control, name).text = value
    operation = ET.SubElement(request, "operation", transaction="false")
    login = ET.SubElement(ET.SubElement(operation, "authentication"), "login")
    ET.SubElement(login, "userid").text = credentials["user_id"]
    ET.SubElement(login, "companyid").text = credentials["company_id"]
    ET.SubElement(login, "password").text = credentials["user_password"]
    function = ET.SubElement(ET.SubElement(operation, "content"), "function", controlid="session")
    ET.SubElement(function, "getAPISession")
    body = b'<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(request)
    response = httpx.post(
        endpoint, content=body, headers={"content-type": "application/xml"}, verify=verify, timeout=10
    )
    assert response.status_code == 200, response.text
    root = SafeET.fromstring(response.content)
    assert isinstance(root, ET.Element)
    return root


def start_stack_command(state_dir: Path) -> tuple[subprocess.Popen[str], dict[str, int]]:
    """Run `python -m sandbox.stack --ephemeral`; returns the process and its children's pids by name
    (the servers, and each worker slot as <function>-<slot>)."""
    command = subprocess.Popen(
        [sys.executable, "-m", "sandbox.stack", "--ephemeral", "--state-dir", str(state_dir)],
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "layers" / "sync"), str(REPO_ROOT)]),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert command.stdout is not None
    output: list[str] = []
    for line in command.stdout:
        output.append(line)
        if line.startswith("Ctrl-C stops it"):
            break
    text = "".join(output)
    assert "local stack ready" in text, text
    pids = {
        match.group(1): int(match.group(2))
        for match in re.finditer(r"^(DynamoDB Local|SQS \+ Secrets)\s.*\(pid (\d+)\)", text, re.MULTILINE)
    }
    assert set(pids) == {"DynamoDB Local", "SQS + Secrets"}, text
    for match in re.finditer(r"^Worker\s+(\S+) <- .*\(pids ([\d, ]+)\)", text, re.MULTILINE):
        for slot, pid in enumerate(match.group(2).split(", ")):
            pids[f"{match.group(1)}-{slot}"] = int(pid)
    assert len(pids) == 2 + 2 * TEMPLATE.parameter("WorkerMaximumConcurrency"), text  # and the worker slots
    return command, pids


# ---------------------------------------------------------------------------- the session's stack


def test_stack_file_describes_every_part(local_stack: LocalStack) -> None:
    stack_file = local_stack.state_dir / STACK_FILE_NAME
    info = json.loads(stack_file.read_text(encoding="utf-8"))

    assert info == local_stack.info
    assert stack_file.stat().st_mode & 0o077 == 0  # it holds credentials
    for key in ("dynamodb_endpoint", "sqs_endpoint", "secretsmanager_endpoint"):
        assert info[key].startswith("http://127.0.0.1:")
        assert port_open(info[key])
    assert info["region"] == "us-east-1"
    assert Path(info["ca_file"]).is_file()
    assert set(info["tables"]) == {table.logical_id for table in TEMPLATE.tables()}
    assert set(info["queues"]) == {queue.logical_id for queue in TEMPLATE.queues()}
    assert set(info["secrets"]) == {"intacct", "salesforce", "intake"}
    assert info["api_url"].startswith("http://127.0.0.1:")
    assert port_open(info["api_url"])
    assert set(info["salesforce"]) == {
        "instance_url",
        "token_url",
        "client_id",
        "client_secret",
        "org_id",
        "api_version",
        "ca_file",
        "admin_url",
        "username",
        "integration_user_id",
        "jwt_private_key_file",
    }
    assert Path(info["salesforce"]["jwt_private_key_file"]).is_file()
    assert set(info["intacct"]) == {
        "endpoint",
        "sender_id",
        "sender_password",
        "company_id",
        "user_id",
        "user_password",
        "ca_file",
        "admin_url",
    }
    assert info["intacct"]["endpoint"].startswith("https://127.0.0.1:")
    assert info["intacct"]["endpoint"].endswith("/ia/xml/xmlgw.phtml")
    assert Path(info["crash_plan_file"]).parent == local_stack.state_dir


def test_dynamodb_has_the_template_tables(local_stack: LocalStack) -> None:
    info = local_stack.info
    client = dynamodb_client(info["dynamodb_endpoint"])

    assert set(info["tables"].values()) <= set(client.list_tables()["TableNames"])
    crosswalk = client.describe_table(TableName=info["tables"]["CrosswalkTable"])["Table"]
    assert [index["IndexName"] for index in crosswalk.get("GlobalSecondaryIndexes", [])] == ["by-intacct-id"]
    ttl = client.describe_time_to_live(TableName=info["tables"]["IdempotencyTable"])["TimeToLiveDescription"]
    assert ttl.get("AttributeName") == "expiration"
    assert ttl.get("TimeToLiveStatus") == "ENABLED"


def test_sqs_has_the_template_queues_with_their_redrive_policy(local_stack: LocalStack) -> None:
    info = local_stack.info
    client = sqs_client(info["sqs_endpoint"])
    listed = set(client.list_queues()["QueueUrls"])
    assert set(info["queues"].values()) <= listed

    for queue_id, dead_letter_id in (
        ("CustomerUpsertQueue", "CustomerUpsertDeadLetterQueue"),
        ("OpportunityToOrderQueue", "OpportunityToOrderDeadLetterQueue"),
    ):
        attributes = client.get_queue_attributes(QueueUrl=info["queues"][queue_id], AttributeNames=["All"])[
            "Attributes"
        ]
        dead_letter_arn = client.get_queue_attributes(
            QueueUrl=info["queues"][dead_letter_id], AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        redrive = json.loads(attributes["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == dead_letter_arn
        assert int(redrive["maxReceiveCount"]) == TEMPLATE.parameter("MaxReceiveCount")
        # The session's stack shortens the visibility timeout (see the template's below).
        assert int(attributes["VisibilityTimeout"]) == LOCAL_STACK_VISIBILITY_SECONDS


def test_without_a_local_visibility_timeout_the_queues_keep_the_templates(tmp_path: Path) -> None:
    with start_local_stack(tmp_path, ephemeral=True, parts=[MotoPart()]) as stack:
        client = sqs_client(stack.info["sqs_endpoint"])
        for queue_id in ("CustomerUpsertQueue", "OpportunityToOrderQueue"):
            attributes = client.get_queue_attributes(
                QueueUrl=stack.info["queues"][queue_id], AttributeNames=["VisibilityTimeout"]
            )["Attributes"]
            declared = TEMPLATE.resources[queue_id]["Properties"]["VisibilityTimeout"]
            assert int(attributes["VisibilityTimeout"]) == int(declared)


def test_the_salesforce_sandbox_has_the_package_outbound_messages_pointing_at_the_local_api(
    local_stack: LocalStack,
) -> None:
    info = local_stack.info
    salesforce = SalesforceAdminClient(info["salesforce"]["admin_url"], info["salesforce"]["ca_file"])
    package = load_package()

    definitions = {item["name"]: item for item in salesforce.outbound_definitions()}

    assert set(definitions) == {message.name for message in package.outbound_messages}
    for message in package.outbound_messages:
        definition = definitions[message.name]
        assert (definition["object_type"], tuple(definition["fields"])) == (
            message.object_type,
            message.fields,
        )
        assert definition["endpoint_url"] == info["outbound_url"]  # the local API, with its token
    assert info["outbound_url"].startswith(f"{info['api_url']}/salesforce/outbound?token=")
    integration_user_id = info["salesforce"]["integration_user_id"]
    assert definitions["Account_Created_Or_Updated"]["ignore_changes_by"] == integration_user_id
    assert definitions["Opportunity_Closed_Won"]["condition"] == "entry_formula"  # the package flow's formula


def test_the_intacct_secret_reads_back(local_stack: LocalStack) -> None:
    info = local_stack.info
    client = secretsmanager_client(info["secretsmanager_endpoint"])

    secret = json.loads(client.get_secret_value(SecretId=info["secrets"]["intacct"])["SecretString"])

    assert secret == {
        key: info["intacct"][key]
        for key in ("sender_id", "sender_password", "company_id", "user_id", "user_password")
    }


def test_the_intacct_gateway_answers_getapisession_over_verified_https(local_stack: LocalStack) -> None:
    intacct = local_stack.info["intacct"]
    verify = ssl.create_default_context(cafile=intacct["ca_file"])

    response = get_api_session(intacct["endpoint"], intacct, verify)

    assert response.findtext("control/status") == "success"
    assert response.findtext("operation/authentication/status") == "success"
    assert response.findtext("operation/result/status") == "success"
    assert response.findtext("operation/result/data/api/sessionid")
    assert (response.findtext("operation/result/data/api/endpoint") or "").startswith("https://127.0.0.1:")


def test_the_intacct_gateway_is_not_trusted_without_the_stack_ca(local_stack: LocalStack) -> None:
    intacct = local_stack.info["intacct"]

    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        get_api_session(intacct["endpoint"], intacct, ssl.create_default_context())


def test_function_environment_points_the_workers_at_the_local_resources(local_stack: LocalStack) -> None:
    info = local_stack.info

    environment = local_stack.function_environment(
        "CustomerUpsertFunction",
        {"SalesforceSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:sf-AbCdEf"},
    )

    assert environment["CROSSWALK_TABLE"] == info["tables"]["CrosswalkTable"]
    assert environment["IDEMPOTENCY_TABLE"] == info["tables"]["IdempotencyTable"]
    assert environment["CUSTOMER_QUEUE_URL"] == info["queues"]["CustomerUpsertQueue"]
    assert environment["INTACCT_SECRET_ARN"] == info["secrets"]["intacct"]
    assert environment["INTACCT_ENDPOINT_URL"] == info["intacct"]["endpoint"]
    assert environment["AWS_ENDPOINT_URL_DYNAMODB"] == info["dynamodb_endpoint"]
    assert environment["AWS_ENDPOINT_URL_SQS"] == info["sqs_endpoint"]
    assert environment["AWS_ENDPOINT_URL_SECRETS_MANAGER"] == info["secretsmanager_endpoint"]


def test_the_stack_runs_the_template_workers_on_their_queues(local_stack: LocalStack) -> None:
    info = local_stack.info
    concurrency = TEMPLATE.parameter("WorkerMaximumConcurrency")

    def log_files(function: str) -> list[str]:
        return [str(local_stack.state_dir / "logs" / f"{function}-{slot}.log") for slot in range(concurrency)]

    assert info["workers"] == {
        "CustomerUpsertFunction": {
            "queue_url": info["queues"]["CustomerUpsertQueue"],
            "dead_letter_queue_url": info["queues"]["CustomerUpsertDeadLetterQueue"],
            "batch_size": 10,
            "maximum_batching_window_seconds": 0,
            "maximum_concurrency": concurrency,
            "timeout_seconds": LOCAL_STACK_VISIBILITY_SECONDS,
            "log_files": log_files("CustomerUpsertFunction"),
        },
        "OpportunityToOrderFunction": {
            "queue_url": info["queues"]["OpportunityToOrderQueue"],
            "dead_letter_queue_url": info["queues"]["OpportunityToOrderDeadLetterQueue"],
            "batch_size": 5,
            "maximum_batching_window_seconds": 0,
            "maximum_concurrency": concurrency,
            "timeout_seconds": LOCAL_STACK_VISIBILITY_SECONDS,
            "log_files": log_files("OpportunityToOrderFunction"),
        },
    }
    assert info["scheduled"] == {
        "FinanceStatusFunction": {
            "schedule": TEMPLATE.parameter("FinanceStatusSchedule"),
            "local_period_seconds": None,  # the session's stack runs it only when a test asks
            "timeout_seconds": 600,
            "log_files": [str(local_stack.state_dir / "logs" / "FinanceStatusFunction-0.log")],
        }
    }
    assert local_stack.poller.is_running
    # Every slot is a process of its own, not this one.
    slot_pids = local_stack.workers.slot_pids()
    assert set(slot_pids) == {"CustomerUpsertFunction", "OpportunityToOrderFunction"}
    pids = [pid for pids in slot_pids.values() for pid in pids]
    assert len(pids) == 2 * concurrency
    assert len(set(pids)) == len(pids)
    assert all(pid is not None and pid != os.getpid() and not process_gone(pid) for pid in pids)
    assert "Worker           CustomerUpsertFunction <- sfintacct-local-CustomerUpsertQueue" in (
        local_stack.summary()
    )

    # Whatever the handler makes of this body, the poller must hand it over: count the invocation only.
    client = sqs_client(info["sqs_endpoint"])
    queue_url = info["queues"]["CustomerUpsertQueue"]
    client.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"stack-test": str(uuid.uuid4())}))
    try:
        assert wait_until(
            lambda: any(
                invocation.function_name == "CustomerUpsertFunction"
                for invocation in local_stack.poller.invocations()
            ),
            timeout=20,
        )
    finally:
        client.purge_queue(QueueUrl=queue_url)  # nothing left behind for the other tests of the session


def test_killing_the_worker_processes_leaves_every_other_part_and_its_state_intact(
    local_stack: LocalStack,
) -> None:
    info = local_stack.info
    servers = local_stack.part("dynamodb").pids() + local_stack.part("moto").pids()
    marker = f"kill-test-{uuid.uuid4()}"
    dynamodb = dynamodb_client(info["dynamodb_endpoint"])
    table = info["tables"]["IdempotencyTable"]
    dynamodb.put_item(TableName=table, Item={"id": {"S": marker}, "status": {"S": "INPROGRESS"}})
    sqs = sqs_client(info["sqs_endpoint"])
    dead_letters = info["queues"]["CustomerUpsertDeadLetterQueue"]  # no worker polls it
    sqs.send_message(QueueUrl=dead_letters, MessageBody=marker)
    intacct = IntacctAdminClient(info["intacct"]["admin_url"], info["intacct"]["ca_file"])
    salesforce = SalesforceAdminClient(info["salesforce"]["admin_url"], info["salesforce"]["ca_file"])
    intacct_records = intacct.records("CUSTOMER")
    salesforce_accounts = salesforce.records("Account")
    killed = [pid for pids in local_stack.workers.slot_pids().values() for pid in pids if pid is not None]
    try:
        for pid in killed:
            os.kill(pid, signal.SIGKILL)  # as Lambda's execution environments die: no clean-up at all

        # Each slot gets a fresh process; the servers and the sandboxes never noticed.
        assert wait_until(
            lambda: all(
                pid is not None and pid not in killed
                for pids in local_stack.workers.slot_pids().values()
                for pid in pids
            )
        )
        assert local_stack.part("dynamodb").pids() + local_stack.part("moto").pids() == servers
        assert all(not process_gone(pid) for pid in servers)
        item = dynamodb.get_item(TableName=table, Key={"id": {"S": marker}}, ConsistentRead=True)
        assert item["Item"]["status"] == {"S": "INPROGRESS"}
        received = sqs.receive_message(QueueUrl=dead_letters, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        assert marker in [message["Body"] for message in received.get("Messages", [])]
        assert intacct.records("CUSTOMER") == intacct_records
        assert salesforce.records("Account") == salesforce_accounts
        secret = secretsmanager_client(info["secretsmanager_endpoint"]).get_secret_value(
            SecretId=info["secrets"]["intacct"]
        )
        assert json.loads(secret["SecretString"])["company_id"] == info["intacct"]["company_id"]
    finally:
        dynamodb.delete_item(TableName=table, Key={"id": {"S": marker}})
        sqs.purge_queue(QueueUrl=dead_letters)


# ---------------------------------------------------------------------------- start and stop


def test_stop_leaves_no_process_and_no_stack_file(tmp_path: Path) -> None:
    stack = start_local_stack(tmp_path, ephemeral=True)
    pids = stack.pids()
    endpoints = [
        stack.info["dynamodb_endpoint"],
        stack.info["sqs_endpoint"],
        stack.info["intacct"]["endpoint"],
    ]
    slot_pids = [pid for pids in stack.workers.slot_pids().values() for pid in pids]
    assert len(pids) == 2 + len(slot_pids)  # DynamoDB Local, moto and one process per worker slot
    assert all(port_open(url) for url in endpoints)

    stack.stop()
    stack.stop()  # twice is harmless

    assert all(process_gone(pid) for pid in pids)
    assert not any(port_open(url) for url in endpoints)
    assert not (tmp_path / STACK_FILE_NAME).exists()


class ExplodingPart:
    """A part that fails to start, after noting which processes the earlier parts run."""

    name = "exploding"

    def __init__(self, earlier: list[StackPart]) -> None:
        self.earlier = earlier
        self.seen_pids: list[int] = []

    def start(self, context: StackContext) -> None:
        self.seen_pids = [pid for part in self.earlier for pid in part.pids()]
        raise RuntimeError("this part cannot start")

    def stop(self) -> None:
        pass

    def summary(self) -> list[str]:
        return []

    def pids(self) -> list[int]:
        return []


def test_a_failure_during_start_up_stops_what_was_started(tmp_path: Path) -> None:
    earlier: list[StackPart] = [DynamoDBPart(), MotoPart()]
    exploding = ExplodingPart(earlier)

    with pytest.raises(RuntimeError, match="cannot start"):
        start_local_stack(tmp_path, ephemeral=True, parts=[*earlier, exploding])

    assert len(exploding.seen_pids) == 2
    assert all(process_gone(pid) for pid in exploding.seen_pids)
    assert not (tmp_path / STACK_FILE_NAME).exists()


def test_ctrl_c_stops_the_command_and_everything_it_started(tmp_path: Path) -> None:
    command, pids = start_stack_command(tmp_path)
    info: dict[str, Any] = json.loads((tmp_path / STACK_FILE_NAME).read_text(encoding="utf-8"))
    assert port_open(info["intacct"]["endpoint"])

    command.send_signal(signal.SIGINT)
    output = communicate_or_dump_threads(command)

    assert command.returncode == 0, output
    assert "local stack stopped" in output
    assert all(process_gone(pid) for pid in pids.values())
    assert not (tmp_path / STACK_FILE_NAME).exists()


def test_children_end_even_when_the_command_is_killed(tmp_path: Path) -> None:
    command, pids = start_stack_command(tmp_path)

    command.kill()  # SIGKILL: no chance to clean up
    command.communicate(timeout=PROCESS_EXIT_SECONDS)

    assert wait_until(lambda: all(process_gone(pid) for pid in pids.values())), pids


# ---------------------------------------------------------------------------- workers on a stub template

STUB_HANDLER = """
import json
import os
from pathlib import Path

CODE = "@CODE@"
RECORDS = Path(os.environ["STUB_RECORDS_DIR"]) / "invocations.jsonl"  # the environment is set before import
SHOWN_VARIABLES = (
    "SHARED_SETTING",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "INTACCT_CA_FILE",
    "SALESFORCE_CA_FILE",
    "WORK_QUEUE_URL",
    "AWS_ENDPOINT_URL_SQS",
)
INVOCATIONS = 0  # module state: kept across the invocations of one process


def lambda_handler(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    for record in event["Records"]:
        if record["body"].startswith("checkpoint:"):  # a step of the sync, where a crash plan may kill
            from sfintacct.sync.service import SyncService

            SyncService.checkpoint(None, "before_intacct_write", record["body"])
    invocation = {
        "code": CODE,
        "module": __name__,
        "pid": os.getpid(),
        "invocations_in_process": INVOCATIONS,
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "remaining_millis": context.get_remaining_time_in_millis(),
        "records": [
            {
                "body": record["body"],
                "eventSourceARN": record["eventSourceARN"],
                "receive_count": int(record["attributes"]["ApproximateReceiveCount"]),
            }
            for record in event["Records"]
        ],
        "environment": {name: os.environ.get(name) for name in SHOWN_VARIABLES},
    }
    print(f"{CODE} handled {len(event['Records'])} record(s)")  # stdout: the slot's log file
    with RECORDS.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(invocation) + "\\n")
    failed = [record["messageId"] for record in event["Records"] if record["body"].startswith("fail")]
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
"""

STUB_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  MaxReceiveCount: {Type: Number, Default: 3}
  WorkerMaximumConcurrency: {Type: Number, Default: 3}
  FirstBatchSize: {Type: Number, Default: 4}
  FirstTimeout: {Type: Number, Default: 60}
Globals:
  Function:
    Timeout: 30
    MemorySize: 256
    Layers:
      - !Ref StubLayer
    Environment:
      Variables:
        POWERTOOLS_SERVICE_NAME: stub
        SHARED_SETTING: same-everywhere
        STUB_RECORDS_DIR: "@RECORDS_DIR@"
Resources:
  StubLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: "@LAYER_DIR@"
  FirstFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: first/
      Handler: app.lambda_handler
      Timeout: !Ref FirstTimeout
      Environment:
        Variables:
          POWERTOOLS_SERVICE_NAME: first
          WORK_QUEUE_URL: !Ref FirstQueue
      Events:
        FirstQueueEvent:
          Type: SQS
          Properties:
            Queue: !GetAtt FirstQueue.Arn
            BatchSize: !Ref FirstBatchSize
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig:
              MaximumConcurrency: !Ref WorkerMaximumConcurrency
  SecondFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: second/
      Handler: "@SECOND_HANDLER@"
      MemorySize: 1024
      Environment:
        Variables:
          POWERTOOLS_SERVICE_NAME: second
          SHARED_SETTING: "@SECOND_SHARED_SETTING@"
      Events:
        SecondQueueEvent:
          Type: SQS
          Properties:
            Queue: !GetAtt SecondQueue.Arn
            BatchSize: 2
            MaximumBatchingWindowInSeconds: 1
            FunctionResponseTypes: [ReportBatchItemFailures]
  FirstQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 300
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt FirstDeadLetterQueue.Arn
        maxReceiveCount: !Ref MaxReceiveCount
  FirstDeadLetterQueue:
    Type: AWS::SQS::Queue
  SecondQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 600
"""
STUB_VISIBILITY_SECONDS = 2
IDLE_TIMEOUT_SECONDS = 30.0


def write_stub_app(
    directory: Path,
    *,
    second_shared_setting: str = "same-everywhere",
    second_handler: str = "app.lambda_handler",
) -> Path:
    """A template with two SQS workers whose handlers (both app.py) log every invocation; its path."""
    records_dir = directory / "records"
    records_dir.mkdir()
    for code in ("first", "second"):
        (directory / code).mkdir()
        (directory / code / "app.py").write_text(textwrap.dedent(STUB_HANDLER).replace("@CODE@", code))
    template = (
        STUB_TEMPLATE.replace("@RECORDS_DIR@", str(records_dir))
        .replace("@LAYER_DIR@", str(REPO_ROOT / "layers" / "sync"))
        .replace("@SECOND_SHARED_SETTING@", second_shared_setting)
        .replace("@SECOND_HANDLER@", second_handler)
    )
    path = directory / "template.yaml"
    path.write_text(template)
    return path


def start_stub_stack(
    directory: Path,
    template_path: Path,
    *,
    queue_visibility_seconds: int | None = STUB_VISIBILITY_SECONDS,
    parameters: dict[str, str] | None = None,
) -> LocalStack:
    return start_local_stack(
        directory / "state",
        ephemeral=True,
        parts=[MotoPart(), WorkersPart()],
        template_path=template_path,
        queue_visibility_seconds=queue_visibility_seconds,
        parameters=parameters,
    )


@pytest.fixture
def stub_stack(tmp_path: Path) -> Iterator[LocalStack]:
    with start_stub_stack(tmp_path, write_stub_app(tmp_path)) as stack:
        yield stack


def stub_invocations(stack: LocalStack) -> list[dict[str, Any]]:
    path = Path(stack.function_environment("FirstFunction")["STUB_RECORDS_DIR"]) / "invocations.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def queue_arn(stack: LocalStack, queue_id: str) -> str:
    client = sqs_client(stack.info["sqs_endpoint"])
    attributes = client.get_queue_attributes(
        QueueUrl=stack.info["queues"][queue_id], AttributeNames=["QueueArn"]
    )
    return attributes["Attributes"]["QueueArn"]


def all_slot_pids(stack: LocalStack) -> list[int]:
    return [pid for pids in stack.workers.slot_pids().values() for pid in pids if pid is not None]


def test_each_queue_is_driven_into_its_own_functions_handler(stub_stack: LocalStack) -> None:
    client = sqs_client(stub_stack.info["sqs_endpoint"])
    client.send_message(QueueUrl=stub_stack.info["queues"]["FirstQueue"], MessageBody="to-first")
    client.send_message(QueueUrl=stub_stack.info["queues"]["SecondQueue"], MessageBody="to-second")

    assert stub_stack.poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)

    invocations = {invocation["code"]: invocation for invocation in stub_invocations(stub_stack)}
    assert set(invocations) == {"first", "second"}  # two app.py modules, neither replaced the other
    first, second = invocations["first"], invocations["second"]
    assert first["records"] == [
        {"body": "to-first", "eventSourceARN": queue_arn(stub_stack, "FirstQueue"), "receive_count": 1}
    ]
    assert second["records"] == [
        {"body": "to-second", "eventSourceARN": queue_arn(stub_stack, "SecondQueue"), "receive_count": 1}
    ]
    assert first["function_name"] == "FirstFunction"
    assert second["function_name"] == "SecondFunction"
    assert first["module"] == second["module"] == "app"  # imported by name, as Lambda does
    assert first["pid"] in stub_stack.workers.slot_pids()["FirstFunction"]
    assert second["pid"] in stub_stack.workers.slot_pids()["SecondFunction"]
    assert (first["memory_limit_in_mb"], second["memory_limit_in_mb"]) == (256, 1024)  # Globals, own
    # Timeouts of 60 s and 30 s (Globals), cut to the local visibility timeout.
    assert 0 < first["remaining_millis"] <= STUB_VISIBILITY_SECONDS * 1000
    assert 0 < second["remaining_millis"] <= STUB_VISIBILITY_SECONDS * 1000
    for invocation, service_name, queue in ((first, "first", "FirstQueue"), (second, "second", None)):
        assert invocation["environment"] == {
            "SHARED_SETTING": "same-everywhere",
            "POWERTOOLS_SERVICE_NAME": service_name,  # each function has its own environment
            "POWERTOOLS_METRICS_NAMESPACE": "SfIntacctLocal",  # the template gives none
            "INTACCT_CA_FILE": str(stub_stack.ca_file),
            "SALESFORCE_CA_FILE": str(stub_stack.ca_file),
            "WORK_QUEUE_URL": stub_stack.info["queues"][queue] if queue else None,
            "AWS_ENDPOINT_URL_SQS": stub_stack.info["sqs_endpoint"],
        }
    stats = stub_stack.poller.stats()
    assert stats["FirstFunction"]["records"] == 1
    assert stats["SecondFunction"]["records"] == 1
    assert stats["FirstFunction"]["outcomes"] == {"success": 1}
    # What the handlers print goes to their slot's log.
    logs = [Path(path).read_text() for path in stub_stack.info["workers"]["FirstFunction"]["log_files"]]
    assert sum("first handled 1 record(s)" in log for log in logs) == 1


def test_each_slot_of_a_function_is_a_process_of_its_own(stub_stack: LocalStack) -> None:
    slot_pids = stub_stack.workers.slot_pids()

    assert {function: len(pids) for function, pids in slot_pids.items()} == {
        "FirstFunction": 3,  # MaximumConcurrency 3
        "SecondFunction": 2,  # no ScalingConfig
    }
    pids = all_slot_pids(stub_stack)
    assert len(set(pids)) == 5
    assert os.getpid() not in pids
    assert not any(process_gone(pid) for pid in pids)
    assert sorted(stub_stack.pids()) == sorted([*stub_stack.part("moto").pids(), *pids])


def test_the_stack_file_and_the_summary_list_the_workers(stub_stack: LocalStack) -> None:
    queues = stub_stack.info["queues"]
    stack_file = json.loads((stub_stack.state_dir / STACK_FILE_NAME).read_text(encoding="utf-8"))
    logs = stub_stack.state_dir / "logs"

    assert stack_file["workers"] == {
        "FirstFunction": {
            "queue_url": queues["FirstQueue"],
            "dead_letter_queue_url": queues["FirstDeadLetterQueue"],
            "batch_size": 4,
            "maximum_batching_window_seconds": 0,
            "maximum_concurrency": 3,
            "timeout_seconds": STUB_VISIBILITY_SECONDS,
            "log_files": [str(logs / f"FirstFunction-{slot}.log") for slot in range(3)],
        },
        "SecondFunction": {
            "queue_url": queues["SecondQueue"],
            "dead_letter_queue_url": None,
            "batch_size": 2,
            "maximum_batching_window_seconds": 1,
            "maximum_concurrency": 2,  # no ScalingConfig
            "timeout_seconds": STUB_VISIBILITY_SECONDS,
            "log_files": [str(logs / f"SecondFunction-{slot}.log") for slot in range(2)],
        },
    }
    assert stack_file["crash_plan_file"] == str(stub_stack.state_dir / "crash-plan.json")
    summary = stub_stack.summary()
    assert "FirstFunction <- sfintacct-local-FirstQueue   batch 4, concurrency 3, timeout 2 s" in summary
    assert "SecondFunction <- sfintacct-local-SecondQueue   batch 2, concurrency 2, timeout 2 s" in summary
    first_pids = ", ".join(str(pid) for pid in stub_stack.workers.slot_pids()["FirstFunction"])
    assert f"(pids {first_pids})" in summary


def test_the_local_visibility_timeout_brings_failed_records_back_within_seconds(
    stub_stack: LocalStack,
) -> None:
    client = sqs_client(stub_stack.info["sqs_endpoint"])
    queues = stub_stack.info["queues"]
    for queue_id in ("FirstQueue", "FirstDeadLetterQueue", "SecondQueue"):
        attributes = client.get_queue_attributes(QueueUrl=queues[queue_id], AttributeNames=["All"])[
            "Attributes"
        ]
        assert int(attributes["VisibilityTimeout"]) == STUB_VISIBILITY_SECONDS  # the template says 300, 600
    redrive = json.loads(
        client.get_queue_attributes(QueueUrl=queues["FirstQueue"], AttributeNames=["RedrivePolicy"])[
            "Attributes"
        ]["RedrivePolicy"]
    )
    assert int(redrive["maxReceiveCount"]) == 3  # as the template says
    assert redrive["deadLetterTargetArn"] == queue_arn(stub_stack, "FirstDeadLetterQueue")

    client.send_message(QueueUrl=queues["FirstQueue"], MessageBody="fail-always")
    started = time.monotonic()
    assert stub_stack.poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)

    receive_counts = [
        record["receive_count"]
        for invocation in stub_invocations(stub_stack)
        for record in invocation["records"]
        if record["body"] == "fail-always"
    ]
    assert receive_counts == [1, 2, 3]
    assert time.monotonic() - started < 3 * STUB_VISIBILITY_SECONDS + 5
    dead_letters = client.receive_message(QueueUrl=queues["FirstDeadLetterQueue"], WaitTimeSeconds=1)
    assert [message["Body"] for message in dead_letters.get("Messages", [])] == ["fail-always"]


def test_parameter_overrides_reach_the_queues_and_the_workers(tmp_path: Path) -> None:
    parameters = {
        "WorkerMaximumConcurrency": "1",
        "FirstBatchSize": "3",
        "FirstTimeout": "7",
        "MaxReceiveCount": "2",
    }
    with start_stub_stack(
        tmp_path, write_stub_app(tmp_path), queue_visibility_seconds=None, parameters=parameters
    ) as stack:
        first = stack.info["workers"]["FirstFunction"]
        assert (first["maximum_concurrency"], first["batch_size"], first["timeout_seconds"]) == (1, 3, 7)
        assert len(stack.workers.slot_pids()["FirstFunction"]) == 1
        client = sqs_client(stack.info["sqs_endpoint"])
        queue_url = stack.info["queues"]["FirstQueue"]
        redrive = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
        assert json.loads(redrive["Attributes"]["RedrivePolicy"])["maxReceiveCount"] == 2

        client.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(index), "MessageBody": f"m-{index}"} for index in range(7)],
        )
        assert stack.poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)

        invocations = stub_invocations(stack)
        assert sorted(record["body"] for item in invocations for record in item["records"]) == [
            f"m-{index}" for index in range(7)
        ]
        assert max(len(item["records"]) for item in invocations) <= 3  # the overridden BatchSize
        assert len({item["pid"] for item in invocations}) == 1  # the one slot
        assert all(5000 < item["remaining_millis"] <= 7000 for item in invocations)  # Timeout 7 s


def test_each_function_has_its_own_environment_and_this_process_keeps_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHARED_SETTING", "the process's own")
    monkeypatch.delenv("WORK_QUEUE_URL", raising=False)
    before = dict(os.environ)
    template_path = write_stub_app(tmp_path, second_shared_setting="something-else")

    stack = start_stub_stack(tmp_path, template_path)
    try:
        assert dict(os.environ) == before  # the workers' environments are their processes' only
        client = sqs_client(stack.info["sqs_endpoint"])
        client.send_message(QueueUrl=stack.info["queues"]["FirstQueue"], MessageBody="to-first")
        client.send_message(QueueUrl=stack.info["queues"]["SecondQueue"], MessageBody="to-second")
        assert stack.poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)
        slot_pids = all_slot_pids(stack)
    finally:
        started = time.monotonic()
        stack.stop()

    assert time.monotonic() - started < 5
    environments = {item["code"]: item["environment"] for item in stub_invocations(stack)}
    assert environments["first"]["SHARED_SETTING"] == "same-everywhere"
    assert environments["second"]["SHARED_SETTING"] == "something-else"
    assert environments["first"]["WORK_QUEUE_URL"] == stack.info["queues"]["FirstQueue"]
    assert environments["second"]["WORK_QUEUE_URL"] is None
    assert not stack.poller.is_running
    assert all(process_gone(pid) for pid in slot_pids)
    assert dict(os.environ) == before


def test_a_handler_that_cannot_be_loaded_is_reported_clearly(tmp_path: Path) -> None:
    template_path = write_stub_app(tmp_path, second_handler="missing.lambda_handler")
    before = dict(os.environ)

    with pytest.raises(
        StackStartError, match=r"cannot load SecondFunction's handler missing\.lambda_handler"
    ) as refused:
        start_stub_stack(tmp_path, template_path)

    assert "No module named 'missing'" in str(refused.value)
    assert dict(os.environ) == before
    assert not (tmp_path / "state" / STACK_FILE_NAME).exists()


def test_a_crash_plan_kills_one_worker_process_at_its_step(stub_stack: LocalStack) -> None:
    client = sqs_client(stub_stack.info["sqs_endpoint"])
    queue_url = stub_stack.info["queues"]["FirstQueue"]
    planned = stub_stack.workers.crash_at("before_intacct_write", function="FirstFunction")
    pids_before = set(stub_stack.workers.slot_pids()["FirstFunction"])

    client.send_message(QueueUrl=queue_url, MessageBody="checkpoint:r-1")
    assert planned.wait(IDLE_TIMEOUT_SECONDS)
    assert stub_stack.poller.wait_until_idle(IDLE_TIMEOUT_SECONDS)

    crash = planned.crash
    assert crash is not None
    assert (crash.function, crash.step, crash.record_id) == (
        "FirstFunction",
        "before_intacct_write",
        "checkpoint:r-1",
    )
    assert crash.pid in pids_before
    assert process_gone(crash.pid)
    assert stub_stack.workers.crashes() == [crash]
    # The killed invocation deleted nothing: the message came back and a fresh process handled it (the
    # queue's counts are approximate, so on a loaded machine the poller may look idle a moment early).
    deadline = time.monotonic() + IDLE_TIMEOUT_SECONDS
    while (
        not (
            handled_now := [
                item
                for item in stub_invocations(stub_stack)
                if item["records"][0]["body"] == "checkpoint:r-1"
            ]
        )
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    [handled] = handled_now
    assert handled["records"][0]["receive_count"] == 2
    assert handled["invocations_in_process"] == 1
    assert handled["pid"] != crash.pid
    stats = stub_stack.poller.stats()["FirstFunction"]
    assert (stats["kills"], stats["timeouts"], stats["outcomes"]) == (1, 0, {"error": 1, "success": 1})
    [killed] = [item for item in stub_stack.poller.invocations() if item.killed]
    assert (killed.pid, killed.exit_signal, killed.outcome) == (crash.pid, "SIGKILL", "error")
    assert len(all_slot_pids(stub_stack)) == 5  # the slot has a process again
    log = Path(stub_stack.info["workers"]["FirstFunction"]["log_files"][killed.slot]).read_text()
    assert f"pid {crash.pid}) at before_intacct_write of checkpoint:r-1" in log


def test_crash_at_refuses_an_unknown_step_or_function(stub_stack: LocalStack) -> None:
    with pytest.raises(ValueError, match="unknown step"):
        stub_stack.workers.crash_at("halfway", function="FirstFunction")
    with pytest.raises(ValueError, match="no worker runs"):
        stub_stack.workers.crash_at("before_write_back", function="ThirdFunction")


def test_the_command_refuses_a_visibility_timeout_sqs_would_refuse(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--visibility-timeout", "0"])

    assert exited.value.code == 2
    assert "--visibility-timeout" in capsys.readouterr().err


# ---------------------------------------------------------------------------- clear errors


def test_missing_java_is_reported_clearly() -> None:
    with pytest.raises(DynamoDBLocalError, match=r"Java is missing .*Java 17\+"):
        start_dynamodb_local(java="no-such-java-for-sfintacct")


def test_missing_dynamodb_local_package_is_reported_clearly(tmp_path: Path) -> None:
    with pytest.raises(DynamoDBLocalError, match="npm install"):
        find_install_dir(tmp_path)


def test_a_taken_port_is_reported_clearly(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(DynamoDBLocalError, match=f"port {port}: it is in use"):
            start_dynamodb_local(port, log_path=tmp_path / "dynamodb.log")
