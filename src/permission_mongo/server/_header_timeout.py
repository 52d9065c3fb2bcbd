"""Closing connections whose request headers do not arrive in time (``server.header_timeout``),
as nginx's ``client_header_timeout`` does.

uvicorn has no such bound: its ``timeout_keep_alive`` runs only between requests, so a client
that connects and sends nothing, or sends headers a byte at a time, holds its connection (and
a file descriptor) for as long as it likes; a few thousand of them exhaust the process. Here
uvicorn's two HTTP protocols (httptools and h11) are subclassed with one shared deadline: armed
when a connection opens and when a request's first bytes arrive, cancelled when its headers are
complete, and on expiry the connection is closed. A request that is being answered, or a body
being received, is never timed by it.
"""

from __future__ import annotations

import asyncio
import logging

__all__ = ["protocol_with_header_timeout"]

logger = logging.getLogger("permission_mongo.server")


class _HeaderDeadline:
    """The deadline, mixed in before a uvicorn protocol class (whose ``loop``, ``transport``
    and ``client`` it uses); each subclass sets ``header_timeout`` in seconds."""

    header_timeout: float
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    client: tuple[str, int] | None
    _header_timer: asyncio.TimerHandle | None = None

    def _await_headers(self) -> None:
        """Start the deadline, unless it runs already (it counts from the first byte)."""
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_late)

    def _headers_arrived(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            # Debug only: a flood of slow clients would otherwise flood the log as well.
            logger.debug(
                "closed a connection from %s: no complete request headers within %g s (server.header_timeout)",
                "%s:%d" % self.client if self.client else "?", self.header_timeout,
            )
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_arrived()
        super().connection_lost(exc)  # type: ignore[misc]


def _httptools_protocol(seconds: float) -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HeaderTimeoutHttpToolsProtocol(_HeaderDeadline, HttpToolsProtocol):
        header_timeout = seconds

        # llhttp calls these as it parses: a message's first byte, then the end of its headers.
        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._await_headers()

        def on_headers_complete(self) -> None:
            self._headers_arrived()
            super().on_headers_complete()

    return HeaderTimeoutHttpToolsProtocol


def _h11_protocol(seconds: float) -> type[asyncio.Protocol]:
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutH11Protocol(_HeaderDeadline, H11Protocol):
        header_timeout = seconds

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            # h11 yields a request only once its headers are complete: until then the client's
            # side stays IDLE, bytes received or not.
            if self.conn.their_state is h11.IDLE:
                self._await_headers()
            else:
                self._headers_arrived()

    return HeaderTimeoutH11Protocol


_PROTOCOLS = {"httptools": _httptools_protocol, "h11": _h11_protocol}


def protocol_with_header_timeout(seconds: float, parser: str = "auto") -> type[asyncio.Protocol]:
    """A uvicorn HTTP protocol class (``uvicorn.Config(http=...)``) closing connections whose
    request headers take longer than ``seconds``. ``parser`` "auto" is httptools when it is
    installed, else h11, as uvicorn's own "auto"."""
    if parser == "auto":
        try:
            import httptools  # noqa: F401
        except ImportError:
            parser = "h11"
        else:
            parser = "httptools"
    return _PROTOCOLS[parser](seconds)
