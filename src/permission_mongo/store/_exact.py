"""Whether a stored document is exactly a known one, as one aggregation expression.

The compare-and-swap of an update needs identity, which the database's own comparison is not:
``$eq`` finds numbers of different types and equal value equal (``1``, ``1.0``, ``Int64(1)``,
``Decimal128("1.0")`` and ``Decimal128("1.00")``), and ``0.0`` equal to ``-0.0``; SecantusDB
also compares sub-documents without their key order and never finds a document holding NaN
equal to itself. ``same_document(document)`` is true of the stored document (``$$ROOT``) if and
only if it has the same fields in the same order, each value of the same BSON type and the same
value: bit for bit for doubles (NaN payloads aside), the same coefficient and exponent for
decimals, the same subtype and bytes for binary data, the same pattern and flags for regular
expressions, null apart from missing.

Per sub-document, one check compares the names, their order and the BSON type of every value
(``$objectToArray``); one compares at once all the values for which ``$eq`` is identity once
their type is known (most of them); each of the others (NaN, a zero double, a decimal, a
container) has checks of its own. Arrays likewise, with their elements' types. Each check
cannot fail with an error whatever the stored document holds (a guard keeps every operator
that could, such as ``$objectToArray``, away from the wrong type), so the order in which the
database evaluates them does not matter (MongoDB does not promise to evaluate ``$and`` in
order, nor to stop at the first false). Fields are reached by dotted paths (``$$ROOT.a.b``: a
path never fails; it only yields something else if a holder is not a sub-document, which the
holder's own check catches), array elements and unusual names through ``$let`` variables, one
level of ``$let`` per array on the way.
"""

from __future__ import annotations

import datetime as _dt
import re
import uuid
from collections.abc import Mapping
from typing import Any

from bson import Code, Decimal128, Int64, ObjectId, Regex, Timestamp
from bson.binary import Binary
from bson.datetime_ms import DatetimeMS
from bson.dbref import DBRef
from bson.max_key import MaxKey
from bson.min_key import MinKey

__all__ = ["same_document"]

_INT32 = range(-(2**31), 2**31)
# Types whose values $eq compares exactly against any value (it finds no value of another type
# equal to them), so a subtree of them needs no type checks inside. Strings aside: MongoDB's
# deprecated symbol type equals them, and the driver reads symbols as strings, so a document
# holding one never round-trips anyway. Not Code: a str, which SecantusDB finds equal to one.
_PLAIN = (str, ObjectId, _dt.datetime, DatetimeMS, bytes, Binary, uuid.UUID, Regex, re.Pattern, Timestamp, MinKey, MaxKey, type(None))


