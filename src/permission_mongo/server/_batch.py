"""Batch writes: what a batch answers, and how a retried batch create stays one create.

``POST /batch`` creates each document exactly as a single create would (``DataPlane.create``'s
checks, per document), inserts those that pass in one unordered bulk write, and reports every
item: ``{"created": [ids], "failed": [{"index", "error": {"code", "message", "details"}}]}``.
``created`` lists the ids in the order of the documents sent (the indexes not in ``failed``);
each failure carries the code the single call would have answered (VALIDATION_ERROR,
FIELD_NOT_WRITABLE, FORBIDDEN, CONFLICT for a duplicate ``_id`` where callers may choose ids...). The answer is 200 whenever
the batch was processed, even if every item failed: the body says what happened to each. The
error envelope is for the request as a whole (not a list, more than ``limits.max_batch_size``
documents, no create permission, unknown collection): then nothing is written.

A retry after an uncertain failure (503: the connection dropped, or the database did not
confirm the writes) must not create a second copy. So with an ``Idempotency-Key``, the
``_id`` the gateway gives document ``i`` is derived from the caller, the collection, the key
and ``i`` (a single create's, from the same without ``i``), after a timestamp of when the key
was first claimed (so ids still sort by creation): the retry inserts the same ids, and a
duplicate key on one of them whose stored document is the one this request would create
(timestamps aside) is reported as created (a single create answers 201 with the stored
document). A document that gives its own ``_id`` (where the collection lets callers choose
ids) is, on such a retry, a CONFLICT, for a single create as for a batch.

``PATCH /batch`` and ``DELETE /batch`` select by ``ids`` (ObjectIds as ``{"$oid"}`` or strings,
read as path ids are) or by ``filter`` (checked as find's), exactly one; an empty filter only
with ``"all": true``. They reach only documents the caller may read and may update (or
delete): ``{"$and": [selection, read filter, update (delete) filter]}``; the others are
skipped, not counted and not named. Update answers ``{"matched", "modified", "refused": [{"id",
"error"}]}``: ``matched`` counts the documents reached, ``modified`` those written, ``refused``
those the field rules or the post-image rule refused (left as they were), each with the code
a single PATCH would answer. It is checked and written document by document (conditional
replaces, several in flight), so one batch update reaches at most ``limits.max_batch_size``
documents: a selection reaching more is refused whole (400, nothing written). If the database
fails once writes have begun, the answer is still 200 and says which documents were written:
the one whose write failed and those not attempted are refused with SERVICE_UNAVAILABLE (a
503 would invite a retry applying an ``$inc`` twice to those written). Delete is one
``delete_many`` and answers ``{"deleted": n}``; it has no cap but ``ids``' length.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import bson
from bson import ObjectId
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions

from ..policy import Identity
from ._error_responses import status_and_code
from ._idempotency import KeyedRequest

__all__ = [
    "BatchCreateResult",
    "BatchUpdateResult",
    "Selection",
    "derived_id",
    "item_error",
    "same_creation",
]

logger = logging.getLogger("permission_mongo.server")

_CODEC_OPTIONS: CodecOptions[Any] = CodecOptions(
    tz_aware=True, tzinfo=_dt.UTC, uuid_representation=UuidRepresentation.STANDARD
)
_CREATION_TIMES = ("created_at", "updated_at")
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


@dataclass(frozen=True)
class Selection:
    """What a batch update or delete applies to: ``ids`` or ``filter``, as sent."""

    ids: Sequence[Any] | None = None
    filter: Mapping[str, Any] | None = None
    all: bool = False


def derived_id(identity: Identity, collection: str, keyed: KeyedRequest, index: int | None = None) -> ObjectId:
    """The ``_id`` of document ``index`` of a batch create run under this key, or (``index``
    None) of a single create's document, the same on every attempt: a retry meets what an
    earlier attempt stored instead of storing it twice. A single create and a batch create with
    the same key are different requests: their ids are of different kinds.

    It begins with when the request was first claimed, as an ObjectId does with its creation
    time (four bytes of seconds, then two of milliseconds, as the database stores the claim's
    time), so ids still sort by creation; the other six bytes are drawn from the caller, the
    collection, the key and ``index``."""
    kind = ["create"] if index is None else ["batch-create"]
    position = [] if index is None else [str(index)]
    text = "\x00".join([*kind, str(identity.id), str(identity.tenant_id), collection, keyed.key, *position])
    seconds, milliseconds = divmod((keyed.first_claimed_at - _EPOCH) // _dt.timedelta(milliseconds=1), 1000)
    claimed = seconds.to_bytes(4, "big") + milliseconds.to_bytes(2, "big")
    return ObjectId(claimed + hashlib.sha256(text.encode()).digest()[:6])


def same_creation(stored: Mapping[str, Any], document: Mapping[str, Any]) -> bool:
    """Whether ``stored`` is ``document`` as created by an earlier attempt (its timestamps aside)."""

    def encoded(value: Mapping[str, Any]) -> bytes:
        return bson.encode({k: v for k, v in value.items() if k not in _CREATION_TIMES}, codec_options=_CODEC_OPTIONS)

    return encoded(stored) == encoded(document)


def item_error(exc: Exception) -> dict[str, Any]:
    """One item's error, with the code the single call would have answered."""
    try:
        _, code = status_and_code(exc)
    except LookupError:
        logger.error("unexpected error in a batch item", exc_info=exc)
        return {"code": "INTERNAL_ERROR", "message": "an unexpected error occurred on this item", "details": {}}
    return {"code": code, "message": str(exc), "details": dict(getattr(exc, "details", None) or {})}


@dataclass
class BatchCreateResult:
    created: list[Any] = field(default_factory=list)
    failed: dict[int, Exception] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "failed": [{"index": index, "error": item_error(self.failed[index])} for index in sorted(self.failed)],
        }


@dataclass
class BatchUpdateResult:
    matched: int = 0
    modified: int = 0
    refused: list[tuple[Any, Exception]] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "modified": self.modified,
            "refused": [{"id": document_id, "error": item_error(exc)} for document_id, exc in self.refused],
        }
