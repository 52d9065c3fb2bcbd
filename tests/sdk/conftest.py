"""Fixtures of the SDK suite.

``client`` is the heart of it: one test body runs against both ``PermissionMongo`` and
``AsyncPermissionMongo``. Tests are ``async def`` and await every call on a
:class:`ClientAdapter`, which awaits what the async client returns and passes the sync client's
results through, so there is one suite for both clients, not two.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from permission_mongo import AsyncPermissionMongo, PermissionMongo
from permission_mongo.client import _base_client

from .fake_gateway import FakeGateway

API_KEY = "pm_test_3f9a1c_do_not_log_me"


class ClientAdapter:
    """One client, sync or async, behind awaitable methods."""

    def __init__(self, client: PermissionMongo | AsyncPermissionMongo) -> None:
        self.client = client
        self.is_async = isinstance(client, AsyncPermissionMongo)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result

        return call

    async def collect(self, items: Any) -> list[Any]:
        """A list of what an iterable, sync or async, yields."""
        if hasattr(items, "__aiter__"):
            return [item async for item in items]
        return list(items)

    async def find_all(self, *args: Any, **kwargs: Any) -> list[Any]:
        return await self.collect(self.client.find_iter(*args, **kwargs))

    async def next_page(self, page: Any) -> Any:
        following = page.next_page()
        return await following if inspect.isawaitable(following) else following

    async def pages(self, page: Any) -> list[Any]:
        return await self.collect(page.iter_pages())

    async def all_documents(self, page: Any) -> list[Any]:
        return await self.collect(page.iter_documents())


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    with FakeGateway(api_key=API_KEY) as running:
        yield running
    assert not running.crashes, f"the fake gateway failed: {running.crashes}"


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry waits, recorded instead of slept."""
    waited: list[float] = []

    def record(seconds: float) -> None:
        waited.append(seconds)

    async def record_async(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(_base_client, "_sleep", record)
    monkeypatch.setattr(_base_client, "_async_sleep", record_async)
    return waited


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_client(kind: str) -> AsyncIterator[Callable[..., ClientAdapter]]:
    """Builds clients of this test's kind with the test API key; closes them afterwards."""
    made: list[ClientAdapter] = []

    def make(url: str, **options: Any) -> ClientAdapter:
        options.setdefault("api_key", API_KEY)
        cls = AsyncPermissionMongo if kind == "async" else PermissionMongo
        adapter = ClientAdapter(cls(url, **options))
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.close()


@pytest.fixture
def client(make_client: Callable[..., ClientAdapter], gateway: FakeGateway) -> ClientAdapter:
    """A client of the fake gateway with quick timeouts."""
    return make_client(gateway.url, timeout=2)


class Mocked:
    """``httpx.MockTransport`` that answers with a queue of responses and keeps the requests."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []
        self.transport = httpx.MockTransport(self._handle)

    def answer(self, *responses: httpx.Response) -> None:
        self.responses.extend(responses)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.responses.pop(0)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


@pytest.fixture
def mocked() -> Mocked:
    return Mocked()


@pytest.fixture
def mock_client(make_client: Callable[..., ClientAdapter], mocked: Mocked) -> ClientAdapter:
    """A client whose requests go to ``mocked`` instead of the network."""
    return make_client("http://gateway.test", transport=mocked.transport)
