"""The database frozen (SIGSTOP): it holds its connections and answers nothing.

With ``mongodb.operation_timeout: 1`` every database operation is bounded by a second, so a
read, a write and ``/ready`` each answer 503 ``SERVICE_UNAVAILABLE`` with ``Retry-After`` well
within 2.5 s instead of waiting as long as the database hangs. Once it is thawed the same
gateway, not restarted, serves again, and the write that timed out, retried with its
``Idempotency-Key`` as the SDK does, is applied exactly once (the frozen database runs what it
had received when it wakes: the outcome of that first attempt was unknown, not a failure).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pymongo
import pytest

from ..server.harness import assert_error
from .conftest import COLLECTION
from .harness import FaultyDatabase

BOUND = 2.5  # seconds: the 1 s operation timeout, with room for a busy 2-core machine
NO_ANSWER = 6.0  # the client gives up here: a gateway without the bound waits for the thaw
RECOVERY = 5.0  # seconds after the thaw for the gateway to be ready again


@pytest.fixture(scope="module")
def server_yml() -> str:
    return """\
mongodb:
  timeout: 2
  operation_timeout: 1
auth:
  api_keys:
    cache_seconds: 30
"""


@pytest.fixture(scope="module")
def document_id(client: httpx.Client) -> str:
    created = client.post(f"/v1/data/{COLLECTION}", json={"name": "before the freeze"})
    assert created.status_code == 201, created.text
    return str(created.json()["_id"]["$oid"])


@pytest.fixture
def frozen(database: FaultyDatabase, client: httpx.Client, document_id: str) -> Iterator[FaultyDatabase]:
    # The API key is cached by a request first, so what is timed is the data operation.
    assert client.get(f"/v1/data/{COLLECTION}/{document_id}").status_code == 200
    database.freeze()
    try:
        yield database
    finally:
        database.thaw()


def create_request(marker: str, key: str) -> dict[str, Any]:
    return {
        "method": "POST", "url": f"/v1/data/{COLLECTION}",
        "json": {"name": "during the freeze", "marker": marker}, "headers": {"Idempotency-Key": key},
    }


def timed(client: httpx.Client, **request: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    try:
        response = client.request(timeout=NO_ANSWER, **request)
    except httpx.TimeoutException:
        response = None
    if response is None:  # failed out here, so the report is not buried under httpx's traceback
        pytest.fail(f"{request['method']} {request['url']}: no answer within {NO_ANSWER:g} s of the database freezing")
    return response, time.monotonic() - started


REQUESTS: dict[str, Callable[[str], dict[str, Any]]] = {
    "read": lambda document_id: {"method": "GET", "url": f"/v1/data/{COLLECTION}/{document_id}"},
    "write": lambda document_id: create_request(uuid.uuid4().hex, str(uuid.uuid4())),
    "ready": lambda document_id: {"method": "GET", "url": "/ready"},
}


@pytest.mark.parametrize("kind", list(REQUESTS))
def test_frozen_database_answers_503_within_the_bound(
    frozen: FaultyDatabase, client: httpx.Client, document_id: str, kind: str
) -> None:
    response, elapsed = timed(client, **REQUESTS[kind](document_id))
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert "retry-after" in response.headers, f"503 without Retry-After: {response.headers}"
    assert elapsed < BOUND, f"503 after {elapsed:.2f} s; the bound is 1 s (allowed {BOUND} s)"


def test_thawed_database_serves_again_and_the_timed_out_write_applies_once(
    database: FaultyDatabase, client: httpx.Client, document_id: str, stored: pymongo.collection.Collection[Any]
) -> None:
    marker, key = uuid.uuid4().hex, str(uuid.uuid4())
    assert client.get(f"/v1/data/{COLLECTION}/{document_id}").status_code == 200
    database.freeze()
    try:
        response, _ = timed(client, **create_request(marker, key))
        assert_error(response, 503, "SERVICE_UNAVAILABLE")
    finally:
        database.thaw()

    deadline = time.monotonic() + RECOVERY
    while (ready := client.get("/ready")).status_code != 200:
        assert time.monotonic() < deadline, f"/ready still {ready.status_code} {RECOVERY:g} s after the thaw: {ready.text}"
        time.sleep(0.1)
    read = client.get(f"/v1/data/{COLLECTION}/{document_id}")
    assert read.status_code == 200, read.text
    fresh = client.post(f"/v1/data/{COLLECTION}", json={"name": "after the thaw"})
    assert fresh.status_code == 201, fresh.text

    # The SDK's retry of the timed-out write: same key, same body, obeying Retry-After.
    deadline = time.monotonic() + RECOVERY
    while (retried := client.request(**create_request(marker, key))).status_code == 503:
        assert time.monotonic() < deadline, f"the retried write still answers 503 {RECOVERY:g} s after the thaw: {retried.text}"
        time.sleep(float(retried.headers.get("retry-after", 0.5)))
    assert retried.status_code == 201, retried.text
    copies = stored.count_documents({"marker": marker})
    assert copies == 1, f"the write retried with one Idempotency-Key is stored {copies} times"
