"""Idempotent writes: a repeated ``Idempotency-Key`` gets the first answer, not a second write.

Decided by route, not by method: only endpoints marked ``@idempotent_write`` (create, update,
delete and their batch forms) take part, through the route class ``IdempotentWriteRoute``,
which wraps exactly those routes once the router has chosen them. On every other route, reads
sent by POST included (find, count, aggregate), the header is ignored: a read is never stored
or replayed, so its answer always reflects the data and the caller's rights of the moment, and
a future read-by-POST stays out unless it is marked.

The first write with a key claims a record (per caller id and tenant, method, path and key)
holding a hash of its body and the caller's fingerprint (every field of the identity, and the
credential: which API key, or a JWT), runs, and stores its answer. A repeat by the same
identity with the same body replays that answer (status and body, with
``Idempotent-Replayed: true``); with another body it is a 409 CONFLICT; while the first is
still running it is a 503 with ``Retry-After: 1`` (the SDK retries those). A repeat by another
identity (other roles or attributes, a token with other claims, an API key where a JWT was
used) is a 409 CONFLICT: nothing is replayed and nothing written. Answers 429 and 5xx are not
stored, so a retry runs again. Records expire after ``idempotency.ttl_seconds`` (24 h by
default).

Bodies are compared byte for byte: a client retrying sends the same bytes. Only data-plane
writes are marked (an admin answer may hold a new API key, which must never be stored).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive

from ..auth import AuthError
from ..store import StoreError
from .errors import BadRequestError, ConflictError, RequestInProgressError

__all__ = ["IDEMPOTENCY_HEADER", "IdempotentWriteRoute", "idempotent_write"]

IDEMPOTENCY_HEADER = "Idempotency-Key"
_SANE_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_MARK = "__pm_idempotent_write__"

F = TypeVar("F", bound=Callable[..., Any])
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def idempotent_write(endpoint: F) -> F:
    """Mark a data-plane write: requests to it honour ``Idempotency-Key`` (on a router whose
    ``route_class`` is ``IdempotentWriteRoute``)."""
    setattr(endpoint, _MARK, True)
    return endpoint


class IdempotentWriteRoute(APIRoute):
    """A route whose endpoint, if marked ``@idempotent_write``, is run at most once per key."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        if not getattr(self.endpoint, _MARK, False):
            return handler

        async def idempotent(request: Request) -> Response:
            key = request.headers.get(IDEMPOTENCY_HEADER)
            if key is None:
                return await handler(request)
            return await _run_once(handler, request, key)

        return idempotent


async def _run_once(handler: Handler, request: Request, key: str) -> Response:
    if not _SANE_KEY.fullmatch(key):
        raise BadRequestError(
            f"the {IDEMPOTENCY_HEADER} header must be 1 to 255 visible ASCII characters",
            details={"header": IDEMPOTENCY_HEADER},
        )
    services = request.app.state.services
    try:
        caller = await services.authenticator.authenticate(request.headers.get("authorization"))
    except (AuthError, StoreError):
        return await handler(request)  # the endpoint answers 401 (or 503) itself
    identity = caller.identity
    request.state.identity = identity  # the endpoint's dependency need not authenticate again

    body, more, too_large = await _read_body(request.receive, services.settings.limits.max_body_bytes)
    request = Request(request.scope, _replaying(body, more, request.receive))
    if too_large:  # the endpoint refuses it; nothing worth remembering
        return await handler(request)

    settings = services.settings.idempotency
    store = services.store.idempotency
    record_id = hashlib.sha256(
        "\x00".join([str(identity.id), str(identity.tenant_id), request.method, request.scope["path"], key]).encode()
    ).hexdigest()
    request_hash = hashlib.sha256(body).hexdigest()
    fingerprint = caller.fingerprint()
    now = _dt.datetime.now(_dt.UTC)
    found = await store.claim(
        record_id,
        request_hash,
        fingerprint,
        now=now,
        lease_until=now + _dt.timedelta(seconds=settings.lease_seconds),
        expires_at=now + _dt.timedelta(seconds=settings.ttl_seconds),
    )
    if found is not None:
        if found.identity_hash != fingerprint:
            # The record was decided for someone else: neither replay it nor write again
            # under a key that may already have written.
            raise ConflictError(
                f"this {IDEMPOTENCY_HEADER} was already used by another identity (another credential, or "
                "the same user with other roles, attributes or token claims); the request was not run. "
                "Use a new key for a new request",
                details={"header": IDEMPOTENCY_HEADER},
            )
        if found.request_hash != request_hash:
            raise ConflictError(
                f"this {IDEMPOTENCY_HEADER} was used with a different request body; use a new key "
                "for a new request",
                details={"header": IDEMPOTENCY_HEADER},
            )
        if not found.done:
            raise RequestInProgressError(
                f"a request with this {IDEMPOTENCY_HEADER} is still in progress; retry shortly",
                retry_after=1,
            )
        return Response(
            found.body or b"",
            status_code=found.status or 200,
            media_type=found.content_type or "application/json",
            headers={"Idempotent-Replayed": "true"},
        )

    try:
        response = await _answer(handler, request)
    except BaseException:
        await _quietly(store.release(record_id))
        raise
    stored = getattr(response, "body", None)
    if response.status_code >= 500 or response.status_code == 429 or not isinstance(stored, bytes):
        await _quietly(store.release(record_id))
    else:
        await _quietly(
            store.complete(
                record_id,
                status=response.status_code,
                content_type=response.headers.get("content-type"),
                body=stored,
            )
        )
    return response


async def _answer(handler: Handler, request: Request) -> Response:
    """The endpoint's response, its errors rendered as the app renders them (so that a refusal
    is replayed like a success)."""
    try:
        return await handler(request)
    except Exception as exc:
        render = _handler_for(request.app.exception_handlers, exc)
        if render is None:
            raise
        response: Response = await render(request, exc)
        return response


def _handler_for(handlers: Mapping[Any, Any], exc: Exception) -> Any:
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None


async def _quietly(operation: Any) -> None:
    # The answer is ready; failing to record it only means a retry runs the write again...
    # unless the record stays pending, which its lease bounds.
    try:
        await operation
    except StoreError:
        pass


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool, bool]:
    """(body read, whether more is coming, whether it exceeds ``limit``): reading stops at the limit."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False, False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = bool(message.get("more_body", False))
        if size > limit or not more:
            return b"".join(chunks), more, size > limit


def _replaying(body: bytes, more: bool, receive: Receive) -> Receive:
    """A receive that gives what was read as one message, then the rest from the client."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay
