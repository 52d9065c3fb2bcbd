"""Back end one: evaluate a condition for one document, with the caller known.

``bind(node, user)`` folds everything that depends only on the caller and returns a function
of the document, so that checking many documents for one request costs little.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import _values as v
from ._cel import And, Compare, DocPath, Has, ListExpr, Literal, Negate, Node, Not, Or, Ternary, UserPath, reads_document

__all__ = ["bind", "evaluate_known", "DocFunction"]

ERROR = v.ERROR
DocFunction = Callable[[Mapping[str, Any]], Any]


def evaluate_known(node: Node, user: Mapping[str, Any]) -> Any:
    """The value of a node that does not read the document."""
    return _bind(node, user)(None)


def bind(node: Node, user: Mapping[str, Any]) -> DocFunction:
    """A function of the document giving the node's value (or ERROR)."""
    if not reads_document(node):
        value = _bind(node, user)(None)
        return lambda doc: value
    return _bind(node, user)


def _constant(value: Any) -> DocFunction:
    return lambda doc: value


def _bind(node: Node, user: Mapping[str, Any]) -> DocFunction:
    match node:
        case Literal(value=value):
            return _constant(value)
        case UserPath(path=path):
            return _constant(v.normalize(v.select(user, path)))
        case DocPath(path=path):
            if len(path) == 1:
                name = path[0]
                return lambda doc: doc.get(name, ERROR)
            return lambda doc: v.select(doc, path)
        case ListExpr(items=items):
            parts = [_bind(item, user) for item in items]
            def list_value(doc: Any) -> Any:
                values = [part(doc) for part in parts]
                return ERROR if any(value is ERROR for value in values) else values
            return list_value
        case Has(target=DocPath(path=path)):
            return lambda doc: v.has_field(doc, path)
        case Has(target=UserPath(path=path)):
            return _constant(v.has_field(user, path))
        case Not(operand=operand):
            inner = _bind(operand, user)
            return lambda doc: _not(inner(doc))
        case Negate(operand=operand):
            inner = _bind(operand, user)
            return lambda doc: _negate(inner(doc))
        case And(left=left, right=right):
            a, b = _bind(left, user), _bind(right, user)
            return lambda doc: _and(a(doc), b(doc))
        case Or(left=left, right=right):
            a, b = _bind(left, user), _bind(right, user)
            return lambda doc: _or(a(doc), b(doc))
        case Ternary(condition=condition, if_true=if_true, if_false=if_false):
            c, a, b = _bind(condition, user), _bind(if_true, user), _bind(if_false, user)
            def choose(doc: Any) -> Any:
                chosen = c(doc)
                if chosen is True:
                    return a(doc)
                if chosen is False:
                    return b(doc)
                return ERROR
            return choose
        case Compare():
            return _bind_compare(node, user)
    raise TypeError(f"not a condition node: {node!r}")


def _not(value: Any) -> Any:
    if value is True:
        return False
    if value is False:
        return True
    return ERROR


def _negate(value: Any) -> Any:
    if v.kind(value) == v.NUMBER and not isinstance(value, v.Decimal128):
        return -value
    return ERROR


def _and(a: Any, b: Any) -> Any:
    if a is False or b is False:
        return False
    if a is True and b is True:
        return True
    return ERROR


def _or(a: Any, b: Any) -> Any:
    if a is True or b is True:
        return True
    if a is False and b is False:
        return False
    return ERROR


_ORDERINGS: dict[str, Callable[[int], bool]] = {
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


def compare_values(op: str, left: Any, right: Any) -> Any:
    """Apply a comparison operator to two plain values (see _values for the rules)."""
    if left is ERROR or right is ERROR:
        return ERROR
    if op == "==":
        return v.equals(left, right)
    if op == "!=":
        return not v.equals(left, right)
    if op == "in":
        return v.member_of(left, right)
    outcome = v.order(left, right)
    if outcome is ERROR:
        return ERROR
    if outcome is None:  # NaN
        return False
    return _ORDERINGS[op](outcome)


def _bind_compare(node: Compare, user: Mapping[str, Any]) -> DocFunction:
    op, left, right = node.op, node.left, node.right
    left_reads, right_reads = reads_document(left), reads_document(right)
    if not left_reads and not right_reads:
        value = compare_values(op, _bind(left, user)(None), _bind(right, user)(None))
        return _constant(value)
    # Exactly one side reads the document (the parser refuses two); the other is known now.
    known = evaluate_known(right if left_reads else left, user)
    if known is ERROR:
        return _constant(ERROR)
    if op == "in" and left_reads:
        if v.kind(known) == v.MAP:
            known = list(known)  # membership in a map: in its keys
        elif v.kind(known) != v.LIST:
            return _constant(ERROR)
    if not v.comparable_with_document(known):
        return _constant(ERROR)
    field = _bind(left if left_reads else right, user)
    if op == "in" and right_reads:
        # known in doc.field: the field must be a list (a map there is an error, see _values).
        def in_document_list(doc: Any) -> Any:
            container = field(doc)
            if container is ERROR or v.kind(container) != v.LIST:
                return ERROR
            return v.member_of(known, container)
        return in_document_list
    if left_reads:
        return lambda doc: compare_values(op, field(doc), known)
    return lambda doc: compare_values(op, known, field(doc))
