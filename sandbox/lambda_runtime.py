"""Execution environments for the local workers: each is a process, like a Lambda execution environment.

The parent side (`ExecutionEnvironment`) starts `python -m sandbox.lambda_runtime` for one concurrency
slot of a function, with the function's environment as the process environment and its code directory
as the working directory (first on sys.path, like /var/task), and talks to it in JSON lines:

    parent -> stdin:   {"event": {...}, "context": {"aws_request_id": ..., "deadline_ms": ..., ...}}
    stdout -> parent:  {"ready": true, "pid": ..., "init_seconds": ...}            once, after init
                       {"status": "returned", "response": ..., "cpu_seconds": ..., "dynamodb_calls": [...]}
                       {"status": "raised" | "invalid_response", "error_type": ..., "error": ..., ...}

Init (the cold start) imports the handler module once; every later invocation in the process finds the
module state it left (warm). The process writes its own stdout and stderr (Powertools' JSON logs,
tracebacks, platform lines) to the slot's log file; the protocol uses a copy of the original stdout.
For every invocation it measures its own CPU time around the handler call and counts the DynamoDB API
calls made (a botocore hook installed before the handler is imported, so every boto3 session has it).

The parent waits for an answer until the invocation's deadline. Past it, it kills the process with
SIGKILL (outcome "timeout"); a process that dies during an invocation (say, killed by a crash plan)
gives outcome "died". Either way the next invocation needs a fresh process: `start()` again (cold).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sandbox.processes import _parent_death_prefix

INIT_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 1.0
READ_CHUNK_BYTES = 65536


class EnvironmentStartError(Exception):
    """A worker process could not start or its handler could not be loaded (the message says why)."""


@dataclass(frozen=True)
class FunctionRuntime:
    """What an execution environment of one function runs: its code, handler, environment and log dir."""

    function_name: str
    code_dir: Path
    handler: str  # "module.function", module relative to code_dir
    environment: Mapping[str, str]  # the whole process environment
    log_dir: Path  # slot n logs to <log_dir>/<function_name>-<n>.log
    crash_plan: Path | None = None  # the stack's crash plan file (sandbox.crash_plan), if any
    init_timeout_seconds: float = INIT_TIMEOUT_SECONDS

    def log_path(self, slot: int) -> Path:
        return self.log_dir / f"{self.function_name}-{slot}.log"


@dataclass(frozen=True)
class InvocationResult:
    """What one invocation in a process came to."""

    status: str  # "returned", "raised", "invalid_response", "timeout" or "died"
    pid: int
    cold_start: bool  # the first invocation of this process
    init_seconds: float | None = None  # the process's init time, on a cold start
    response: object = None
    error: str = ""
    cpu_seconds: float = 0.0
    dynamodb_calls: dict[tuple[str, str], int] = field(default_factory=dict)
    exit_signal: str | None = None  # how a process that died ended, e.g. "SIGKILL"


class ExecutionEnvironment:
    """One concurrency slot of a function: at most one process at a time, one invocation at a time."""

    def __init__(self, runtime: FunctionRuntime, slot: int) -> None:
        self.runtime = runtime
        self.slot = slot
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._invocations = 0  # in the current process
        self._init_seconds: float | None = None

    @property
    def name(self) -> str:
        return f"{self.runtime.function_name}-{self.slot}"

    @property
    def log_path(self) -> Path:
        return self.runtime.log_path(self.slot)

    @property
    def pid(self) -> int | None:
        """The running process's id, or None."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def is_alive(self) -> bool:
        return self.pid is not None

    # ------------------------------------------------------------------ life cycle

    def spawn(self) -> None:
        """Start a fresh process (ending any earlier one); wait_ready() then waits for its init."""
        self.kill()
        runtime = self.runtime
        command = [*_parent_death_prefix(), sys.executable, "-m", "sandbox.lambda_runtime"]
        command += [
            "--function",
            runtime.function_name,
            "--slot",
            str(self.slot),
            "--handler",
            runtime.handler,
        ]
        if runtime.crash_plan is not None:
            command += ["--crash-plan", str(runtime.crash_plan)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - this interpreter and a fixed module
                command,
                cwd=runtime.code_dir,
                env=dict(runtime.environment),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # a Ctrl-C in the terminal reaches only the stack
            )
        with self._lock:
            self._process = process
            self._buffer = b""
            self._invocations = 0
            self._init_seconds = None

    def wait_ready(self) -> None:
        """Wait for the process's init; EnvironmentStartError (and no process) if it fails."""
        process = self._process
        if process is None:
            raise EnvironmentStartError(f"{self.name}: no process was started")
        line = self._read_line(process, time.monotonic() + self.runtime.init_timeout_seconds)
        message: dict[str, Any] = {}
        if isinstance(line, bytes):
            with contextlib.suppress(ValueError):
                message = json.loads(line)
        if message.get("ready") is True:
            self._init_seconds = float(message.get("init_seconds", 0.0))
            return
        self.kill()
        reason = message.get("error") or (
            "init timed out" if line is _TIMED_OUT else f"the process ended ({_exit_text(process)})"
        )
        raise EnvironmentStartError(f"{self.name}: {reason} (log: {self.log_path})")

    def start(self) -> None:
        """A fresh process, initialised (cold start)."""
        self.spawn()
        self.wait_ready()

    def signal_kill(self) -> None:
        """SIGKILL the process now, from any thread; the thread invoking it sees it die."""
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()

    def kill(self) -> None:
        """SIGKILL the process, if any, and reap it (by the thread that invokes this slot)."""
        with self._lock:
            process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        process.wait()
        _close(process)

    def close_input(self) -> None:
        """Close the process's stdin: it exits once idle (stop() then waits for it)."""
        process = self._process
        if process is not None and process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """End the process: close its stdin (it exits when idle), SIGKILL if it has not within `timeout`."""
        self.close_input()
        with self._lock:
            process, self._process = self._process, None
        if process is None:
            return
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
        _close(process)

    # ------------------------------------------------------------------ invoking

    def invoke(self, event: dict[str, Any], context: dict[str, Any], deadline: float) -> InvocationResult:
        """Run one invocation; `deadline` is time.time() seconds. Past it the process is killed."""
        process = self._process
        if process is None or process.poll() is not None:
            raise EnvironmentStartError(f"{self.name}: no running process to invoke")
        self._invocations += 1
        cold_start = self._invocations == 1
        init_seconds = self._init_seconds if cold_start else None
        pid = process.pid
        request = json.dumps({"event": event, "context": context}).encode("utf-8") + b"\n"
        try:
            assert process.stdin is not None
            process.stdin.write(request)
            process.stdin.flush()
        except (BrokenPipeError, OSError):
            return self._died(process, cold_start, init_seconds)
        line = self._read_line(process, time.monotonic() + max(0.0, deadline - time.time()))
        if line is _TIMED_OUT:
            self.kill()
            return InvocationResult("timeout", pid, cold_start, init_seconds)
        if line is None:
            return self._died(process, cold_start, init_seconds)
        assert isinstance(line, bytes)
        answer: dict[str, Any] = json.loads(line)
        return InvocationResult(
            status=str(answer["status"]),
            pid=pid,
            cold_start=cold_start,
            init_seconds=init_seconds,
            response=answer.get("response"),
            error=": ".join(str(answer[key]) for key in ("error_type", "error") if answer.get(key)),
            cpu_seconds=float(answer.get("cpu_seconds", 0.0)),
            dynamodb_calls={
                (str(table), str(operation)): int(count)
                for table, operation, count in answer.get("dynamodb_calls", [])
            },
        )

    def _died(
        self, process: subprocess.Popen[bytes], cold_start: bool, init: float | None
    ) -> InvocationResult:
        if process.poll() is None:  # its stdin broke but it still runs: it is no use any more
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        process.wait()
        exit_signal = _signal_name(process.returncode)
        with self._lock:
            if self._process is process:
                self._process = None
        _close(process)
        return InvocationResult(
            "died",
            process.pid,
            cold_start,
            init,
            error=f"the process exited ({_exit_text(process)})",
            exit_signal=exit_signal,
        )

    def _read_line(self, process: subprocess.Popen[bytes], deadline: float) -> bytes | object | None:
        """The next line from the process; None at end of file (it died); _TIMED_OUT past `deadline`."""
        assert process.stdout is not None
        descriptor = process.stdout.fileno()
        poller = select.poll()
        poller.register(descriptor, select.POLLIN | select.POLLHUP)
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return _TIMED_OUT
            if not poller.poll(min(remaining, 1.0) * 1000):
                continue
            chunk = os.read(descriptor, READ_CHUNK_BYTES)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line


