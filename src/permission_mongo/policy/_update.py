"""The update post-image: what a MongoDB update would make of a document, computed without it.

``apply_update(document, update)`` returns the new document for the allow-listed operators
(``$set $unset $inc $mul $min $max $push $pull $addToSet $rename``) with MongoDB's semantics:
dotted paths, numeric path parts as array positions (padding with nulls), intermediate
sub-documents created on the way, numeric type promotion, BSON ordering for ``$min``/``$max``,
new fields appended in the order of their paths (MongoDB 5.0+). What MongoDB would reject
(``$inc`` on a string, a path through a scalar, two operators on one path...) raises
``UpdateError``, so the gateway can check the exact state a write produces before writing it.

Deliberately narrower than MongoDB, each refused with a message saying so:

- no positional operators (``$``, ``$[]``, ``$[id]``) and no array filters;
- ``$push`` modifiers ``$each``, ``$position`` and ``$slice`` only (no ``$sort``);
- ``$pull`` by value, or by ``{"$in": [...]}``; no query conditions on sub-documents (servers
  disagree on them);
- field names are never empty, never start with ``$`` and hold no ``.``: the policy's dotted
  paths must name every field unambiguously;
- an operator with an empty operand (MongoDB ignores it) is refused as a likely mistake.

The input document is not modified.
"""

from __future__ import annotations

import copy
import datetime as _dt
import decimal
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from bson import Decimal128, Int64, ObjectId, Regex, Timestamp
from bson.binary import Binary
from bson.decimal128 import create_decimal128_context
from bson.max_key import MaxKey
from bson.min_key import MinKey

from ._errors import PolicyError

__all__ = [
    "UPDATE_OPERATORS",
    "UpdateError",
    "apply_update",
    "bson_compare",
    "bson_equal",
    "check_field_names",
    "nesting_depth",
    "stored_dependencies",
    "update_depths",
    "update_paths",
    "validate_update",
    "written_paths",
]

UPDATE_OPERATORS = ("$set", "$unset", "$inc", "$mul", "$min", "$max", "$push", "$pull", "$addToSet", "$rename")
_PUSH_MODIFIERS = frozenset({"$each", "$position", "$slice"})
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_MAX_PAD = 10_000  # MongoDB pads arrays up to 1.5 million; that many nulls is a mistake here
_DIGITS = re.compile(r"[0-9]+")
_DECIMAL_CONTEXT = create_decimal128_context()


