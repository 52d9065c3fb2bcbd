"""Slow clients (issue 9): a connection whose request headers do not arrive within
``server.header_timeout`` is closed (once, 100 silent connections and 100 sending partial
headers were all still held after 62 s); kept-alive connections and slow bodies are not.

Both of uvicorn's HTTP parsers are served: httptools (installed with the server extra) and h11
(what uvicorn falls back on without it; here the gateway runs with httptools made unimportable).
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from .harness import Gateway, clean_environment, new_admin_key, write_config

HEADER_TIMEOUT = 1
CLOSED_WITHIN = 5  # seconds: the timeout and a generous margin
ADMIN_KEY = new_admin_key()
_WITHOUT_HTTPTOOLS = (
    "import sys; sys.modules['httptools'] = None; "  # import httptools now fails, as when not installed
    "from permission_mongo.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.fixture(scope="module", params=["httptools", "h11"])
def gateway(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, mongo_uri: str) -> Iterator[Gateway]:
    config = write_config(tmp_path_factory.mktemp("slow-clients"), f"server:\n  header_timeout: {HEADER_TIMEOUT}\n")
    python = [sys.executable, "-m", "permission_mongo"] if request.param == "httptools" else [sys.executable, "-c", _WITHOUT_HTTPTOOLS]
    command = [*python, "serve", "--config", str(config), "--port", "0", "--mongodb-uri", mongo_uri, "--database", "slow_clients"]
    server = Gateway(command, env=clean_environment({"PM_ADMIN_KEY": ADMIN_KEY})).start()
    assert f"http {request.param}" in server.output  # the parser under test is the one serving
    yield server
    server.stop()


def connect(gateway: Gateway) -> socket.socket:
    host, port = gateway.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=CLOSED_WITHIN * 2)
    return sock


def closed_after(sock: socket.socket, keep_sending: Callable[[], bytes] | None = None) -> float:
    """Seconds until the server closes ``sock`` (sending ``keep_sending()`` every 0.2 s meanwhile)."""
    began = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - began < CLOSED_WITHIN * 2:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - began
        except TimeoutError:
            pass
        except ConnectionError:
            return time.monotonic() - began
        if keep_sending is not None:
            try:
                sock.sendall(keep_sending())
            except ConnectionError:
                return time.monotonic() - began
    return float("inf")


def response(sock: socket.socket) -> tuple[int, bytes]:
    """One HTTP/1.1 response (with a Content-Length) read from ``sock``: (status, body)."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(4096)
    return int(lines[0].split()[1]), body


def test_a_connection_sending_nothing_is_closed(gateway: Gateway) -> None:
    with connect(gateway) as sock:
        assert closed_after(sock) < CLOSED_WITHIN


def test_a_connection_trickling_its_headers_is_closed(gateway: Gateway) -> None:
    # A byte every 0.2 s: each arrives well in time; the headers as a whole do not.
    header = iter(b"X-Slow: " + b"a" * 1000)
    with connect(gateway) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\n")
        assert closed_after(sock, lambda: bytes([next(header)])) < CLOSED_WITHIN


def test_a_kept_alive_connection_and_a_slow_body_are_served(gateway: Gateway) -> None:
    with connect(gateway) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
        assert response(sock)[0] == 200
        time.sleep(HEADER_TIMEOUT * 2)  # idle past the header timeout (not past uvicorn's keep-alive, 5 s)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
        assert response(sock)[0] == 200
        # Headers complete, then a body sent over twice the header timeout: answered.
        body = b'{"identity": {"id": "slow-body"}}'
        sock.sendall(
            b"POST /v1/admin/api-keys HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + ADMIN_KEY.encode() + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        for part in (body[:10], body[10:20], body[20:]):
            time.sleep(HEADER_TIMEOUT * 2 / 3)
            sock.sendall(part)
        status, answer = response(sock)
        assert status == 201, answer
