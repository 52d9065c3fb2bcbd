"""The data-plane calls, each described once for both clients.

A builder here checks the caller's arguments, says which method and path the call uses, what
body it sends and how to read the answer, and returns that as an :class:`Operation`. Sending it
is the clients' job: ``PermissionMongo.insert`` and ``AsyncPermissionMongo.insert`` are both
"send ``operations.insert(...)``", so the two clients cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast
from urllib.parse import quote

from bson import ObjectId

from ._constants import DATA_PATH
from ._types import (
    BatchCreateResult,
    BatchDeleteResult,
    BatchUpdateResult,
    DeleteResult,
    Document,
    DocumentId,
    FindResult,
    Sort,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Operation(Generic[T]):
    """One API call, described but not sent."""

    method: str
    path: str
    parse: Callable[[Any], T]
    """Turns the decoded JSON answer into the method's result; raises TypeError, KeyError or
    ValueError when the answer is not shaped as expected."""
    body: Any = None
    """JSON to send (bson types allowed), or None for no body."""
    writes: bool = False
    """The call changes data: it carries an Idempotency-Key, so a retry cannot apply it twice.
    Reads sent by POST (find, count, aggregate) are safe to repeat and carry none."""
    none_if_missing: bool = False
    """A 404 NOT_FOUND answer means "no such document" and the call returns None."""


def insert(collection: str, document: Mapping[str, Any]) -> Operation[Document]:
    return Operation(
        "POST",
        _collection_path(collection),
        _parse_document,
        body=_mapping(document, "document"),
        writes=True,
    )


def get(collection: str, document_id: DocumentId) -> Operation[Document | None]:
    return Operation(
        "GET", _document_path(collection, document_id), _parse_document, none_if_missing=True
    )


def update(
    collection: str, document_id: DocumentId, updates: Mapping[str, Any]
) -> Operation[Document]:
    return Operation(
        "PATCH",
        _document_path(collection, document_id),
        _parse_document,
        body=_mapping(updates, "updates"),
        writes=True,
    )


def delete(collection: str, document_id: DocumentId) -> Operation[DeleteResult]:
    return Operation(
        "DELETE",
        _document_path(collection, document_id),
        _parse_delete,
        writes=True,
    )


def find(
    collection: str,
    filter: Mapping[str, Any] | None = None,
    *,
    sort: Sort | None = None,
    fields: Sequence[str] | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Operation[FindResult]:
    # Options left out are not sent, so the gateway's defaults (limit 20) apply.
    body: dict[str, Any] = {"filter": _filter(filter)}
    if sort is not None:
        body["sort"] = sort_keys(sort)
    if fields is not None:
        body["fields"] = _field_names(fields)
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive integer, not {limit!r}")
        body["limit"] = limit
    if cursor is not None:
        body["cursor"] = cursor
    return Operation("POST", _collection_path(collection) + "/find", _parse_find, body=body)


def find_from_cursor(operation: Operation[FindResult], cursor: str) -> Operation[FindResult]:
    """The same query, continued from a page's cursor (cursors are bound to their query, so
    everything else must stay as it was)."""
    return dataclasses.replace(operation, body={**operation.body, "cursor": cursor})


def count(collection: str, filter: Mapping[str, Any] | None = None) -> Operation[int]:
    return Operation(
        "POST",
        _collection_path(collection) + "/count",
        _parse_count,
        body={"filter": _filter(filter)},
    )


def aggregate(collection: str, pipeline: Sequence[Mapping[str, Any]]) -> Operation[list[Document]]:
    if isinstance(pipeline, Mapping) or not isinstance(pipeline, Sequence):
        raise TypeError("pipeline must be a list of stages, e.g. [{'$match': {...}}]")
    return Operation(
        "POST",
        _collection_path(collection) + "/aggregate",
        _parse_data,
        body={"pipeline": [_mapping(stage, "each pipeline stage") for stage in pipeline]},
    )


def batch_create(
    collection: str, documents: Iterable[Mapping[str, Any]]
) -> Operation[BatchCreateResult]:
    if isinstance(documents, Mapping) or not isinstance(documents, Iterable):
        raise TypeError("documents must be a list of documents")
    return Operation(
        "POST",
        _collection_path(collection) + "/batch",
        _parse_batch_create,
        body={"documents": [_mapping(document, "each document") for document in documents]},
        writes=True,
    )


def batch_update(
    collection: str,
    ids: Iterable[DocumentId] | None = None,
    filter: Mapping[str, Any] | None = None,
    update: Mapping[str, Any] | None = None,
    all: bool = False,
) -> Operation[BatchUpdateResult]:
    if update is None:
        raise TypeError("batch_update() needs update=, e.g. update={'status': 'inactive'}")
    body = _selection("batch_update", ids, filter, all)
    body["update"] = _mapping(update, "update")
    return Operation(
        "PATCH",
        _collection_path(collection) + "/batch",
        _parse_batch_update,
        body=body,
        writes=True,
    )


def batch_delete(
    collection: str,
    ids: Iterable[DocumentId] | None = None,
    filter: Mapping[str, Any] | None = None,
    all: bool = False,
) -> Operation[BatchDeleteResult]:
    return Operation(
        "DELETE",
        _collection_path(collection) + "/batch",
        _parse_batch_delete,
        body=_selection("batch_delete", ids, filter, all),
        writes=True,
    )


def sort_keys(sort: Sort) -> list[str]:
    """The gateway's sort form, ``["name", "-created_at"]``, from any form users write."""
    if isinstance(sort, str):
        return [sort]
    items: Iterable[Any] = sort.items() if isinstance(sort, Mapping) else sort
    keys = []
    for item in items:
        if isinstance(item, str):
            keys.append(item)
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            name, direction = item
            if direction not in (1, -1) or isinstance(direction, bool):
                raise ValueError(f"sort direction for {name!r} must be 1 or -1, not {direction!r}")
            keys.append(name if direction == 1 else f"-{name}")
        else:
            raise TypeError(f"cannot sort by {item!r}: use 'field', '-field' or ('field', 1)")
    return keys