class UpdateError(PolicyError):
    """The update is malformed, uses what is not supported, or MongoDB would refuse it on this
    document. ``operator`` and ``path`` say where, when known."""

    def __init__(
        self, message: str, *, operator: str | None = None, path: str | None = None, stricter: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.operator = operator
        self.path = path
        # True where MongoDB might accept the update (as a no-op) and the gateway refuses it.
        self.stricter = stricter

    @property
    def details(self) -> dict[str, str]:
        return {k: v for k, v in (("operator", self.operator), ("path", self.path)) if v is not None}


# --- BSON ordering ----------------------------------------------------------------------------

def _type_rank(value: Any) -> int:
    """MongoDB's order of types: MinKey, null, numbers, strings, objects, arrays, binary,
    ObjectId, booleans, dates, timestamps, regular expressions, MaxKey."""
    if value is None:
        return 1
    if value is True or value is False:
        return 8
    if isinstance(value, (int, float, Decimal128)):
        return 2
    if isinstance(value, str):
        return 3
    if isinstance(value, Mapping):
        return 4
    if isinstance(value, (list, tuple)):
        return 5
    if isinstance(value, (bytes, Binary)):
        return 6
    if isinstance(value, ObjectId):
        return 7
    if isinstance(value, _dt.datetime):
        return 9
    if isinstance(value, Timestamp):
        return 10
    if isinstance(value, (Regex, re.Pattern)):
        return 11
    if isinstance(value, MinKey):
        return 0
    if isinstance(value, MaxKey):
        return 12
    raise UpdateError(f"values of type {type(value).__name__} are not supported")


def _as_number(value: Any) -> int | float | Decimal:
    if isinstance(value, Decimal128):
        return value.to_decimal()
    return value


def _is_nan(value: Any) -> bool:
    number = _as_number(value)
    return number != number


def _cmp(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def _millis(value: _dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    delta = value - _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def bson_compare(a: Any, b: Any) -> int:
    """-1, 0 or 1: how MongoDB orders two values (sort, ``$min``, ``$max``, comparisons)."""
    ra, rb = _type_rank(a), _type_rank(b)
    if ra != rb:
        return _cmp(ra, rb)
    if ra == 2:
        x, y = _as_number(a), _as_number(b)
        nan_x, nan_y = x != x, y != y
        if nan_x or nan_y:
            return _cmp(not nan_x, not nan_y)  # NaN sorts before every number, equals NaN
        return _cmp(x, y)
    if ra == 3:
        # Code point order is UTF-8 byte order (MongoDB's); unlike encoding, it also orders a
        # lone surrogate, which the store then refuses to write.
        return _cmp(a, b)
    if ra == 4:
        items_a, items_b = list(a.items()), list(b.items())
        for (ka, va), (kb, vb) in zip(items_a, items_b):
            order = _cmp(_type_rank(va), _type_rank(vb)) or _cmp(ka, kb) or bson_compare(va, vb)
            if order:
                return order
        return _cmp(len(items_a), len(items_b))
    if ra == 5:
        for x, y in zip(a, b):
            order = bson_compare(x, y)
            if order:
                return order
        return _cmp(len(a), len(b))
    if ra == 6:
        sub_a = a.subtype if isinstance(a, Binary) else 0
        sub_b = b.subtype if isinstance(b, Binary) else 0
        return _cmp(len(a), len(b)) or _cmp(sub_a, sub_b) or _cmp(bytes(a), bytes(b))
    if ra == 7:
        return _cmp(a.binary, b.binary)
    if ra == 8:
        return _cmp(a, b)
    if ra == 9:
        return _cmp(_millis(a), _millis(b))
    if ra == 10:
        return _cmp((a.time, a.inc), (b.time, b.inc))
    if ra == 11:
        pattern_a = a.pattern if isinstance(a, Regex) else a.pattern
        pattern_b = b.pattern if isinstance(b, Regex) else b.pattern
        return _cmp(str(pattern_a), str(pattern_b)) or _cmp(str(getattr(a, "flags", "")), str(getattr(b, "flags", "")))
    return 0  # MinKey, MaxKey


def bson_equal(a: Any, b: Any) -> bool:
    """Equality as ``$addToSet``/``$pull`` see it: numbers by value, documents in key order."""
    return bson_compare(a, b) == 0


# --- paths ---------------------------------------------------------------------------------------

def _split(path: Any, operator: str) -> tuple[str, ...]:
    if not isinstance(path, str) or not path:
        raise UpdateError(f"{operator}: field paths must be non-empty strings", operator=operator)
    parts = tuple(path.split("."))
    for part in parts:
        if not part:
            raise UpdateError(f"{operator}: the path {path!r} has an empty part", operator=operator, path=path)
        if part.startswith("$"):
            raise UpdateError(
                f"{operator}: {path!r}: positional operators ($, $[], $[id]) are not supported; "
                "name array elements by index (items.0.price)",
                operator=operator, path=path,
            )
        if "\x00" in part:
            raise UpdateError(f"{operator}: the path {path!r} contains a NUL character", operator=operator, path=path)
    return parts


def check_field_names(value: Any, where: str = "document") -> None:
    """Refuse field names that are empty, start with ``$``, hold ``.`` or NUL, at any depth
    (without recursion: it runs before the depth of ``value`` is known to be bounded)."""
    pending = [value]
    while pending:
        value = pending.pop()
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str) or not key or key.startswith("$") or "." in key or "\x00" in key:
                    raise UpdateError(
                        f"invalid field name {key!r} in {where}: names must be non-empty, must not start "
                        "with '$' and must not contain '.'",
                        path=str(key),
                    )
                pending.append(item)
        elif isinstance(value, (list, tuple)):
            pending.extend(value)


def nesting_depth(value: Any) -> int:
    """How many documents and arrays nest at the deepest point of ``value``: 0 for a scalar,
    1 for ``{"a": 1}`` or ``[]``, 3 for ``{"a": [{}]}`` (MongoDB counts the same way, and
    stores at most 100 levels). Without recursion: it runs on what may be too deep for it."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, Mapping):
            items: Any = value.values()
        elif isinstance(value, (list, tuple)):
            items = value
        else:
            continue
        deepest = max(deepest, depth)
        pending.extend((item, depth + 1) for item in items)
    return deepest


def update_depths(update: Mapping[str, Any]) -> Iterator[tuple[str, int]]:
    """(path, depth) for each value a valid update writes: how deep the new document is, at
    least, where the value goes (the path's parts, then the value's own nesting; an array
    element deeper for ``$push`` and ``$addToSet``). ``$rename`` moves a stored value; only the
    new document tells how deep it lands."""
    for operator, fields in update.items():
        if operator in ("$unset", "$rename"):
            continue
        for path, argument in fields.items():
            depth = path.count(".") + 1
            if operator in ("$push", "$addToSet"):
                items = argument["$each"] if _is_modifier(argument) else [argument]
                yield path, depth + 1 + max((nesting_depth(item) for item in items), default=0)
            elif operator == "$pull":
                continue  # removes values
            else:
                yield path, depth + nesting_depth(argument)


def update_paths(update: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(operator, path) for every path a valid update writes (``validate_update`` first);
    ``$rename`` gives its source and target."""
    for operator, fields in update.items():
        for path, argument in fields.items():
            yield operator, path
            if operator == "$rename":
                yield operator, argument


def written_paths(update: Mapping[str, Any], document: Mapping[str, Any]) -> list[str]:
    """The paths a valid update writes on ``document``: those of ``update_paths``, less both
    paths of a ``$rename`` whose source is missing (MongoDB writes nothing then). A check of
    what was written (the schema's) must not look at a target left as it was: that would judge
    a stored value the caller may not see."""
    written: list[str] = []
    for operator, fields in update.items():
        for path, argument in fields.items():
            if operator == "$rename":
                if _get(document, _split(path, operator), operator) is not _MISSING:  # type: ignore[arg-type]
                    written += [path, argument]
            else:
                written.append(path)
    return written


# Operators whose outcome depends on the stored value only above their path: they overwrite
# or remove it whole. Every other operator reads the value at its path (and all under it).
_WHOLE = frozenset({"$set", "$unset"})


def stored_dependencies(update: Mapping[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """(operator, path, whole) for every path a valid update touches (``validate_update``
    first). ``whole``: the outcome depends on the stored document only above ``path`` (what
    holds it), as for ``$set``, ``$unset`` and the target of ``$rename``; otherwise it depends
    on the stored value at ``path`` and everything under it: its answer, an error (a type, a
    path through a scalar) or a schema check of the new value can tell that value. ``$rename``
    reads its source and overwrites its target."""
    for operator, fields in update.items():
        for path, argument in fields.items():
            yield operator, path, operator in _WHOLE
            if operator == "$rename":
                yield operator, argument, True


# --- the update ------------------------------------------------------------------------------

def validate_update(update: Any) -> list[tuple[tuple[str, ...], str, Any]]:
    """Check an update without a document (operators, paths, operands, conflicts); its changes."""
    if not isinstance(update, Mapping) or not update:
        raise UpdateError("an update must be a non-empty object of update operators")
    unknown = [op for op in update if op not in UPDATE_OPERATORS]
    if unknown:
        raise UpdateError(
            f"unsupported update operator {unknown[0]!r}; allowed: {', '.join(UPDATE_OPERATORS)}",
            operator=str(unknown[0]),
        )
    changes: list[tuple[tuple[str, ...], str, Any]] = []
    for operator, fields in update.items():
        if not isinstance(fields, Mapping) or not fields:
            raise UpdateError(f"{operator} needs a non-empty object of field paths", operator=operator)
        for path, argument in fields.items():
            parts = _split(path, operator)
            if operator == "$rename":
                if not isinstance(argument, str):
                    raise UpdateError(f"$rename: the new name of {path!r} must be a string", operator=operator, path=path)
                target = _split(argument, operator)
                if _related(parts, target):
                    raise UpdateError(
                        f"$rename: the source and target must not be on the same path: {path!r}, {argument!r}",
                        operator=operator, path=path,
                    )
                changes.append((parts, operator, target))
                continue
            _check_argument(operator, path, argument)
            changes.append((parts, operator, argument))
    written = [(parts, operator) for parts, operator, _ in changes]
    written += [(target, "$rename") for _, operator, target in changes if operator == "$rename"]
    written.sort()
    for (a, op_a), (b, op_b) in zip(written, written[1:]):
        if _related(a, b):
            raise UpdateError(
                f"updating the path {'.'.join(b)!r} would create a conflict at {'.'.join(a)!r}",
                operator=op_b, path=".".join(b),
            )
    return changes


def _related(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal128)) and not isinstance(value, bool)


def _check_argument(operator: str, path: str, argument: Any) -> None:
    if operator in ("$inc", "$mul") and not _is_number(argument):
        raise UpdateError(f"{operator}: {path!r} needs a number, not {_describe(argument)}", operator=operator, path=path)
    if operator == "$push" and _is_modifier(argument):
        unknown = [key for key in argument if key not in _PUSH_MODIFIERS]
        if unknown:
            raise UpdateError(
                f"$push: unsupported modifier {unknown[0]!r}; allowed: $each, $position, $slice",
                operator=operator, path=path,
            )
        if "$each" not in argument:
            raise UpdateError("$push: modifiers need $each", operator=operator, path=path)
        if not isinstance(argument["$each"], list):
            raise UpdateError("$push: $each needs an array", operator=operator, path=path)
        for modifier in ("$position", "$slice"):
            if modifier in argument and (isinstance(argument[modifier], bool) or not isinstance(argument[modifier], int)):
                raise UpdateError(f"$push: {modifier} needs an integer", operator=operator, path=path)
        check_field_names(argument["$each"], f"{operator} of {path!r}")
        return
    if operator == "$addToSet" and _is_modifier(argument):
        if set(argument) != {"$each"}:
            raise UpdateError("$addToSet: the only modifier is $each", operator=operator, path=path)
        if not isinstance(argument["$each"], list):
            raise UpdateError("$addToSet: $each needs an array", operator=operator, path=path)
        check_field_names(argument["$each"], f"{operator} of {path!r}")
        return
    if operator == "$pull" and isinstance(argument, Mapping):
        if set(argument) != {"$in"} or not isinstance(argument["$in"], list):
            raise UpdateError(
                "$pull: remove elements by value or with {\"$in\": [values]}; query conditions are not supported",
                operator=operator, path=path,
            )
        check_field_names(argument["$in"], f"{operator} of {path!r}")
        return
    if operator != "$unset":
        check_field_names(argument, f"{operator} of {path!r}")


def _is_modifier(argument: Any) -> bool:
    return isinstance(argument, Mapping) and any(isinstance(key, str) and key.startswith("$") for key in argument)


def _describe(value: Any) -> str:
    return f"a value of type {type(value).__name__}" if not isinstance(value, str) else "a string"


def _sort_key(parts: tuple[str, ...]) -> tuple[Any, ...]:
    # MongoDB 5.0+ applies changes field by field: names in string order, numbers in numeric order.
    return tuple((0, int(part), "") if _DIGITS.fullmatch(part) else (1, 0, part) for part in parts)


_MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()


def apply_update(document: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """The document ``update`` would produce from ``document``; UpdateError where MongoDB would
    refuse it (or where this gateway refuses what MongoDB would accept, see the module doc)."""
    changes = validate_update(update)
    new = copy.deepcopy(dict(document))
    for parts, operator, argument in sorted(changes, key=lambda change: _sort_key(change[0])):
        path = ".".join(parts)
        if operator == "$rename":
            _rename(new, parts, argument)
            continue
        current = _get(new, parts, operator)
        if operator == "$unset":
            _unset(new, parts)
            continue
        value = _APPLY[operator](current, argument, operator, path)
        if value is not _MISSING:
            _set(new, parts, value, operator)
    if "_id" in document and ("_id" not in new or not _same_value(new["_id"], document["_id"])):
        raise UpdateError("the update would change the immutable field '_id'", path="_id")
    return new


def _same_value(a: Any, b: Any) -> bool:
    return type(a) is type(b) and bson_equal(a, b)


# --- reading and writing paths ----------------------------------------------------------------

def _get(document: dict[str, Any], parts: tuple[str, ...], operator: str) -> Any:
    """The value at ``parts``, MISSING if some step is absent or cannot hold it."""
    value: Any = document
    for part in parts:
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and _DIGITS.fullmatch(part):
            index = int(part)
            value = value[index] if index < len(value) else _MISSING
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _set(document: dict[str, Any], parts: tuple[str, ...], value: Any, operator: str) -> None:
    container: Any = document
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(container, dict):
            if last:
                container[part] = value
                return
            if part not in container:
                container[part] = _nest(parts[i + 1:], value)
                return
            container = container[part]
        elif isinstance(container, list) and _DIGITS.fullmatch(part):
            index = int(part)
            if index >= len(container):
                if index - len(container) > _MAX_PAD:
                    raise UpdateError(
                        f"{operator}: {'.'.join(parts)!r} would pad an array with more than {_MAX_PAD} nulls",
                        operator=operator, path=".".join(parts),
                    )
                container.extend([None] * (index + 1 - len(container)))
                container[index] = value if last else _nest(parts[i + 1:], value)
                return
            if last:
                container[index] = value
                return
            container = container[index]
        else:
            raise UpdateError(
                f"{operator}: cannot create field {part!r} in {'.'.join(parts[:i])!r}, which holds "
                f"{_kind(container)}",
                operator=operator, path=".".join(parts),
            )


def _nest(parts: tuple[str, ...], value: Any) -> Any:
    for part in reversed(parts):
        value = {part: value}
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "an array"
    return f"a value of type {type(value).__name__}"


def _unset(document: dict[str, Any], parts: tuple[str, ...]) -> None:
    parent = _get(document, parts[:-1], "$unset") if len(parts) > 1 else document
    last = parts[-1]
    if isinstance(parent, dict):
        parent.pop(last, None)
    elif isinstance(parent, list) and _DIGITS.fullmatch(last):
        index = int(last)
        if index < len(parent):
            parent[index] = None


def _rename(document: dict[str, Any], source: tuple[str, ...], target: tuple[str, ...]) -> None:
    path = ".".join(source)
    value = _rename_path(document, source, path, "source")
    if value is _MISSING:
        return
    _rename_path(document, target, path, "target")
    _unset(document, source)
    _set(document, target, value, "$rename")


def _rename_path(document: dict[str, Any], parts: tuple[str, ...], path: str, role: str) -> Any:
    """The value at a ``$rename`` path, MISSING if absent. Every step before the last must be
    a sub-document: MongoDB refuses most paths through arrays or scalars here and ignores a
    few (such as an index past the end); the gateway refuses them all."""
    value: Any = document
    for i, part in enumerate(parts):
        if not isinstance(value, dict):
            raise UpdateError(
                f"$rename: the {role} {'.'.join(parts)!r} goes through {'.'.join(parts[:i])!r}, which holds "
                f"{_kind(value)}; $rename only moves fields between sub-documents",
                operator="$rename", path=path, stricter=True,
            )
        if part not in value:
            return _MISSING
        value = value[part]
    return value


# --- operators ---------------------------------------------------------------------------------

def _op_set(current: Any, argument: Any, operator: str, path: str) -> Any:
    return copy.deepcopy(argument)


def _numeric_rank(value: Any) -> int:
    if isinstance(value, Decimal128):
        return 3
    if isinstance(value, float):
        return 2
    if isinstance(value, Int64) or not (_INT32[0] <= value <= _INT32[1]):
        return 1
    return 0


def _arithmetic(current: Any, argument: Any, operator: str, path: str) -> Any:
    if current is _MISSING:
        if operator == "$inc":
            return argument
        # MongoDB multiplies the operand by an int32 zero: the type follows it, NaN stays NaN.
        current = 0
    if not _is_number(current):
        raise UpdateError(
            f"cannot apply {operator} to {path!r}, which holds {_kind(current)}", operator=operator, path=path
        )
    rank = max(_numeric_rank(current), _numeric_rank(argument))
    if rank == 3:
        with decimal.localcontext(_DECIMAL_CONTEXT) as context:
            a, b = Decimal(str(_as_number(current))), Decimal(str(_as_number(argument)))
            result = context.add(a, b) if operator == "$inc" else context.multiply(a, b)
        return Decimal128(result)
    if rank == 2:
        a_f, b_f = float(current), float(argument)
        return a_f + b_f if operator == "$inc" else a_f * b_f
    result_int = current + argument if operator == "$inc" else current * argument
    if not _INT64[0] <= result_int <= _INT64[1]:
        raise UpdateError(f"{operator} on {path!r} overflows a 64-bit integer", operator=operator, path=path)
    if rank == 1 or not _INT32[0] <= result_int <= _INT32[1]:
        return Int64(result_int)
    return int(result_int)


def _extreme(current: Any, argument: Any, operator: str, path: str) -> Any:
    if current is _MISSING:
        return copy.deepcopy(argument)
    order = bson_compare(argument, current)
    if (operator == "$min" and order < 0) or (operator == "$max" and order > 0):
        return copy.deepcopy(argument)
    return _MISSING  # unchanged


def _array_at(current: Any, operator: str, path: str) -> list[Any] | None:
    if current is _MISSING:
        return None
    if not isinstance(current, list):
        raise UpdateError(
            f"{operator} needs an array at {path!r}, which holds {_kind(current)}", operator=operator, path=path
        )
    return current


def _op_push(current: Any, argument: Any, operator: str, path: str) -> Any:
    array = list(_array_at(current, operator, path) or [])
    if _is_modifier(argument):
        values = copy.deepcopy(argument["$each"])
        position = argument.get("$position")
        if position is None:
            array.extend(values)
        else:
            index = position if position >= 0 else max(0, len(array) + position)
            array[index:index] = values
        if "$slice" in argument:
            limit = argument["$slice"]
            array = array[:limit] if limit >= 0 else array[len(array) + limit:] if -limit < len(array) else array
    else:
        array.append(copy.deepcopy(argument))
    return array


def _op_add_to_set(current: Any, argument: Any, operator: str, path: str) -> Any:
    array = list(_array_at(current, operator, path) or [])
    values = argument["$each"] if _is_modifier(argument) else [argument]
    for value in values:
        if not any(bson_equal(value, item) for item in array):
            array.append(copy.deepcopy(value))
    return array


def _op_pull(current: Any, argument: Any, operator: str, path: str) -> Any:
    array = _array_at(current, operator, path)
    if array is None:
        return _MISSING
    if isinstance(argument, Mapping):
        candidates = argument["$in"]

        def matches(item: Any) -> bool:
            # A query's $in: the element equals a candidate, or is an array holding one.
            inner = item if isinstance(item, list) else []
            return any(bson_equal(item, c) or any(bson_equal(x, c) for x in inner) for c in candidates)
    else:

        def matches(item: Any) -> bool:
            return bson_equal(item, argument)

    return [item for item in array if not matches(item)]


_APPLY = {
    "$set": _op_set,
    "$inc": _arithmetic,
    "$mul": _arithmetic,
    "$min": _extreme,
    "$max": _extreme,
    "$push": _op_push,
    "$addToSet": _op_add_to_set,
    "$pull": _op_pull,
}
