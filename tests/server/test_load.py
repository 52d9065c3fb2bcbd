"""Under load (issue 9): readiness does not wait behind user traffic, and past
``server.max_concurrent_requests`` requests are shed with a 503 ``OVERLOADED`` at once.

Requests are made slow on purpose by SecantusDB's ``failCommand`` fail point: every find of
the gateway blocks its database connection for a few seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pymongo
import pytest

from permission_mongo.embedded import EmbeddedDatabase

from .harness import JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET, Gateway, assert_error, clean_environment, make_token, serve_command, write_config

FIND = "/v1/data/expenses/find"
BLOCK_MS = 3000


@pytest.fixture(scope="module")
def slow_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDatabase]:
    with EmbeddedDatabase(tmp_path_factory.mktemp("slow-db"), durable=False, test_commands=True) as database:
        yield database


def start(tmp_path_factory: pytest.TempPathFactory, database: EmbeddedDatabase, uri_options: str, server: str) -> Gateway:
    config = write_config(
        tmp_path_factory.mktemp("load-config"),
        f"""\
mongodb:
  operation_timeout: 30   # finds queued behind slow ones run to the end
auth:
  jwt: {{algorithm: HS256, secret: {JWT_SECRET}, issuer: "{JWT_ISSUER}", audience: {JWT_AUDIENCE}}}
limits:
  query_max_time_ms: 30000
{server}""",
    )
    uri = f"{database.uri}{uri_options}"
    return Gateway(serve_command(config, "--port", "0", "--mongodb-uri", uri, "--database", "load"), env=clean_environment()).start()


@pytest.fixture
def slow_finds(slow_database: EmbeddedDatabase) -> Iterator[None]:
    """Every find the gateway sends blocks its connection for BLOCK_MS."""
    with pymongo.MongoClient(slow_database.uri) as client:
        client.admin.command(
            "configureFailPoint", "failCommand", mode="alwaysOn",
            data={"failCommands": ["find"], "blockConnection": True, "blockTimeMS": BLOCK_MS, "appName": "permission-mongo"},
        )
        try:
            yield
        finally:
            client.admin.command("configureFailPoint", "failCommand", mode="off")


def in_background(gateway: Gateway, count: int) -> tuple[ThreadPoolExecutor, list[Any]]:
    """``count`` finds sent at once, each on its own connection."""
    token = make_token({"roles": ["admin"]})
    pool = ThreadPoolExecutor(count)

    def find() -> int:
        with gateway.client(token) as http:
            return http.post(FIND, json={}, timeout=60).status_code

    return pool, [pool.submit(find) for _ in range(count)]


def timed_get(http: httpx.Client, path: str) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = http.get(path)
    return response, time.monotonic() - began


def test_ready_answers_at_once_while_requests_wait_for_the_database(
    tmp_path_factory: pytest.TempPathFactory, slow_database: EmbeddedDatabase, slow_finds: None
) -> None:
    # A pool of 4 connections and 8 slow finds: each connection is held for BLOCK_MS and 4
    # finds queue for one. A ping through that pool would wait behind them, for seconds.
    gateway = start(tmp_path_factory, slow_database, "&maxPoolSize=4", "")
    try:
        with gateway.client() as http:
            assert http.get("/ready").status_code == 200  # connected before the load
            pool, finds = in_background(gateway, 8)
            time.sleep(1)  # the finds hold the pool
            probes = [timed_get(http, "/ready") for _ in range(3)]
            # Probes commonly time out after 1 s; a ping takes milliseconds.
            assert max(seconds for _, seconds in probes) < 1.0, probes
            assert not any(find.done() for find in finds)  # still under load while probed
            pool.shutdown()
        assert [response.status_code for response, _ in probes] == [200] * 3
        assert [find.result() for find in finds] == [200] * 8
    finally:
        gateway.stop()


def test_past_the_limit_requests_are_shed_at_once_and_probes_are_not(
    tmp_path_factory: pytest.TempPathFactory, slow_database: EmbeddedDatabase, slow_finds: None
) -> None:
    gateway = start(tmp_path_factory, slow_database, "", "server:\n  max_concurrent_requests: 2\n")
    try:
        with gateway.client(make_token({"roles": ["admin"]})) as http:
            pool, finds = in_background(gateway, 2)
            time.sleep(1)  # both in flight
            began = time.monotonic()
            response = http.post(FIND, json={})
            answered_in = time.monotonic() - began
            error = assert_error(response, 503, "OVERLOADED")
            assert response.headers["retry-after"] == "1"
            assert "max_concurrent_requests" in error["message"] and "retry" in error["message"]
            assert error["details"] == {"max_concurrent_requests": 2}
            assert answered_in < BLOCK_MS / 1000 / 2  # refused at once, not after waiting
            # Liveness and readiness are neither refused nor counted.
            assert http.get("/health").status_code == 200
            assert http.get("/ready").status_code == 200
            assert not any(find.done() for find in finds)
            pool.shutdown()
        assert [find.result() for find in finds] == [200, 200]
        with gateway.client(make_token({"roles": ["admin"]})) as http:
            assert http.get("/v1/whoami").status_code == 200  # the slots are free again
        assert "503 OVERLOADED" in gateway.output  # the operator is told
    finally:
        gateway.stop()

