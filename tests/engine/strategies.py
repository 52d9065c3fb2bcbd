"""Hypothesis strategies for the engine's differential tests: conditions, callers, documents.

Values are drawn from small pools so that random conditions often hit random documents, and
every trap of DESIGN.md section 3 is in the pools: arrays holding matches, missing fields,
null, booleans beside 1 and 0, NaN, nested arrays, arrays of sub-documents, strings that look
like operators, case-only differences.
"""

from __future__ import annotations

import datetime as dt
import json
import math

from bson import Decimal128, ObjectId
from hypothesis import strategies as st

from permission_mongo.policy import Identity
from permission_mongo.policy._cel import (
    And, Compare, DocPath, Has, ListExpr, Literal, Node, Not, Or, Ternary, UserPath,
)

NAMES = ["a", "b", "c", "x"]
STRINGS = ["", "x", "y", "ACME", "acme", "$ne", "u1", "u2"]
NUMBERS = [0, 1, 2, -1, 0.0, 1.0, 1.5, -2.5, 2**40]
SPECIAL_FLOATS = [math.nan, math.inf, -math.inf]
DATES = [dt.datetime(2024, 1, 1), dt.datetime(2024, 6, 1, 12, 30)]
OBJECT_IDS = [ObjectId("65a000000000000000000001"), ObjectId("65a000000000000000000002")]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(NUMBERS + SPECIAL_FLOATS),
    st.sampled_from(STRINGS),
    st.sampled_from(DATES + OBJECT_IDS),
)

# Document values: anything a document holds, nested.
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(NAMES), children, max_size=3),
    ),
    max_leaves=6,
)

documents = st.dictionaries(st.sampled_from(NAMES), values, max_size=4)

paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(tuple)

# Values a caller may carry: scalars, lists, and the occasional dict (which must never
# become a MongoDB operator).
known_values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.lists(st.lists(scalars, max_size=2), max_size=2),
    st.sampled_from([{"$ne": None}, {"$gt": ""}, {"a": 1}]),
)


@st.composite
def identities(draw: st.DrawFn) -> Identity:
    attributes = draw(st.dictionaries(st.sampled_from(["k0", "k1", "k2", "k3"]), known_values, max_size=4))
    return Identity(
        id=draw(st.sampled_from(["u1", "u2", None])),
        tenant_id=draw(st.sampled_from(["acme", "ACME", None, 1, True])),
        roles=["r0"],
        attributes=attributes,
        subordinates=draw(st.lists(st.one_of(st.sampled_from(STRINGS), scalars), max_size=3)),
    )


# --- conditions, as trees (printed to CEL text and parsed back by the tests) ------------------

literal_values = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, 2, -1, 1.5, -2.5, 2**40, 0.0]),
    st.sampled_from(STRINGS),
)
literals = literal_values.map(Literal)
list_literals = st.lists(literals, max_size=3).map(lambda items: ListExpr(tuple(items)))
user_values = st.one_of(
    st.sampled_from([("id",), ("tenant_id",), ("subordinates",), ("roles",)]),
    st.sampled_from(["k0", "k1", "k2", "k3"]).map(lambda key: ("attributes", key)),
).map(UserPath)
known_nodes = st.one_of(literals, list_literals, user_values)
doc_paths = paths.map(DocPath)
comparison_ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])


def _leaf() -> st.SearchStrategy[Node]:
    return st.one_of(
        st.builds(Compare, comparison_ops, doc_paths, known_nodes),
        st.builds(Compare, comparison_ops, known_nodes, doc_paths),
        st.builds(lambda p, k: Compare("in", p, k), doc_paths, st.one_of(list_literals, user_values)),
        st.builds(lambda k, p: Compare("in", k, p), known_nodes, doc_paths),
        doc_paths.map(lambda p: Has(p)),
        user_values.map(lambda u: Has(u)),
        doc_paths,
        st.builds(Compare, st.sampled_from(["==", "!=", "in"]), user_values, known_nodes),
        st.booleans().map(Literal),
    )


conditions = st.recursive(
    _leaf(),
    lambda children: st.one_of(
        children.map(Not),
        st.builds(And, children, children),
        st.builds(Or, children, children),
        st.builds(Ternary, children, children, children),
    ),
    max_leaves=5,
)


def to_text(node: Node) -> str:
    """Print a tree as CEL text (fully parenthesised)."""
    match node:
        case Literal(value=value):
            if value is None:
                return "null"
            if value is True or value is False:
                return "true" if value else "false"
            if isinstance(value, str):
                return json.dumps(value)
            return repr(value)
        case ListExpr(items=items):
            return "[" + ", ".join(to_text(item) for item in items) + "]"
        case DocPath(path=path):
            return "doc." + ".".join(path)
        case UserPath(path=path):
            return "user." + ".".join(path)
        case Has(target=target):
            return f"has({to_text(target)})"
        case Not(operand=operand):
            return f"!({to_text(operand)})"
        case And(left=left, right=right):
            return f"({to_text(left)}) && ({to_text(right)})"
        case Or(left=left, right=right):
            return f"({to_text(left)}) || ({to_text(right)})"
        case Ternary(condition=c, if_true=a, if_false=b):
            return f"({to_text(c)}) ? ({to_text(a)}) : ({to_text(b)})"
        case Compare(op=op, left=left, right=right):
            return f"{to_text(left)} {op} {to_text(right)}"
    raise TypeError(node)


# Beside the random documents, every example checks these: each trap value in every field, at
# depths one to three, so that each random condition meets all of them.
TRAP_VALUES = [
    math.nan, Decimal128("NaN"), -0.0, 0, 1, 1.0, -1, 1.5, 2**40, math.inf, -math.inf, Decimal128("1"),
    True, False, None, "", "x", "ACME", "$ne", DATES[0], OBJECT_IDS[0],
    [], [1], [math.nan], [True], [0], ["x", 1], [[1]], [None], [{"a": 1}], {}, {"a": 1}, {"b": math.nan},
]
TRAP_DOCUMENTS = [
    doc
    for value in TRAP_VALUES
    for doc in (
        {name: value for name in NAMES},
        {name: {inner: value for inner in NAMES} for name in NAMES},
        {name: {inner: {leaf: value for leaf in NAMES} for inner in NAMES} for name in NAMES},
        {name: [{inner: value for inner in NAMES}] for name in NAMES},
    )
]
