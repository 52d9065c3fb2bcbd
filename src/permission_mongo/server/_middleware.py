"""Pure ASGI middleware: request ids, and the catch-all for errors nothing else handled."""

from __future__ import annotations

import logging
import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._error_responses import error_body

__all__ = ["RequestContextMiddleware", "REQUEST_ID_HEADER"]

logger = logging.getLogger("permission_mongo.server")

REQUEST_ID_HEADER = "X-Request-ID"
_HEADER_KEY = REQUEST_ID_HEADER.lower().encode()
# A client's id is echoed only if it is short and plain, so it cannot forge log lines or headers.
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def _client_request_id(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == _HEADER_KEY:
            return value.decode("ascii") if _SANE_REQUEST_ID.fullmatch(value) else None
    return None


class RequestContextMiddleware:
    """Gives each request an id (the client's ``X-Request-ID`` when sane, else a new one),
    stores it in ``request.state.request_id``, and sends it back on every response.

    It is also the last line of defence: an exception no handler took is logged with the
    request id and answered with a generic 500 envelope that reveals nothing of it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _client_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (_HEADER_KEY, request_id.encode("ascii"))
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _HEADER_KEY]
                message = {**message, "headers": [*headers, id_header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            logger.exception("unhandled error in %s %s [request %s]", scope.get("method"), scope.get("path"), request_id)
            if response_started:
                return  # too late for an error response; the server closes the connection
            body = error_body("INTERNAL_ERROR", "internal error; quote the request id when reporting it", None, request_id)
            await send_with_request_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send_with_request_id({"type": "http.response.body", "body": body})
