"""The SDK: :class:`PermissionMongo` and :class:`AsyncPermissionMongo` over one request core.

It needs only httpx, anyio and bson, and imports nothing else of ours but the version: not the
server, the store, auth, the CLI or the policy engine. ``permission_mongo`` re-exports these
names lazily, so ``from permission_mongo import PermissionMongo`` is the usual spelling.
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
]
