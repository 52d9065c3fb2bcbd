"""MongoDB access for the gateway: pymongo's async client behind a small interface."""

from __future__ import annotations

from ._api_keys import API_KEYS_COLLECTION, ApiKeyRecord, ApiKeyStore
from ._database import Store
from ._documents import DocumentStore, is_internal_collection
from ._errors import (
    DatabaseUnavailableError,
    DuplicateKeyError,
    InvalidIdError,
    InvalidQueryError,
    QueryTimeoutError,
    StoreError,
    UnreadableDocumentError,
    parse_object_id,
)
from ._idempotency import IDEMPOTENCY_COLLECTION, IdempotencyRecord, IdempotencyStore

__all__ = [
    "API_KEYS_COLLECTION",
    "ApiKeyRecord",
    "ApiKeyStore",
    "DatabaseUnavailableError",
    "DocumentStore",
    "DuplicateKeyError",
    "IDEMPOTENCY_COLLECTION",
    "IdempotencyRecord",
    "IdempotencyStore",
    "InvalidIdError",
    "InvalidQueryError",
    "QueryTimeoutError",
    "Store",
    "StoreError",
    "UnreadableDocumentError",
    "is_internal_collection",
    "parse_object_id",
]
