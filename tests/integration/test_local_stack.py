"""The local stack: what stack.json promises is reachable, and stopping it leaves no process behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from defusedxml import ElementTree as SafeET

from sandbox.aws_local import dynamodb_client, secretsmanager_client, sqs_client
from sandbox.dynamodb_local import DynamoDBLocalError, find_install_dir, start_dynamodb_local
from sandbox.stack import (
    STACK_FILE_NAME,
    DynamoDBPart,
    LocalStack,
    MotoPart,
    StackContext,
    StackPart,
    start_local_stack,
)
from sandbox.template_resources import load_template

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
    """Run `python -m sandbox.stack --ephemeral`; returns the process and its children's pids by name."""
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
        declared = TEMPLATE.resources[queue_id]["Properties"]["VisibilityTimeout"]
        assert int(attributes["VisibilityTimeout"]) == int(declared)


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


# ---------------------------------------------------------------------------- start and stop


def test_stop_leaves_no_process_and_no_stack_file(tmp_path: Path) -> None:
    stack = start_local_stack(tmp_path, ephemeral=True)
    pids = stack.pids()
    endpoints = [
        stack.info["dynamodb_endpoint"],
        stack.info["sqs_endpoint"],
        stack.info["intacct"]["endpoint"],
    ]
    assert len(pids) == 2
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
