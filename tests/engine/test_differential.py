"""Equivalence (DESIGN.md invariant 2), checked against the real database.

For random conditions, callers and documents: the documents MongoDB returns for a condition's
compiled true-filter are exactly those the evaluator finds true, and likewise for the
false-filter. Then the same at the level of whole policies: ``find(plan.filter)`` returns
exactly the documents ``policy.allows`` accepts.

``PM_DIFF_EXAMPLES`` raises the number of examples for long runs.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from permission_mongo.policy import COLLATION, Identity, Policy, PolicyConfig, Rule, FieldRules
from permission_mongo.policy._cel import parse_condition
from permission_mongo.policy._compile import compile_condition, to_mongo
from permission_mongo.policy._evaluate import bind

from .strategies import TRAP_DOCUMENTS, conditions, documents, identities, to_text

EXAMPLES = int(os.environ.get("PM_DIFF_EXAMPLES", "300"))
# Each example checks at least 60 documents against at least 6 conditions: the default run
# makes at least 108,000 checks; the floor asserted scales with PM_DIFF_EXAMPLES.
MIN_DOCUMENT_CHECKS = 100_000 * EXAMPLES // 300

_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


class Counter:
    checks = 0


def _load(collection, docs):
    collection.delete_many({})
    if docs:
        collection.insert_many([{"_id": i, **doc} for i, doc in enumerate(docs)])
    return {i: doc for i, doc in enumerate(docs)}


def _found(collection, filter_) -> set[int]:
    return {d["_id"] for d in collection.find(to_mongo(filter_), {"_id": 1}, collation=COLLATION)}


# Stored beside each example's random documents, with ids of their own: each trap value
# (NaN, -0.0, null, arrays, sub-documents...) in every field at depths one to three, so that
# every random condition meets all of them.
_TRAPS = {-1 - i: doc for i, doc in enumerate(TRAP_DOCUMENTS)}


def test_conditions_compile_to_exactly_what_they_evaluate_to(module_db):
    collection = module_db["differential"]
    counter = Counter()

    @_settings
    @given(
        docs=st.lists(documents, min_size=60, max_size=90),
        user=identities(),
        trees=st.lists(conditions, min_size=6, max_size=8),
    )
    def check(docs, user, trees):
        stored = {**_load(collection, docs), **_TRAPS}
        collection.insert_many([{"_id": i, **doc} for i, doc in _TRAPS.items()])
        ctx = user.as_user()
        for tree in trees:
            text = to_text(tree)
            condition = parse_condition(text)
            assert condition.root == tree, f"parse(print(tree)) changed the tree: {text}"
            evaluate = bind(condition.root, ctx)
            outcomes = {i: evaluate(doc) for i, doc in stored.items()}
            true_filter, false_filter = compile_condition(condition.root, ctx)
            expect_true = {i for i, o in outcomes.items() if o is True}
            expect_false = {i for i, o in outcomes.items() if o is False}
            assert _found(collection, true_filter) == expect_true, (text, true_filter)
            assert _found(collection, false_filter) == expect_false, (text, false_filter)
            counter.checks += len(stored)

    check()
    print(f"\n{counter.checks} document checks, each against the true- and the false-filter")
    assert counter.checks >= MIN_DOCUMENT_CHECKS


@st.composite
def policies(draw):
    """Four roles with random inheritance (parents only among earlier roles) and rules."""
    roles = {}
    rules = {}
    for i in range(4):
        name = f"r{i}"
        roles[name] = tuple(draw(st.sets(st.sampled_from([f"r{j}" for j in range(i)]), max_size=2))) if i else ()
        if draw(st.booleans()):
            when = draw(st.one_of(st.none(), conditions))
            actions = draw(st.sets(st.sampled_from(["read", "update"]), min_size=1))
            rules[name] = Rule(
                role=name,
                collection="docs",
                actions=frozenset(actions),
                when=None if when is None else parse_condition(to_text(when)),
                fields=FieldRules(),
            )
    return Policy(PolicyConfig(roles=roles, rules={"docs": rules}, collections={}))


def test_plans_filter_exactly_what_policies_allow(module_db):
    collection = module_db["differential_policies"]

    @_settings
    @given(
        docs=st.lists(documents, min_size=10, max_size=40),
        policy=policies(),
        user=identities(),
        roles=st.lists(st.sampled_from(["r0", "r1", "r2", "r3", "ghost"]), max_size=3),
    )
    def check(docs, policy, user, roles):
        stored = _load(collection, docs)
        ident = Identity(
            id=user.id, tenant_id=user.tenant_id, roles=roles,
            attributes=user.attributes, subordinates=user.subordinates,
        )
        for action in ("read", "update"):
            plan = policy.plan(ident, action, "docs")
            expected = {i for i, doc in stored.items() if policy.allows(ident, action, "docs", doc)}
            assert _found(collection, plan.filter) == expected, plan
            assert plan.allowed or not expected

    check()
