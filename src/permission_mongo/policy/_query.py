"""Caller-written filters and aggregation expressions: allow-listed operators, named fields.

The gateway runs a caller's filter or pipeline only after every operator in it is on an
allow-list and every field it names passes ``check_field`` (the caller's plan says which
fields it may filter on). Walking is shared by find, count and every pipeline stage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._errors import QueryError

__all__ = ["QUERY_OPERATORS", "EXPRESSION_OPERATORS", "check_filter", "check_expression", "check_field_name"]

CheckField = Callable[[str], None]

# Query operators a caller may use. Geo, text search, $where and $jsonSchema (which can test
# any field) are not run.
QUERY_OPERATORS = frozenset({
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin",
    "$and", "$or", "$nor", "$not",
    "$exists", "$type",
    "$regex", "$options", "$mod", "$expr",
    "$all", "$elemMatch", "$size",
    "$comment",
})

# Aggregation expression operators (and accumulators) a caller may use: computation only.
# Refused: $function, $accumulator (server-side JavaScript), $getField/$setField/$unsetField
# (they reach fields by computed name), and anything not listed.
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
    # accumulators ($group, $bucket, $setWindowFields-free)
    "$sum", "$avg", "$min", "$max", "$push", "$addToSet", "$count", "$stdDevPop", "$stdDevSamp",
    "$top", "$topN", "$bottom", "$bottomN", "$median", "$percentile",
})

_SYSTEM_VARIABLES = frozenset({"ROOT", "CURRENT", "REMOVE", "NOW", "CLUSTER_TIME", "DESCEND", "PRUNE", "KEEP"})


def check_field_name(path: str) -> None:
    """A field path as callers may write it: dotted names, none empty or starting with '$'."""
    if not isinstance(path, str) or not path or any(not part or part.startswith("$") for part in path.split(".")):
        raise QueryError(f"{path!r} is not a field path", field=path)


def check_filter(query: Any, check_field: CheckField, *, prefix: str = "", variables: Iterable[str] = ()) -> None:
    """Validate a query-language filter; every field it names goes through ``check_field``.
    ``variables`` are the ``$$names`` an ``$expr`` may use (a ``$lookup``'s ``let``)."""
    if not isinstance(query, Mapping):
        raise QueryError("a filter must be an object", filter=query)
    for key, value in query.items():
        if key in ("$and", "$or", "$nor"):
            if not isinstance(value, list) or not value:
                raise QueryError(f"{key} takes a non-empty list of filters", operator=key)
            for sub in value:
                check_filter(sub, check_field, prefix=prefix, variables=variables)
        elif key == "$expr":
            if prefix:
                raise QueryError("$expr is only allowed at the top of a filter", operator=key)
            check_expression(value, check_field, variables)
        elif key == "$comment":
            continue
        elif key.startswith("$"):
            raise _unknown(key, "query operator", QUERY_OPERATORS)
        else:
            check_field_name(key)
            path = prefix + key
            check_field(path)
            _check_condition(value, path, check_field)


def _check_condition(value: Any, path: str, check_field: CheckField) -> None:
    """The value beside a field name: a literal, or an object of operators."""
    if not (isinstance(value, Mapping) and value and any(str(k).startswith("$") for k in value)):
        return  # a literal (a sub-document without operators is matched as a whole)
    for op, operand in value.items():
        if not op.startswith("$"):
            raise QueryError(f"cannot mix operators and field names under {path!r}", field=path)
        if op not in QUERY_OPERATORS or op in ("$and", "$or", "$nor", "$expr", "$comment"):
            raise _unknown(op, "query operator", QUERY_OPERATORS)
        if op == "$not":
            if not isinstance(operand, Mapping) and not _is_regex(operand):
                raise QueryError("$not takes an object of operators or a regular expression", field=path)
            if isinstance(operand, Mapping):
                _check_condition(operand, path, check_field)
        elif op == "$elemMatch":
            if not isinstance(operand, Mapping):
                raise QueryError("$elemMatch takes an object", field=path)
            if any(str(k).startswith("$") for k in operand):
                _check_condition(operand, path, check_field)
            else:
                check_filter(operand, check_field, prefix=path + ".")


def _is_regex(value: Any) -> bool:
    return type(value).__name__ in ("Regex", "Pattern")


def check_expression(expr: Any, check_field: CheckField, variables: Iterable[str] = ()) -> None:
    """Validate an aggregation expression. ``"$a.b"`` names field ``a.b`` (as do
    ``"$$ROOT.a.b"`` and ``"$$CURRENT.a.b"``); ``variables`` are the ``$$names`` in scope."""
    _Expression(check_field).walk(expr, frozenset(variables))


class _Expression:
    def __init__(self, check_field: CheckField) -> None:
        self.check_field = check_field

    def walk(self, expr: Any, variables: frozenset[str]) -> None:
        if isinstance(expr, str):
            self.reference(expr, variables)
        elif isinstance(expr, list):
            for item in expr:
                self.walk(item, variables)
        elif isinstance(expr, Mapping):
            keys = list(expr)
            if len(keys) == 1 and str(keys[0]).startswith("$"):
                self.operator(keys[0], expr[keys[0]], variables)
            else:
                for key, value in expr.items():
                    if str(key).startswith("$"):
                        raise QueryError(f"an expression object cannot mix {key} with other keys", operator=key)
                    self.walk(value, variables)

    def reference(self, text: str, variables: frozenset[str]) -> None:
        if text.startswith("$$"):
            name, _, rest = text[2:].partition(".")
            if name in ("ROOT", "CURRENT"):
                if rest:
                    check_field_name(rest)
                    self.check_field(rest)
            elif name not in _SYSTEM_VARIABLES and name not in variables:
                raise QueryError(f"unknown variable $${name}", variable=name)
        elif text.startswith("$"):
            check_field_name(text[1:])
            self.check_field(text[1:])

    def operator(self, op: str, operand: Any, variables: frozenset[str]) -> None:
        if op not in EXPRESSION_OPERATORS:
            raise _unknown(op, "expression operator", EXPRESSION_OPERATORS)
        if op == "$literal":
            return
        if op == "$let":
            if not isinstance(operand, Mapping) or not isinstance(operand.get("vars"), Mapping):
                raise QueryError("$let takes {vars: {...}, in: ...}", operator=op)
            for value in operand["vars"].values():
                self.walk(value, variables)
            self.walk(operand.get("in"), variables | set(operand["vars"]))
            return
        if op in ("$map", "$filter") and isinstance(operand, Mapping):
            self.walk(operand.get("input"), variables)
            inner = variables | {operand.get("as", "this")}
            for key in ("in", "cond", "limit"):
                if key in operand:
                    self.walk(operand[key], inner)
            return
        if op == "$reduce" and isinstance(operand, Mapping):
            self.walk(operand.get("input"), variables)
            self.walk(operand.get("initialValue"), variables)
            self.walk(operand.get("in"), variables | {"this", "value"})
            return
        if op in ("$sortArray", "$top", "$topN", "$bottom", "$bottomN") and isinstance(operand, Mapping):
            for key, value in operand.items():
                if key == "sortBy" and isinstance(value, Mapping):
                    for field in value:
                        check_field_name(field)
                        self.check_field(field)
                else:
                    self.walk(value, variables)
            return
        self.walk(operand, variables)


def _unknown(op: str, kind: str, known: frozenset[str]) -> QueryError:
    return QueryError(f"{kind} {op} is not allowed", operator=op)
