"""Load shedding: at most ``server.max_concurrent_requests`` requests run at once.

Past the limit a request is answered at once with a 503 ``OVERLOADED`` and ``Retry-After``,
instead of queueing without bound for a database connection (and holding memory, and making
every request behind it late). ``/health`` and ``/ready`` are neither refused nor counted: an
orchestrator must see a busy gateway as alive and ready, not take it out of service.

(uvicorn's own ``limit_concurrency`` counts connections, idle kept-alive ones too, includes the
probes, and answers in plain text: not what is wanted here.)
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from ._error_responses import error_body

__all__ = ["ConcurrencyLimitMiddleware", "OVERLOADED", "UNCOUNTED_PATHS"]

logger = logging.getLogger("permission_mongo.server")

OVERLOADED = "OVERLOADED"
UNCOUNTED_PATHS = frozenset({"/health", "/ready"})
_RETRY_AFTER_SECONDS = 1
_LOG_EVERY_SECONDS = 10  # a flood is shed by the thousand: one line for each stretch of it


class ConcurrencyLimitMiddleware:
    """Lets at most ``limit`` HTTP requests run at once; answers the others 503 ``OVERLOADED``.

    It must sit inside ``RequestContextMiddleware``, so its answers carry the request id. One
    event loop runs every request, so a plain counter is exact.
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0
        self._shed_unlogged = 0
        self._next_log = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNCOUNTED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await self._refuse(scope, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _refuse(self, scope: Scope, send: Send) -> None:
        self._shed_unlogged += 1
        now = time.monotonic()
        if now >= self._next_log:
            logger.warning(
                "at the limit of %d requests at once (server.max_concurrent_requests): %d answered 503 OVERLOADED",
                self.limit, self._shed_unlogged,
            )
            self._shed_unlogged, self._next_log = 0, now + _LOG_EVERY_SECONDS
        body = error_body(
            OVERLOADED,
            f"the gateway is at its limit of {self.limit} requests at once (server.max_concurrent_requests); "
            f"retry after {_RETRY_AFTER_SECONDS} s",
            {"max_concurrent_requests": self.limit},
            scope.get("state", {}).get("request_id"),
        )
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(_RETRY_AFTER_SECONDS).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
