"""Caller-written filters and aggregation expressions: allow-listed operators, named fields.

The gateway runs a caller's filter or pipeline only after every operator in it is on an
allow-list and every field it names passes ``check_field`` (built by ``field_check`` from the
caller's plan: readable unmasked in every document the plan reaches). One walker serves find,
count, batch selections and every pipeline stage.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._errors import FieldNotReadableError, QueryError
from ._regex import REGEX_OPERATORS, check_expression_regex, check_regex_value, check_regexes

__all__ = [
    "QUERY_OPERATORS",
    "EXPRESSION_OPERATORS",
    "check_filter",
    "check_expression",
    "check_field_name",
    "field_check",
    "stripped_positions",
]

CheckField = Callable[[str], None]
MAX_DEPTH = 40

_LOGICAL = frozenset({"$and", "$or", "$nor"})
# Operators on one field. Geo, text search, $where and $jsonSchema (which can test any field)
# are not run.
QUERY_OPERATORS = frozenset({
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$type",
    "$regex", "$options", "$not", "$elemMatch", "$size", "$all", "$mod",
})

# Aggregation expression operators (and accumulators) a caller may use: computation only.
EXPRESSION_OPERATORS = frozenset({
    # arithmetic
    "$abs", "$add", "$ceil", "$divide", "$exp", "$floor", "$ln", "$log", "$log10", "$mod",
    "$multiply", "$pow", "$round", "$sqrt", "$subtract", "$trunc",
    # comparison, boolean, conditional
    "$cmp", "$eq", "$gt", "$gte", "$lt", "$lte", "$ne", "$and", "$not", "$or",
    "$cond", "$ifNull", "$switch",
    # arrays
    "$arrayElemAt", "$arrayToObject", "$concatArrays", "$filter", "$first", "$last", "$in",
    "$indexOfArray", "$isArray", "$map", "$objectToArray", "$range", "$reduce", "$reverseArray",
    "$size", "$slice", "$zip", "$sortArray", "$firstN", "$lastN", "$maxN", "$minN",
    # sets
    "$allElementsTrue", "$anyElementTrue", "$setDifference", "$setEquals", "$setIntersection",
    "$setIsSubset", "$setUnion",
    # strings
    "$concat", "$indexOfBytes", "$indexOfCP", "$ltrim", "$rtrim", "$trim", "$split", "$strLenBytes",
    "$strLenCP", "$strcasecmp", "$substr", "$substrBytes", "$substrCP", "$toLower", "$toUpper",
    "$regexMatch", "$regexFind", "$regexFindAll", "$replaceOne", "$replaceAll",
    # types
    "$convert", "$isNumber", "$toBool", "$toDate", "$toDecimal", "$toDouble", "$toInt", "$toLong",
    "$toObjectId", "$toString", "$type",
    # dates
    "$dateAdd", "$dateDiff", "$dateFromParts", "$dateFromString", "$dateSubtract", "$dateToParts",
    "$dateToString", "$dateTrunc", "$dayOfMonth", "$dayOfWeek", "$dayOfYear", "$hour",
    "$isoDayOfWeek", "$isoWeek", "$isoWeekYear", "$millisecond", "$minute", "$month", "$second",
    "$week", "$year",
    # objects, variables, literals
    "$mergeObjects", "$let", "$literal",
    # accumulators ($group, $bucket)
    "$sum", "$avg", "$min", "$max", "$push", "$addToSet", "$count", "$stdDevPop", "$stdDevSamp",
    "$top", "$topN", "$bottom", "$bottomN", "$median", "$percentile",
})

_WHY_REFUSED = {
    "$where": "it runs JavaScript",
    "$function": "it runs JavaScript",
    "$accumulator": "it runs JavaScript",
    "$text": "text search is not supported by the gateway",
    "$jsonSchema": "it can test fields the caller may not read",
    "$getField": "it can name fields the caller may not read",
    "$setField": "it can name fields the caller may not read",
    "$unsetField": "it can name fields the caller may not read",
}
_SYSTEM_VARIABLES = frozenset({"ROOT", "CURRENT", "REMOVE", "NOW", "CLUSTER_TIME"})
_POSITION = re.compile(r"[0-9]+")


def stripped_positions(path: str) -> str:
    """The path without array positions: ``items.0.price`` -> ``items.price``."""
    return ".".join(part for part in path.split(".") if not _POSITION.fullmatch(part))


def field_check(can_filter: Callable[[str], bool], where: str, collection: str | None = None) -> CheckField:
    """A ``check_field`` refusing paths ``can_filter`` refuses, as written or without array
    positions (field rules do not name positions)."""
    def check(path: str) -> None:
        bare = stripped_positions(path)
        if not can_filter(path) or (bare and bare != path and not can_filter(bare)):
            raise FieldNotReadableError(path, collection, where)
    return check


def check_field_name(path: Any, where: str = "query") -> str:
    """A field path as callers may write it: dotted names, none empty or starting with '$', and
    names BSON can hold (no NUL, no lone surrogate)."""
    if not isinstance(path, str) or not path or any(
        not part or part.startswith("$") or "\x00" in part for part in path.split(".")
    ):
        raise QueryError(f"{where}: {path!r} is not a valid field path (an empty part, or one starting with '$')", field=path)
    if not path.isascii() and not _is_unicode(path):
        raise QueryError(
            f"{where}: {path!r} is not a valid field path: it holds a lone surrogate, which is not valid Unicode",
            field=path,
        )
    return path


def _is_unicode(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _refused(operator: str, where: str) -> QueryError:
    reason = _WHY_REFUSED.get(operator)
    return QueryError(f"operator {operator} is not allowed in {where}" + (f": {reason}" if reason else ""), operator=operator)


def _is_operators(value: Any) -> bool:
    return isinstance(value, Mapping) and any(isinstance(key, str) and key.startswith("$") for key in value)


# --- filters ---------------------------------------------------------------------------------

def check_filter(query: Any, check_field: CheckField, *, variables: Iterable[str] = (), raw: bool = True) -> None:
    """Validate a query-language filter; every field it names goes through ``check_field``.
    ``variables`` are the ``$$names`` an ``$expr`` may use (a ``$lookup``'s ``let``); ``raw``
    says the filter runs on stored documents (see ``check_expression``)."""
    if not isinstance(query, Mapping):
        raise QueryError("a filter must be an object", field="filter")
    _Filter(check_field, frozenset(variables), raw).query(query, "", 0)


class _Filter:
    def __init__(self, check_field: CheckField, variables: frozenset[str], raw: bool) -> None:
        self.check_field = check_field
        self.variables = variables
        self.raw = raw

    def query(self, query: Mapping[str, Any], prefix: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise QueryError("the filter is nested too deeply")
        for key, value in query.items():
            if not isinstance(key, str):
                raise QueryError("filter keys must be strings")
            if key in _LOGICAL:
                if not isinstance(value, list) or not value or not all(isinstance(item, Mapping) for item in value):
                    raise QueryError(f"{key} takes a non-empty list of filters", operator=key)
                for item in value:
                    self.query(item, prefix, depth + 1)
            elif key == "$expr" and not prefix:
                _Expression(self.check_field, self.raw).walk(value, self.variables, depth + 1)
            elif key == "$comment" and isinstance(value, str):
                continue
            elif key.startswith("$"):
                raise _refused(key, "a filter")
            else:
                path = prefix + check_field_name(key, "filter")
                self.check_field(path)
                self.condition(path, value, depth + 1)

    def condition(self, path: str, value: Any, depth: int) -> None:
        """The value beside a field name: a literal (compared whole), or operators."""
        check_regexes(value, where=f"the filter on {path!r}")
        if not _is_operators(value):
            return
        if depth > MAX_DEPTH:
            raise QueryError("the filter is nested too deeply")
        for operator, operand in value.items():
            if not isinstance(operator, str) or not operator.startswith("$"):
                raise QueryError(f"the filter on {path!r} mixes operators and field names: {operator!r}", field=path)
            if operator not in QUERY_OPERATORS:
                raise _refused(operator, "a filter")
            if operator == "$regex":
                check_regex_value(operand, value.get("$options", ""), where=f"the filter on {path!r}")
            elif operator == "$not":
                if _is_operators(operand):
                    self.condition(path, operand, depth + 1)
                elif isinstance(operand, Mapping):
                    raise QueryError(f"$not on {path!r} takes operators or a regular expression", field=path)
            elif operator == "$elemMatch":
                self.elem_match(path, operand, depth + 1)
            elif operator == "$all" and isinstance(operand, list):
                for item in operand:
                    if isinstance(item, Mapping) and "$elemMatch" in item:
                        if len(item) != 1:
                            raise QueryError(f"$all on {path!r}: an $elemMatch item must stand alone", field=path)
                        self.elem_match(path, item["$elemMatch"], depth + 1)
                    elif _is_operators(item):
                        raise QueryError(f"$all on {path!r} takes values or {{$elemMatch: ...}}", field=path)

    def elem_match(self, path: str, operand: Any, depth: int) -> None:
        if not isinstance(operand, Mapping) or not operand:
            raise QueryError(f"$elemMatch on {path!r} takes a non-empty object", field=path)
        if all(isinstance(k, str) and k.startswith("$") and k not in _LOGICAL and k != "$expr" for k in operand):
            self.condition(path, operand, depth)  # conditions on the elements themselves
        else:
            self.query(operand, path + ".", depth)  # a query on sub-document elements


# --- expressions -----------------------------------------------------------------------------

def check_expression(expr: Any, check_field: CheckField, variables: Iterable[str] = (), *, raw: bool = True) -> None:
    """Validate an aggregation expression. ``"$a.b"`` names field ``a.b`` (as do
    ``"$$ROOT.a.b"`` and ``"$$CURRENT.a.b"``); ``variables`` are the ``$$names`` in scope.

    ``raw``: the expression sees stored documents (a find's ``$expr``), so the whole document
    (``$$ROOT``, ``$$CURRENT``) is refused: comparing it would test hidden fields. Pipeline
    stages after the view see documents already stripped, and may use it.
    """
    _Expression(check_field, raw).walk(expr, frozenset(variables), 0)


class _Expression:
    def __init__(self, check_field: CheckField, raw: bool) -> None:
        self.check_field = check_field
        self.raw = raw

    def walk(self, expr: Any, variables: frozenset[str], depth: int) -> None:
        if depth > MAX_DEPTH:
            raise QueryError("the expression is nested too deeply")
        if isinstance(expr, str):
            self.reference(expr, variables)
        elif isinstance(expr, list):
            for item in expr:
                self.walk(item, variables, depth + 1)
        elif isinstance(expr, Mapping):
            operators = [key for key in expr if isinstance(key, str) and key.startswith("$")]
            if operators:
                if len(expr) != 1:
                    raise QueryError("an operator object must have exactly one key", operator=operators[0])
                self.operator(operators[0], expr[operators[0]], variables, depth + 1)
            else:
                for value in expr.values():  # an object expression, or $cond's {if, then, else}
                    self.walk(value, variables, depth + 1)

    def reference(self, text: str, variables: frozenset[str]) -> None:
        if text.startswith("$$"):
            name, _, rest = text[2:].partition(".")
            if name in ("ROOT", "CURRENT"):
                if rest:
                    self.check_field(check_field_name(rest, "expression"))
                elif self.raw:
                    raise QueryError(
                        f"$${name} is not allowed here: it is the whole stored document, hidden fields included",
                        operator=f"$${name}",
                    )
            elif name not in _SYSTEM_VARIABLES and name not in variables:
                raise QueryError(f"unknown variable $${name}", operator=f"$${name}")
        elif text.startswith("$"):
            self.check_field(check_field_name(text[1:], "expression"))

    def operator(self, op: str, operand: Any, variables: frozenset[str], depth: int) -> None:
        if op not in EXPRESSION_OPERATORS:
            raise _refused(op, "an expression")
        if op == "$literal":
            return
        if op in REGEX_OPERATORS:
            check_expression_regex(op, operand)
        if op == "$let":
            if not isinstance(operand, Mapping) or not isinstance(operand.get("vars"), Mapping):
                raise QueryError("$let takes {vars: {...}, in: ...}", operator=op)
            for value in operand["vars"].values():
                self.walk(value, variables, depth)
            self.walk(operand.get("in"), variables | set(operand["vars"]), depth)
        elif op in ("$map", "$filter") and isinstance(operand, Mapping):
            self.walk(operand.get("input"), variables, depth)
            inner = variables | {operand.get("as", "this")}
            for key in ("in", "cond", "limit"):
                if key in operand:
                    self.walk(operand[key], inner, depth)
        elif op == "$reduce" and isinstance(operand, Mapping):
            self.walk(operand.get("input"), variables, depth)
            self.walk(operand.get("initialValue"), variables, depth)
            self.walk(operand.get("in"), variables | {"this", "value"}, depth)
        elif op in ("$sortArray", "$top", "$topN", "$bottom", "$bottomN") and isinstance(operand, Mapping):
            for key, value in operand.items():
                if key == "sortBy" and isinstance(value, Mapping):
                    for field in value:  # named like document fields: held to the same rule
                        self.check_field(check_field_name(field, "sortBy"))
                else:
                    self.walk(value, variables, depth)
        else:
            self.walk(operand, variables, depth)
