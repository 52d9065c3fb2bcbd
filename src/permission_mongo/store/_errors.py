"""Errors of the store, and the one place pymongo's exceptions are translated into them.

pymongo's exception tree stays inside this package. A database error becomes a store error
through ``DATABASE_ERRORS``, one table from MongoDB's error code to the store error class and a
stable message about the caller's own request. The database's own text (``errmsg``) never
reaches a caller: it can quote stored values (a failed conversion names the string it met, a
duplicate key names the key) and namespaces. It is logged here instead, at debug level for what
the request caused and at warning level for what the database did wrong.

    StoreError
    ├── InvalidQueryError         the database refused the request (400)
    │   ├── QueryTimeoutError     it ran past its time limit (400, naming the setting)
    │   └── ResultTooLargeError   its answer passed the byte limit (400, naming the setting)
    ├── DuplicateKeyError         a unique index refused the write (409)
    ├── DatabaseUnavailableError  unreachable, busy, or the outcome is unknown; retry (503)
    │                             (``outcome_unknown``: a write may have been applied)
    ├── DatabaseFaultError        the database failed through no fault of the request (500)
    └── InvalidIdError            a document id that is not an ObjectId (400)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import bson.errors
import pymongo
import pymongo.errors
from bson import ObjectId
from pymongo import AsyncMongoClient

if TYPE_CHECKING:
    from ._limits import TimeLimit

__all__ = [
    "DATABASE_ERRORS",
    "DatabaseFaultError",
    "DatabaseUnavailableError",
    "DuplicateKeyError",
    "ENCODING_ERRORS",
    "Liveness",
    "InvalidIdError",
    "InvalidQueryError",
    "QueryTimeoutError",
    "UnreadableDocumentError",
    "ResultTooLargeError",
    "StoreError",
    "answers_ping",
    "store_error",
    "bulk_write_failures",
    "database_error",
    "database_errors",
    "parse_object_id",
    "unencodable",
]

logger = logging.getLogger("permission_mongo.store")


class StoreError(Exception):
    """Base class of the store's errors. ``details`` is safe to show the caller."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class DatabaseUnavailableError(StoreError):
    """MongoDB cannot be reached, is busy, or did not confirm a write. Retrying later may succeed.

    ``outcome_unknown`` is True when the operation reached the database and may have been
    applied: its reply was lost or late, or a write was applied but not confirmed as the write
    concern asks. A write must then be settled (was it applied?) before it is run again.
    ``retry_after`` is the seconds a caller should wait before retrying.
    """

    retry_after = 1.0

    def __init__(
        self, message: str, *, details: dict[str, Any] | None = None, outcome_unknown: bool = False
    ) -> None:
        super().__init__(message, details=details)
        self.outcome_unknown = outcome_unknown


class DatabaseFaultError(StoreError):
    """The database failed in a way the request did not cause (a bug, a missing privilege)."""


class DuplicateKeyError(StoreError):
    """A unique index refused the write."""


class UnreadableDocumentError(StoreError):
    """The driver cannot decode a stored document (nested deeper than it reads, say)."""


class InvalidIdError(StoreError, ValueError):
    """A string given as a document id is not an ObjectId."""


class InvalidQueryError(StoreError, ValueError):
    """The database refused the request, or failed evaluating it, because of what it asks."""


class QueryTimeoutError(InvalidQueryError):
    """The request ran past its time limit: too costly as asked."""


class ResultTooLargeError(InvalidQueryError):
    """The answer is larger than a response may be."""


@dataclass(frozen=True)
class DatabaseErrorEntry:
    name: str  # MongoDB's codeName
    error: type[StoreError]
    message: str  # about the caller's request; never quotes the database


_RETRY = "the database is busy or unavailable; retry later"
_FAULT = "the database failed on this request through no fault of it; quote the request id when reporting it"
_TOO_LARGE = (
    "a document your request builds or returns is larger than MongoDB's 16 MiB limit: project fewer fields, "
    "or add a $limit"
)
_TIMED_OUT = "the request ran past its time limit"  # replaced by a message naming the setting


