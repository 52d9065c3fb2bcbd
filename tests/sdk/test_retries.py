"""Retries against a real HTTP server that fails on purpose (see ``fake_gateway``).

Waits are recorded, not slept (the autouse ``sleeps`` fixture). Both clients run every case.
"""

from __future__ import annotations

import socket

import httpx
import pytest

from permission_mongo import (
    APIConnectionError,
    APITimeoutError,
    ConflictError,
    RateLimitError,
    RetryConfig,
    ServerError,
    ValidationError,
)

from .conftest import ClientAdapter
from .fake_gateway import FakeGateway, Fault

USERS = "/v1/data/users"
NOBODY = "507f191e810c19729de860ea"  # an id no document has


async def test_a_timed_out_insert_is_retried_and_applied_once(
    make_client, gateway: FakeGateway, sleeps: list[float]
) -> None:
    # The first attempt is applied by the gateway, but its answer never arrives.
    client = make_client(gateway.url, timeout=0.2)
    gateway.fail_next(Fault.hang_after_serving())

    document = await client.insert("users", {"name": "Ada"})

    attempts = gateway.requests_to("POST", USERS)
    assert len(attempts) == 2
    keys = {attempt.headers["idempotency-key"] for attempt in attempts}
    assert len(keys) == 1, "every attempt of one call must carry the same key"
    stored = gateway.documents("users")
    assert len(stored) == 1, "the retry must not create a second document"
    assert document["_id"] == stored[0]["_id"]
    assert len(sleeps) == 1


async def test_a_lost_delete_answer_is_replayed_not_turned_into_404(
    make_client, gateway: FakeGateway
) -> None:
    gateway.seed("users", {"name": "Ada"})
    (ada,) = gateway.documents("users")
    client = make_client(gateway.url, timeout=0.2)
    gateway.fail_next(Fault.hang_after_serving())

    result = await client.delete("users", ada["_id"])

    assert result == {"deleted": True, "id": ada["_id"]}
    assert gateway.documents("users") == []


async def test_rate_limit_waits_as_long_as_retry_after_says(
    client: ClientAdapter, gateway: FakeGateway, sleeps: list[float]
) -> None:
    gateway.fail_next(Fault.error(429, "RATE_LIMIT_EXCEEDED", retry_after="2"))

    await client.insert("users", {"name": "Ada"})

    assert sleeps == [2.0]
    attempts = gateway.requests_to("POST", USERS)
    assert len(attempts) == 2
    assert attempts[0].headers["idempotency-key"] == attempts[1].headers["idempotency-key"]


async def test_rate_limit_over_the_cap_is_raised_at_once(
    client: ClientAdapter, gateway: FakeGateway, sleeps: list[float]
) -> None:
    gateway.fail_next(Fault.error(429, "RATE_LIMIT_EXCEEDED", retry_after="120"))

    with pytest.raises(RateLimitError) as caught:
        await client.count("users")

    assert caught.value.retry_after == 120.0
    assert caught.value.error_code == "RATE_LIMIT_EXCEEDED"
    assert sleeps == []
    assert len(gateway.requests) == 1


async def test_server_errors_back_off_then_succeed(
    client: ClientAdapter, gateway: FakeGateway, sleeps: list[float]
) -> None:
    gateway.fail_next(Fault.error(503, "SERVICE_UNAVAILABLE"), Fault.error(502))

    assert await client.count("users") == 0

    assert len(gateway.requests) == 3
    assert 0.375 <= sleeps[0] <= 0.5 and 0.75 <= sleeps[1] <= 1.0


async def test_retries_stop_at_max_retries(
    make_client, gateway: FakeGateway, sleeps: list[float]
) -> None:
    client = make_client(gateway.url, max_retries=2)
    gateway.fail_next(*[Fault.error(500, "INTERNAL_ERROR")] * 3)

    with pytest.raises(ServerError) as caught:
        await client.insert("users", {"name": "Ada"})

    assert caught.value.status_code == 500
    assert caught.value.error_code == "INTERNAL_ERROR"
    assert caught.value.request_id == "req-3"
    assert len(gateway.requests) == 3 and len(sleeps) == 2
    assert gateway.documents("users") == []


async def test_max_retries_zero_turns_retries_off(make_client, gateway: FakeGateway) -> None:
    client = make_client(gateway.url, max_retries=0)
    gateway.fail_next(Fault.error(503))
    with pytest.raises(ServerError):
        await client.get("users", NOBODY)
    assert len(gateway.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
async def test_client_errors_are_not_retried(
    client: ClientAdapter, gateway: FakeGateway, sleeps: list[float], status: int
) -> None:
    gateway.fail_next(Fault.error(status))
    with pytest.raises(Exception) as caught:
        await client.insert("users", {"name": "Ada"})
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    assert len(gateway.requests) == 1 and sleeps == []


async def test_validation_errors_come_from_the_envelope(
    client: ClientAdapter, gateway: FakeGateway
) -> None:
    with pytest.raises(ValidationError) as caught:
        await client.insert("users", {"name": ""})
    error = caught.value
    assert (error.status_code, error.error_code, error.details) == (
        422,
        "VALIDATION_ERROR",
        {"field": "name"},
    )
    assert error.message == "name must not be empty"
    assert error.request_id == "req-1"
    assert len(gateway.requests) == 1


async def test_retry_on_status_decides(make_client, gateway: FakeGateway) -> None:
    client = make_client(gateway.url, retry_config=RetryConfig(retry_on_status=[409]))
    gateway.fail_next(Fault.error(409, "CONFLICT"))
    await client.insert("users", {"name": "Ada"})
    assert len(gateway.requests) == 2

    gateway.fail_next(Fault.error(503))
    with pytest.raises(ServerError):
        await client.insert("users", {"name": "Bob"})


async def test_conflict_is_raised_as_conflict(client: ClientAdapter, gateway: FakeGateway) -> None:
    gateway.fail_next(Fault.error(409, "CONFLICT"))
    with pytest.raises(ConflictError):
        await client.insert("users", {"name": "Ada"})


async def test_a_dropped_connection_is_retried(
    client: ClientAdapter, gateway: FakeGateway, sleeps: list[float]
) -> None:
    gateway.fail_next(Fault.drop_connection())
    assert await client.get("users", NOBODY) is None
    assert len(gateway.requests) == 2 and len(sleeps) == 1


async def test_an_unreachable_gateway_raises_a_connection_error(
    make_client, sleeps: list[float]
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(f"http://127.0.0.1:{port}", max_retries=2)

    with pytest.raises(APIConnectionError) as caught:
        await client.insert("users", {"name": "Ada"})

    assert not isinstance(caught.value, APITimeoutError)
    assert caught.value.status_code is None
    assert caught.value.error_code == "CONNECTION_ERROR"
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(sleeps) == 2


async def test_timeout_with_no_retries_left(make_client, gateway: FakeGateway) -> None:
    client = make_client(gateway.url, timeout=0.2, max_retries=0)
    gateway.fail_next(Fault.hang_after_serving())

    with pytest.raises(APITimeoutError) as caught:
        await client.get("users", NOBODY)

    assert caught.value.error_code == "TIMEOUT"
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)
    assert str(caught.value).startswith(f"GET /v1/data/users/{NOBODY} timed out")
