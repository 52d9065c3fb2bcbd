"""Application documents: the collections the policy governs.

The store runs what it is given; the filters come from the gateway, which has already
combined the caller's filter with the policy's (``{"$and": [caller, policy]}``) and chosen the
collation. What it adds is the compare-and-swap write that makes the update post-image check
race-free: a document is replaced only if it is still exactly the one that was checked.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import bson
import pymongo.errors
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.raw_bson import RawBSONDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.command_cursor import AsyncCommandCursor
from pymongo.asynchronous.cursor import AsyncCursor

from ._errors import (
    ENCODING_ERRORS,
    InvalidQueryError,
    Liveness,
    StoreError,
    bulk_write_failures,
    database_errors,
    unencodable,
)
from ._exact import same_document
from ._limits import SizeLimit, TimeLimit

__all__ = ["DocumentStore", "swap_if_unchanged"]

Document = dict[str, Any]
SIMPLE_COLLATION = {"locale": "simple"}
_MAX_DOCUMENT_BYTES = 16 * 1024 * 1024  # MongoDB's maxBsonObjectSize
_OPTIONS_TTL = 60.0  # seconds before a collection's default collation is looked up again
_RawCursor = AsyncCursor[RawBSONDocument] | AsyncCommandCursor[RawBSONDocument]


def swap_if_unchanged(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[Document, list[Document]]:
    """The filter and the update pipeline of ``DocumentStore.replace_if_unchanged``."""
    swap = {"$cond": {"if": same_document(before), "then": {"$literal": after}, "else": "$$ROOT"}}
    return {"_id": before["_id"]}, [{"$replaceWith": swap}]


class DocumentStore:
    """One application collection.

    Every operation runs under the collection's time limit (``time_limit``), aggregate under its
    own. Operations take the collation the plan requires. The simple collation is only sent when
    the collection has a default collation of its own (which it overrides); otherwise it is the
    default, and leaving it out changes nothing in MongoDB's semantics. (It also avoids a
    SecantusDB 0.7.0b3 bug: with ``{"locale": "simple"}`` it sorts strings case-insensitively,
    where MongoDB sorts them by code point, which would break range paging.)

    ``find`` and ``aggregate`` read their answer document by document, counting its bytes: past
    ``max_bytes`` they stop reading and refuse, so a request holds at most that much (and one
    batch of the database's reply) however large the answer would have been.
    """

    __slots__ = ("_answering", "_collection", "_plain_until", "_raw", "_results", "_time_limit")

    def __init__(
        self, collection: AsyncCollection[Document], time_limit: TimeLimit, *, answering: Liveness | None = None
    ) -> None:
        self._collection = collection
        # Tells a read (or a write by filter) too costly from a database that hangs, once one
        # runs out of time; writes by id are never too costly: a timeout there is the database's.
        self._answering = answering
        # The same collection answering undecoded documents, whose size is known before decoding.
        self._raw = collection.with_options(
            codec_options=collection.codec_options.with_options(document_class=RawBSONDocument)
        )
        # A pipeline's results are only sent, never checked against the policy: a date it
        # computes beyond year 9999 (``$toDate`` of a large number) is kept as milliseconds.
        self._results = collection.codec_options.with_options(datetime_conversion=DatetimeConversion.DATETIME_AUTO)
        self._time_limit = time_limit
        self._plain_until = 0.0  # until then, the collection is known to have no default collation

    async def _collation(self, collation: Mapping[str, Any]) -> Mapping[str, Any] | None:
        if dict(collation) != SIMPLE_COLLATION:
            return collation
        if time.monotonic() < self._plain_until:
            return None
        async with database_errors(self._time_limit, self._answering, writes=False):
            cursor = await self._collection.database.list_collections(filter={"name": self._collection.name})
            found = await cursor.to_list(None)
        if not found:
            return None  # no collection yet: nothing to override; looked up again next time
        if (found[0].get("options") or {}).get("collation", {}).get("locale", "simple") != "simple":
            return collation
        self._plain_until = time.monotonic() + _OPTIONS_TTL
        return None

    async def _read(
        self, cursor: _RawCursor, max_bytes: SizeLimit | None, options: CodecOptions[Document]
    ) -> list[Document]:
        """The cursor's documents, decoded one by one; past ``max_bytes`` it is closed unread."""
        found: list[Document] = []
        size = 0
        try:
            async for raw in cursor:
                size += len(raw.raw)
                if max_bytes is not None:
                    max_bytes.check(size)
                found.append(bson.decode(raw.raw, codec_options=options))
        finally:
            await cursor.close()
        return found

    async def insert(self, document: Mapping[str, Any]) -> None:
        async with database_errors(self._time_limit):
            await self._collection.insert_one(document)

    async def insert_many(self, documents: Sequence[Mapping[str, Any]]) -> dict[int, StoreError]:
        """Insert the documents in one unordered bulk write (each must have its ``_id``).

        Returns the failures by index (``DuplicateKeyError``, ``InvalidQueryError`` for what the
        database cannot store or refused...); every document not among them was inserted.
        Raises ``DatabaseUnavailableError`` when the outcome is uncertain (the connection failed,
        or the writes were applied but not confirmed): nothing is known of any document then.
        """
        options = self._collection.codec_options
        failures: dict[int, StoreError] = {}
        encoded: list[RawBSONDocument] = []
        positions: list[int] = []  # index in ``documents`` of each encoded document
        for index, document in enumerate(documents):
            # Encoded one by one, so one document that cannot be stored fails alone.
            try:
                raw = bson.encode(document, codec_options=options)
            except ENCODING_ERRORS as exc:
                failures[index] = unencodable(exc)
                continue
            if len(raw) > _MAX_DOCUMENT_BYTES:
                failures[index] = InvalidQueryError(
                    f"the document is {len(raw)} bytes once stored; the database stores at most {_MAX_DOCUMENT_BYTES}"
                )
                continue
            encoded.append(RawBSONDocument(raw))  # sent as encoded, never decoded here
            positions.append(index)
        if not encoded:
            return failures
        async with database_errors(self._time_limit):
            try:
                await self._collection.insert_many(encoded, ordered=False)
            except pymongo.errors.BulkWriteError as exc:
                for position, error in bulk_write_failures(exc, self._time_limit).items():
                    failures[positions[position]] = error
        return failures

    async def find_one(self, filter: Mapping[str, Any], *, collation: Mapping[str, Any]) -> Document | None:
        collation = await self._collation(collation)
        async with database_errors(self._time_limit, self._answering, writes=False):
            return await self._collection.find_one(filter, collation=collation)

    async def find_by_id(
        self, key: Any, filter: Mapping[str, Any], *, collation: Mapping[str, Any]
    ) -> Document | None:
        """The document with ``_id`` ``key`` if it matches ``filter``. A ``$match`` on the
        ``_id`` alone, then one on the filter: the same as ``find_one({"$and": [{"_id": key},
        filter]})``, but SecantusDB finds a document by its ``_id`` index only for a filter
        naming ``_id`` alone, and scans the collection for ``{"_id": key, "$or": [...]}``
        (30 ms against 0.7 ms at 1,000 documents); MongoDB uses the index either way."""
        pipeline: list[Document] = [{"$match": {"_id": key}}]
        if filter:
            pipeline.append({"$match": dict(filter)})
        collation = await self._collation(collation)
        async with database_errors(self._time_limit, self._answering, writes=False):
            cursor = await self._collection.aggregate([*pipeline, {"$limit": 1}], collation=collation)
            found = await cursor.to_list(None)
        return found[0] if found else None

    async def find(
        self,
        filter: Mapping[str, Any],
        *,
        sort: Sequence[tuple[str, int]],
        limit: int,
        collation: Mapping[str, Any],
        max_bytes: SizeLimit | None,
    ) -> list[Document]:
        collation = await self._collation(collation)
        async with database_errors(self._time_limit, self._answering, writes=False):
            cursor = self._raw.find(filter, sort=list(sort) or None, limit=limit, collation=collation)
            return await self._read(cursor, max_bytes, self._collection.codec_options)

    async def count(self, filter: Mapping[str, Any], *, collation: Mapping[str, Any]) -> int:
        collation = await self._collation(collation)
        async with database_errors(self._time_limit, self._answering, writes=False):
            return await self._collection.count_documents(filter, collation=collation)

    async def replace_if_unchanged(
        self, before: Mapping[str, Any], after: Mapping[str, Any], *, collation: Mapping[str, Any]
    ) -> bool:
        """Replace ``before`` by ``after`` only if the stored document is still exactly
        ``before`` (see ``_exact``); False if it changed or disappeared meanwhile.

        One update found by ``_id`` alone, so by its index (a filter with ``$expr`` beside the
        ``_id`` made SecantusDB scan the collection): its pipeline writes ``after`` if the
        stored document is ``before``, and otherwise leaves it as it is, which the database
        counts as not modified (it compares the new document with the old byte for byte).
        So an ``after`` identical to ``before`` has nothing to write and is not sent."""
        options = self._collection.codec_options
        async with database_errors(self._time_limit):
            if bson.encode(after, codec_options=options) == bson.encode(before, codec_options=options):
                return True
        collation = await self._collation(collation)
        async with database_errors(self._time_limit):
            try:
                result = await self._collection.update_one(*swap_if_unchanged(before, after), collation=collation)
            except pymongo.errors.DocumentTooLarge as exc:
                # The command carries the document as read and as written: 16 MiB for both.
                raise InvalidQueryError(
                    "the document is too large to be updated through the gateway: the document as "
                    "read and as written must fit together in one database command (16 MiB)"
                ) from exc
        return result.modified_count == 1

    async def delete_many(self, filter: Mapping[str, Any], *, collation: Mapping[str, Any]) -> int:
        collation = await self._collation(collation)
        async with database_errors(self._time_limit, self._answering):
            result = await self._collection.delete_many(filter, collation=collation)
        return result.deleted_count

    async def delete_one(self, filter: Mapping[str, Any], *, collation: Mapping[str, Any]) -> bool:
        collation = await self._collation(collation)
        async with database_errors(self._time_limit):
            result = await self._collection.delete_one(filter, collation=collation)
        return result.deleted_count == 1

    async def aggregate(
        self,
        pipeline: Sequence[Mapping[str, Any]],
        *,
        collation: Mapping[str, Any],
        time_limit: TimeLimit,
        max_bytes: SizeLimit,
        limit: int,
    ) -> list[Document]:
        """Run a pipeline (already rewritten for the caller); at most ``limit`` documents, at most
        ``max_bytes`` of them, within ``time_limit``."""
        collation = await self._collation(collation)
        async with database_errors(time_limit, self._answering, writes=False):
            cursor = await self._raw.aggregate([*pipeline, {"$limit": limit}], collation=collation)
            return await self._read(cursor, max_bytes, self._results)
