"""Idempotency records in ``_pm_idempotency``: the answer given to a write carrying an
``Idempotency-Key``, kept until ``expires_at`` (a TTL index removes them after that).

A record belongs to one identity (``identity_hash``, the fingerprint of the caller and its
credential): no other identity takes it over or is answered from it, until it expires.

A record is first ``pending`` (an attempt is running; ``lease_until`` says until when another
attempt should wait for it), then ``done`` with the status and body to replay, or
``uncertain``: the attempt's write reached the database and its outcome is unknown. A pending
record whose lease ran out belongs to an attempt that died at an unknown point: it is as
uncertain. Only a request whose re-run settles its outcome (``settle_by_rerun``: a create whose
ids derive from its key) takes an uncertain record over; for any other, the record is answered.

Each attempt writes its own random ``attempt`` id into the record it claims, and every later
write of that attempt (complete, release, mark uncertain) is conditioned on it. So a claim
whose reply was lost is settled by reading the record back: it holds this attempt's id or it
does not. Everything is in the record, none of it in a process: gateways sharing the database
agree on it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection

from ._errors import DatabaseUnavailableError, DuplicateKeyError, database_errors
from ._limits import TimeLimit

__all__ = ["IDEMPOTENCY_COLLECTION", "IdempotencyRecord", "IdempotencyStore"]

IDEMPOTENCY_COLLECTION = "_pm_idempotency"
PENDING = "pending"
DONE = "done"
UNCERTAIN = "uncertain"


@dataclass(frozen=True)
class IdempotencyRecord:
    id: str
    request_hash: str
    identity_hash: str | None  # None: a record from before identities were recorded
    state: str
    lease_until: datetime
    expires_at: datetime
    created_at: datetime | None = None  # when the request was first claimed
    attempt: str | None = None  # None: a record from before attempts were recorded
    status: int | None = None
    content_type: str | None = None
    body: bytes | None = None

    @property
    def done(self) -> bool:
        return self.state == DONE

    def outcome_unknown(self, now: datetime) -> bool:
        """Whether the attempt that holds it may have written, and nobody knows: it said so
        (uncertain), or it died while pending (its lease ran out)."""
        return self.state == UNCERTAIN or (self.state == PENDING and self.lease_until <= now)

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> IdempotencyRecord:
        return cls(
            id=doc["_id"],
            request_hash=doc["request_hash"],
            identity_hash=doc.get("identity_hash"),
            state=doc["state"],
            lease_until=doc["lease_until"],
            expires_at=doc["expires_at"],
            created_at=doc.get("created_at"),
            attempt=doc.get("attempt"),
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
        attempt: str,
        now: datetime,
        lease_until: datetime,
        expires_at: datetime,
        settle_by_rerun: bool = False,
    ) -> IdempotencyRecord:
        """Start a pending record held by ``attempt``. Returns the record: held by ``attempt``
        if this attempt now owns it, else as found (done, pending under another attempt's
        lease, uncertain, or another identity's). With ``settle_by_rerun``, an uncertain record
        of this identity is taken over, keeping when it was first claimed: running the request
        again is how its outcome is settled.

        Raises ``DatabaseUnavailableError`` with ``outcome_unknown`` if the claim may have been
        written and the database did not answer whether it was: the caller must release it."""
        await self._ensure_indexes()
        fresh = {
            "_id": record_id,
            "request_hash": request_hash,
            "identity_hash": identity_hash,
            "attempt": attempt,
            "state": PENDING,
            "created_at": now,
            "lease_until": lease_until,
            "expires_at": expires_at,
        }

        written_unknown = False  # a write of this attempt's may have been applied unseen

        async def holds_after(write: Callable[[], Awaitable[Any]], applied: Callable[[Any], bool]) -> bool:
            """Run ``write`` (it puts ``attempt`` in the record, or changes nothing); whether
            this attempt now holds the record. A write whose reply was lost is settled by
            reading the record back."""
            nonlocal written_unknown
            try:
                async with database_errors(self._time_limit):
                    return applied(await write())
            except DatabaseUnavailableError as exc:
                if not exc.outcome_unknown:
                    raise
                written_unknown = True
                found = await self._find(record_id)
                return found is not None and found.attempt == attempt

        try:
            for _ in range(3):
                try:
                    if await holds_after(lambda: self._collection.insert_one(dict(fresh)), lambda _: True):
                        return IdempotencyRecord.from_document(fresh)
                except DuplicateKeyError:
                    pass
                found = await self._find(record_id)
                if found is None:
                    continue  # expired and removed meanwhile, or the insert was not applied: insert again
                if found.attempt == attempt:
                    return found  # this attempt's write, whose reply was lost, landed meanwhile
                expired = found.expires_at <= now
                if not expired and found.identity_hash != identity_hash:
                    return found  # never taken over by another identity
                if not (expired or (settle_by_rerun and found.outcome_unknown(now))):
                    return found
                # Take over an expired record, or an uncertain one this request settles, if still as read.
                unchanged = {
                    "_id": record_id, "state": found.state, "lease_until": found.lease_until, "attempt": found.attempt,
                }
                taken = fresh if expired else {**fresh, "created_at": found.created_at or now}
                if await holds_after(
                    lambda unchanged=unchanged, taken=taken: self._collection.replace_one(unchanged, taken),
                    lambda result: result.matched_count == 1,
                ):
                    return IdempotencyRecord.from_document(taken)
            found = await self._find(record_id)
        except DatabaseUnavailableError as exc:
            if written_unknown and not exc.outcome_unknown:
                raise DatabaseUnavailableError(exc.message, details=exc.details, outcome_unknown=True) from exc
            raise
        if found is None:  # pragma: no cover - three races in a row
            raise DuplicateKeyError("the idempotency record is changing too fast; retry")
        return found

    async def _find(self, record_id: str) -> IdempotencyRecord | None:
        async with database_errors(self._time_limit, writes=False):
            doc = await self._collection.find_one({"_id": record_id})
        return None if doc is None else IdempotencyRecord.from_document(doc)

    async def complete(
        self, record_id: str, attempt: str, *, status: int, content_type: str | None, body: bytes
    ) -> None:
        """Record the answer to replay, if ``attempt`` still holds the record."""
        async with database_errors(self._time_limit):
            await self._collection.update_one(
                {"_id": record_id, "state": PENDING, "attempt": attempt},
                {"$set": {"state": DONE, "status": status, "content_type": content_type, "body": body}},
            )

    async def mark_uncertain(self, record_id: str, attempt: str) -> None:
        """Say that ``attempt`` reached the database with an unknown outcome: a retry must
        settle it rather than run again."""
        async with database_errors(self._time_limit):
            await self._collection.update_one(
                {"_id": record_id, "state": PENDING, "attempt": attempt}, {"$set": {"state": UNCERTAIN}}
            )

    async def release(self, record_id: str, attempt: str) -> None:
        """Forget the pending record ``attempt`` holds (nothing of it is to be replayed: a retry
        runs again); a record another attempt holds is left alone."""
        async with database_errors(self._time_limit):
            await self._collection.delete_one({"_id": record_id, "state": PENDING, "attempt": attempt})
