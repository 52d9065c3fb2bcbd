"""MongoDB access for the gateway: pymongo's async client behind a small interface."""

from __future__ import annotations

from ._api_keys import API_KEYS_COLLECTION, ApiKeyRecord, ApiKeyStore
from ._database import Store
from ._errors import (
    DatabaseUnavailableError,
    DuplicateKeyError,
    InvalidIdError,
    StoreError,
    parse_object_id,
)

__all__ = [
    "API_KEYS_COLLECTION",
    "ApiKeyRecord",
    "ApiKeyStore",
    "DatabaseUnavailableError",
    "DuplicateKeyError",
    "InvalidIdError",
    "Store",
    "StoreError",
    "parse_object_id",
]
