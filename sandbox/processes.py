"""Child processes of the local stack that never outlive it.

Each child runs in its own session (a Ctrl-C in the terminal reaches only the stack, which then stops
its children in order). On Linux the child also gets a parent-death signal through `setpriv`, so it
ends even if the stack itself is killed with SIGKILL; the signal follows the thread that started the
child, so start children from a thread that lives as long as the stack (the main thread).
"""

from __future__ import annotations

import atexit
import contextlib
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

STOP_TIMEOUT_SECONDS = 10.0


class ChildProcess:
    """A started child process with its output in a log file; stop() is idempotent."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        log_path: Path,
        cwd: Path | None = None,
        pipe_stdio: bool = False,
    ) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self._log_start = self._log.tell()  # a log file may be shared by attempts: read only ours
        try:
            self._process = subprocess.Popen(  # noqa: S603 - a fixed command built by the stack
                [*_parent_death_prefix(), *args],
                cwd=cwd,
                stdin=subprocess.PIPE if pipe_stdio else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipe_stdio else self._log,
                stderr=self._log,
                start_new_session=True,
            )
        except BaseException:
            self._log.close()
            raise
        atexit.register(self.stop)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def stdout(self) -> IO[bytes] | None:
        return self._process.stdout

    def is_running(self) -> bool:
        return self._process.poll() is None

    def read_line(self, timeout: float) -> str | None:
        """One line of the child's piped stdout, or None if none came within `timeout` or it exited."""
        stream = self._process.stdout
        if stream is None:
            raise RuntimeError(f"{self.name}: stdout is not piped")
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(stream, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=min(0.2, max(0.0, deadline - time.monotonic()))):
                    line = stream.readline()
                    return line.decode("utf-8", "replace").strip() if line else None
                if not self.is_running():
                    return None
        return None

    def log_text(self) -> str:
        """Everything this child wrote to its log so far."""
        if not self._log.closed:
            self._log.flush()
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(self._log_start)
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 15) -> str:
        """The last lines the child wrote to its log (for error messages)."""
        return "\n".join(self.log_text().strip().splitlines()[-lines:])

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Terminate the child (SIGTERM, then SIGKILL after `timeout`) and wait for it."""
        atexit.unregister(self.stop)
        process = self._process
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self._log.close()


def _parent_death_prefix() -> list[str]:
    """`setpriv --pdeathsig TERM --` where available (Linux), so the child ends when the stack dies."""
    if sys.platform.startswith("linux"):
        setpriv = shutil.which("setpriv")
        if setpriv:
            return [setpriv, "--pdeathsig", "TERM", "--"]
    return []
