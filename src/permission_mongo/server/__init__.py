"""The gateway's ASGI app: routes, request parsing, error mapping."""

from __future__ import annotations

from ._app import create_app
from ._error_responses import ERROR_TABLE
from ._settings import (
    SETTINGS_FILE,
    AuthSettings,
    IdempotencySettings,
    LimitSettings,
    MongoSettings,
    ServerSettings,
    load_settings,
)

__all__ = [
    "ERROR_TABLE",
    "SETTINGS_FILE",
    "AuthSettings",
    "IdempotencySettings",
    "LimitSettings",
    "MongoSettings",
    "ServerSettings",
    "create_app",
    "load_settings",
]
