"""Value semantics shared by the two back ends: what equality, ordering and membership mean.

CEL's rules, restricted where MongoDB cannot follow exactly. Both back ends obey this file, so
they agree by construction, and the differential tests check that they do:

- an error (missing field, selecting from a non-map, comparing unrelated types) is ``ERROR``;
  it propagates, except that ``false && x`` is false and ``true || x`` is true, and a condition
  that ends in ``ERROR`` denies;
- ``==`` is heterogeneous: different types are unequal (so ``true != 1``), numbers compare
  by value across int and double, NaN equals nothing;
- ``< <= > >=`` order numbers, strings (by code point), booleans, dates and ObjectIds, each
  only with its own kind; NaN makes every ordering false; anything else is ``ERROR``;
- comparing a document field with a map (a user value that is a dict) is ``ERROR``: MongoDB
  compares sub-documents by key order where CEL does not, and a dict such as ``{"$ne": null}``
  must never become an operator;
- ``x in doc.field`` needs ``doc.field`` to be a list (a map there is ``ERROR``).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from bson import Decimal128, ObjectId

__all__ = [
    "ERROR",
    "kind",
    "is_nan",
    "normalize",
    "comparable_with_document",
    "equals",
    "order",
    "member_of",
    "select",
    "has_field",
]


class _Error:
    """The single error value: the condition cannot be decided for this document."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ERROR"

    def __bool__(self) -> bool:
        raise TypeError("ERROR has no truth value; compare with `is True`")


ERROR: Any = _Error()

# Kinds of value. Numbers hold int (not bool), float and Decimal128.
NULL, BOOL, NUMBER, STRING, LIST, MAP, DATE, OBJECTID, OTHER = (
    "null", "bool", "number", "string", "list", "map", "date", "objectid", "other"
)
ORDERED_KINDS = frozenset({NUMBER, STRING, BOOL, DATE, OBJECTID})
SCALAR_KINDS = frozenset({NULL, BOOL, NUMBER, STRING, DATE, OBJECTID})


_KIND_BY_TYPE = {
    type(None): NULL, bool: BOOL, int: NUMBER, float: NUMBER, Decimal128: NUMBER, str: STRING,
    list: LIST, tuple: LIST, dict: MAP, _dt.datetime: DATE, ObjectId: OBJECTID,
}


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _int64(value: int) -> bool:
    # Compared, not ``in range(...)``: membership is only O(1) for exact ints, and bson decodes
    # stored 64-bit integers as Int64, a subclass, which range would scan for.
    return _INT64_MIN <= value <= _INT64_MAX


def kind(value: Any) -> str:
    found = _KIND_BY_TYPE.get(type(value))
    if found is NUMBER and type(value) is int and not _int64(value):
        return OTHER  # no BSON number holds it: a caller's claim, never a stored value
    if found is not None:
        return found
    if value is None:
        return NULL
    if value is True or value is False:
        return BOOL
    if isinstance(value, (int, float, Decimal128)):
        return NUMBER if not isinstance(value, int) or _int64(value) else OTHER
    if isinstance(value, str):
        return STRING
    if isinstance(value, (list, tuple)):
        return LIST
    if isinstance(value, Mapping):
        return MAP
    if isinstance(value, _dt.datetime):
        return DATE
    if isinstance(value, ObjectId):
        return OBJECTID
    return OTHER


def _number(value: Any) -> int | float | Decimal:
    if isinstance(value, Decimal128):
        decimal = value.to_decimal()
        return math.nan if decimal.is_nan() else decimal
    return value


def is_nan(value: Any) -> bool:
    return kind(value) == NUMBER and _number(value) != _number(value)


def _date(value: _dt.datetime) -> _dt.datetime:
    # MongoDB stores UTC milliseconds: compare what it would store.
    if value.tzinfo is not None:
        value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def normalize(value: Any) -> Any:
    """A caller's value as the database would see it: dates in UTC milliseconds, tuples as lists."""
    match kind(value):
        case "date":
            return _date(value)
        case "list":
            return [normalize(item) for item in value]
        case "map":
            return {key: normalize(item) for key, item in value.items()}
    return value


def comparable_with_document(value: Any) -> bool:
    """Whether a known value can be compared with a document field exactly: no maps, no
    types outside the language (see the module docstring)."""
    k = kind(value)
    if k == LIST:
        return all(comparable_with_document(item) for item in value)
    return k in SCALAR_KINDS


def contains_nan(value: Any) -> bool:
    if kind(value) == LIST:
        return any(contains_nan(item) for item in value)
    return is_nan(value)


def equals(a: Any, b: Any) -> bool:
    """CEL heterogeneous equality on plain values (never ERROR)."""
    ka, kb = kind(a), kind(b)
    if ka != kb:
        return False
    match ka:
        case "null":
            return True
        case "number":
            return bool(_number(a) == _number(b))
        case "list":
            return len(a) == len(b) and all(equals(x, y) for x, y in zip(a, b))
        case "map":
            return a.keys() == b.keys() and all(equals(a[key], b[key]) for key in a)
        case "date":
            return _date(a) == _date(b)
        case "other":
            return bool(a == b) and type(a) is type(b)
    return bool(a == b)


def order(a: Any, b: Any) -> int | None | Any:
    """-1, 0 or 1; None when a NaN makes the pair unordered; ERROR for unrelated kinds."""
    ka, kb = kind(a), kind(b)
    if ka != kb or ka not in ORDERED_KINDS:
        return ERROR
    if ka == NUMBER:
        a, b = _number(a), _number(b)
        if a != a or b != b:
            return None
    elif ka == DATE:
        a, b = _date(a), _date(b)
    return (a > b) - (a < b)


def member_of(value: Any, container: Any) -> bool | Any:
    """``value in container``: a list's elements, or a map's keys."""
    k = kind(container)
    if k == LIST:
        return any(equals(value, item) for item in container)
    if k == MAP:
        return any(equals(value, key) for key in container)
    return ERROR


def select(root: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path``, or ERROR if a step is missing or not a map."""
    value = root
    for name in path:
        if kind(value) != MAP or name not in value:
            return ERROR
        value = value[name]
    return value


def has_field(root: Any, path: tuple[str, ...]) -> bool | Any:
    """``has(root.path)``: the parent must be a map; then whether it holds the last name."""
    parent = select(root, path[:-1])
    if parent is ERROR or kind(parent) != MAP:
        return ERROR
    return path[-1] in parent
