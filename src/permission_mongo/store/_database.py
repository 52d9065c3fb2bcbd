"""The connection to MongoDB, through pymongo's async client."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any

from pymongo import AsyncMongoClient

from ._api_keys import API_KEYS_COLLECTION, ApiKeyStore
from ._capabilities import Capabilities
from ._documents import DocumentStore
from ._errors import answers_ping, database_errors
from ._idempotency import IDEMPOTENCY_COLLECTION, IdempotencyStore
from ._limits import TimeLimit

__all__ = ["Store"]


class Store:
    """One client and one database: the gateway's data and its internal ``_pm_*`` collections.

    Creating it does not connect; the first operation does. So the gateway starts while the
    database is down, and each operation fails with ``DatabaseUnavailableError`` after
    ``timeout`` seconds of looking for the server.

    Every operation is bounded: the gateway's own (API keys, idempotency records, pings) by
    ``operation_timeout`` seconds, a caller's by ``time_limit`` (aggregations by the one they are
    given), which the database is told too (maxTimeMS). Past its bound with no answer, an
    operation is a ``DatabaseUnavailableError``, unless it is a caller's read and the database
    still answers a ping: then it was too costly, the caller's ``QueryTimeoutError``.

    ``write_concern`` (pymongo's options: ``w``, ``journal``) is what a write must reach before
    the database confirms it, and so before the gateway answers; options the URI sets and this
    leaves out are the URI's.
    """

    def __init__(
        self,
        uri: str,
        database: str,
        *,
        time_limit: TimeLimit,
        operation_timeout: float = 5.0,
        timeout: float = 5.0,
        write_concern: Mapping[str, Any] | None = None,
    ) -> None:
        timeout_ms = max(1, int(timeout * 1000))
        options: dict[str, Any] = {
            "serverSelectionTimeoutMS": timeout_ms,
            "connectTimeoutMS": timeout_ms,
            "tz_aware": True,
            "tzinfo": UTC,
            "uuidRepresentation": "standard",
            "appname": "permission-mongo",
        }
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, **options, **(write_concern or {}))
        # Pings through connections of their own: readiness and the liveness check of a timed-out
        # request never queue behind the requests holding the pool.
        self._ping_client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, **options, maxPoolSize=1)
        self.database = self.client[database]
        self._time_limit = time_limit
        # The gateway's own operations: running out of time there is not the caller's doing.
        self._own_time_limit = TimeLimit(max(1, int(operation_timeout * 1000)))
        self.api_keys = ApiKeyStore(self.database[API_KEYS_COLLECTION], self._own_time_limit)
        self.idempotency = IdempotencyStore(self.database[IDEMPOTENCY_COLLECTION], self._own_time_limit)
        self._documents: dict[str, DocumentStore] = {}
        self.capabilities = Capabilities(self.database)

    def documents(self, collection: str) -> DocumentStore:
        """An application collection (the caller has checked it is not an internal one)."""
        found = self._documents.get(collection)
        if found is None:
            found = self._documents[collection] = DocumentStore(
                self.database[collection], self._time_limit, answering=self.answering
            )
        return found

    async def ping(self) -> None:
        """Return when the database answers; raise DatabaseUnavailableError if it does not."""
        async with database_errors(self._own_time_limit):
            await self._ping_client.admin.command("ping")

    async def answering(self) -> bool:
        """Whether the database answers a ping within a second."""
        return await answers_ping(self._ping_client)

    async def close(self) -> None:
        await self._ping_client.close()
        await self.client.close()
