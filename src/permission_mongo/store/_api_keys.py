"""API key records in the ``_pm_api_keys`` collection. Only hashes are stored, never keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from ._errors import database_errors, parse_object_id
from ._limits import TimeLimit

__all__ = ["API_KEYS_COLLECTION", "ApiKeyRecord", "ApiKeyStore"]

API_KEYS_COLLECTION = "_pm_api_keys"


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    key_hash: str
    name: str | None
    identity: Mapping[str, Any]  # {"id", "tenant_id", "roles", "attributes"}
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    created_by: str | None

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> ApiKeyRecord:
        return cls(
            id=str(doc["_id"]),
            key_hash=doc["key_hash"],
            name=doc.get("name"),
            identity=doc.get("identity") or {},
            created_at=doc["created_at"],
            expires_at=doc.get("expires_at"),
            revoked_at=doc.get("revoked_at"),
            created_by=doc.get("created_by"),
        )


class ApiKeyStore:
    def __init__(self, collection: AsyncCollection[dict[str, Any]], time_limit: TimeLimit) -> None:
        self._collection = collection
        self._time_limit = time_limit
        self._indexed = False

    async def _ensure_indexes(self) -> None:
        # Lazily, so the gateway starts (and reports not ready) while the database is down.
        if not self._indexed:
            async with database_errors(self._time_limit):
                await self._collection.create_index([("key_hash", ASCENDING)], unique=True)
            self._indexed = True

    async def insert(
        self,
        *,
        key_hash: str,
        identity: Mapping[str, Any],
        name: str | None,
        created_at: datetime,
        expires_at: datetime | None,
        created_by: str | None,
    ) -> ApiKeyRecord:
        await self._ensure_indexes()
        doc: dict[str, Any] = {
            "key_hash": key_hash,
            "identity": dict(identity),
            "name": name,
            "created_at": created_at,
            "expires_at": expires_at,
            "revoked_at": None,
            "created_by": created_by,
        }
        async with database_errors(self._time_limit):
            result = await self._collection.insert_one(doc)
        doc["_id"] = result.inserted_id
        return ApiKeyRecord.from_document(doc)

    async def find_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        async with database_errors(self._time_limit):
            doc = await self._collection.find_one({"key_hash": key_hash})
        return None if doc is None else ApiKeyRecord.from_document(doc)

    async def list(self) -> list[ApiKeyRecord]:
        async with database_errors(self._time_limit):
            docs = await self._collection.find({}).sort("_id", ASCENDING).to_list()
        return [ApiKeyRecord.from_document(doc) for doc in docs]

    async def revoke(self, key_id: str, *, at: datetime) -> ApiKeyRecord | None:
        """Mark the key revoked (keeping the first revocation time); None if no such key."""
        oid = parse_object_id(key_id)
        async with database_errors(self._time_limit):
            await self._collection.update_one({"_id": oid, "revoked_at": None}, {"$set": {"revoked_at": at}})
            doc = await self._collection.find_one({"_id": oid})
        return None if doc is None else ApiKeyRecord.from_document(doc)
