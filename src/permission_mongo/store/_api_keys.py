"""API key records in the ``_pm_api_keys`` collection. Only hashes are stored, never keys."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from ._errors import database_errors, parse_object_id
from ._limits import TimeLimit

__all__ = ["API_KEYS_COLLECTION", "ApiKeyListing", "ApiKeyRecord", "ApiKeyStore"]

logger = logging.getLogger("permission_mongo.store")

API_KEYS_COLLECTION = "_pm_api_keys"
# What reading one stored record may raise when it was written directly in the database: not
# BSON the driver decodes (nested too deeply, say), or without the fields a record has.
_UNREADABLE = (bson.errors.BSONError, RecursionError, KeyError, TypeError, ValueError, OverflowError)


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


@dataclass(frozen=True)
class ApiKeyListing:
    """Every stored key: the records read, and the ids (None if even that is unreadable) of
    those that cannot be read, so that one bad record does not hide the others."""

    records: list[ApiKeyRecord] = field(default_factory=list)
    unreadable: list[str | None] = field(default_factory=list)


def _stored_id(raw: RawBSONDocument) -> str | None:
    try:
        return str(raw["_id"])  # only the top level is decoded: nested documents stay raw
    except _UNREADABLE:
        return None


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

    async def list(self) -> ApiKeyListing:
        # Fetched undecoded and decoded one by one: the driver would fail the whole batch on
        # one record it cannot read.
        options = self._collection.codec_options
        raw = self._collection.with_options(codec_options=options.with_options(document_class=RawBSONDocument))
        async with database_errors(self._time_limit):
            stored = await raw.find({}).sort("_id", ASCENDING).to_list()
        listing = ApiKeyListing()
        for document in stored:
            try:
                listing.records.append(ApiKeyRecord.from_document(bson.decode(document.raw, options)))
            except _UNREADABLE as exc:
                key_id = _stored_id(document)
                logger.warning(
                    "API key %s cannot be read (%s); it was written directly in the database: fix or delete it there",
                    key_id, type(exc).__name__,
                )
                listing.unreadable.append(key_id)
        return listing

    async def revoke(self, key_id: str, *, at: datetime) -> ApiKeyRecord | None:
        """Mark the key revoked (keeping the first revocation time); None if no such key."""
        oid = parse_object_id(key_id)
        async with database_errors(self._time_limit):
            await self._collection.update_one({"_id": oid, "revoked_at": None}, {"$set": {"revoked_at": at}})
            doc = await self._collection.find_one({"_id": oid})
        return None if doc is None else ApiKeyRecord.from_document(doc)