def _entries(error: type[StoreError], message: str, *codes: tuple[int, str]) -> dict[int, DatabaseErrorEntry]:
    return {code: DatabaseErrorEntry(name, error, message) for code, name in codes}


DATABASE_ERRORS: Mapping[int, DatabaseErrorEntry] = {
    # What the request asks is malformed, or failed on the values it met.
    **_entries(InvalidQueryError, "a value in your request is not valid where it is used, such as an operator's "
               "argument out of range or a division by zero", (2, "BadValue")),
    **_entries(InvalidQueryError, "an operator in your request lacks a required argument", (4, "NoSuchKey")),
    **_entries(InvalidQueryError, "the database could not parse part of your request: check the operators' names "
               "and the shape of their arguments", (9, "FailedToParse")),
    **_entries(InvalidQueryError, "an operator in your request was given, or met in a document, a value of a type "
               "it does not take", (14, "TypeMismatch")),
    **_entries(InvalidQueryError, "a number in your request, or computed by it, overflowed", (15, "Overflow")),
    **_entries(InvalidQueryError, "a list in your request has a length its operator does not take",
               (16, "InvalidLength")),
    **_entries(InvalidQueryError, "your request asks for an operation the database does not allow there",
               (20, "IllegalOperation")),
    **_entries(InvalidQueryError, "a value in your request cannot be encoded for the database", (22, "InvalidBSON")),
    **_entries(InvalidQueryError, "an update path in your request goes through a value that is not a document",
               (28, "PathNotViable")),
    **_entries(InvalidQueryError, "a path in your request does not exist in the document", (29, "NonExistentPath")),
    **_entries(InvalidQueryError, "a field path in your request is not valid", (30, "InvalidPath")),
    **_entries(InvalidQueryError, "two update operators in your request write the same path",
               (40, "ConflictingUpdateOperators")),
    **_entries(InvalidQueryError, "a field name in your request starts with $", (52, "DollarPrefixedFieldName")),
    **_entries(InvalidQueryError, "the _id in your request is not valid", (53, "InvalidIdField")),
    **_entries(InvalidQueryError, "an operator in your request met a field holding more than one value",
               (54, "NotSingleValueField")),
    **_entries(InvalidQueryError, "a reference ($ref, $id) in your request is not valid", (55, "InvalidDBRef")),
    **_entries(InvalidQueryError, "a field name in your request is empty", (56, "EmptyFieldName")),
    **_entries(InvalidQueryError, "a field name in your request contains a dot", (57, "DottedFieldName")),
    **_entries(InvalidQueryError, "your request would change a field that cannot change (_id)", (66, "ImmutableField")),
    **_entries(InvalidQueryError, "an option in your request is not valid", (72, "InvalidOptions")),
    **_entries(InvalidQueryError, "the database could not carry out an operation of your request",
               (96, "OperationFailed")),
    **_entries(InvalidQueryError, "the collection's validation rules in the database refused the document",
               (121, "DocumentValidationFailure")),
    **_entries(InvalidQueryError, "your request would use more memory than the database allows, such as a $range, "
               "$push or $group too large: narrow it", (146, "ExceededMemoryLimit")),
    **_entries(InvalidQueryError, "your request uses an operator the database does not know",
               (168, "InvalidPipelineOperator"), (40324, "Location40324")),
    **_entries(InvalidQueryError, "a conversion in your request failed on a value it met ($convert, $toInt, "
               "$toDate, $dateFromString...): give it an onError value, or narrow the filter",
               (241, "ConversionFailure")),
    **_entries(InvalidQueryError, "a sort or grouping in your request needs more memory than the database allows: "
               "a $match or $limit before it", (292, "QueryExceededMemoryLimitNoDiskUseAllowed")),
    **_entries(InvalidQueryError, _TOO_LARGE, (10334, "BSONObjectTooLarge"), (17419, "Location17419"),
               (17420, "Location17420")),
    **_entries(InvalidQueryError, "a regular expression in your request is not valid: check its syntax and options",
               (51091, "Location51091"), (51108, "Location51108")),
    # Too costly as asked: the message names the setting (see ``database_error``).
    **_entries(QueryTimeoutError, _TIMED_OUT, (50, "MaxTimeMSExpired"), (262, "ExceededTimeLimit")),
    **_entries(DuplicateKeyError, "a document with this key already exists",
               (11000, "DuplicateKey"), (11001, "DuplicateKeyValue"), (12582, "Location12582")),
    # The database cannot serve now, or lost the operation (nothing was written); a retry may succeed.
    **_entries(DatabaseUnavailableError, _RETRY,
               (6, "HostUnreachable"), (7, "HostNotFound"), (24, "LockTimeout"), (43, "CursorNotFound"),
               (46, "LockBusy"), (64, "WriteConcernFailed"), (89, "NetworkTimeout"), (91, "ShutdownInProgress"),
               (112, "WriteConflict"), (117, "ConflictingOperationInProgress"),
               (133, "FailedToSatisfyReadPreference"), (134, "ReadConcernMajorityNotAvailableYet"),
               (175, "QueryPlanKilled"), (189, "PrimarySteppedDown"), (237, "CursorKilled"),
               (251, "NoSuchTransaction"), (9001, "SocketException"), (10058, "LegacyNotPrimary"),
               (10107, "NotWritablePrimary"), (11600, "InterruptedAtShutdown"), (11601, "Interrupted"),
               (11602, "InterruptedDueToReplStateChange"), (13435, "NotPrimaryNoSecondaryOk"),
               (13436, "NotPrimaryOrSecondary")),
    # The database or its deployment is at fault (a bug, missing privileges, an unsupported command).
    **_entries(DatabaseFaultError, _FAULT,
               (1, "InternalError"), (8, "UnknownError"), (13, "Unauthorized"), (18, "AuthenticationFailed"),
               (26, "NamespaceNotFound"), (59, "CommandNotFound"), (67, "CannotCreateIndex"),
               (85, "IndexOptionsConflict"), (86, "IndexKeySpecsConflict"), (115, "CommandNotSupported"),
               (166, "CommandNotSupportedOnView")),
}

