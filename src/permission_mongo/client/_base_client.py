"""The request core under both clients.

:class:`BaseClient` does everything that needs no I/O: it holds the configuration, turns an
:class:`~permission_mongo.client._operations.Operation` into an HTTP request (URL, headers, auth,
idempotency key, Extended JSON body), and turns what came back, an answer or a transport
error, into an :class:`_Outcome`: a result, or an error together with the wait before the next
attempt when one is due. :class:`SyncAPIClient` and :class:`AsyncAPIClient` add only the loop
that sends, sleeps and tries again; the two loops are written line for line alike.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import ssl
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, cast

import anyio
import bson.errors
import httpx

from . import _json
from ._constants import (
    DEFAULT_TIMEOUT,
    IDEMPOTENCY_KEY_HEADER,
    LOGGER_NAME,
    REQUEST_ID_HEADER,
    USER_AGENT,
)
from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    PermissionMongoError,
    UnexpectedResponseError,
    envelope_code,
    status_error_from_body,
)
from ._operations import Operation
from ._retry import RetryConfig, retry_after_seconds, retry_delay, should_retry

T = TypeVar("T")
HttpClientT = TypeVar("HttpClientT", httpx.Client, httpx.AsyncClient)

log = logging.getLogger(LOGGER_NAME)

# Transport failures, most specific first: each becomes the SDK's own error.
_TRANSPORT_ERRORS: tuple[tuple[type[httpx.TransportError], type[APIConnectionError]], ...] = (
    (httpx.TimeoutException, APITimeoutError),
    (httpx.TransportError, APIConnectionError),
)


@dataclass(frozen=True)
class _Outcome(Generic[T]):
    """What one attempt came to: a value, or an error and maybe the wait before retrying."""

    value: T | None = None
    error: PermissionMongoError | None = None
    retry_in: float | None = None
    """Seconds to wait before the next attempt; None when this outcome is final."""

    def unwrap(self) -> T:
        if self.error is not None:
            raise self.error
        return cast(T, self.value)


class BaseClient(Generic[HttpClientT]):
    """Configuration and the pure half of sending: building requests, reading answers,
    deciding retries. Subclasses provide the HTTP client and the loop."""

    def __init__(
        self,
        url: str,
        api_key: str,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        verify_ssl: bool | ssl.SSLContext = True,
        headers: Mapping[str, str] | None = None,
        retry_config: RetryConfig | None = None,
        *,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Connect to a Permission Mongo gateway.

        Args:
            url: the gateway's base URL, e.g. ``"http://localhost:8080"``.
            api_key: the API key (or JWT) sent as ``Authorization: Bearer <api_key>``.
            timeout: seconds one attempt may take before it counts as timed out (None: no
                limit).
            max_retries: attempts after the first one (default 3). When given it overrides
                ``retry_config.max_retries``; otherwise ``retry_config`` decides.
            verify_ssl: check the gateway's TLS certificate (or an ``ssl.SSLContext`` to use).
            headers: sent with every request; see also :meth:`set_headers`.
            retry_config: backoff and which statuses to retry; see :class:`RetryConfig`.
            transport: an httpx transport to send through instead of the network (tests,
                proxies, ``httpx.MockTransport``).
        """
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, not {url!r}")
        if not isinstance(api_key, str) or not api_key:
            raise ValueError("api_key must be a non-empty string")
        self._url = url.rstrip("/")
        self._api_key = api_key
        self._retry_config = _resolve_retry_config(max_retries, retry_config)
        self._headers = httpx.Headers(headers or {})
        self._http: HttpClientT = self._open_http_client(
            httpx.Timeout(timeout), verify_ssl, transport
        )

    def _open_http_client(
        self,
        timeout: httpx.Timeout,
        verify: bool | ssl.SSLContext,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None,
    ) -> HttpClientT:
        raise NotImplementedError

    @property
    def url(self) -> str:
        """The gateway's base URL."""
        return self._url

    @property
    def retry_config(self) -> RetryConfig:
        """How failed requests are retried."""
        return self._retry_config

    def set_headers(self, headers: Mapping[str, str | None]) -> None:
        """Add headers to every later request (a value of None removes that header)."""
        for name, value in headers.items():
            if value is None:
                self._headers.pop(name, None)
            else:
                self._headers[name] = value

    def __repr__(self) -> str:
        # Never the API key.
        return f"<{type(self).__name__} url={self._url!r}>"

    # -- building requests -------------------------------------------------------------------

    def _build_request(
        self, operation: Operation[Any], headers: Mapping[str, str] | None
    ) -> httpx.Request:
        merged = httpx.Headers(
            {
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
                "Authorization": f"Bearer {self._api_key}",
            }
        )
        merged.update(self._headers)
        merged.update(headers or {})
        # One key per call, made before the first attempt so that every retry repeats it and
        # the gateway applies the write once. A key the caller set (to dedupe across
        # processes) is kept.
        if operation.writes and IDEMPOTENCY_KEY_HEADER not in merged:
            merged[IDEMPOTENCY_KEY_HEADER] = str(uuid.uuid4())
        content = None
        if operation.body is not None:
            content = _json.dumps(operation.body)
            merged["Content-Type"] = "application/json"
        return httpx.Request(
            operation.method, self._url + operation.path, headers=merged, content=content
        )

    # -- reading answers ---------------------------------------------------------------------

    def _response_outcome(
        self,
        operation: Operation[T],
        request: httpx.Request,
        response: httpx.Response,
        *,
        attempt: int,
        started: float,
    ) -> _Outcome[T]:
        request_id = response.headers.get(REQUEST_ID_HEADER)
        log.debug(
            "%s %s -> %d in %.1f ms (request_id=%s, attempt %d)",
            request.method,
            request.url.path,
            response.status_code,
            (time.monotonic() - started) * 1000,
            request_id,
            attempt + 1,
        )
        if response.is_success:
            return self._parsed(operation, request, response, request_id)

        body = _decode_error_body(response)
        if (
            operation.none_if_missing
            and response.status_code == 404
            and envelope_code(body) == "NOT_FOUND"
        ):
            # Only the gateway's own NOT_FOUND: COLLECTION_NOT_FOUND, or a 404 from something
            # that is not the gateway (a wrong URL), still raises.
            return _Outcome(value=None)

        now = time.time()
        error = status_error_from_body(
            response.status_code,
            body,
            request_id=request_id,
            retry_after=retry_after_seconds(response.headers, now=now),
        )
        if attempt < self._retry_config.max_retries and should_retry(
            response.status_code, response.headers, config=self._retry_config, now=now
        ):
            delay = retry_delay(
                attempt, response.headers, config=self._retry_config, now=now, rand=random.random()
            )
            return self._retrying(request, error, attempt, delay)
        return _Outcome(error=error)

    def _parsed(
        self,
        operation: Operation[T],
        request: httpx.Request,
        response: httpx.Response,
        request_id: str | None,
    ) -> _Outcome[T]:
        try:
            payload = _json.loads(response.content) if response.content else None
            return _Outcome(value=operation.parse(payload))
        except (ValueError, TypeError, KeyError, bson.errors.BSONError) as exc:
            error = UnexpectedResponseError(
                f"unexpected answer to {request.method} {request.url.path}: {exc}",
                status_code=response.status_code,
                request_id=request_id,
            )
            error.__cause__ = exc
            return _Outcome(error=error)

    def _transport_error_outcome(
        self,
        request: httpx.Request,
        exc: httpx.TransportError,
        *,
        attempt: int,
        started: float,
    ) -> _Outcome[Any]:
        error_class = next(ours for theirs, ours in _TRANSPORT_ERRORS if isinstance(exc, theirs))
        what = "timed out" if error_class is APITimeoutError else "failed"
        error = error_class(
            f"{request.method} {request.url.path} {what}: {str(exc) or type(exc).__name__}"
        )
        error.__cause__ = exc
        log.debug(
            "%s %s -> %s after %.1f ms (attempt %d)",
            request.method,
            request.url.path,
            type(exc).__name__,
            (time.monotonic() - started) * 1000,
            attempt + 1,
        )
        if attempt < self._retry_config.max_retries:
            delay = retry_delay(
                attempt, None, config=self._retry_config, now=time.time(), rand=random.random()
            )
            return self._retrying(request, error, attempt, delay)
        return _Outcome(error=error)

    def _retrying(
        self, request: httpx.Request, error: PermissionMongoError, attempt: int, delay: float
    ) -> _Outcome[Any]:
        log.info(
            "Retrying %s %s in %.2f s (attempt %d of %d: %s)",
            request.method,
            request.url.path,
            delay,
            attempt + 1,
            self._retry_config.max_retries + 1,
            error.error_code,
        )
        return _Outcome(error=error, retry_in=delay)


