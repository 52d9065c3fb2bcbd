"""Helpers for the server tests: the gateway process, tokens, the error envelope.

A ``Gateway`` runs the real ``permission-mongo serve`` on port 0, reads the URL it prints,
waits for ``/health``, and stops it with SIGTERM.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import jwt

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
JWT_SECRET = "test-secret-" + "s" * 60  # long enough for HS512 too
JWT_ISSUER = "https://login.test/"
JWT_AUDIENCE = "permission-mongo-tests"
_LISTENING = re.compile(r"listening on (http://\S+)")


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without PM_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PM_")}
    env["PYTHONUNBUFFERED"] = "1"  # every line of output reaches the harness as it is written
    env.update(extra or {})
    return env


def serve_command(config_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "permission_mongo", "serve", "--config", str(config_dir), *args]


def write_config(directory: Path, server_yml: str | None = None) -> Path:
    """A config directory with the examples' policy and schema, and ``server_yml``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("policy.yml", "schema.yml"):
        shutil.copy(EXAMPLES / name, directory / name)
    if server_yml is not None:
        (directory / "server.yml").write_text(server_yml)
    return directory


class Gateway:
    """One ``permission-mongo serve`` process; its combined output is kept in ``output``."""

    def __init__(self, command: list[str], *, env: Mapping[str, str], cwd: Path | None = None) -> None:
        self.command = command
        self.env = dict(env)
        self.cwd = cwd
        self.url = ""
        self.process: subprocess.Popen[str] | None = None
        self._lines: list[str] = []
        self._listening = threading.Event()

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def start(self, timeout: float = 60) -> Gateway:
        self.process = subprocess.Popen(
            self.command, env=self.env, cwd=self.cwd, text=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._listening.wait(timeout) or not self.url:
            self.stop()
            raise RuntimeError(f"the gateway did not start:\n{self.output}")
        deadline = time.monotonic() + timeout
        while httpx.get(f"{self.url}/health").status_code != 200:
            if time.monotonic() > deadline:  # pragma: no cover - start-up failure
                raise RuntimeError(f"the gateway is not healthy:\n{self.output}")
            time.sleep(0.05)
        return self

    def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line)
            match = _LISTENING.search(line)
            if match and not self.url:
                self.url = match.group(1)
                self._listening.set()
        self._listening.set()

    def stop(self, timeout: float = 20) -> int | None:
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def new_admin_key() -> str:
    return "pm_" + secrets.token_urlsafe(32)


def make_token(claims: Mapping[str, Any] | None = None, *, key: Any = JWT_SECRET, algorithm: str = "HS256", **overrides: Any) -> str:
    """A JWT the session gateway accepts unless ``claims``/``overrides`` say otherwise."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": "alice", "tenant_id": "acme", "roles": ["user"],
        "iss": JWT_ISSUER, "aud": JWT_AUDIENCE, "iat": now, "exp": now + 600,
    }
    payload.update(claims or {})
    payload.update(overrides)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key, algorithm=algorithm)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the error envelope with this status and code; returns the error."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "meta"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["meta"]["request_id"] == response.headers["x-request-id"]
    if status in (429, 503):  # every "try again later" says when
        assert int(response.headers["retry-after"]) >= 1, response.headers
    return body["error"]


def user_client(gateway: Gateway, user_id: str, tenant_id: str | None, roles: list[str], **claims: Any) -> httpx.Client:
    """A client whose JWT carries this identity (other claims become attributes)."""
    return gateway.client(make_token({"sub": user_id, "tenant_id": tenant_id, "roles": roles, **claims}))


def ejson(response: httpx.Response) -> Any:
    """The body decoded as Extended JSON (ObjectIds, dates... as bson types)."""
    from bson import json_util

    return json_util.loads(response.text, json_options=json_util.JSONOptions(tz_aware=False))
