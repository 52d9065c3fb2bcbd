"""Idempotent writes: a repeated ``Idempotency-Key`` gets the first answer, not a second write.

Decided by route, not by method: only endpoints marked ``@idempotent_write`` (update, delete
and their batch forms) or ``@idempotent_create`` (create and batch create) take part, through
the route class ``IdempotentWriteRoute``, which wraps exactly those routes once the router has
chosen them. On every other route, reads sent by POST included (find, count, aggregate), the
header is ignored: a read is never stored or replayed, so its answer always reflects the data
and the caller's rights of the moment, and a future read-by-POST stays out unless it is marked.

The first write with a key claims a record (per caller id and tenant, method, path and key)
holding a hash of its body and the caller's fingerprint (every field of the identity, and the
credential: which API key, or a JWT), runs, and stores its answer. A repeat by the same
identity with the same body replays that answer (status and body, with
``Idempotent-Replayed: true``); with another body it is a 409 CONFLICT; while the first is
still running it is a 503 with ``Retry-After: 1`` (the SDK retries those). A repeat by another
identity (other roles or attributes, a token with other claims, an API key where a JWT was
used) is a 409 CONFLICT: nothing is replayed and nothing written. Answers 429 and 5xx are not
stored, so a retry runs again, except when the outcome is unknown. Records expire after
``idempotency.ttl_seconds`` (24 h by default).

An unknown outcome is never run again blindly. The write reached the database and may have
been applied when the endpoint failed with a ``DatabaseUnavailableError`` whose
``outcome_unknown`` is set (a lost or late reply, a write concern error), or with an exception
no handler renders (it says nothing of how far the write went), or when an attempt died while
its record was pending (its lease ran out). The record then stays, ``uncertain``, and a retry:

- of a create (``@idempotent_create``) runs again, which settles it: its ids derive from the
  key, so the documents an earlier attempt stored are met and answered as created, not stored
  twice (see ``_batch``);
- of an update or a delete answers 409 CONFLICT with ``details.outcome: "unknown"``: the first
  attempt may or may not have been applied (an ``$inc`` run twice would count twice, a delete
  by filter run again would reach documents created since), so the caller reads the documents
  and sends what is still needed under a new key. This answer stays until the record expires.

The record itself is settled as soon as the database answers: a claim whose reply was lost is
read back (it holds this attempt's random id, or not), and a claim, answer or release that
could not be written is retried in the background until it is, for at most the lease. All of
it lives in the database, so gateways sharing it agree.

Bodies are compared byte for byte: a client retrying sends the same bytes. Only data-plane
writes are marked (an admin answer may hold a new API key, which must never be stored).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive

from ..auth import AuthError
from ..store import DatabaseUnavailableError, StoreError
from .errors import BadRequestError, ConflictError, RequestInProgressError

__all__ = [
    "IDEMPOTENCY_HEADER",
    "IdempotentWriteRoute",
    "KeyedRequest",
    "idempotent_create",
    "idempotent_write",
    "keyed_request",
]

logger = logging.getLogger("permission_mongo.server")

IDEMPOTENCY_HEADER = "Idempotency-Key"
_SANE_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_MARK = "__pm_idempotent_write__"
_WRITE, _CREATE = "write", "create"
_KEYED = "pm_keyed_request"
# How often a record that could not be written is tried again, in the background.
_SETTLE_INTERVAL = 0.25

F = TypeVar("F", bound=Callable[..., Any])
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(frozen=True)
class KeyedRequest:
    """A request run under its ``Idempotency-Key``: the same on every attempt of it, so what a
    create derives from it (its ids) is too. ``first_claimed_at``: when its first attempt
    claimed the key."""

    key: str
    first_claimed_at: _dt.datetime


def keyed_request(request: Request) -> KeyedRequest | None:
    """The request as its Idempotency-Key names it, if it runs under one (None otherwise: no
    key, or the key is not honoured here)."""
    return getattr(request.state, _KEYED, None)


def idempotent_write(endpoint: F) -> F:
    """Mark a data-plane write: requests to it honour ``Idempotency-Key`` (on a router whose
    ``route_class`` is ``IdempotentWriteRoute``); a retry after an unknown outcome is refused."""
    setattr(endpoint, _MARK, _WRITE)
    return endpoint


def idempotent_create(endpoint: F) -> F:
    """Mark a create whose ids derive from its ``Idempotency-Key``: as ``idempotent_write``,
    but running it again is what settles an unknown outcome (it meets what was stored)."""
    setattr(endpoint, _MARK, _CREATE)
    return endpoint


class IdempotentWriteRoute(APIRoute):
    """A route whose endpoint, if marked ``@idempotent_write`` or ``@idempotent_create``, is
    run at most once per key."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        mark = getattr(self.endpoint, _MARK, None)
        if mark is None:
            return handler

        async def idempotent(request: Request) -> Response:
            key = request.headers.get(IDEMPOTENCY_HEADER)
            if key is None:
                return await handler(request)
            return await _run_once(handler, request, key, settle_by_rerun=mark == _CREATE)

        return idempotent


