"""The ASGI application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .._version import __version__
from ..auth import ApiKeys, Authenticator, JwtVerifier
from ..policy import Policy
from ..store import Store
from ._aggregate import Aggregator
from ._cursor import CursorCodec
from ._data import DataPlane
from ._error_responses import exception_handlers
from ._json import ExtendedJSONResponse
from ._load import ConcurrencyLimitMiddleware
from ._middleware import RequestContextMiddleware
from ._services import Services
from ._settings import ServerSettings
from .routes import aggregate, api_keys, data, operations, whoami

__all__ = ["create_app"]


def create_app(settings: ServerSettings, policy: Policy | None = None) -> FastAPI:
    """The gateway for ``settings``. ``settings.mongodb.uri`` must be set (the CLI starts the
    embedded database when it is not)."""
    if settings.mongodb.uri is None:
        raise ValueError("create_app needs a MongoDB URI")
    uri = settings.mongodb.uri

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The client binds to the running event loop, so it is made here, not at import.
        store = Store(
            uri,
            settings.mongodb.database,
            time_limit=settings.limits.query_time(),
            operation_timeout=settings.mongodb.operation_timeout,
            timeout=settings.mongodb.timeout,
            write_concern=settings.mongodb.write_concern,
        )
        keys = ApiKeys(
            store.api_keys,
            admin_key=settings.auth.admin_key,
            cache_seconds=settings.auth.api_key_cache_seconds,
            known_roles=None if policy is None else policy.config.roles,
        )
        jwt = JwtVerifier(settings.auth.jwt) if settings.auth.jwt is not None else None
        data_plane = DataPlane(
            policy,
            store,
            CursorCodec(settings.cursor_secret),
            default_limit=settings.limits.default_page_size,
            max_limit=settings.limits.max_page_size,
            max_batch=settings.limits.max_batch_size,
            max_depth=settings.limits.max_document_depth,
            max_response=settings.limits.response_size(),
        )
        aggregator = Aggregator(policy, store, settings.limits)
        app.state.services = Services(settings, store, keys, Authenticator(keys, jwt), policy, data_plane, aggregator)
        # Decide what the database can enforce before serving. Bounded, so a database that is
        # down does not stop the start: the probe goes on, and until it proves an answer what
        # depends on it is refused (a later request probes again).
        probing = asyncio.ensure_future(store.capabilities.probe_all())
        await asyncio.wait([probing], timeout=settings.mongodb.timeout)
        try:
            yield
        finally:
            store.capabilities.cancel()
            await store.close()

    app = FastAPI(
        title="Permission Mongo",
        version=__version__,
        summary="An authorization gateway for MongoDB",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        exception_handlers=exception_handlers(),
        default_response_class=ExtendedJSONResponse,
    )
    # Request ids and the catch-all wrap everything, the load shedder's 503s too (the last added
    # is the outermost). (Idempotent writes are a route class of the data router: which
    # requests take part is decided by the route they reach.)
    app.add_middleware(ConcurrencyLimitMiddleware, limit=settings.server.max_concurrent_requests)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(operations.router)
    app.include_router(whoami.router)
    app.include_router(api_keys.router)
    app.include_router(data.router)
    app.include_router(aggregate.router)
    return app
