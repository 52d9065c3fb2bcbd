"""The public clients: :class:`PermissionMongo` and :class:`AsyncPermissionMongo`.

Each method is one line: build the call with :mod:`._operations` (shared by both clients) and
send it with the client's loop. What a method sends and returns is decided there, once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any

from . import _operations as operations
from ._base_client import AsyncAPIClient, SyncAPIClient
from ._pagination import AsyncPage, Page
from ._types import (
    BatchCreateResult,
    BatchDeleteResult,
    BatchUpdateResult,
    DeleteResult,
    Document,
    DocumentId,
    Sort,
)

__all__ = ["AsyncPermissionMongo", "PermissionMongo"]

Headers = Mapping[str, str]


class PermissionMongo(SyncAPIClient):
    """Blocking client of a Permission Mongo gateway.

    Every call is checked by the gateway's policy as the caller the API key stands for: finds
    only see permitted documents and fields, writes are refused when not allowed. Documents
    and filters may hold bson types (``ObjectId``, ``datetime``...), which round-trip as
    Extended JSON. Every method takes ``headers=`` to add headers to that one request.

    Failed requests are retried (see :class:`RetryConfig`); writes carry one
    ``Idempotency-Key`` for all their attempts, so a retry never applies them twice.

    Use it as a context manager, or call :meth:`close`, to release its connections::

        with PermissionMongo(url="http://localhost:8080", api_key="pm_...") as client:
            client.insert("users", {"name": "Ada"})
    """

    def insert(
        self, collection: str, document: Mapping[str, Any], *, headers: Headers | None = None
    ) -> Document:
        """Create a document; returns it as stored, with ``_id``, ``created_by``,
        ``created_at`` and ``updated_at`` set by the gateway."""
        return self._send(operations.insert(collection, document), headers)

    def get(
        self, collection: str, id: DocumentId, *, headers: Headers | None = None
    ) -> Document | None:
        """The document with this ``_id``, or None when it does not exist or the caller may
        not read it (the gateway does not tell the two apart)."""
        return self._send(operations.get(collection, id), headers)

    def update(
        self,
        collection: str,
        id: DocumentId,
        updates: Mapping[str, Any],
        *,
        headers: Headers | None = None,
    ) -> Document:
        """Update one document: ``updates`` is either fields to set (``{"status": "x"}``) or
        update operators (``{"$inc": {"n": 1}}``). Returns the document after the update.
        Raises :class:`NotFoundError` when there is no such document."""
        return self._send(operations.update(collection, id, updates), headers)

    def delete(
        self, collection: str, id: DocumentId, *, headers: Headers | None = None
    ) -> DeleteResult:
        """Delete one document; returns ``{"deleted": True, "id": ...}``.
        Raises :class:`NotFoundError` when there is no such document."""
        return self._send(operations.delete(collection, id), headers)

    def find(
        self,
        collection: str,
        filter: Mapping[str, Any] | None = None,
        *,
        limit: int | None = None,
        sort: Sort | None = None,
        fields: Sequence[str] | None = None,
        cursor: str | None = None,
        headers: Headers | None = None,
    ) -> Page:
        """One page of the documents matching ``filter`` that the caller may read.

        Args:
            filter: a MongoDB filter; None or ``{}`` matches everything permitted.
            limit: documents per page (the gateway's default is 20, its maximum 10,000).
            sort: ``"-created_at"``, ``["name", "-created_at"]``, or pymongo's
                ``[("name", 1)]``.
            fields: the fields to return (``_id`` always comes); default all readable ones.
            cursor: ``page.cursor`` of the previous page, to fetch the next one.

        The :class:`Page` iterates over this page's documents and has ``len()``; use
        :meth:`find_iter` (or ``page.iter_documents()``) to go through every page.
        """
        operation = operations.find(
            collection, filter, sort=sort, fields=fields, limit=limit, cursor=cursor
        )
        return Page(
            self._send(operation, headers), client=self, operation=operation, headers=headers
        )

    def find_iter(
        self,
        collection: str,
        filter: Mapping[str, Any] | None = None,
        *,
        sort: Sort | None = None,
        fields: Sequence[str] | None = None,
        page_size: int | None = None,
        headers: Headers | None = None,
    ) -> Iterator[Document]:
        """Every matching document, fetching page after page as the iteration goes::

        for user in client.find_iter("users", {"status": "active"}, page_size=100):
            ...
        """
        page = self.find(
            collection, filter, sort=sort, fields=fields, limit=page_size, headers=headers
        )
        yield from page.iter_documents()

    def count(
        self,
        collection: str,
        filter: Mapping[str, Any] | None = None,
        *,
        headers: Headers | None = None,
    ) -> int:
        """How many documents the caller may read match ``filter``."""
        return self._send(operations.count(collection, filter), headers)

    def aggregate(
        self,
        collection: str,
        pipeline: Sequence[Mapping[str, Any]],
        *,
        headers: Headers | None = None,
    ) -> list[Document]:
        """Run an aggregation pipeline; the gateway applies the caller's read rules wherever
        the pipeline reads a collection, and refuses stages it does not allow."""
        return self._send(operations.aggregate(collection, pipeline), headers)

    def batch_create(
        self,
        collection: str,
        documents: Iterable[Mapping[str, Any]],
        *,
        headers: Headers | None = None,
    ) -> BatchCreateResult:
        """Create several documents; returns ``{"created": [...], "failed": [...]}``, where each
        failure is ``{"index": i, "error": {"code": ..., "message": ...}}``."""
        return self._send(operations.batch_create(collection, documents), headers)

    def batch_update(
        self,
        collection: str,
        ids: Iterable[DocumentId] | None = None,
        filter: Mapping[str, Any] | None = None,
        update: Mapping[str, Any] | None = None,
        *,
        all: bool = False,
        headers: Headers | None = None,
    ) -> BatchUpdateResult:
        """Apply ``update`` to the documents given by exactly one of ``ids`` or ``filter``
        (among those the caller may update); returns ``{"matched": n, "modified": n,
        "refused": [...]}``, ``refused`` listing the documents the policy would not let the
        update produce, with the reason. An empty filter needs ``all=True``."""
        return self._send(operations.batch_update(collection, ids, filter, update, all), headers)

    def batch_delete(
        self,
        collection: str,
        ids: Iterable[DocumentId] | None = None,
        filter: Mapping[str, Any] | None = None,
        *,
        all: bool = False,
        headers: Headers | None = None,
    ) -> BatchDeleteResult:
        """Delete the documents given by exactly one of ``ids`` or ``filter`` (among those the
        caller may delete); returns ``{"deleted": n}``. An empty filter needs ``all=True``."""
        return self._send(operations.batch_delete(collection, ids, filter, all), headers)


class AsyncPermissionMongo(AsyncAPIClient):
    """The awaitable twin of :class:`PermissionMongo`: the same methods, arguments and results,
    awaited; ``find`` gives an :class:`AsyncPage` for ``async for``. Use ``async with``, or
    ``await client.close()``, to release its connections."""

    async def insert(
        self, collection: str, document: Mapping[str, Any], *, headers: Headers | None = None
    ) -> Document:
        """See :meth:`PermissionMongo.insert`."""
        return await self._send(operations.insert(collection, document), headers)

    async def get(
        self, collection: str, id: DocumentId, *, headers: Headers | None = None
    ) -> Document | None:
        """See :meth:`PermissionMongo.get`."""
        return await self._send(operations.get(collection, id), headers)

    async def update(
        self,
        collection: str,
        id: DocumentId,
        updates: Mapping[str, Any],
        *,
        headers: Headers | None = None,
    ) -> Document:
        """See :meth:`PermissionMongo.update`."""
        return await self._send(operations.update(collection, id, updates), headers)

    async def delete(
        self, collection: str, id: DocumentId, *, headers: Headers | None = None
    ) -> DeleteResult:
        """See :meth:`PermissionMongo.delete`."""
        return await self._send(operations.delete(collection, id), headers)

    async def find(
        self,
        collection: str,
        filter: Mapping[str, Any] | None = None,
        *,
        limit: int | None = None,
        sort: Sort | None = None,
        fields: Sequence[str] | None = None,
        cursor: str | None = None,
        headers: Headers | None = None,
    ) -> AsyncPage:
        """See :meth:`PermissionMongo.find`."""
        operation = operations.find(
            collection, filter, sort=sort, fields=fields, limit=limit, cursor=cursor
        )
        result = await self._send(operation, headers)
        return AsyncPage(result, client=self, operation=operation, headers=headers)

    async def find_iter(
        self,
        collection: str,
        filter: Mapping[str, Any] | None = None,
        *,
        sort: Sort | None = None,
        fields: Sequence[str] | None = None,
        page_size: int | None = None,
        headers: Headers | None = None,
    ) -> AsyncIterator[Document]:
        """See :meth:`PermissionMongo.find_iter`; use it with ``async for`` (no ``await``)."""
        page = await self.find(
            collection, filter, sort=sort, fields=fields, limit=page_size, headers=headers
        )
        async for document in page.iter_documents():
            yield document

    async def count(
        self,
        collection: str,
        filter: Mapping[str, Any] | None = None,
        *,
        headers: Headers | None = None,
    ) -> int:
        """See :meth:`PermissionMongo.count`."""
        return await self._send(operations.count(collection, filter), headers)

    async def aggregate(
        self,
        collection: str,
        pipeline: Sequence[Mapping[str, Any]],
        *,
        headers: Headers | None = None,
    ) -> list[Document]:
        """See :meth:`PermissionMongo.aggregate`."""
        return await self._send(operations.aggregate(collection, pipeline), headers)

    async def batch_create(
        self,
        collection: str,
        documents: Iterable[Mapping[str, Any]],
        *,
        headers: Headers | None = None,
    ) -> BatchCreateResult:
        """See :meth:`PermissionMongo.batch_create`."""
        return await self._send(operations.batch_create(collection, documents), headers)

    async def batch_update(
        self,
        collection: str,
        ids: Iterable[DocumentId] | None = None,
        filter: Mapping[str, Any] | None = None,
        update: Mapping[str, Any] | None = None,
        *,
        all: bool = False,
        headers: Headers | None = None,
    ) -> BatchUpdateResult:
        """See :meth:`PermissionMongo.batch_update`."""
        return await self._send(operations.batch_update(collection, ids, filter, update, all), headers)

    async def batch_delete(
        self,
        collection: str,
        ids: Iterable[DocumentId] | None = None,
        filter: Mapping[str, Any] | None = None,
        *,
        all: bool = False,
        headers: Headers | None = None,
    ) -> BatchDeleteResult:
        """See :meth:`PermissionMongo.batch_delete`."""
        return await self._send(operations.batch_delete(collection, ids, filter, all), headers)
