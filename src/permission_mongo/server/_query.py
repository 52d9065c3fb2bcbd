"""What a caller's query may say: filters, sorts and projections checked against the read plan.

DESIGN's no-oracle rule: every field a filter, sort or projection names, at any depth (inside
``$and``/``$or``/``$nor``/``$not``/``$elemMatch``/``$all``, and field paths of ``$expr``), must
be readable unmasked in every document the plan reaches (``plan.can_filter``); otherwise the
request is refused with FIELD_NOT_READABLE naming the field. Operators are allow-listed: a
filter operator not listed (``$where``, ``$function``, ``$text``, ``$jsonSchema``...) is
refused with BAD_REQUEST naming it.

Array positions in paths (``items.0.price``) are checked both as written and without the
positions (``items.price``), since field rules do not name positions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..policy import CollectionSchema, Plan
from .errors import BadRequestError, FieldNotReadableError

__all__ = [
    "FILTER_OPERATORS",
    "check_fields",
    "check_filter",
    "check_path",
    "parse_sort",
    "project",
    "stripped_positions",
]

_LOGICAL = frozenset({"$and", "$or", "$nor"})
# Operators on one field. $regex/$options go together; $not takes operators or a regex.
FILTER_OPERATORS = frozenset(
    {
        "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$type",
        "$regex", "$options", "$not", "$elemMatch", "$size", "$all", "$mod",
    }
)
# Aggregation operators allowed inside $expr: comparisons, logic, arithmetic, strings, types.
EXPRESSION_OPERATORS = frozenset(
    {
        "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$cmp", "$and", "$or", "$not", "$in",
        "$ifNull", "$cond", "$switch", "$add", "$subtract", "$multiply", "$divide", "$mod",
        "$abs", "$ceil", "$floor", "$round", "$trunc", "$min", "$max", "$size", "$isArray",
        "$type", "$isNumber", "$toLower", "$toUpper", "$strLenCP", "$substrCP", "$concat",
        "$toString", "$toInt", "$toDouble", "$toLong", "$toDecimal", "$toBool", "$toDate",
        "$year", "$month", "$dayOfMonth", "$dayOfWeek", "$hour", "$minute", "$second",
    }
)
_ALLOWED_VARIABLES = frozenset({"$$NOW"})
_WHY_REFUSED = {
    "$where": "it runs JavaScript",
    "$function": "it runs JavaScript",
    "$accumulator": "it runs JavaScript",
    "$text": "text search is not supported by the gateway",
    "$jsonSchema": "it can test fields the caller may not read",
    "$getField": "it can name fields the caller may not read",
    "$setField": "it can name fields the caller may not read",
    "$let": "variables are not supported",
    "$map": "variables are not supported",
    "$filter": "variables are not supported",
    "$reduce": "variables are not supported",
    "$lookup": "a filter cannot read other collections",
}
_DIGITS = re.compile(r"[0-9]+")
MAX_SORT_KEYS = 8
MAX_FIELDS = 200
_MAX_DEPTH = 40

CanFilter = Callable[[str], bool]


def _refused_operator(operator: str, where: str) -> BadRequestError:
    reason = _WHY_REFUSED.get(operator)
    message = f"operator {operator} is not allowed in {where}" + (f": {reason}" if reason else "")
    return BadRequestError(message, details={"operator": operator})


def check_path(path: Any, where: str) -> str:
    """A field path fit for a query: non-empty parts, none starting with ``$``."""
    if not isinstance(path, str) or not path:
        raise BadRequestError(f"{where}: field names must be non-empty strings", details={"field": path})
    for part in path.split("."):
        if not part or part.startswith("$") or "\x00" in part:
            raise BadRequestError(
                f"{where}: {path!r} is not a valid field path (empty part, or a part starting with '$')",
                details={"field": path},
            )
    return path


def stripped_positions(path: str) -> str:
    """The path without array positions: ``items.0.price`` -> ``items.price``."""
    return ".".join(part for part in path.split(".") if not _DIGITS.fullmatch(part))


def _require(can_filter: CanFilter, path: str, where: str) -> None:
    bare = stripped_positions(path)
    if not can_filter(path) or (bare and bare != path and not can_filter(bare)):
        raise FieldNotReadableError(
            f"{where} names {path!r}, which you may not read unmasked; remove it from the {where}",
            details={"field": path},
        )


# --- filters -----------------------------------------------------------------------------------

def check_filter(filter: Any, plan: Plan) -> None:
    """Refuse a filter that names an unreadable field or uses an operator not allowed."""
    if not isinstance(filter, Mapping):
        raise BadRequestError("filter must be a JSON object", details={"field": "filter"})
    _check_query(filter, "", plan.can_filter, 0)


def _check_query(query: Mapping[str, Any], prefix: str, can_filter: CanFilter, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise BadRequestError("the filter is nested too deeply")
    for key, value in query.items():
        if not isinstance(key, str):
            raise BadRequestError("filter keys must be strings")
        if key.startswith("$"):
            if key in _LOGICAL:
                if not isinstance(value, list) or not value or not all(isinstance(item, Mapping) for item in value):
                    raise BadRequestError(f"{key} needs a non-empty array of filters", details={"operator": key})
                for item in value:
                    _check_query(item, prefix, can_filter, depth + 1)
            elif key == "$expr" and not prefix:
                _check_expression(value, can_filter, depth + 1)
            elif key == "$comment" and isinstance(value, str):
                continue
            else:
                raise _refused_operator(key, "a filter")
            continue
        path = prefix + check_path(key, "filter")
        _require(can_filter, path, "filter")
        _check_condition(path, value, can_filter, depth + 1)


def _is_operator_object(value: Any) -> bool:
    return isinstance(value, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in value)


def _check_condition(path: str, value: Any, can_filter: CanFilter, depth: int) -> None:
    if not _is_operator_object(value):
        return  # a literal: equality with the field (a sub-document literal is compared whole)
    if depth > _MAX_DEPTH:
        raise BadRequestError("the filter is nested too deeply")
    for operator, operand in value.items():
        if not isinstance(operator, str) or not operator.startswith("$"):
            raise BadRequestError(
                f"filter on {path!r} mixes operators and field names: {operator!r}", details={"field": path}
            )
        if operator not in FILTER_OPERATORS:
            raise _refused_operator(operator, "a filter")
        if operator == "$not":
            if _is_operator_object(operand):
                _check_condition(path, operand, can_filter, depth + 1)
            elif isinstance(operand, Mapping):
                raise BadRequestError(f"$not on {path!r} needs operators or a regular expression")
        elif operator == "$elemMatch":
            _check_elem_match(path, operand, can_filter, depth + 1)
        elif operator == "$all" and isinstance(operand, list):
            for item in operand:
                if isinstance(item, Mapping) and "$elemMatch" in item:
                    if len(item) != 1:
                        raise BadRequestError(f"$all on {path!r}: an $elemMatch item must stand alone")
                    _check_elem_match(path, item["$elemMatch"], can_filter, depth + 1)
                elif _is_operator_object(item):
                    raise BadRequestError(f"$all on {path!r} takes values or {{$elemMatch: ...}}")


def _check_elem_match(path: str, operand: Any, can_filter: CanFilter, depth: int) -> None:
    if not isinstance(operand, Mapping) or not operand:
        raise BadRequestError(f"$elemMatch on {path!r} needs a non-empty object", details={"field": path})
    element_operators = all(
        isinstance(k, str) and k.startswith("$") and k not in _LOGICAL and k != "$expr" for k in operand
    )
    if element_operators:
        _check_condition(path, operand, can_filter, depth)  # conditions on the elements themselves
    else:
        _check_query(operand, path + ".", can_filter, depth)  # a query on sub-document elements


# --- $expr ---------------------------------------------------------------------------------------

def _check_expression(expression: Any, can_filter: CanFilter, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise BadRequestError("the $expr is nested too deeply")
    if isinstance(expression, str):
        if expression.startswith("$$"):
            variable = expression.split(".", 1)[0]
            if variable not in _ALLOWED_VARIABLES:
                raise BadRequestError(
                    f"$expr: the variable {variable} is not allowed", details={"operator": variable}
                )
        elif expression.startswith("$"):
            path = check_path(expression[1:], "$expr")
            _require(can_filter, path, "$expr")
        return
    if isinstance(expression, list):
        for item in expression:
            _check_expression(item, can_filter, depth + 1)
        return
    if isinstance(expression, Mapping):
        operators = [k for k in expression if isinstance(k, str) and k.startswith("$")]
        if operators:
            if len(expression) != 1:
                raise BadRequestError("$expr: an operator object must have exactly one key")
            operator = operators[0]
            if operator == "$literal":
                return
            if operator not in EXPRESSION_OPERATORS:
                raise _refused_operator(operator, "$expr")
            _check_expression(expression[operator], can_filter, depth + 1)
            return
        for item in expression.values():  # an object expression, or $cond's {if, then, else}
            _check_expression(item, can_filter, depth + 1)


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
        path = check_path(item[1:] if item[:1] in "-+" and item else item, "sort")
        if any(_DIGITS.fullmatch(part) for part in path.split(".")):
            raise BadRequestError(f"sort: {path!r} names an array position; sort by a field", details={"field": path})
        _require(plan.can_filter, path, "sort")
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
        path = check_path(field, "fields")
        _require(plan.can_filter, path, "fields")
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
