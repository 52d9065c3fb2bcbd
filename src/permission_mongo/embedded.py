"""The embedded database: SecantusDB started as a child process.

The gateway's quick start and the test suite use it where no MongoDB URI is given. It is
started with ``python -m secantus`` and reached over the real wire protocol like any MongoDB;
nothing here imports it (it is GPL-2.0 and an optional extra).
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

__all__ = ["EmbeddedDatabase", "EmbeddedDatabaseError"]

_LISTENING = re.compile(r"secantus listening on (\S+):(\d+)")


def _stop_with_parent() -> None:
    """In the child: have Linux send SIGTERM when the parent dies, even by SIGKILL, so no
    database is left running behind a killed gateway or test run."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: stop() on exit is all there is


class EmbeddedDatabaseError(RuntimeError):
    """The embedded database could not be started."""


class EmbeddedDatabase:
    """A SecantusDB server process bound to a free port on 127.0.0.1.

    ``storage_path`` keeps data across restarts; ``":memory:"`` keeps it in a temporary
    directory removed when the process stops. ``port`` 0 picks a free one; a fixed port lets
    a stopped server be started again where its clients look for it.

    ``durable`` (the default) syncs the database's log to disk before a write is confirmed
    (``--sync-on-commit``), so a write the gateway acknowledged survives the process being
    killed, as a journaled write concern on MongoDB does. Without it SecantusDB confirms
    writes still in memory: faster, and only for data that may be lost (tests, benchmarks).
    """

    def __init__(
        self,
        storage_path: str | os.PathLike[str] = ":memory:",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        durable: bool = True,
        test_commands: bool = False,
    ) -> None:
        self.storage_path = str(storage_path)
        self.host = host
        self.requested_port = port
        self.durable = durable
        self.test_commands = test_commands
        self.port: int | None = None
        self._process: subprocess.Popen[str] | None = None
        self._log: list[str] = []

    @property
    def uri(self) -> str:
        if self.port is None:
            raise EmbeddedDatabaseError("the embedded database is not running")
        # SecantusDB's retryable-write path is slow, and a standalone has no use for it.
        return f"mongodb://{self.host}:{self.port}/?retryWrites=false"

    def start(self, timeout: float = 60.0) -> str:
        """Start the server and return its URI once it accepts connections."""
        if self.storage_path != ":memory:":
            Path(self.storage_path).mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "secantus",
            "--host", self.host, "--port", str(self.requested_port),
            "--storage-path", self.storage_path,
            "--log-level", "INFO",
        ]
        if self.durable:
            command.append("--sync-on-commit")
        if self.test_commands:
            command.append("--enable-test-commands")
        try:
            self._process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                preexec_fn=_stop_with_parent if sys.platform == "linux" else None,
            )
        except OSError as exc:
            raise EmbeddedDatabaseError(f"cannot run {sys.executable} -m secantus: {exc}") from exc

        found = threading.Event()
        reader = threading.Thread(target=self._read_output, args=(found,), daemon=True)
        reader.start()
        if not found.wait(timeout) or self.port is None:
            output = "".join(self._log[-20:])
            self.stop()
            if "No module named secantus" in output:
                raise EmbeddedDatabaseError(
                    "SecantusDB is not installed; install the extra: "
                    "pip install 'permission-mongo[embedded]'"
                )
            raise EmbeddedDatabaseError(f"SecantusDB did not start:\n{output}")
        return self.uri

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (fault tests signal it)."""
        return None if self._process is None else self._process.pid

    def _read_output(self, found: threading.Event) -> None:
        # Keep draining the pipe for the life of the process, so the server never blocks
        # on a full pipe; keep only the recent lines for error messages.
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self._log.append(line)
            del self._log[:-200]
            if self.port is None:
                match = _LISTENING.search(line)
                if match:
                    self.port = int(match.group(2))
                    found.set()
        found.set()

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        self.port = None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedDatabase:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
