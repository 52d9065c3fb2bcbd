"""The third back end, checked against the real database: a condition as an aggregation
expression (the guard a caller's ``$expr`` runs under, see ``Plan.restrict``).

For random conditions, callers and documents: the documents matching ``{"$expr": guard}`` are
exactly those the evaluator finds true, and evaluating the guard fails on no document, even
with every ``$and`` and ``$or`` in it evaluated in full (MongoDB documents that it may
evaluate an operand of ``$and`` after a false one; only ``$cond`` is documented lazy). Then at
the level of plans: a caller's expression that fails on one chosen document, restricted by a
plan, fails exactly when the plan allows that document, so it is evaluated on no other.

``PM_DIFF_EXAMPLES`` raises the number of examples for long runs.
"""

from __future__ import annotations

import math
import os
from typing import Any

import pymongo.errors
import pytest
from bson import Decimal128
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from permission_mongo.policy import COLLATION, FieldRules, Identity, Policy, PolicyConfig, Rule, load_policy
from permission_mongo.policy._cel import parse_condition
from permission_mongo.policy._evaluate import bind
from permission_mongo.policy._expression import compile_expression

from .strategies import NAMES, TRAP_DOCUMENTS, conditions, identities, to_text, values

EXAMPLES = int(os.environ.get("PM_DIFF_EXAMPLES", "300"))

_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)

# The shared document pool, with decimals beside the other numbers (NaN among them).
DECIMALS = [Decimal128("1"), Decimal128("-2.5"), Decimal128("NaN"), Decimal128("1E+40")]
field_values = st.one_of(values, st.sampled_from(DECIMALS), st.lists(st.sampled_from(DECIMALS + [1, "x"]), max_size=2))
documents = st.dictionaries(st.sampled_from(NAMES), field_values, max_size=4)

def eager(expression: Any) -> Any:
    """``expression`` with every ``$and``/``$or`` evaluating all its operands (as array
    elements), so that no operand is protected by the order of evaluation."""
    if isinstance(expression, list):
        return [eager(item) for item in expression]
    if not isinstance(expression, dict) or "$literal" in expression:
        return expression
    if len(expression) == 1 and ("$and" in expression or "$or" in expression):
        (op, operands), = expression.items()
        whole = "$allElementsTrue" if op == "$and" else "$anyElementTrue"
        return {whole: [[eager(operand) for operand in operands]]}
    return {key: eager(value) for key, value in expression.items()}


def _load(collection, docs):
    collection.delete_many({})
    if docs:
        collection.insert_many([{"_id": i, **doc} for i, doc in enumerate(docs)])
    return {i: doc for i, doc in enumerate(docs)}


def _matching(collection, expression) -> set[int]:
    return {d["_id"] for d in collection.find({"$expr": expression}, {"_id": 1}, collation=COLLATION)}


def test_eager_evaluates_every_operand(db):
    """The test's own tool: what ``eager`` makes of a false ``$and`` does evaluate the rest."""
    db.t.insert_one({"_id": 1, "n": "x"})
    lazy = {"$and": [{"$eq": ["$n", 1]}, {"$gt": [{"$toInt": "$n"}, 0]}]}
    assert _matching(db.t, lazy) == set()  # SecantusDB stops at the false operand
    with pytest.raises(pymongo.errors.OperationFailure):
        _matching(db.t, eager(lazy))


def test_conditions_compile_to_expressions_true_exactly_where_they_evaluate_true(module_db):
    collection = module_db["expression_differential"]

    @_settings
    @given(
        docs=st.lists(documents, min_size=20, max_size=40),
        user=identities(),
        trees=st.lists(conditions, min_size=4, max_size=6),
    )
    def check(docs, user, trees):
        stored = _load(collection, TRAP_DOCUMENTS + docs)
        ctx = user.as_user()
        for tree in trees:
            text = to_text(tree)
            condition = parse_condition(text)
            evaluate = bind(condition.root, ctx)
            expected = {i for i, doc in stored.items() if evaluate(doc) is True}
            guard = compile_expression(condition.root, ctx)
            assert _matching(collection, guard) == expected, (text, guard)
            assert _matching(collection, eager(guard)) == expected, (text, guard)

    check()


