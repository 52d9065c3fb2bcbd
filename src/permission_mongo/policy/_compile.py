"""Back end two: compile a condition, with the caller known, into MongoDB filters.

Every sub-condition has a pair of filters: the documents where it is true and those where
it is false. Documents where it is an error (a field missing, a type that does not compare)
match neither, so negation swaps the pair and never wraps a subtree in ``$not``; ``&&``,
``||`` and ``?:`` combine pairs by CEL's rules. Each side is built on demand. The top-level
condition's true-filter is what the gateway injects. That structure (``TwoSided``) is shared
with back end three (``_expression``), which builds the same sides as aggregation expressions.

MongoDB's matching differs from CEL's in ways each leaf guards against:

- ``{a: v}``, ``$in``, ``$lt`` also match an array holding a match: leaves require the field
  not to be an array (``$not: {$type: "array"}``) unless the schema declares it scalar;
- ``$ne``, ``$nin``, ``$not``, ``{a: null}`` match a missing field: leaves require the path
  to resolve (every prefix a sub-document, not an array; the field present);
- ``{a: NaN}`` matches NaN, CEL's NaN equals nothing; ordering excludes NaN explicitly;
- a dotted path crosses arrays of sub-documents: the prefix guards stop that;
- values are placed under ``$eq``/``$in`` or ``$literal``, never as a bare operand, so a
  value such as ``"$x"`` or a dict can never become an operator (dicts are refused anyway);
- strings compare under the simple collation only: the gateway runs every query with
  ``COLLATION``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import _values as v
from ._cel import And, Compare, DocPath, Has, Node, Not, Or, Ternary, reads_document
from ._evaluate import evaluate_known

__all__ = [
    "COLLATION", "NONE", "MATCH_NOTHING", "Filter", "TwoSided", "compile_condition", "compile_true", "conjoin",
    "disjoin", "equals_expression", "kind_expression", "to_mongo",
]

COLLATION: dict[str, str] = {"locale": "simple"}
# A filter is a MongoDB filter dict ({} matches every document) or NONE, which matches none.
Filter = Any
NONE: Any = type("MatchNone", (), {"__repr__": lambda self: "NONE"})()
MATCH_NOTHING: dict[str, Any] = {"_id": {"$in": []}}
Pair = tuple[Filter, Filter]
_NAN = float("nan")
_NOT_ARRAY = {"$not": {"$type": "array"}}
_ORDER_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_ORDER_NEGATION = {"<": "$gte", "<=": "$gt", ">": "$lte", ">=": "$lt"}
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}

IsScalar = Callable[[str], bool]


def to_mongo(filter_: Filter) -> dict[str, Any]:
    """A filter as MongoDB takes it."""
    return MATCH_NOTHING if filter_ is NONE else filter_


def _is_operators(value: Any) -> bool:
    # Filters built here never mix operators and field names in one dict.
    return type(value) is dict and bool(value) and next(iter(value)).startswith("$")


# Operators that only match a present field, making ``$exists: true`` beside them redundant.
def _implies_exists(operators: dict[str, Any]) -> bool:
    for op, operand in operators.items():
        if op in ("$type", "$gt", "$gte", "$lt", "$lte", "$elemMatch"):
            return True
        if op == "$eq" and operand is not None:
            return True
        if op == "$in" and None not in operand:
            return True
    return False


def conjoin(*filters: Filter) -> Filter:
    """AND of filters, flattened; conditions on one field share one operator dict."""
    parts: list[tuple[str, Any]] = []
    for f in filters:
        if f is NONE:
            return NONE
        for key, value in f.items():
            if key == "$and":
                parts.extend(item for sub in value for item in sub.items())
            else:
                parts.append((key, value))
    merged: dict[str, Any] = {}
    rest: list[dict[str, Any]] = []
    for key, value in parts:
        if key not in merged:
            merged[key] = value
        elif (
            not key.startswith("$")  # a field's operators merge; $expr, $or and the like do not
            and _is_operators(merged[key])
            and _is_operators(value)
            and merged[key].keys().isdisjoint(value)
        ):
            merged[key] = {**merged[key], **value}
        elif merged[key] != value:
            rest.append({key: value})
    for key, value in merged.items():
        if _is_operators(value) and value.get("$exists") is True and len(value) > 1 and _implies_exists(value):
            merged[key] = {op: operand for op, operand in value.items() if op != "$exists"}
    if not rest:
        return merged
    return {"$and": [merged, *rest]}


def _atoms(f: dict[str, Any]) -> frozenset[str]:
    """The conjuncts of a filter, each as a canonical string (for subsumption)."""
    atoms: set[str] = set()
    for key, value in f.items():
        if key == "$and":
            for sub in value:
                atoms |= _atoms(sub)
        elif _is_operators(value) and not key.startswith("$"):
            atoms.update(repr((key, op, operand)) for op, operand in value.items())
        else:
            atoms.add(repr((key, value)))
    return frozenset(atoms)


def disjoin(*filters: Filter) -> Filter:
    """OR of filters, flattened; a disjunct implied by a weaker one is dropped."""
    parts: list[dict[str, Any]] = []
    for f in filters:
        if f is NONE:
            continue
        if not f:
            return {}
        parts.extend(f["$or"] if len(f) == 1 and "$or" in f else [f])
    if not parts:
        return NONE
    atoms = [_atoms(part) for part in parts]
    kept = [
        part
        for i, part in enumerate(parts)
        # Drop a part whose conjuncts include all of another's (it matches a subset);
        # of two equal parts keep the first.
        if not any(atoms[j] <= atoms[i] and (atoms[j] != atoms[i] or j < i) for j in range(len(parts)) if j != i)
    ]
    return kept[0] if len(kept) == 1 else {"$or": kept}


def compile_condition(node: Node, user: Mapping[str, Any], is_scalar: IsScalar = lambda path: False) -> Pair:
    """(documents where ``node`` is true, documents where it is false) for this caller.

    ``is_scalar(path)`` says the schema declares the field never an array.
    """
    compiler = _Compiler(user, is_scalar)
    return compiler.side(node, True), compiler.side(node, False)


def compile_true(node: Node, user: Mapping[str, Any], is_scalar: IsScalar = lambda path: False) -> Filter:
    """The documents where ``node`` is true (the half of the pair a plan needs)."""
    return _Compiler(user, is_scalar).side(node, True)


class TwoSided:
    """What the filter compiler and the expression compiler (``_expression``) share: ``side(node,
    truth)`` is the test for the documents where ``node`` evaluates to ``truth``. Negation asks
    the operand for the other side, ``&&``, ``||`` and ``?:`` combine sides by CEL's rules, and
    whatever depends only on the caller is decided here; subclasses say how to combine tests
    (``both``, ``either``, ``ALWAYS``, ``NEVER``) and how to test one field."""

    ALWAYS: Any
    NEVER: Any

    def __init__(self, user: Mapping[str, Any]) -> None:
        self.user = user

    def both(self, *tests: Any) -> Any:
        raise NotImplementedError

    def either(self, *tests: Any) -> Any:
        raise NotImplementedError

    def side(self, node: Node, truth: bool) -> Any:
        if not reads_document(node):
            return self.ALWAYS if evaluate_known(node, self.user) is truth else self.NEVER
        match node:
            case Not(operand=operand):
                return self.side(operand, not truth)
            case And(left=left, right=right):
                # true when both are true; false when either is false
                combine = self.both if truth else self.either
                return combine(self.side(left, truth), self.side(right, truth))
            case Or(left=left, right=right):
                combine = self.either if truth else self.both
                return combine(self.side(left, truth), self.side(right, truth))
            case Ternary(condition=condition, if_true=if_true, if_false=if_false):
                return self.either(
                    self.both(self.side(condition, True), self.side(if_true, truth)),
                    self.both(self.side(condition, False), self.side(if_false, truth)),
                )
            case DocPath(path=path):
                return self.boolean_field(path, truth)  # a bare field as a condition
            case Has(target=DocPath(path=path)):
                return self.has(path, truth)
            case Compare():
                return self.compare(node, truth)
        raise TypeError(f"cannot compile {node!r}")

    def compare(self, node: Compare, truth: bool) -> Any:
        """Decide the known side now (an error, or a value no field can be compared with
        exactly, matches nothing), then test the field against it."""
        op, left, right = node.op, node.left, node.right
        if op == "in" and reads_document(right):
            known = evaluate_known(left, self.user)
            if known is v.ERROR or not v.comparable_with_document(known):
                return self.NEVER
            return self.known_in_field(right.path, v.normalize(known), truth)  # type: ignore[union-attr]
        if reads_document(right):
            left, right, op = right, left, _FLIPPED[op]
        assert isinstance(left, DocPath)
        known = evaluate_known(right, self.user)
        if known is v.ERROR:
            return self.NEVER
        if op == "in" and v.kind(known) == v.MAP:
            known = list(known)  # membership in a map: in its keys
        if op == "in" and v.kind(known) != v.LIST:
            return self.NEVER
        if not v.comparable_with_document(known):
            return self.NEVER
        known = v.normalize(known)
        if op == "==":
            return self.equal(left.path, known, truth)
        if op == "!=":
            return self.equal(left.path, known, not truth)
        if op == "in":
            return self.field_in(left.path, known, truth)
        if v.kind(known) not in v.ORDERED_KINDS:
            return self.NEVER
        return self.ordered(left.path, op, known, truth)

    # The tests of one field, each for a known value already checked comparable and normalized.

    def boolean_field(self, path: tuple[str, ...], truth: bool) -> Any:
        raise NotImplementedError

    def has(self, path: tuple[str, ...], truth: bool) -> Any:
        raise NotImplementedError

    def equal(self, path: tuple[str, ...], known: Any, truth: bool) -> Any:
        raise NotImplementedError

    def field_in(self, path: tuple[str, ...], items: list[Any], truth: bool) -> Any:
        raise NotImplementedError

    def ordered(self, path: tuple[str, ...], op: str, known: Any, truth: bool) -> Any:
        raise NotImplementedError

    def known_in_field(self, path: tuple[str, ...], known: Any, truth: bool) -> Any:
        raise NotImplementedError


class _Compiler(TwoSided):
    """Builds one side of the pair as a filter."""

    ALWAYS: Any = {}
    NEVER: Any = NONE

    def __init__(self, user: Mapping[str, Any], is_scalar: IsScalar) -> None:
        super().__init__(user)
        self.is_scalar = is_scalar

    def both(self, *filters: Filter) -> Filter:
        return conjoin(*filters)

    def either(self, *filters: Filter) -> Filter:
        return disjoin(*filters)

    def boolean_field(self, path: tuple[str, ...], truth: bool) -> Filter:
        field = ".".join(path)
        return conjoin(self.resolves(path), self.not_array(field), {field: {"$eq": truth}})

    def has(self, path: tuple[str, ...], truth: bool) -> Filter:
        return conjoin(*self.prefix_guards(path), {".".join(path): {"$exists": truth}})

    # --- guards -----------------------------------------------------------------------------

    def prefix_guards(self, path: tuple[str, ...]) -> list[dict[str, Any]]:
        """Every proper prefix is a sub-document (not an array), so the path resolves plainly."""
        return [{".".join(path[:i]): {"$type": "object", **_NOT_ARRAY}} for i in range(1, len(path))]

    def resolves(self, path: tuple[str, ...]) -> Filter:
        """``doc.path`` has a value (possibly null)."""
        return conjoin(*self.prefix_guards(path), {".".join(path): {"$exists": True}})

    def not_array(self, field: str) -> Filter:
        return {} if self.is_scalar(field) else {field: dict(_NOT_ARRAY)}

    # --- comparisons --------------------------------------------------------------------------

    def equal(self, path: tuple[str, ...], known: Any, truth: bool) -> Filter:
        field = ".".join(path)
        resolves = self.resolves(path)
        if v.contains_nan(known):
            return NONE if truth else resolves  # NaN equals nothing, not even NaN
        if v.kind(known) == v.LIST:
            equal = equals_expression("$" + field, known)
            return conjoin(resolves, {"$expr": equal if truth else {"$not": [equal]}})
        if truth:
            return conjoin(resolves, self.not_array(field), {field: {"$eq": known}})
        if self.is_scalar(field):
            return conjoin(resolves, {field: {"$ne": known}})
        return conjoin(resolves, disjoin({field: {"$type": "array"}}, {field: {"$ne": known}}))

    def field_in(self, path: tuple[str, ...], items: list[Any], truth: bool) -> Filter:
        """``doc.field in [...]``: equal to some item (true), resolving and equal to none (false)."""
        field = ".".join(path)
        scalars = [item for item in items if v.kind(item) != v.LIST and not v.is_nan(item)]
        lists = [item for item in items if v.kind(item) == v.LIST]
        parts: list[Filter] = [self.equal(path, item, truth) for item in lists]
        if truth:
            if scalars:
                parts.append(conjoin(self.resolves(path), self.not_array(field), {field: {"$in": scalars}}))
            return disjoin(*parts)
        if scalars:
            if self.is_scalar(field):
                parts.append({field: {"$nin": scalars}})
            else:
                parts.append(disjoin({field: {"$type": "array"}}, {field: {"$nin": scalars}}))
        return conjoin(self.resolves(path), *parts)

    def ordered(self, path: tuple[str, ...], op: str, known: Any, truth: bool) -> Filter:
        field = ".".join(path)
        k = v.kind(known)
        base = conjoin(self.resolves(path), self.not_array(field))
        operator = _ORDER_OPS[op] if truth else _ORDER_NEGATION[op]
        if k != v.NUMBER:
            # Type bracketing keeps $lt and friends to values of the same kind.
            return conjoin(base, {field: {operator: known}})
        # NaN is unordered in CEL (every comparison false), ordered lowest in MongoDB:
        # excluded from the true side, added to the false side, explicitly.
        if v.is_nan(known):
            return NONE if truth else conjoin(base, {field: {"$type": "number"}})
        ordered = {field: {operator: known, "$ne": _NAN}}
        return conjoin(base, ordered if truth else disjoin(ordered, {field: {"$eq": _NAN}}))

    def known_in_field(self, path: tuple[str, ...], known: Any, truth: bool) -> Filter:
        """``known in doc.field``: the field must be a list; true when an element equals."""
        field = ".".join(path)
        is_list = conjoin(*self.prefix_guards(path), {field: {"$type": "array"}})
        if v.contains_nan(known):
            return NONE if truth else is_list
        if v.kind(known) == v.LIST:
            elements = {"$cond": [{"$isArray": "$" + field}, "$" + field, []]}
            contains = {"$anyElementTrue": [{"$map": {"input": elements, "as": "pm_e", "in": equals_expression("$$pm_e", known)}}]}
            return conjoin(is_list, {"$expr": contains if truth else {"$not": [contains]}})
        element = {"$elemMatch": {"$eq": known}}
        return conjoin(is_list, {field: element if truth else {"$not": element}})


_TYPE_NAMES = {v.NULL: "null", v.BOOL: "bool", v.STRING: "string", v.DATE: "date", v.OBJECTID: "objectId"}


def equals_expression(value: Any, known: Any) -> Any:
    """An aggregation expression: ``value`` equals ``known`` under CEL's equality.

    Built from the known value's shape, element by element with explicit types, rather than
    with ``$eq`` on whole arrays, whose type handling servers do not all get right
    (``[0]`` against ``[false]``). Elements are only read once the size is known to fit.
    """
    k = v.kind(known)
    if k == v.LIST:
        elements = [equals_expression({"$arrayElemAt": [value, i]}, item) for i, item in enumerate(known)]
        same_size = {"$eq": [{"$size": value}, len(known)]}
        return {"$cond": [{"$isArray": value}, {"$cond": [same_size, {"$and": elements} if elements else True, False]}, False]}
    if k == v.NULL:
        return kind_expression(value, k)
    return {"$and": [kind_expression(value, k), {"$eq": [value, {"$literal": known}]}]}


def kind_expression(value: Any, kind: str) -> Any:
    """An aggregation expression: ``value`` is of this kind of scalar (false when missing)."""
    if kind == v.NUMBER:
        return {"$isNumber": value}
    return {"$eq": [{"$type": value}, _TYPE_NAMES[kind]]}