async def _run_once(handler: Handler, request: Request, key: str, *, settle_by_rerun: bool) -> Response:
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
    attempt = secrets.token_hex(16)  # written into the record: who holds it, in any process
    now = _dt.datetime.now(_dt.UTC)
    lease_until = now + _dt.timedelta(seconds=settings.lease_seconds)
    try:
        found = await store.claim(
            record_id,
            request_hash,
            fingerprint,
            attempt=attempt,
            now=now,
            lease_until=lease_until,
            expires_at=now + _dt.timedelta(seconds=settings.ttl_seconds),
            settle_by_rerun=settle_by_rerun,
        )
    except DatabaseUnavailableError as exc:
        if exc.outcome_unknown:  # the claim may stand: free the key once the database answers
            _settle_later(lambda: store.release(record_id, attempt), until=lease_until)
        raise
    if found.attempt != attempt:
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
        if found.outcome_unknown(now):
            raise ConflictError(
                f"the outcome of an earlier attempt with this {IDEMPOTENCY_HEADER} is unknown (the database "
                "did not confirm it, or the attempt was interrupted): it may or may not have been applied, so "
                "it is not run again. Read the document(s) to see whether it was, then send what is still "
                "needed with a new key",
                details={"header": IDEMPOTENCY_HEADER, "outcome": "unknown"},
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

    setattr(request.state, _KEYED, KeyedRequest(key, found.created_at or now))
    try:
        response, outcome_unknown = await _answer(handler, request)
    except BaseException:
        # Unrendered, or cancelled: nothing says how far the write went.
        _settle_later(lambda: store.mark_uncertain(record_id, attempt), until=lease_until)
        raise
    stored = getattr(response, "body", None)
    if outcome_unknown:
        await _settle(lambda: store.mark_uncertain(record_id, attempt), until=lease_until)
    elif response.status_code >= 500 or response.status_code == 429 or not isinstance(stored, bytes):
        await _settle(lambda: store.release(record_id, attempt), until=lease_until)
    else:
        answer: bytes = stored
        await _settle(
            lambda: store.complete(
                record_id,
                attempt,
                status=response.status_code,
                content_type=response.headers.get("content-type"),
                body=answer,
            ),
            until=lease_until,
        )
    return response


async def _answer(handler: Handler, request: Request) -> tuple[Response, bool]:
    """The endpoint's response, its errors rendered as the app renders them (so that a refusal
    is replayed like a success), and whether the write's outcome is unknown (it reached the
    database and may have been applied)."""
    try:
        return await handler(request), False
    except Exception as exc:
        render = _handler_for(request.app.exception_handlers, exc)
        if render is None:
            raise
        response: Response = await render(request, exc)
        return response, isinstance(exc, DatabaseUnavailableError) and exc.outcome_unknown


def _handler_for(handlers: Mapping[Any, Any], exc: Exception) -> Any:
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None


# Records being written in the background; held here so that the tasks are not collected.
_settling: set[asyncio.Task[None]] = set()


async def _settle(write: Callable[[], Awaitable[None]], *, until: _dt.datetime) -> None:
    """Write the record now, or, if the database fails, in the background: the answer is ready
    and does not wait for it."""
    try:
        await write()
    except StoreError:
        _settle_later(write, until=until)


def _settle_later(write: Callable[[], Awaitable[None]], *, until: _dt.datetime) -> None:
    """Write the record in the background, again until the database takes it or ``until`` (the
    lease: after it, the record counts as the attempt's that died and is settled by others)."""

    async def retrying() -> None:
        while True:
            try:
                await write()
                return
            except StoreError:
                pass
            if _dt.datetime.now(_dt.UTC) >= until:
                logger.warning("an idempotency record could not be settled within its lease")
                return
            await asyncio.sleep(_SETTLE_INTERVAL)

    task = asyncio.get_running_loop().create_task(retrying())
    _settling.add(task)
    task.add_done_callback(_settling.discard)


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
