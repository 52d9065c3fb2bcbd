"""MongoDB access for the gateway: pymongo's async client behind a small interface."""

from __future__ import annotations

from ._api_keys import API_KEYS_COLLECTION, ApiKeyListing, ApiKeyRecord, ApiKeyStore
from ._database import Store
from ._documents import DocumentStore
from ._errors import (
    DATABASE_ERRORS,
    ENCODING_ERRORS,
    DatabaseFaultError,
    DatabaseUnavailableError,
    DuplicateKeyError,
    InvalidIdError,
    InvalidQueryError,
    QueryTimeoutError,
    ResultTooLargeError,
    StoreError,
    UnreadableDocumentError,
    parse_object_id,
    unencodable,
)
from ._idempotency import IDEMPOTENCY_COLLECTION, IdempotencyRecord, IdempotencyStore
from ._limits import SizeLimit, TimeLimit

__all__ = [
    "API_KEYS_COLLECTION",
    "DATABASE_ERRORS",
    "ENCODING_ERRORS",
    "DatabaseFaultError",
    "ApiKeyListing",
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
    "ResultTooLargeError",
    "SizeLimit",
    "Store",
    "StoreError",
    "UnreadableDocumentError",
    "TimeLimit",
    "parse_object_id",
    "unencodable",
]
