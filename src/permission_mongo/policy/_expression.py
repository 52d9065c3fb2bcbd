"""Back end three: a condition, with the caller known, as one aggregation expression.

``compile_expression(node, user)`` is true on exactly the documents where the condition
evaluates to true, and false on every other one (where it is false or an error). It is the
guard a caller's ``$expr`` runs under, ``{"$cond": [guard, caller, false]}``, so that the
caller's expression is never evaluated on a document outside the caller's scope (see
``Plan.restrict``). It shares its structure and CEL's rules with the filter compiler
(``_compile.TwoSided``); only the tests of one field differ.

It must never fail, on any document, whatever order a server evaluates it in:

- values read from the document only meet operators defined for every BSON value
  (``$type``, ``$isNumber``, ``$isArray``, the comparisons); ``$size``, ``$arrayElemAt`` and
  ``$map`` only run inside a ``$cond`` that has proven an array;
- a dotted path is read only under ``$cond`` guards that each of its prefixes is a
  sub-document, so it never crosses an array; every test of the value starts with a check
  of its kind, false on a missing value, or runs under a ``$cond`` that it is present. Guards
  are ``$cond``, never ``$and``/``$or``: MongoDB documents that ``$cond`` evaluates only the
  branch chosen, but that ``$and`` may evaluate (and fail on) an operand after a false one;
- known values are always under ``$literal``, so a value such as ``"$x"`` never becomes a
  field path or an operator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import _values as v
from ._cel import Node
from ._compile import TwoSided, equals_expression, kind_expression
from ._errors import QueryError

__all__ = ["MAX_EXPRESSIONS", "compile_expression", "either", "guard_filter"]

MAX_EXPRESSIONS = 16  # $expr in one caller's filter (each gets a copy of the guard)

Expression = Any
Test = Callable[[str], Expression]  # a test of a field's value, given the value's "$path"
_NAN = float("nan")
_ORDER_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_ORDER_NEGATION = {"<": "$gte", "<=": "$gt", ">": "$lte", ">=": "$lt"}
_ELEMENT = "pm_e"
_LOGICAL = ("$and", "$or", "$nor")


def compile_expression(node: Node, user: Mapping[str, Any]) -> Expression:
    """An aggregation expression true exactly where ``node`` is true for this caller (``True``
    or ``False`` when that does not depend on the document)."""
    return _ExpressionCompiler(user).side(node, True)


def guard_filter(filter_: Mapping[str, Any], guard: Expression) -> dict[str, Any]:
    """A copy of a caller's filter in which each ``$expr`` (at the top or inside ``$and``,
    ``$or``, ``$nor``, the only places a filter may hold one) runs only where ``guard`` holds:
    ``{"$expr": {"$cond": [guard, E, false]}}``. Where ``guard`` holds it matches what ``E``
    matches; elsewhere ``E`` is never evaluated.

    Each ``$expr`` gets its own copy of the guard, so their number is bounded
    (``MAX_EXPRESSIONS``): a small filter must not become a query over the database's limit."""
    count = _count_expressions(filter_)
    if count > MAX_EXPRESSIONS:
        raise QueryError(
            f"the filter holds {count} $expr; at most {MAX_EXPRESSIONS} are allowed in one filter: "
            "join them into one expression with $and/$or",
            operator="$expr", limit=MAX_EXPRESSIONS,
        )
    return _guarded(filter_, guard)


def _count_expressions(filter_: Mapping[str, Any]) -> int:
    count = 0
    for key, value in filter_.items():
        if key == "$expr":
            count += 1
        elif key in _LOGICAL and isinstance(value, list):
            count += sum(_count_expressions(item) for item in value if isinstance(item, Mapping))
    return count


def _guarded(filter_: Mapping[str, Any], guard: Expression) -> dict[str, Any]:
    guarded: dict[str, Any] = {}
    for key, value in filter_.items():
        if key == "$expr":
            guarded[key] = _if(guard, value, False)
        elif key in _LOGICAL and isinstance(value, list):
            guarded[key] = [_guarded(item, guard) if isinstance(item, Mapping) else item for item in value]
        else:
            guarded[key] = value
    return guarded


# --- combinators: constants folded, so an unconditional rule adds nothing ----------------------

def both(*tests: Expression) -> Expression:
    parts: list[Any] = []
    for test in tests:
        if test is False:
            return False
        if test is not True:
            parts.extend(test["$and"] if _is_op(test, "$and") else [test])
    if not parts:
        return True
    return parts[0] if len(parts) == 1 else {"$and": parts}


def either(*tests: Expression) -> Expression:
    parts: list[Any] = []
    for test in tests:
        if test is True:
            return True
        if test is not False:
            parts.extend(test["$or"] if _is_op(test, "$or") else [test])
    if not parts:
        return False
    return parts[0] if len(parts) == 1 else {"$or": parts}


def _not(test: Expression) -> Expression:
    if test is True or test is False:
        return not test
    return {"$not": [test]}


