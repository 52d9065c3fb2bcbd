"""Errors of the store, and the one place pymongo's exceptions are translated into them.

pymongo's exception tree stays inside this package: callers see ``DatabaseUnavailableError``
(the database cannot be reached or did not answer in time), ``DuplicateKeyError`` and
``InvalidIdError``. Anything else pymongo raises is a bug to fix, and propagates.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pymongo.errors
from bson import ObjectId

__all__ = [
    "StoreError",
    "DatabaseUnavailableError",
    "DuplicateKeyError",
    "InvalidIdError",
    "database_errors",
    "parse_object_id",
]


class StoreError(Exception):
    """Base class of the store's errors. ``details`` is safe to show the caller."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class DatabaseUnavailableError(StoreError):
    """MongoDB cannot be reached, or did not answer in time. Retrying later may succeed."""


class DuplicateKeyError(StoreError):
    """A unique index refused the write."""


class InvalidIdError(StoreError, ValueError):
    """A string given as a document id is not an ObjectId."""


@contextmanager
def database_errors() -> Iterator[None]:
    """Translate pymongo's exceptions raised inside the block into the store's."""
    try:
        yield
    except pymongo.errors.DuplicateKeyError as exc:
        raise DuplicateKeyError("a document with this key already exists") from exc
    except pymongo.errors.PyMongoError as exc:
        # ConnectionFailure covers AutoReconnect, NetworkTimeout and ServerSelectionTimeoutError;
        # ``timeout`` flags the rest that ran out of time (e.g. ExecutionTimeout).
        if isinstance(exc, pymongo.errors.ConnectionFailure) or exc.timeout:
            raise DatabaseUnavailableError(
                "the database is unavailable; retry later",
                details={"reason": type(exc).__name__},
            ) from exc
        raise


def parse_object_id(value: str) -> ObjectId:
    if not isinstance(value, str) or not ObjectId.is_valid(value):
        raise InvalidIdError(
            f"{value!r} is not a valid id: expected a 24-character hexadecimal ObjectId",
            details={"id": value},
        )
    return ObjectId(value)
