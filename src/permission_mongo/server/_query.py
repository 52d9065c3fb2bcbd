"""What a caller's query may say: filters, sorts and projections checked against the read plan.

DESIGN's no-oracle rule: every field a filter, sort or projection names must be readable
unmasked in every document the plan reaches (``plan.can_filter``); otherwise the request is
refused with FIELD_NOT_READABLE naming the field. Filters are walked by the policy package's
``check_filter`` (the same walker pipelines use: operators allow-listed, fields at any depth,
array positions checked with and without the positions); sort and projection are here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..policy import CollectionSchema, Plan
from ..policy._query import check_field_name, check_filter as check_query, field_check, stripped_positions
from .errors import BadRequestError

__all__ = ["check_fields", "check_filter", "parse_sort", "project", "stripped_positions"]

_DIGITS = re.compile(r"[0-9]+")
MAX_SORT_KEYS = 8
MAX_FIELDS = 200


def check_filter(filter: Any, plan: Plan) -> None:
    """Refuse a filter that names an unreadable field or uses an operator not allowed."""
    check_query(filter, field_check(plan.can_filter, "filter"))


# --- sort and fields --------------------------------------------------------------------------------

def _declared_array(schema: CollectionSchema, path: str) -> str | None:
    parts = path.split(".")
    for end in range(1, len(parts) + 1):
        prefix = ".".join(parts[:end])
        if schema.field_types.get(prefix) == "array":
            return prefix
    return None


def parse_sort(sort: Sequence[str] | None, plan: Plan, schema: CollectionSchema) -> list[tuple[str, int]]:
    """``["name", "-created_at"]`` as [(path, 1 or -1)]; every path filterable and never an array."""
    if not sort:
        return []
    if len(sort) > MAX_SORT_KEYS:
        raise BadRequestError(f"sort by at most {MAX_SORT_KEYS} fields", details={"field": "sort"})
    keys: list[tuple[str, int]] = []
    for item in sort:
        if not isinstance(item, str):
            raise BadRequestError("sort must be a list of field names, '-name' for descending")
        direction = -1 if item.startswith("-") else 1
        path = check_field_name(item[1:] if item[:1] in "-+" and item else item, "sort")
        if any(_DIGITS.fullmatch(part) for part in path.split(".")):
            raise BadRequestError(f"sort: {path!r} names an array position; sort by a field", details={"field": path})
        field_check(plan.can_filter, "sort")(path)
        array = _declared_array(schema, path)
        if array is not None:
            raise BadRequestError(
                f"cannot sort by {path!r}: the schema declares {array!r} an array, and results sorted "
                "by an array cannot be paged exactly",
                details={"field": path},
            )
        if any(path == existing for existing, _ in keys):
            raise BadRequestError(f"sort names {path!r} twice", details={"field": path})
        keys.append((path, direction))
        if path == "_id":
            break  # _id is unique: later keys never decide anything
    return keys


def check_fields(fields: Sequence[str] | None, plan: Plan) -> list[str] | None:
    """The projection's paths, each filterable, none inside another."""
    if fields is None:
        return None
    if len(fields) > MAX_FIELDS:
        raise BadRequestError(f"ask for at most {MAX_FIELDS} fields", details={"field": "fields"})
    paths: list[str] = []
    for field in fields:
        path = check_field_name(field, "fields")
        field_check(plan.can_filter, "fields")(path)
        for other in paths:
            if path == other or path.startswith(other + ".") or other.startswith(path + "."):
                raise BadRequestError(
                    f"fields: {path!r} and {other!r} overlap; ask for one of them", details={"field": path}
                )
        paths.append(path)
    return paths


def _projection_tree(paths: Sequence[str]) -> dict[str, Any]:
    tree: dict[str, Any] = {"_id": True}
    for path in paths:
        node = tree
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is True:
                break
            node = node.setdefault(part, {})
        else:
            node[parts[-1]] = True
    return tree


def project(document: Mapping[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """MongoDB's inclusion projection: ``_id`` and the given paths; inside arrays, the
    sub-documents keep the named fields and other elements are dropped."""
    return _project_document(document, _projection_tree(paths))


def _project_document(document: Mapping[str, Any], tree: Mapping[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for key, value in document.items():
        node = tree.get(key)
        if node is None:
            continue
        if node is True:
            shown[key] = value
        elif isinstance(value, Mapping):
            shown[key] = _project_document(value, node)
        elif isinstance(value, list):
            shown[key] = _project_array(value, node)
    return shown


def _project_array(values: list[Any], tree: Mapping[str, Any]) -> list[Any]:
    projected = []
    for item in values:
        if isinstance(item, Mapping):
            projected.append(_project_document(item, tree))
        elif isinstance(item, list):
            projected.append(_project_array(item, tree))
    return projected
