"""Permission Mongo: an authorization gateway for MongoDB.

This package is also the gateway's Python SDK::

    from permission_mongo import PermissionMongo

    with PermissionMongo(url="http://localhost:8080", api_key="pm_...") as client:
        user = client.insert("users", {"name": "Ada"})
        for user in client.find_iter("users", {"status": "active"}):
            ...

The SDK lives in ``permission_mongo.client`` and is re-exported here on first use, so importing
this package alone loads neither it nor httpx. The gateway lives in subpackages that need
``pip install "permission-mongo[server]"``.
"""

from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
    from .client import (
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        AsyncPage,
        AsyncPermissionMongo,
        AuthenticationError,
        BatchCreateResult,
        BatchDeleteResult,
        BatchUpdateResult,
        ConflictError,
        DeleteResult,
        Document,
        DocumentId,
        NotFoundError,
        Page,
        PermissionDeniedError,
        PermissionMongo,
        PermissionMongoError,
        RateLimitError,
        RetryConfig,
        ServerError,
        UnexpectedResponseError,
        ValidationError,
    )


# The SDK (``permission_mongo.client``) loads on first use (PEP 562), so that
# ``import permission_mongo.policy`` (the pure engine) and the gateway do not pull in the HTTP
# client. Every name in ``__all__`` but ``__version__`` is the SDK's.
def __getattr__(name: str) -> object:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import client

    value = getattr(client, name)
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
