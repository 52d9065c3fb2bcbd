"""Errors of the store, and the one place pymongo's exceptions are translated into them.

pymongo's exception tree stays inside this package: callers see ``DatabaseUnavailableError``
(the database cannot be reached or did not answer in time), ``DuplicateKeyError``,
``InvalidIdError``, and ``InvalidQueryError`` for what the database refused as malformed (a
filter operator given the wrong operand, a bad regular expression, a document it cannot
store). Anything else pymongo raises is a bug to fix, and propagates.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import bson.errors
import pymongo.errors
from bson import ObjectId

__all__ = [
    "StoreError",
    "DatabaseUnavailableError",
    "DuplicateKeyError",
    "InvalidIdError",
    "InvalidQueryError",
    "QueryTimeoutError",
    "UnreadableDocumentError",
    "bulk_write_failures",
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


class UnreadableDocumentError(StoreError):
    """The driver cannot decode a stored document (nested deeper than it reads, say)."""


class InvalidIdError(StoreError, ValueError):
    """A string given as a document id is not an ObjectId."""


class InvalidQueryError(StoreError, ValueError):
    """The database refused the request as malformed; the message is the database's."""


# Server error codes meaning "the request is malformed" (BadValue, FailedToParse, TypeMismatch,
# Overflow, PathNotViable, ConflictingUpdateOperators, DollarPrefixedFieldName, EmptyFieldName,
# DottedFieldName, ImmutableField, InvalidOptions, DocumentValidationFailure,
# InvalidPipelineOperator, ConversionFailure). Codes of 10000 and more are user assertions
# raised while evaluating an expression (e.g. $add on a string).
_BAD_INPUT_CODES = frozenset({2, 9, 14, 15, 28, 40, 52, 55, 56, 57, 66, 72, 121, 168, 241})


def _is_bad_input(exc: pymongo.errors.OperationFailure) -> bool:
    code = exc.code or 0
    return code in _BAD_INPUT_CODES or code >= 10000


@contextmanager
def database_errors() -> Iterator[None]:
    """Translate pymongo's exceptions raised inside the block into the store's."""
    try:
        yield
    except pymongo.errors.DuplicateKeyError as exc:
        raise DuplicateKeyError("a document with this key already exists") from exc
    except bson.errors.InvalidDocument as exc:
        raise InvalidQueryError(f"the database cannot store or match this: {exc}") from exc
    except bson.errors.InvalidBSON as exc:
        # The driver's message may quote stored bytes: not shown.
        raise UnreadableDocumentError(
            "a stored document cannot be read (nested too deeply, or not valid BSON); it was written "
            "directly in the database: fix it there, or leave it out with a filter"
        ) from exc
    except OverflowError as exc:  # bson's encoder: an integer beyond 64 bits
        raise InvalidQueryError(f"the database cannot store or match this: {exc}") from exc
    except pymongo.errors.OperationFailure as exc:
        if exc.timeout:
            raise DatabaseUnavailableError(
                "the database is unavailable; retry later", details={"reason": type(exc).__name__}
            ) from exc
        if _is_bad_input(exc):
            message = (exc.details or {}).get("errmsg") or str(exc)
            raise InvalidQueryError(f"the database refused the request: {message}", details={"code": exc.code}) from exc
        raise
    except pymongo.errors.PyMongoError as exc:
        # ConnectionFailure covers AutoReconnect, NetworkTimeout and ServerSelectionTimeoutError;
        # ``timeout`` flags the rest that ran out of time (e.g. ExecutionTimeout).
        if isinstance(exc, pymongo.errors.ConnectionFailure) or exc.timeout:
            raise DatabaseUnavailableError(
                "the database is unavailable; retry later",
                details={"reason": type(exc).__name__},
            ) from exc
        raise


# Write error codes meaning "a unique index refused the document".
_DUPLICATE_KEY_CODES = frozenset({11000, 11001, 12582})


def bulk_write_failures(exc: pymongo.errors.BulkWriteError) -> dict[int, StoreError]:
    """The failed operations of an unordered bulk write, by index, as the store's errors; every
    other operation was applied. A write concern error means the writes were applied but not
    confirmed as asked: the outcome is uncertain, and that is a ``DatabaseUnavailableError``."""
    details = exc.details or {}
    if details.get("writeConcernErrors"):
        raise DatabaseUnavailableError(
            "the database did not confirm the writes; retry later", details={"reason": "WriteConcernError"}
        ) from exc
    failures: dict[int, StoreError] = {}
    for error in details.get("writeErrors", ()):
        code = error.get("code") or 0
        message = error.get("errmsg") or "write error"
        if code in _DUPLICATE_KEY_CODES:
            failures[error["index"]] = DuplicateKeyError("a document with this key already exists")
        elif code in _BAD_INPUT_CODES or code >= 10000:
            failures[error["index"]] = InvalidQueryError(
                f"the database refused the request: {message}", details={"code": code}
            )
        else:
            failures[error["index"]] = StoreError(f"the database refused the write (code {code})", details={"code": code})
    return failures


def parse_object_id(value: str) -> ObjectId:
    if not isinstance(value, str) or not ObjectId.is_valid(value):
        raise InvalidIdError(
            f"{value!r} is not a valid id: expected a 24-character hexadecimal ObjectId",
            details={"id": value},
        )
    return ObjectId(value)


class QueryTimeoutError(InvalidQueryError):
    """The request ran past its time limit (``maxTimeMS``): too costly as asked."""
