"""Idempotent writes: a repeated ``Idempotency-Key`` gets the first answer, not a second write.

A pure ASGI middleware for POST, PATCH and DELETE under ``/v1/data/``. The first request with
a key claims a record (per caller id and tenant, method, path and key) holding a hash of its
body, runs, and stores its answer. A repeat with the same body replays that answer (status and
body, with ``Idempotent-Replayed: true``); with another body it is a 409 CONFLICT; while the
first is still running it is a 503 with ``Retry-After: 1`` (the SDK retries those). Answers
429 and 5xx are not stored, so a retry runs again. Records expire after
``idempotency.ttl_seconds`` (24 h by default).

Bodies are compared byte for byte: a client retrying sends the same bytes. Only data-plane
answers are stored (an admin answer may hold a new API key, which must never be stored).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..auth import AuthError
from ..store import StoreError
from ._error_responses import error_body, status_and_code, _headers_for
from .errors import BadRequestError, ConflictError, GatewayError, RequestInProgressError

__all__ = ["IDEMPOTENCY_HEADER", "IdempotencyMiddleware"]

IDEMPOTENCY_HEADER = "Idempotency-Key"
_HEADER = IDEMPOTENCY_HEADER.lower().encode()
_METHODS = frozenset({"POST", "PATCH", "DELETE"})
_PREFIX = "/v1/data/"
_SANE_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _METHODS or not scope["path"].startswith(_PREFIX):
            await self.app(scope, receive, send)
            return
        raw_key = _header(scope, _HEADER)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        services = scope["app"].state.services
        try:
            await self._idempotent(scope, receive, send, raw_key, services)
        except (GatewayError, StoreError) as exc:
            await _send_error(scope, send, exc)

    async def _idempotent(self, scope: Scope, receive: Receive, send: Send, raw_key: bytes, services: Any) -> None:
        key = raw_key.decode("latin-1")
        if not _SANE_KEY.fullmatch(key):
            raise BadRequestError(
                f"the {IDEMPOTENCY_HEADER} header must be 1 to 255 visible ASCII characters",
                details={"header": IDEMPOTENCY_HEADER},
            )
        authorization = _header(scope, b"authorization")
        try:
            identity = await services.authenticator.authenticate(
                None if authorization is None else authorization.decode("latin-1")
            )
        except (AuthError, StoreError):
            await self.app(scope, receive, send)  # the route answers 401 (or 503) itself
            return
        scope.setdefault("state", {})["identity"] = identity

        body, more, too_large = await _read_body(receive, services.settings.limits.max_body_bytes)
        replay = _replaying(body, more, receive)
        if too_large:  # the route refuses it; nothing worth remembering
            await self.app(scope, replay, send)
            return

        settings = services.settings.idempotency
        store = services.store.idempotency
        record_id = hashlib.sha256(
            "\x00".join([str(identity.id), str(identity.tenant_id), scope["method"], scope["path"], key]).encode()
        ).hexdigest()
        request_hash = hashlib.sha256(body).hexdigest()
        now = _dt.datetime.now(_dt.UTC)
        found = await store.claim(
            record_id,
            request_hash,
            now=now,
            lease_until=now + _dt.timedelta(seconds=settings.lease_seconds),
            expires_at=now + _dt.timedelta(seconds=settings.ttl_seconds),
        )
        if found is not None:
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
            await _send_stored(send, found.status or 200, found.content_type, found.body or b"")
            return

        captured: dict[str, Any] = {"status": None, "content_type": None, "chunks": []}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                for name, value in message.get("headers", ()):
                    if name.lower() == b"content-type":
                        captured["content_type"] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                captured["chunks"].append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay, capture)
        except BaseException:
            await _quietly(store.release(record_id))
            raise
        status = captured["status"]
        if status is None or status >= 500 or status == 429:
            await _quietly(store.release(record_id))
            return
        await _quietly(
            store.complete(
                record_id, status=status, content_type=captured["content_type"], body=b"".join(captured["chunks"])
            )
        )


async def _quietly(operation: Any) -> None:
    # The answer has been sent; failing to record it only means a retry runs the write again...
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


async def _send_stored(send: Send, status: int, content_type: str | None, body: bytes) -> None:
    headers = [
        (b"content-type", (content_type or "application/json").encode("latin-1")),
        (b"content-length", str(len(body)).encode()),
        (b"idempotent-replayed", b"true"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_error(scope: Scope, send: Send, exc: Exception) -> None:
    status, code = status_and_code(exc)
    request_id = scope.get("state", {}).get("request_id")
    body = error_body(code, str(exc), getattr(exc, "details", None), request_id)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in _headers_for(exc, status).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
