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
from ._version import __version__

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
