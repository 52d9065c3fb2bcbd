"""Permission Mongo: an authorization gateway for MongoDB.

This package is also the gateway's Python SDK::

    from permission_mongo import PermissionMongo

    with PermissionMongo(url="http://localhost:8080", api_key="pm_...") as client:
        user = client.insert("users", {"name": "Ada"})
        for user in client.find_iter("users", {"status": "active"}):
            ...

Importing it loads only the SDK (httpx and bson); the gateway lives in subpackages that need
``pip install "permission-mongo[server]"``.
"""

from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
    from ._client import AsyncPermissionMongo, PermissionMongo
    from ._exceptions import (
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        ConflictError,
        NotFoundError,
        PermissionDeniedError,
        PermissionMongoError,
        RateLimitError,
        ServerError,
        UnexpectedResponseError,
        ValidationError,
    )
    from ._pagination import AsyncPage, Page
    from ._retry import RetryConfig
    from ._types import (
        BatchCreateResult,
        BatchDeleteResult,
        BatchUpdateResult,
        DeleteResult,
        Document,
        DocumentId,
    )

# The SDK loads on first use, so that ``import permission_mongo.policy`` (the pure engine)
# and the gateway do not pull in the HTTP client.
_SDK_MODULES = {
    "AsyncPermissionMongo": "_client",
    "PermissionMongo": "_client",
    "AsyncPage": "_pagination",
    "Page": "_pagination",
    "RetryConfig": "_retry",
    **dict.fromkeys(
        [
            "APIConnectionError", "APIStatusError", "APITimeoutError", "AuthenticationError",
            "ConflictError", "NotFoundError", "PermissionDeniedError", "PermissionMongoError",
            "RateLimitError", "ServerError", "UnexpectedResponseError", "ValidationError",
        ],
        "_exceptions",
    ),
    **dict.fromkeys(
        ["BatchCreateResult", "BatchDeleteResult", "BatchUpdateResult", "DeleteResult", "Document", "DocumentId"],
        "_types",
    ),
}


def __getattr__(name: str) -> object:
    module = _SDK_MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'permission_mongo' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncPage",
    "AsyncPermissionMongo",
    "AuthenticationError",
    "BatchCreateResult",
    "BatchDeleteResult",
    "BatchUpdateResult",
    "ConflictError",
    "DeleteResult",
    "Document",
    "DocumentId",
    "NotFoundError",
    "Page",
    "PermissionDeniedError",
    "PermissionMongo",
    "PermissionMongoError",
    "RateLimitError",
    "RetryConfig",
    "ServerError",
    "UnexpectedResponseError",
    "ValidationError",
    "__version__",
]
