"""Debug logging: enough to trace a request, never the API key."""

from __future__ import annotations

import logging

import pytest

from permission_mongo import AuthenticationError

from .conftest import API_KEY, ClientAdapter
from .fake_gateway import FakeGateway, Fault

NOBODY = "507f191e810c19729de860ea"  # an id no document has


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # every logger, httpx's too: none may leak the key
    return caplog


async def test_each_attempt_is_logged_with_method_path_status_and_request_id(
    client: ClientAdapter, gateway: FakeGateway, logs: pytest.LogCaptureFixture
) -> None:
    await client.get("users", NOBODY, headers={"X-Request-ID": "trace-1"})

    (record,) = [r for r in logs.records if r.name == "permission_mongo"]
    assert record.levelno == logging.DEBUG
    message = record.getMessage()
    assert message.startswith(f"GET /v1/data/users/{NOBODY} -> 404 in ")
    assert " ms " in message and "request_id=trace-1" in message


async def test_retries_are_logged(
    client: ClientAdapter, gateway: FakeGateway, logs: pytest.LogCaptureFixture
) -> None:
    gateway.fail_next(Fault.error(503, "SERVICE_UNAVAILABLE", retry_after="1"))
    await client.count("users")
    messages = [r.getMessage() for r in logs.records if r.name == "permission_mongo"]
    assert any(
        m.startswith(
            "Retrying POST /v1/data/users/count in 1.00 s (attempt 1 of 4: SERVICE_UNAVAILABLE)"
        )
        for m in messages
    )


async def test_the_api_key_never_shows(
    make_client, client: ClientAdapter, gateway: FakeGateway, logs: pytest.LogCaptureFixture
) -> None:
    gateway.fail_next(Fault.error(500), Fault.drop_connection())
    await client.insert("users", {"name": "Ada"})
    await client.find("users", {"name": "Ada"})

    wrong_key = API_KEY[::-1]
    stranger = make_client(gateway.url, api_key=wrong_key)
    with pytest.raises(AuthenticationError) as caught:
        await stranger.get("users", NOBODY)

    shown = [logs.text, repr(client.client), str(caught.value), repr(caught.value)]
    shown += [repr(r.args) for r in logs.records]
    for text in shown:
        assert API_KEY not in text
        assert wrong_key not in text
