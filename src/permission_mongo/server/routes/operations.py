"""Liveness and readiness, unauthenticated, for load balancers and orchestrators."""

from __future__ import annotations

from fastapi import APIRouter

from ..._version import __version__
from .._dependencies import ServicesDep
from .._json import ExtendedJSONResponse

router = APIRouter(tags=["operations"])


@router.get("/health", summary="The process is up")
async def health() -> ExtendedJSONResponse:
    return ExtendedJSONResponse({"status": "ok", "version": __version__})


@router.get("/ready", summary="The database is reachable (503 if not)")
async def ready(services: ServicesDep) -> ExtendedJSONResponse:
    await services.store.ping()
    return ExtendedJSONResponse({"status": "ready"})