def _bson_type(value: Any) -> str:
    """The name ``$type`` gives the BSON type ``value`` is stored as."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Int64):
        return "long"
    if isinstance(value, int):
        return "int" if value in _INT32 else "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, Decimal128):
        return "decimal"
    if isinstance(value, Code):  # a str
        return "javascript" if value.scope is None else "javascriptWithScope"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (Mapping, DBRef)):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, (bytes, Binary, uuid.UUID)):
        return "binData"
    if isinstance(value, ObjectId):
        return "objectId"
    if isinstance(value, (_dt.datetime, DatetimeMS)):
        return "date"
    if isinstance(value, (Regex, re.Pattern)):
        return "regex"
    if isinstance(value, Timestamp):
        return "timestamp"
    if isinstance(value, MinKey):
        return "minKey"
    if isinstance(value, MaxKey):
        return "maxKey"
    raise TypeError(f"no BSON type for a value of type {type(value).__name__}")


def _plain(value: Any) -> bool:
    """Whether ``$eq`` against ``value`` is identity: no number, boolean or sub-document of
    several fields (whose order SecantusDB ignores) inside."""
    if isinstance(value, _PLAIN) and not isinstance(value, Code):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(item) for item in value)
    if isinstance(value, Mapping):
        return len(value) <= 1 and all(_plain(item) for item in value.values())
    return False


def _equal_is_identical(value: Any) -> bool:
    """Whether ``$eq`` against ``value`` is identity for a stored value of the same BSON type:
    everything but NaN, zero doubles (0.0 equals -0.0), decimals (1.0 equals 1.00) and
    containers that are not plain."""
    if isinstance(value, float):
        return value == value and value != 0
    if isinstance(value, Decimal128):
        return False
    if isinstance(value, (list, tuple, Mapping, DBRef)):
        return _plain(value)
    return True


def _path_name(name: str) -> bool:
    return bool(name) and "." not in name and not name.startswith("$")


def _if_type(accessor: str, name: str, check: dict[str, Any]) -> dict[str, Any]:
    """``check``, evaluated only on a value of type ``name`` (it could fail on another)."""
    test = {"$isArray": accessor} if name == "array" else {"$eq": [{"$type": accessor}, name]}
    return {"$cond": [test, check, False]}


class _Checks:
    def __init__(self) -> None:
        self.checks: list[dict[str, Any]] = []
        self.variables: list[dict[str, Any]] = []  # the $let variables of each level, outermost first
        self.count = 0

    def variable(self, level: int, definition: dict[str, Any]) -> tuple[str, int]:
        """A variable bound to ``definition`` (which reads variables of ``level`` or above)."""
        while len(self.variables) <= level:
            self.variables.append({})
        name = f"v{self.count}"
        self.count += 1
        self.variables[level][name] = definition
        return f"$${name}", level + 1

    def add(self, accessor: str, level: int, value: Any) -> None:
        """The checks that the value reached by ``accessor``, of the BSON type of ``value``
        (its holder's checks say so), is exactly ``value``."""
        if isinstance(value, DBRef):
            value = value.as_doc()
        if isinstance(value, Mapping):
            self.add_fields(accessor, level, value)
        elif isinstance(value, (list, tuple)):
            self.add_items(accessor, level, value)
        elif isinstance(value, float) and value != value:
            # NaN: the one double not at least -inf, whether NaN sorts first (MongoDB) or
            # compares false with everything (IEEE).
            self.checks.append({"$not": [{"$gte": [accessor, float("-inf")]}]})
        elif isinstance(value, float) and value == 0:
            # 0.0 and -0.0 are equal; atan2(x, -1) is pi for one and -pi for the other.
            sign = {"$eq": [{"$atan2": [accessor, -1.0]}, {"$atan2": [{"$literal": value}, -1.0]}]}
            self.checks += [{"$eq": [accessor, 0.0]}, _if_type(accessor, "double", sign)]
        elif isinstance(value, Decimal128):
            # Equal decimals may differ in exponent (1.0, 1.00); their strings do not.
            as_text = {"$eq": [{"$toString": accessor}, {"$toString": {"$literal": value}}]}
            self.checks.append(_if_type(accessor, "decimal", as_text))
        else:
            self.checks.append({"$eq": [accessor, {"$literal": value}]})

    def add_fields(self, accessor: str, level: int, fields: Mapping[str, Any]) -> None:
        # One check for the names, their order and every value's type; one for all the values
        # $eq compares exactly; one or more for each other value.
        fields_of = {"$objectToArray": accessor}
        shape = [[name, _bson_type(item)] for name, item in fields.items()]
        kinds = {"$map": {"input": fields_of, "in": ["$$this.k", {"$type": "$$this.v"}]}}
        self.checks.append(_if_type(accessor, "object", {"$eq": [kinds, {"$literal": shape}]}))
        exact = [name for name, item in fields.items() if _equal_is_identical(item)]
        if exact:
            chosen = fields_of if len(exact) == len(fields) else {
                "$filter": {"input": fields_of, "cond": {"$in": ["$$this.k", {"$literal": exact}]}}
            }
            values = {"$map": {"input": chosen, "in": "$$this.v"}}
            self.checks.append(_if_type(accessor, "object", {"$eq": [values, {"$literal": [fields[n] for n in exact]}]}))
        for name, item in fields.items():
            if _equal_is_identical(item):
                continue
            if _path_name(name):
                self.add(f"{accessor}.{name}", level, item)
            else:
                field = {"$getField": {"field": {"$literal": name}, "input": accessor}}
                self.add(*self.variable(level, _if_type(accessor, "object", field)), item)

    def add_items(self, accessor: str, level: int, items: list[Any] | tuple[Any, ...]) -> None:
        kinds = {"$map": {"input": accessor, "in": {"$type": "$$this"}}}
        self.checks.append(_if_type(accessor, "array", {"$eq": [kinds, {"$literal": [_bson_type(i) for i in items]}]}))
        exact = [index for index, item in enumerate(items) if _equal_is_identical(item)]
        if len(exact) == len(items):
            self.checks.append({"$eq": [accessor, {"$literal": list(items)}]})
            return
        if exact:
            values = {"$map": {"input": {"$literal": exact}, "in": {"$arrayElemAt": [accessor, "$$this"]}}}
            self.checks.append(_if_type(accessor, "array", {"$eq": [values, {"$literal": [items[i] for i in exact]}]}))
        for index, item in enumerate(items):
            if not _equal_is_identical(item):
                element = {"$arrayElemAt": [accessor, index]}
                self.add(*self.variable(level, _if_type(accessor, "array", element)), item)

    def expression(self) -> dict[str, Any]:
        expression: dict[str, Any] = {"$and": self.checks}
        for level_vars in reversed(self.variables):
            if level_vars:
                expression = {"$let": {"vars": level_vars, "in": expression}}
        return expression


def same_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """An aggregation expression true of ``$$ROOT`` if and only if it is exactly ``document``
    (as the driver read it)."""
    checks = _Checks()
    checks.add("$$ROOT", 0, document)
    return checks.expression()