def _if(condition: Expression, then: Any, otherwise: Any) -> Any:
    if condition is True:
        return then
    if condition is False:
        return otherwise
    if then is False and otherwise is False:
        return False
    return {"$cond": [condition, then, otherwise]}


def _is_op(test: Any, op: str) -> bool:
    return type(test) is dict and len(test) == 1 and op in test


def _is_nan(value: str) -> Expression:
    # Aggregation equality holds NaN equal to NaN (double and decimal alike).
    return {"$eq": [value, {"$literal": _NAN}]}



class _ExpressionCompiler(TwoSided):
    """Builds one side as an expression (see the module docstring for what it must never do)."""

    ALWAYS = True
    NEVER = False

    def both(self, *tests: Expression) -> Expression:
        return both(*tests)

    def either(self, *tests: Expression) -> Expression:
        return either(*tests)

    # --- reading a field ---------------------------------------------------------------------

    def within(self, path: tuple[str, ...], test: Expression) -> Expression:
        """``test`` where every proper prefix of ``path`` is a sub-document, false elsewhere;
        each prefix is read only once the one before it has proven a sub-document."""
        for end in range(len(path) - 1, 0, -1):
            test = _if({"$eq": [{"$type": "$" + ".".join(path[:end])}, "object"]}, test, False)
        return test

    def at(self, path: tuple[str, ...], test: Test) -> Expression:
        """``test(value)`` where ``doc.path`` resolves, false elsewhere; for tests that are
        false on a missing value (each starts with a check of the value's kind)."""
        return self.within(path, test("$" + ".".join(path)))

    def resolving(self, path: tuple[str, ...], test: Test) -> Expression:
        """``test(value)`` where ``doc.path`` resolves (possibly to null), false elsewhere."""
        value = "$" + ".".join(path)
        return self.within(path, _if({"$ne": [{"$type": value}, "missing"]}, test(value), False))

    # --- the tests of one field --------------------------------------------------------------

    def boolean_field(self, path: tuple[str, ...], truth: bool) -> Expression:
        return self.at(path, lambda value: equals_expression(value, truth))

    def has(self, path: tuple[str, ...], truth: bool) -> Expression:
        field = "$" + ".".join(path)
        present = {"$ne": [{"$type": field}, "missing"]}
        return self.within(path, present if truth else _not(present))

    def equal(self, path: tuple[str, ...], known: Any, truth: bool) -> Expression:
        if v.contains_nan(known):  # NaN equals nothing, not even NaN
            return False if truth else self.resolving(path, lambda value: True)
        if truth:
            return self.at(path, lambda value: equals_expression(value, known))
        return self.resolving(path, lambda value: _not(equals_expression(value, known)))

    def field_in(self, path: tuple[str, ...], items: list[Any], truth: bool) -> Expression:
        """``doc.field in [...]``: equal to some item (true), resolving and equal to none (false)."""
        lists = [item for item in items if v.kind(item) == v.LIST and not v.contains_nan(item)]
        scalars: dict[str, list[Any]] = {}
        for item in items:
            if v.kind(item) != v.LIST and not v.is_nan(item):
                scalars.setdefault(v.kind(item), []).append(item)

        def equals_one(value: str) -> Expression:
            # Scalars of one kind in one $in (equality within a kind is the database's).
            return either(
                *(equals_expression(value, item) for item in lists),
                *(equals_expression(value, group[0]) if len(group) == 1 or kind == v.NULL
                  else both(kind_expression(value, kind), {"$in": [value, {"$literal": group}]})
                  for kind, group in scalars.items()),
            )

        if truth:
            return self.at(path, equals_one)
        return self.resolving(path, lambda value: _not(equals_one(value)))

    def ordered(self, path: tuple[str, ...], op: str, known: Any, truth: bool) -> Expression:
        k = v.kind(known)
        operator = _ORDER_OPS[op] if truth else _ORDER_NEGATION[op]
        literal = {"$literal": known}
        if k != v.NUMBER:
            # Same kind only: aggregation comparisons order every BSON type, CEL does not.
            return self.at(path, lambda value: both(kind_expression(value, k), {operator: [value, literal]}))
        # NaN is unordered in CEL (every comparison false), ordered lowest in MongoDB.
        if v.is_nan(known):
            return False if truth else self.at(path, lambda value: {"$isNumber": value})
        if truth:
            return self.at(path, lambda value: both(
                {"$isNumber": value}, _not(_is_nan(value)), {operator: [value, literal]}))
        return self.at(path, lambda value: both(
            {"$isNumber": value}, either(_is_nan(value), {operator: [value, literal]})))

    def known_in_field(self, path: tuple[str, ...], known: Any, truth: bool) -> Expression:
        """``known in doc.field``: the field must be a list; true when an element equals."""
        if v.contains_nan(known):
            return False if truth else self.at(path, lambda value: {"$isArray": value})

        def contains(value: str) -> Expression:
            elements = {"$map": {"input": value, "as": _ELEMENT, "in": equals_expression("$$" + _ELEMENT, known)}}
            found = {"$anyElementTrue": [elements]}
            return _if({"$isArray": value}, found if truth else _not(found), False)

        return self.at(path, contains)
