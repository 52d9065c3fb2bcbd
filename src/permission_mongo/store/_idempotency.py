"""Idempotency records in ``_pm_idempotency``: the answer given to a write carrying an
``Idempotency-Key``, kept until ``expires_at`` (a TTL index removes them after that).

A record belongs to one identity (``identity_hash``, the fingerprint of the caller and its
credential): no other identity takes it over or is answered from it, until it expires.

A record is first ``pending`` (the write is running; ``lease_until`` says until when another
attempt should wait for it), then ``done`` with the status and body to replay. A pending
record whose lease ran out belongs to an attempt that died; the next attempt takes it over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from ._errors import DuplicateKeyError, database_errors
from ._limits import TimeLimit

__all__ = ["IDEMPOTENCY_COLLECTION", "IdempotencyRecord", "IdempotencyStore"]

IDEMPOTENCY_COLLECTION = "_pm_idempotency"
PENDING = "pending"
DONE = "done"


@dataclass(frozen=True)
class IdempotencyRecord:
    id: str
    request_hash: str
    identity_hash: str | None  # None: a record from before identities were recorded
    state: str
    lease_until: datetime
    expires_at: datetime
    status: int | None = None
    content_type: str | None = None
    body: bytes | None = None

    @property
    def done(self) -> bool:
        return self.state == DONE

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> IdempotencyRecord:
        return cls(
            id=doc["_id"],
            request_hash=doc["request_hash"],
            identity_hash=doc.get("identity_hash"),
            state=doc["state"],
            lease_until=doc["lease_until"],
            expires_at=doc["expires_at"],
            status=doc.get("status"),
            content_type=doc.get("content_type"),
            body=doc.get("body"),
        )


class IdempotencyStore:
    def __init__(self, collection: AsyncCollection[dict[str, Any]], time_limit: TimeLimit) -> None:
        self._collection = collection
        self._time_limit = time_limit
        self._indexed = False

    async def _ensure_indexes(self) -> None:
        if not self._indexed:
            async with database_errors(self._time_limit):
                await self._collection.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)
            self._indexed = True

    async def claim(
        self,
        record_id: str,
        request_hash: str,
        identity_hash: str,
        *,
        now: datetime,
        lease_until: datetime,
        expires_at: datetime,
    ) -> IdempotencyRecord | None:
        """Start a pending record; None if this attempt now owns it, else the record found
        (done, pending under another attempt's lease, or another identity's)."""
        await self._ensure_indexes()
        fresh = {
            "_id": record_id,
            "request_hash": request_hash,
            "identity_hash": identity_hash,
            "state": PENDING,
            "created_at": now,
            "lease_until": lease_until,
            "expires_at": expires_at,
        }
        for _ in range(3):
            try:
                async with database_errors(self._time_limit):
                    await self._collection.insert_one(dict(fresh))
                return None
            except DuplicateKeyError:
                pass
            async with database_errors(self._time_limit):
                found = await self._collection.find_one({"_id": record_id})
                if found is None:
                    continue  # expired and removed meanwhile: insert again
                expired = found["expires_at"] <= now
                if not expired and found.get("identity_hash") != identity_hash:
                    return IdempotencyRecord.from_document(found)  # never taken over by another identity
                stale = expired or (found["state"] == PENDING and found["lease_until"] <= now)
                if not stale:
                    return IdempotencyRecord.from_document(found)
                # Take over an expired record, or one whose attempt died, if still as read.
                result = await self._collection.replace_one(
                    {"_id": record_id, "state": found["state"], "lease_until": found["lease_until"]}, fresh
                )
            if result.matched_count == 1:
                return None
        found = await self._find(record_id)
        if found is None:  # pragma: no cover - three races in a row
            raise DuplicateKeyError("the idempotency record is changing too fast; retry")
        return found

    async def _find(self, record_id: str) -> IdempotencyRecord | None:
        async with database_errors(self._time_limit):
            doc = await self._collection.find_one({"_id": record_id})
        return None if doc is None else IdempotencyRecord.from_document(doc)

    async def complete(self, record_id: str, *, status: int, content_type: str | None, body: bytes) -> None:
        async with database_errors(self._time_limit):
            await self._collection.update_one(
                {"_id": record_id, "state": PENDING},
                {"$set": {"state": DONE, "status": status, "content_type": content_type, "body": body}},
            )

    async def release(self, record_id: str) -> None:
        """Forget a pending record (the answer is not to be replayed: a retry runs again)."""
        async with database_errors(self._time_limit):
            await self._collection.delete_one({"_id": record_id, "state": PENDING})