# Codes from 10000 are "user assertions": mostly an expression meeting a value it cannot take
# ($add on a string, $arrayElemAt on a number...). Below that, an unknown code is taken as the
# database's fault: a request the gateway has checked should not meet one.
_FIRST_USER_ASSERTION = 10000


def _entry(code: int) -> DatabaseErrorEntry:
    found = DATABASE_ERRORS.get(code)
    if found is not None:
        return found
    if code >= _FIRST_USER_ASSERTION:
        return DatabaseErrorEntry(
            f"Location{code}",
            InvalidQueryError,
            "an operator or expression in your request failed on the values it met: check its arguments",
        )
    return DatabaseErrorEntry(f"code {code}", DatabaseFaultError, _FAULT)


def _timed_out(limit: TimeLimit) -> StoreError:
    if limit.setting is None:  # the gateway's own operation: the database is too slow
        return DatabaseUnavailableError(_RETRY, details={"reason": "timeout"})
    return QueryTimeoutError(
        f"the request did not finish within {limit.setting} ({limit.milliseconds} ms); narrow it: a more "
        "selective filter, a smaller limit (for a pipeline, a $match first and a $limit), or retry later if "
        "the database is busy. A write that ran out of time may have been applied in part",
        details={"setting": limit.setting, "max_time_ms": limit.milliseconds},
    )


def database_error(code: int | None, errmsg: str | None, limit: TimeLimit) -> StoreError:
    """The store error for the database's error ``code``; ``errmsg`` is only logged."""
    code = code or 0
    entry = _entry(code)
    level = logging.WARNING if entry.error in (DatabaseFaultError, DatabaseUnavailableError) else logging.DEBUG
    logger.log(level, "database error %s (%s): %s", code, entry.name, (errmsg or "")[:500])
    if entry.error is QueryTimeoutError:
        return _timed_out(limit)
    details: dict[str, Any] = {"database_code": code, "database_error": entry.name}
    return entry.error(f"{entry.message} ({entry.name}, code {code})", details=details)


