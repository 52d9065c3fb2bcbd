"""A test database that can be killed, frozen and brought back where its clients look for it.

``FaultyDatabase`` wraps :class:`~permission_mongo.embedded.EmbeddedDatabase` on a port chosen
once, so a gateway started on its URI finds it again after every restart, and on storage kept
across restarts, so what it had confirmed to disk is there when it comes back. It runs without
``--sync-on-commit`` (``durable=False``): a write confirmed only in memory is lost to a kill,
which is what makes a missing journaled write concern observable. SecantusDB honours ``j: true``
per write without the option.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from permission_mongo.embedded import EmbeddedDatabase

__all__ = ["FaultyDatabase", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the system's pick for a port-0 bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class FaultyDatabase:
    """SecantusDB on a fixed port and storage path, with SIGKILL, SIGSTOP and SIGCONT."""

    def __init__(self, storage_path: str | os.PathLike[str], *, test_commands: bool = False) -> None:
        self.storage_path = Path(storage_path)
        self.port = free_port()
        self._database = EmbeddedDatabase(
            self.storage_path, port=self.port, durable=False, test_commands=test_commands
        )
        self.frozen = False
        self.kills = 0

    @property
    def uri(self) -> str:
        """The same while the database is down: a client keeps it across restarts."""
        return f"mongodb://127.0.0.1:{self.port}/?retryWrites=false"

    @property
    def pid(self) -> int:
        pid = self._database.pid
        if pid is None:
            raise RuntimeError("the database is not running")
        return pid

    def start(self) -> str:
        self._database.start()
        # The port was free when picked; a server elsewhere on it would show here.
        assert self._database.port == self.port, (self._database.port, self.port)
        return self.uri

    def restart(self) -> str:
        """Start again after a kill, on the same port and storage."""
        return self.start()

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL: no shutdown, nothing flushed. Returns once the process is gone."""
        pid = self.pid
        self.thaw()  # a stopped process dies of SIGKILL too, but keep the state honest
        os.kill(pid, signal.SIGKILL)
        self._database.stop()  # reaps it (SIGTERM to the dying process is harmless)
        deadline = time.monotonic() + timeout
        while _alive(pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the database (pid {pid}) survived SIGKILL for {timeout} s")
            time.sleep(0.01)
        self.kills += 1

    def freeze(self) -> None:
        """SIGSTOP: the process holds its connections and answers nothing."""
        os.kill(self.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        if self.frozen:
            os.kill(self.pid, signal.SIGCONT)
            self.frozen = False

    def stop(self) -> None:
        if self._database.pid is not None:
            self.thaw()  # a stopped process would not act on SIGTERM
        self._database.stop()

    def __enter__(self) -> FaultyDatabase:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers signal 0; a reaped child does not (stop() reaped it).
    return True