class SyncAPIClient(BaseClient[httpx.Client]):
    """The blocking loop: send, and on a retryable failure sleep and send again."""

    def _open_http_client(
        self,
        timeout: httpx.Timeout,
        verify: bool | ssl.SSLContext,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None,
    ) -> httpx.Client:
        if transport is not None and not isinstance(transport, httpx.BaseTransport):
            raise TypeError("the sync client needs an httpx.BaseTransport")
        return httpx.Client(timeout=timeout, verify=verify, transport=transport)

    def close(self) -> None:
        """Close the connections. The client cannot be used afterwards."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, operation: Operation[T], headers: Mapping[str, str] | None = None) -> T:
        request = self._build_request(operation, headers)
        attempt = 0
        while True:
            started = time.monotonic()
            outcome: _Outcome[T]
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                outcome = self._transport_error_outcome(
                    request, exc, attempt=attempt, started=started
                )
            else:
                outcome = self._response_outcome(
                    operation, request, response, attempt=attempt, started=started
                )
            if outcome.retry_in is None:
                return outcome.unwrap()
            _sleep(outcome.retry_in)
            attempt += 1


class AsyncAPIClient(BaseClient[httpx.AsyncClient]):
    """The awaitable loop, line for line the same as :class:`SyncAPIClient`'s."""

    def _open_http_client(
        self,
        timeout: httpx.Timeout,
        verify: bool | ssl.SSLContext,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None,
    ) -> httpx.AsyncClient:
        if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
            raise TypeError("the async client needs an httpx.AsyncBaseTransport")
        return httpx.AsyncClient(timeout=timeout, verify=verify, transport=transport)

    async def close(self) -> None:
        """Close the connections. The client cannot be used afterwards."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _send(self, operation: Operation[T], headers: Mapping[str, str] | None = None) -> T:
        request = self._build_request(operation, headers)
        attempt = 0
        while True:
            started = time.monotonic()
            outcome: _Outcome[T]
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                outcome = self._transport_error_outcome(
                    request, exc, attempt=attempt, started=started
                )
            else:
                outcome = self._response_outcome(
                    operation, request, response, attempt=attempt, started=started
                )
            if outcome.retry_in is None:
                return outcome.unwrap()
            await _async_sleep(outcome.retry_in)
            attempt += 1


# The loops sleep through these two, so tests can make waits instant and record them.
def _sleep(seconds: float) -> None:
    time.sleep(seconds)


async def _async_sleep(seconds: float) -> None:
    # anyio, not asyncio: httpx's async client also runs under trio, and so does this one.
    await anyio.sleep(seconds)


def _resolve_retry_config(max_retries: int | None, retry_config: RetryConfig | None) -> RetryConfig:
    config = retry_config or RetryConfig()
    if max_retries is None:
        return config
    # The explicit argument wins: `max_retries=0` turns retries off whatever the config says.
    return dataclasses.replace(config, max_retries=max_retries)


def _decode_error_body(response: httpx.Response) -> Any:
    try:
        return _json.loads(response.content)
    except (ValueError, bson.errors.BSONError):
        return None  # not JSON: a proxy's page; the error falls back on the status
