"""Shapes of what the SDK accepts and returns.

Results are plain dicts (the documentation indexes them: ``result["deleted"]``); the
TypedDicts below only tell type checkers which keys they have.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias, TypedDict

from bson import ObjectId

__all__ = [
    "BatchCreateResult",
    "BatchDeleteResult",
    "BatchFailure",
    "BatchUpdateResult",
    "DeleteResult",
    "Document",
    "DocumentId",
    "FindResult",
    "ItemError",
    "Pagination",
    "Sort",
]

Document: TypeAlias = dict[str, Any]
"""A MongoDB document, with bson types (``ObjectId``, ``datetime``...) decoded."""

DocumentId: TypeAlias = ObjectId | str
"""A document's ``_id`` as accepted in paths: an ``ObjectId`` or its string form."""

Sort: TypeAlias = str | Sequence[str | tuple[str, int]] | Mapping[str, int]
"""``"-created_at"``, ``["name", "-created_at"]``, or pymongo's ``[("name", 1)]``, ``{"name": 1}``.
"""


class DeleteResult(TypedDict):
    deleted: bool
    id: Any


class ItemError(TypedDict):
    code: str
    message: str


class BatchFailure(TypedDict):
    index: int
    error: ItemError


class BatchCreateResult(TypedDict):
    created: list[DocumentId]  # the ids of the documents created, in the order sent
    failed: list[BatchFailure]


class BatchRefusal(TypedDict):
    id: DocumentId
    error: ItemError


class BatchUpdateResult(TypedDict):
    matched: int
    modified: int
    refused: list[BatchRefusal]  # matched, but the policy would not let the update produce them


class BatchDeleteResult(TypedDict):
    deleted: int


class Pagination(TypedDict):
    has_more: bool
    cursor: str | None


class FindResult(TypedDict):
    data: list[Document]
    pagination: Pagination