_TIMED_OUT = object()


def _close(process: subprocess.Popen[bytes]) -> None:
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _signal_name(returncode: int | None) -> str | None:
    if returncode is None or returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _exit_text(process: subprocess.Popen[bytes]) -> str:
    returncode = process.poll()
    if returncode is None:
        return "still running"
    name = _signal_name(returncode)
    return f"killed by {name}" if name else f"exit code {returncode}"


# ---------------------------------------------------------------------------- inside the process


class LocalLambdaContext:
    """The Lambda context of one invocation; the remaining time counts down to the real deadline."""

    function_version = "$LATEST"
    identity = None
    client_context = None

    def __init__(
        self,
        *,
        function_name: str,
        invoked_function_arn: str,
        memory_limit_in_mb: int,
        aws_request_id: str,
        log_group_name: str,
        log_stream_name: str,
        deadline_ms: int,
    ) -> None:
        self.function_name = function_name
        self.invoked_function_arn = invoked_function_arn
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = aws_request_id
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


class DynamoDBCalls:
    """Counts DynamoDB API calls by (table, operation) in this process, for the current invocation."""

    EVENT = "before-parameter-build.dynamodb"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[tuple[str, str]] = Counter()

    def install(self) -> None:
        """Before any botocore session exists: every session registers botocore's built-in handlers."""
        try:
            import botocore.handlers  # noqa: PLC0415 - only where the function has botocore
        except ImportError:
            return
        botocore.handlers.BUILTIN_HANDLERS.append((self.EVENT, self._count))

    def take(self) -> list[list[str | int]]:
        with self._lock:
            calls, self._calls = self._calls, Counter()
        return [[table, operation, count] for (table, operation), count in sorted(calls.items())]

    def _count(self, params: Mapping[str, Any], model: Any, **kwargs: Any) -> None:
        with self._lock:
            self._calls[(_table_of(params), str(model.name))] += 1