# What the driver raises when a value of the request cannot be encoded as BSON.
ENCODING_ERRORS = (bson.errors.InvalidDocument, OverflowError, UnicodeEncodeError)


def unencodable(exc: BaseException) -> InvalidQueryError:
    """The error for a request value BSON cannot hold (the exception's text quotes the value)."""
    if isinstance(exc, UnicodeEncodeError):
        message = (
            "a string in your request (a value or a field name) is not valid Unicode: it holds an unpaired "
            "surrogate (\\ud800 to \\udfff); MongoDB stores only valid UTF-8"
        )
    elif isinstance(exc, OverflowError):
        message = "an integer in your request, or computed by it, does not fit in 64 bits, MongoDB's largest"
    elif isinstance(exc, pymongo.errors.DocumentTooLarge):
        message = _TOO_LARGE
    else:
        logger.debug("cannot encode a value of a request: %s", str(exc)[:500])
        message = "a value in your request cannot be stored or matched by the database"
    return InvalidQueryError(message)


# Codes by which the database refuses an operation before running it: nothing was applied.
_REFUSED_UNRUN = frozenset({10058, 10107, 13435, 13436})  # not primary (any more)
# Labels by which the driver says an error is the deployment's state, not the request's.
_TRANSIENT_LABELS = ("RetryableWriteError", "TransientTransactionError")
_NO_WRITES = "NoWritesPerformed"
# How long the gateway asks the database, after an operation ran out of time, whether it still
# answers at all: it tells a request too costly (400) from a database that hangs (503).
_LIVENESS_SECONDS = 1.0

# ``answering()``: whether the database still answers a ping, through connections of its own.
Liveness = Callable[[], Awaitable[bool]]


def _unavailable(reason: str, *, outcome_unknown: bool) -> DatabaseUnavailableError:
    return DatabaseUnavailableError(_RETRY, details={"reason": reason}, outcome_unknown=outcome_unknown)


def _operation_failure(exc: pymongo.errors.OperationFailure, limit: TimeLimit) -> StoreError:
    if isinstance(exc, pymongo.errors.WriteConcernError):
        # The write was applied but not confirmed as the write concern asks: not known to last.
        logger.warning("write concern not satisfied (code %s): %s", exc.code, str(exc)[:500])
        return _unavailable("WriteConcernError", outcome_unknown=True)
    error = database_error(exc.code, (exc.details or {}).get("errmsg") or str(exc), limit)
    transient = any(exc.has_error_label(label) for label in _TRANSIENT_LABELS)
    if transient and not isinstance(error, DatabaseUnavailableError):
        # A code the table does not know, labelled by the driver as the deployment's state.
        error = _unavailable(f"code {exc.code}", outcome_unknown=False)
    if isinstance(error, DatabaseUnavailableError):
        error.outcome_unknown = exc.code not in _REFUSED_UNRUN and not exc.has_error_label(_NO_WRITES)
    return error


def _connection_failure(exc: pymongo.errors.ConnectionFailure) -> DatabaseUnavailableError:
    logger.warning("database unavailable: %s", type(exc).__name__)
    # Nothing was sent when no server or no connection could be had, or a server that is not
    # (or no longer) primary refused it; otherwise the operation may have run.
    unsent = isinstance(exc, (pymongo.errors.ServerSelectionTimeoutError, pymongo.errors.WaitQueueTimeoutError))
    details = getattr(exc, "details", None)  # NotPrimaryError: the server's reply
    refused = isinstance(exc, pymongo.errors.NotPrimaryError) and isinstance(details, Mapping) and (
        details.get("code") in _REFUSED_UNRUN
    )
    return _unavailable(type(exc).__name__, outcome_unknown=not (unsent or refused or exc.has_error_label(_NO_WRITES)))


async def answers_ping(client: AsyncMongoClient[Any]) -> bool:
    """Whether the database at ``client`` answers a ping within a second."""
    try:
        with pymongo.timeout(_LIVENESS_SECONDS):
            await client.admin.command("ping")
    except pymongo.errors.PyMongoError:
        return False
    return True


