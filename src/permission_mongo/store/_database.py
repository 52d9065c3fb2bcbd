"""The connection to MongoDB, through pymongo's async client."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from pymongo import AsyncMongoClient

from ._api_keys import API_KEYS_COLLECTION, ApiKeyStore
from ._capabilities import Capabilities
from ._documents import DocumentStore
from ._errors import database_errors
from ._idempotency import IDEMPOTENCY_COLLECTION, IdempotencyStore
from ._limits import TimeLimit

__all__ = ["Store"]


class Store:
    """One client and one database: the gateway's data and its internal ``_pm_*`` collections.

    Creating it does not connect; the first operation does. So the gateway starts while the
    database is down, and each operation fails with ``DatabaseUnavailableError`` after
    ``timeout`` seconds of looking for the server. Every operation runs under ``time_limit``
    (aggregations under the one they are given); past it, an application collection's operation
    is the caller's ``QueryTimeoutError``, the gateway's own a ``DatabaseUnavailableError``.
    """

    def __init__(self, uri: str, database: str, *, time_limit: TimeLimit, timeout: float = 5.0) -> None:
        timeout_ms = max(1, int(timeout * 1000))
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            uri,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            tz_aware=True,
            tzinfo=UTC,
            uuidRepresentation="standard",
            appname="permission-mongo",
        )
        self.database = self.client[database]
        self._time_limit = time_limit
        # The gateway's own operations: running out of time there is not the caller's doing.
        self._own_time_limit = TimeLimit(time_limit.milliseconds)
        self.api_keys = ApiKeyStore(self.database[API_KEYS_COLLECTION], self._own_time_limit)
        self.idempotency = IdempotencyStore(self.database[IDEMPOTENCY_COLLECTION], self._own_time_limit)
        self._documents: dict[str, DocumentStore] = {}
        self.capabilities = Capabilities(self.database)

    def documents(self, collection: str) -> DocumentStore:
        """An application collection (the caller has checked it is not an internal one)."""
        found = self._documents.get(collection)
        if found is None:
            found = self._documents[collection] = DocumentStore(self.database[collection], self._time_limit)
        return found

    async def ping(self) -> None:
        """Return when the database answers; raise DatabaseUnavailableError if it does not."""
        with database_errors(self._own_time_limit):
            await self.database.command("ping")

    async def close(self) -> None:
        await self.client.close()