def _table_of(params: Mapping[str, Any]) -> str:
    if "TableName" in params:
        return str(params["TableName"])
    tables = set(params.get("RequestItems") or {})
    for item in params.get("TransactItems") or []:
        tables.update(str(action["TableName"]) for action in item.values() if "TableName" in action)
    return "+".join(sorted(tables)) or "-"


def _platform_line(kind: str, **record: Any) -> None:
    """A Lambda-like platform log line (JSON log format) on stderr, i.e. in the slot's log."""
    line = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "type": kind, "record": record}
    print(json.dumps(line), file=sys.stderr, flush=True)


def _run(arguments: argparse.Namespace, protocol: IO[str]) -> int:
    def send(message: Mapping[str, Any]) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    started = time.perf_counter()
    log_stream_name = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[$LATEST]{uuid.uuid4().hex}"
    _platform_line(
        "platform.initStart", functionName=arguments.function, slot=arguments.slot, pid=os.getpid()
    )
    meter = DynamoDBCalls()
    meter.install()
    if arguments.crash_plan:
        from sandbox.crash_plan import install_checkpoint_hook  # noqa: PLC0415

        install_checkpoint_hook(Path(arguments.crash_plan), arguments.function)
    module_name, _, function_name = str(arguments.handler).rpartition(".")
    try:
        if not module_name:
            raise ImportError(f"handler {arguments.handler!r} is not module.function")
        module = importlib.import_module(module_name)
        handler = getattr(module, function_name, None)
        if not callable(handler):
            raise ImportError(f"{module_name} has no function {function_name}")
    except BaseException as error:  # Lambda reports an init error and the environment is discarded
        traceback.print_exc()
        send({"ready": False, "error": f"cannot load the handler: {type(error).__name__}: {error}"})
        return 1
    init_seconds = time.perf_counter() - started
    meter.take()  # calls made during init are not an invocation's
    send({"ready": True, "pid": os.getpid(), "init_seconds": init_seconds})

    for raw in sys.stdin.buffer:
        request = json.loads(raw)
        fields = request["context"]
        context = LocalLambdaContext(
            function_name=fields["function_name"],
            invoked_function_arn=fields["invoked_function_arn"],
            memory_limit_in_mb=int(fields["memory_limit_in_mb"]),
            aws_request_id=fields["aws_request_id"],
            log_group_name=fields["log_group_name"],
            log_stream_name=log_stream_name,
            deadline_ms=int(fields["deadline_ms"]),
        )
        _platform_line("platform.start", requestId=context.aws_request_id, version="$LATEST")
        answer: dict[str, Any]
        started_cpu = time.process_time()
        started_at = time.perf_counter()
        try:
            response = handler(request["event"], context)
        except Exception as error:
            traceback.print_exc()
            answer = {"status": "raised", "error_type": type(error).__name__, "error": f"{error}"}
        else:
            try:
                answer = {"status": "returned", "response": json.loads(json.dumps(response))}
            except (TypeError, ValueError) as error:
                answer = {"status": "invalid_response", "error": f"the response is not JSON: {error}"}
        answer["cpu_seconds"] = time.process_time() - started_cpu
        answer["dynamodb_calls"] = meter.take()
        _platform_line(
            "platform.report",
            requestId=context.aws_request_id,
            status="success" if answer["status"] == "returned" else "error",
            metrics={
                "durationMs": round((time.perf_counter() - started_at) * 1000, 2),
                "cpuMs": round(answer["cpu_seconds"] * 1000, 2),
            },
        )
        send(answer)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One execution environment of a local worker (JSON lines).")
    parser.add_argument("--function", required=True)
    parser.add_argument("--slot", type=int, required=True)
    parser.add_argument("--handler", required=True)
    parser.add_argument("--crash-plan", default=None)
    arguments = parser.parse_args(argv)
    # The protocol keeps the original stdout; the handler's stdout goes where stderr goes (the log).
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    # The working directory is the code directory, as /var/task on Lambda: first on sys.path.
    if sys.path[0] != os.getcwd():
        sys.path.insert(0, os.getcwd())
    return _run(arguments, protocol)


if __name__ == "__main__":
    sys.exit(main())