_REPLY_TOO_LARGE = "is larger than server max message size"
# bson's encoder, for an integer beyond 64 bits; any other OverflowError is the driver's own.
_INTEGER_TOO_LARGE = "8-byte ints"


def store_error(exc: BaseException, limit: TimeLimit) -> StoreError | None:
    """The store's error for what pymongo (or bson) raised during an operation under ``limit``;
    None for what is a bug (InvalidOperation, ConfigurationError...), which propagates."""
    if isinstance(exc, OverflowError) and _INTEGER_TOO_LARGE not in str(exc):
        # pymongo's retry backoff (2 ** attempt) overflows after about a thousand retryable
        # failures answered at once within the time limit: the database kept failing.
        logger.warning("database operation retried until the driver gave up: %s", exc)
        return _unavailable("RetriesExhausted", outcome_unknown=True)
    if isinstance(exc, ENCODING_ERRORS):
        return unencodable(exc)
    if isinstance(exc, bson.errors.InvalidBSON):
        # The driver's message may quote stored bytes: not shown.
        return UnreadableDocumentError(
            "a stored document cannot be read (nested too deeply, or not valid BSON); it was written "
            "directly in the database: fix it there, or leave it out with a filter"
        )
    if isinstance(exc, pymongo.errors.OperationFailure):
        return _operation_failure(exc, limit)
    if isinstance(exc, pymongo.errors.ProtocolError):
        if _REPLY_TOO_LARGE in str(exc):
            # A server that sends a result document over 16 MiB instead of refusing it
            # (BSONObjectTooLarge): its reply passes the driver's message size.
            return database_error(10334, str(exc), limit)
        return _unavailable(type(exc).__name__, outcome_unknown=True)
    if isinstance(exc, pymongo.errors.ConnectionFailure):
        # AutoReconnect, NotPrimaryError, NetworkTimeout, ServerSelectionTimeoutError,
        # WaitQueueTimeoutError.
        return _connection_failure(exc)
    return None


@asynccontextmanager
async def database_errors(
    limit: TimeLimit, answering: Liveness | None = None, *, writes: bool = True
) -> AsyncIterator[None]:
    """Run the block's database operations under ``limit``, translating pymongo's exceptions
    into the store's (``store_error``).

    Past the limit without an answer, the database is unavailable (503), unless ``answering``
    is given (a caller's read or filtered write) and the database still answers a ping: then
    it was told the limit and is merely slow to stop, and the request was too costly (400).
    A block that ``writes`` nothing leaves no outcome to settle when it fails."""
    try:
        with pymongo.timeout(limit.seconds):
            yield
    except Exception as exc:
        if (
            isinstance(exc, pymongo.errors.NetworkTimeout)
            and limit.setting is not None
            and answering is not None
            and await answering()
        ):
            raise _timed_out(limit) from exc
        error = store_error(exc, limit)
        if error is None:
            raise
        if isinstance(error, DatabaseUnavailableError) and not writes:
            error.outcome_unknown = False
        raise error from exc


def bulk_write_failures(exc: pymongo.errors.BulkWriteError, limit: TimeLimit) -> dict[int, StoreError]:
    """The failed operations of an unordered bulk write, by index, as the store's errors; every
    other operation was applied. A write concern error means the writes were applied but not
    confirmed as asked: the outcome is uncertain, and that is a ``DatabaseUnavailableError``."""
    details = exc.details or {}
    if details.get("writeConcernErrors"):
        raise DatabaseUnavailableError(
            "the database did not confirm the writes; retry later",
            details={"reason": "WriteConcernError"},
            outcome_unknown=True,
        ) from exc
    return {
        error["index"]: database_error(error.get("code"), error.get("errmsg"), limit)
        for error in details.get("writeErrors", ())
    }


def parse_object_id(value: str) -> ObjectId:
    if not isinstance(value, str) or not ObjectId.is_valid(value):
        raise InvalidIdError(
            f"{value!r} is not a valid id: expected a 24-character hexadecimal ObjectId",
            details={"id": value},
        )
    return ObjectId(value)