# -- arguments -------------------------------------------------------------------------------


def _collection_path(collection: str) -> str:
    if not isinstance(collection, str) or not collection:
        raise ValueError(f"collection must be a non-empty string, not {collection!r}")
    return f"{DATA_PATH}/{quote(collection, safe='')}"


def _document_path(collection: str, document_id: DocumentId) -> str:
    return f"{_collection_path(collection)}/{quote(_id_text(document_id), safe='')}"


def _id_text(document_id: DocumentId) -> str:
    if isinstance(document_id, ObjectId):
        return str(document_id)
    if isinstance(document_id, str) and document_id:
        return document_id
    raise TypeError(f"a document id must be an ObjectId or a non-empty string, not {document_id!r}")


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a dict, not {type(value).__name__}")
    return value


def _filter(filter: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return {} if filter is None else _mapping(filter, "filter")


def _field_names(fields: Sequence[str]) -> list[str]:
    if isinstance(fields, str):  # a lone name, not a sequence of one-letter names
        return [fields]
    names = list(fields)
    if not all(isinstance(name, str) for name in names):
        raise TypeError("fields must be a list of field names")
    return names


def _selection(
    method: str, ids: Iterable[DocumentId] | None, filter: Mapping[str, Any] | None, all: bool
) -> dict[str, Any]:
    # Exactly one of the two: with neither, a batch call would have no selection at all, and a
    # typo must not turn into "every document I may touch". The gateway also wants all=True
    # beside an empty filter, for the same reason.
    if (ids is None) == (filter is None):
        raise TypeError(f"{method}() needs exactly one of ids= or filter=")
    if all and filter is None:
        raise TypeError(f"{method}(all=True) goes with filter={{}}")
    if filter is not None:
        return {"filter": _mapping(filter, "filter"), **({"all": True} if all else {})}
    if isinstance(ids, (str, bytes, ObjectId)) or not isinstance(ids, Iterable):
        raise TypeError("ids must be a list of document ids")
    return {"ids": [_checked_id(document_id) for document_id in ids]}


def _checked_id(document_id: DocumentId) -> DocumentId:
    _id_text(document_id)
    return document_id


# -- answers ---------------------------------------------------------------------------------


def _object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise TypeError(f"expected a JSON object, got {type(payload).__name__}")
    return payload


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a JSON array, got {type(value).__name__}")
    return value


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _parse_document(payload: Any) -> Document:
    return _object(payload)


def _parse_delete(payload: Any) -> DeleteResult:
    body = _object(payload)
    if not isinstance(body["deleted"], bool):
        raise TypeError("deleted must be a boolean")
    return cast(DeleteResult, body)


def _parse_find(payload: Any) -> FindResult:
    body = _object(payload)
    _list(body["data"])
    pagination = _object(body["pagination"])
    if not isinstance(pagination["has_more"], bool):
        raise TypeError("pagination.has_more must be a boolean")
    if not isinstance(pagination.get("cursor"), (str, type(None))):
        raise TypeError("pagination.cursor must be a string or null")
    return cast(FindResult, body)


def _parse_count(payload: Any) -> int:
    return _integer(_object(payload)["count"])


def _parse_data(payload: Any) -> list[Document]:
    return _list(_object(payload)["data"])


def _parse_batch_create(payload: Any) -> BatchCreateResult:
    body = _object(payload)
    _list(body["created"])
    _list(body["failed"])
    return cast(BatchCreateResult, body)


def _parse_batch_update(payload: Any) -> BatchUpdateResult:
    body = _object(payload)
    _integer(body["matched"])
    _integer(body["modified"])
    return cast(BatchUpdateResult, body)


def _parse_batch_delete(payload: Any) -> BatchDeleteResult:
    body = _object(payload)
    _integer(body["deleted"])
    return cast(BatchDeleteResult, body)