def _fails_on(document_id: int) -> dict[str, Any]:
    """A caller's expression that fails on one document (a string that is no number), and is
    true on every other; it reads the document, so no server can decide it before running."""
    failing = {"$toInt": {"$concat": ["x", {"$toString": "$_id"}]}}
    return {"$expr": {"$cond": [{"$eq": ["$_id", document_id]}, failing, True]}}


def _fails(collection, filter_: dict[str, Any]) -> bool:
    try:
        list(collection.find(filter_, {"_id": 1}, collation=COLLATION))
    except pymongo.errors.OperationFailure:
        return True
    return False


@st.composite
def read_policies(draw):
    """Three roles, each granting read under a random condition (or none), so that callers
    holding several of them have several grants."""
    rules = {}
    for i in range(3):
        when = draw(st.one_of(conditions, conditions, st.none()))
        rules[f"r{i}"] = Rule(
            role=f"r{i}", collection="docs", actions=frozenset({"read"}),
            when=None if when is None else parse_condition(to_text(when)), fields=FieldRules(),
        )
    return Policy(PolicyConfig(roles={role: () for role in rules}, rules={"docs": rules}, collections={}))


def test_a_caller_expression_runs_only_on_documents_the_plan_allows(module_db):
    collection = module_db["expression_plans"]
    checked = {"documents": 0, "several grants": 0}

    @settings(_settings, max_examples=max(EXAMPLES // 2, 20))
    @given(
        docs=st.lists(documents, min_size=4, max_size=12),
        policy=read_policies(),
        user=identities(),
        roles=st.lists(st.sampled_from(["r0", "r1", "r2"]), min_size=1, max_size=3, unique=True),
    )
    def check(docs, policy, user, roles):
        stored = _load(collection, docs)
        ident = Identity(id=user.id, tenant_id=user.tenant_id, roles=roles, attributes=user.attributes,
                         subordinates=user.subordinates)
        plan = policy.plan(ident, "read", "docs")
        if not plan.allowed:
            return
        checked["documents"] += len(stored)
        checked["several grants"] += len(plan.roles) > 1
        for i, doc in stored.items():
            allowed = policy.allows(ident, "read", "docs", doc)
            caller = _fails_on(i)
            assert _fails(collection, plan.restrict(caller)) == allowed, (i, doc, plan.guard)
            # Inside $and, $or and $nor too, where a caller may also write $expr.
            nested = {"$or": [{"$and": [caller]}, {"$nor": [caller]}]}
            assert _fails(collection, plan.restrict(nested)) == allowed, (i, doc, plan.guard)

    check()
    print(f"\n{checked}")
    assert checked["documents"] >= EXAMPLES and checked["several grants"] >= EXAMPLES // 15


POLICY = """
roles:
  member: {}
policies:
  docs:
    member:
      actions: [read]
      when: doc.tenant_id == user.tenant_id
"""


def test_the_naive_conjunction_runs_the_callers_expression_on_other_tenants(db):
    """``{"$and": [caller, plan.filter]}``, as the data plane used to send it, evaluates the
    caller's expression on another tenant's document (SecantusDB evaluates ``$and`` in order;
    MongoDB in any order); the restricted filter does not, with the same answer otherwise."""
    policy = load_policy(POLICY)
    plan = policy.plan(Identity(id="u1", tenant_id="a", roles=["member"]), "read", "docs")
    db.docs.insert_many([{"_id": 0, "tenant_id": "a", "n": "1"}, {"_id": 1, "tenant_id": "b", "n": "secret"}])
    caller = {"$expr": {"$gt": [{"$toInt": "$n"}, 0]}}
    assert _fails(db.docs, {"$and": [caller, plan.filter]})
    assert not _fails(db.docs, plan.restrict(caller))
    assert [d["_id"] for d in db.docs.find(plan.restrict(caller), collation=COLLATION)] == [0]
