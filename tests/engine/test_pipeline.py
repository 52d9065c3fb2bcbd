"""Pipelines (DESIGN.md invariant 4), against the real database.

- the view a pipeline starts from is exactly what ``Plan.shape`` returns for find;
- masks computed by the database equal the engine's;
- each escape path is closed (an attack test each, failing if the protection is removed);
- a pipeline through the rewriter returns what the same pipeline returns on only the
  documents and fields the caller may read.
"""

from __future__ import annotations


import pymongo.errors
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from permission_mongo.policy import (
    ActionNotAllowedError, FieldNotReadableError, FieldRules, Identity, PipelineLimits, Policy,
    PolicyConfig, QueryError, Rule, UnknownCollectionError, load_policy, rewrite_pipeline,
)
from permission_mongo.policy._cel import parse_condition
from permission_mongo.policy._fields import mask_value
from permission_mongo.policy._pipeline import _BARRIER, mask_expression

from .strategies import documents

_settings = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)

POLICY = """
roles:
  member: {}
  outsider: {}
policies:
  docs:
    member:
      actions: [read, aggregate]
      when: doc.tenant == user.tenant_id
      fields:
        deny: [secret, nested.hidden]
        mask: {email: email}
  other:
    member:
      actions: [read]
      when: doc.tenant == user.tenant_id
      fields: {deny: [s]}
  closed:
    outsider: {actions: [read]}
"""
ALICE = Identity(id="alice", tenant_id="a", roles=["member"])


@pytest.fixture
def seeded(db):
    db.docs.insert_many([
        {"_id": 1, "tenant": "a", "k": 1, "secret": "s1", "email": "ann@x.com", "nested": {"hidden": 1, "ok": 1}},
        {"_id": 2, "tenant": "b", "k": 1, "secret": "s2", "email": "bob@y.com"},
        {"_id": 3, "tenant": "a", "k": 2, "secret": "s3"},
    ])
    db.other.insert_many([
        {"_id": 10, "tenant": "a", "k": 1, "s": "mine"},
        {"_id": 11, "tenant": "b", "k": 1, "s": "theirs"},
        {"_id": 12, "tenant": "b", "k": 2, "s": "theirs"},
    ])
    db.closed.insert_many([{"_id": 20, "k": 1, "s": "closed"}])
    return db, load_policy(POLICY)


def run(seeded, pipeline, identity=ALICE, limits=PipelineLimits()):
    db, policy = seeded
    return list(db.docs.aggregate(rewrite_pipeline(policy, identity, "docs", pipeline, limits)))


def everything(documents) -> str:
    return repr(documents)


def canonical(value):
    """Comparable form of documents: key order ignored, NaN equal to NaN."""
    if isinstance(value, dict):
        return sorted((key, canonical(item)) for key, item in value.items())
    if isinstance(value, list):
        return [canonical(item) for item in value]
    if isinstance(value, float) and value != value:
        return "NaN"
    return value


# --- the source -------------------------------------------------------------------------------

def test_source_sees_only_readable_documents_and_fields(seeded):
    found = run(seeded, [])
    assert [d["_id"] for d in found] == [1, 3]
    assert "s1" not in everything(found) and "hidden" not in everything(found)
    assert found[0]["email"] == "a***@x.com"


def test_aggregate_needs_the_aggregate_action(seeded):
    db, policy = seeded
    with pytest.raises(ActionNotAllowedError):
        rewrite_pipeline(policy, ALICE, "other", [])


# --- escape paths -----------------------------------------------------------------------------

def test_lookup_into_a_collection_the_caller_cannot_read(seeded):
    with pytest.raises(ActionNotAllowedError):
        run(seeded, [{"$lookup": {"from": "closed", "localField": "k", "foreignField": "k", "as": "x"}}])


def test_lookup_into_internal_collections(seeded):
    with pytest.raises(UnknownCollectionError):
        run(seeded, [{"$lookup": {"from": "_pm_api_keys", "pipeline": [], "as": "x"}}])


def test_lookup_sees_only_the_callers_tenant_and_fields(seeded):
    found = run(seeded, [{"$lookup": {"from": "other", "localField": "k", "foreignField": "k", "as": "o"}}])
    assert found[0]["o"] == [{"_id": 10, "tenant": "a", "k": 1}]
    assert "theirs" not in everything(found) and "mine" not in everything(found)


def test_lookup_pipeline_form_sees_only_the_callers_tenant(seeded):
    found = run(seeded, [{"$lookup": {"from": "other", "let": {"k": "$k"},
                                      "pipeline": [{"$match": {"$expr": {"$eq": ["$k", "$$k"]}}}], "as": "o"}}])
    assert [o["_id"] for o in found[0]["o"]] == [10]
    assert found[1]["o"] == []


def test_lookup_cannot_join_on_a_hidden_field(seeded):
    with pytest.raises(FieldNotReadableError):
        run(seeded, [{"$lookup": {"from": "other", "localField": "k", "foreignField": "s", "as": "o"}}])


def test_match_after_lookup_cannot_see_hidden_foreign_fields(seeded):
    # "o" was made by the pipeline, so naming o.s is allowed, but the joined documents
    # no longer hold s: the match cannot tell anything about it.
    assert run(seeded, [
        {"$lookup": {"from": "other", "localField": "k", "foreignField": "k", "as": "o"}},
        {"$match": {"o.s": "mine"}},
    ]) == []


def test_union_with_sees_only_the_callers_tenant_and_fields(seeded):
    found = run(seeded, [{"$unionWith": {"coll": "other"}}])
    assert sorted(d["_id"] for d in found) == [1, 3, 10]
    assert "theirs" not in everything(found) and "mine" not in everything(found)


def test_union_with_a_collection_the_caller_cannot_read(seeded):
    with pytest.raises(ActionNotAllowedError):
        run(seeded, [{"$unionWith": "closed"}])


def graph_lookup_enforced(db) -> bool:
    """Whether this database applies restrictSearchWithMatch (some servers ignore it)."""
    db.probe.insert_many([{"_id": 1, "to": 2}, {"_id": 2, "to": None, "hide": True}])
    found = list(db.probe.aggregate([{"$match": {"_id": 1}}, {"$graphLookup": {
        "from": "probe", "startWith": "$to", "connectFromField": "to", "connectToField": "_id",
        "as": "found", "restrictSearchWithMatch": {"hide": {"$ne": True}}}}]))
    db.probe.drop()
    return found[0]["found"] == []


def test_graph_lookup_sees_only_the_callers_tenant_and_fields(seeded):
    db, policy = seeded
    pipeline = [{"$graphLookup": {"from": "other", "startWith": "$k", "connectFromField": "k",
                                  "connectToField": "k", "as": "g"}}]
    if not graph_lookup_enforced(db):
        # Where the database ignores restrictSearchWithMatch the stage cannot be enforced.
        with pytest.raises(QueryError, match="graphLookup"):
            run(seeded, pipeline, limits=PipelineLimits(graph_lookup=False))
        return
    found = run(seeded, pipeline)
    assert [g["_id"] for g in found[0]["g"]] == [10]
    assert "theirs" not in everything(found) and "mine" not in everything(found)


def test_facet_branches_are_rewritten(seeded):
    found = run(seeded, [{"$facet": {
        "joined": [{"$lookup": {"from": "other", "localField": "k", "foreignField": "k", "as": "o"}}],
        "mixed": [{"$unionWith": "other"}, {"$count": "n"}],
    }}])
    assert [o["_id"] for d in found[0]["joined"] for o in d["o"]] == [10]
    assert found[0]["mixed"] == [{"n": 3}]
    with pytest.raises(FieldNotReadableError):
        run(seeded, [{"$facet": {"x": [{"$match": {"secret": "s1"}}]}}])


@pytest.mark.parametrize("pipeline", [
    [{"$match": {"secret": "s1"}}],
    [{"$match": {"nested.hidden": 1}}],
    [{"$match": {"nested": {"$exists": True}}}],  # partly hidden
    [{"$match": {"$expr": {"$eq": ["$secret", "s1"]}}}],
    [{"$match": {"email": {"$regex": "^ann"}}}],  # masked
    [{"$sort": {"secret": 1}}],
    [{"$sort": {"email": 1}}],
    [{"$group": {"_id": "$secret"}}],
    [{"$group": {"_id": "$email", "n": {"$sum": 1}}}],
    [{"$group": {"_id": None, "all": {"$push": "$$ROOT.secret"}}}],
    [{"$project": {"leak": {"$concat": ["$secret", ""]}}}],
    [{"$project": {"secret": 1}}],
    [{"$addFields": {"x": {"$cond": [{"$eq": ["$$CURRENT.secret", "s1"]}, 1, 0]}}}],
    [{"$replaceRoot": {"newRoot": {"s": "$secret"}}}],
    [{"$bucket": {"groupBy": "$secret", "boundaries": ["a", "z"]}}],
    [{"$sortByCount": "$email"}],
    [{"$unwind": "$secret"}],
    [{"$lookup": {"from": "other", "localField": "secret", "foreignField": "k", "as": "o"}}],
])
def test_hidden_and_masked_fields_cannot_be_named(seeded, pipeline):
    with pytest.raises(FieldNotReadableError):
        run(seeded, pipeline)


@pytest.mark.parametrize("pipeline", [
    [{"$out": "stolen"}],
    [{"$merge": {"into": "stolen"}}],
    [{"$currentOp": {}}],
    [{"$collStats": {}}],
    [{"$indexStats": {}}],
    [{"$listSessions": {}}],
    [{"$changeStream": {}}],
    [{"$documents": [{"a": 1}]}],
    [{"$where": "true"}],
    [{"$madeUp": {}}],
    [{"$match": {"$where": "this.secret == 's1'"}}],
    [{"$project": {"x": {"$function": {"body": "return 1", "args": [], "lang": "js"}}}}],
    [{"$group": {"_id": None, "x": {"$accumulator": {}}}}],
    [{"$project": {"x": {"$cond": [True, {"$add": [1, {"$function": {}}]}, 0]}}}],  # nested deep
    [{"$project": {"x": {"$getField": "secret"}}}],
    [{"$facet": {"a": [{"$out": "stolen"}]}}],
    [{"$lookup": {"from": "other", "pipeline": [{"$merge": "stolen"}], "as": "o"}}],
])
def test_stages_and_operators_off_the_allow_list_are_refused(seeded, pipeline):
    with pytest.raises(QueryError):
        run(seeded, pipeline)


def test_stage_limit_counts_nested_stages(seeded):
    run(seeded, [{"$match": {"k": 1}}] * 20)
    with pytest.raises(QueryError, match="at most 20"):
        run(seeded, [{"$match": {"k": 1}}] * 21)
    with pytest.raises(QueryError, match="at most 20"):
        run(seeded, [{"$facet": {"a": [{"$limit": 1}] * 20}}])


# --- masks and views, property tests ----------------------------------------------------------

@_settings
@given(strings=st.lists(st.text(alphabet="0123456789+-@. ab()é", max_size=16), min_size=1, max_size=20))
def test_masks_in_the_database_equal_the_engines(db, strings):
    db.masks.delete_many({})
    db.masks.insert_many([{"_id": i, "v": s} for i, s in enumerate(strings)])
    for mask_type in ("email", "phone", "partial", "redact"):
        found = db.masks.aggregate([{"$project": {"m": mask_expression("$v", mask_type)}}, {"$sort": {"_id": 1}}])
        assert [d["m"] for d in found] == [mask_value(s, mask_type) for s in strings], mask_type


FIELD_PATHS = ["a", "b", "c", "x", "a.b", "a.c", "b.x", "a.b.c", "x.a"]


@st.composite
def field_rules(draw):
    if draw(st.booleans()):
        allow = tuple(draw(st.sets(st.sampled_from(FIELD_PATHS), min_size=1, max_size=3)))
        return FieldRules(allow=allow)
    deny = draw(st.sets(st.sampled_from(FIELD_PATHS), max_size=3))
    masks = draw(st.dictionaries(st.sampled_from([p for p in FIELD_PATHS]), st.sampled_from(["email", "phone", "partial", "redact"]), max_size=2))
    masks = {p: t for p, t in masks.items() if not any(p == d or p.startswith(d + ".") for d in deny)}
    return FieldRules(deny=tuple(deny), mask=masks)


def one_role_policy(fields: FieldRules) -> Policy:
    rule = Rule("member", "docs", frozenset({"read", "aggregate"}), parse_condition("doc.t == 1"), fields)
    return Policy(PolicyConfig(roles={"member": ()}, rules={"docs": {"member": rule}}, collections={}))


@_settings
@given(docs=st.lists(documents, min_size=1, max_size=25), fields=field_rules(), readable=st.lists(st.booleans(), min_size=25, max_size=25))
def test_the_pipeline_view_equals_find_shape(db, docs, fields, readable):
    policy = one_role_policy(fields)
    stored = [{**doc, "_id": i, "t": 1 if readable[i] else 2} for i, doc in enumerate(docs)]
    db.docs.delete_many({})
    db.docs.insert_many(stored)
    plan = policy.plan(ALICE_MEMBER, "read", "docs")
    expected = [plan.shape(doc) for doc in stored if plan.allows(doc)]
    found = list(db.docs.aggregate(rewrite_pipeline(policy, ALICE_MEMBER, "docs", [{"$sort": {"_id": 1}}])))
    assert canonical(found) == canonical(expected)


ALICE_MEMBER = Identity(id="alice", roles=["member"])
VISIBLE_FIELDS = ["a", "b", "c"]


@st.composite
def pipelines(draw):
    """Small pipelines over fields the generated rules never restrict (a, b, c)."""
    field = st.sampled_from(VISIBLE_FIELDS)
    scalar = st.one_of(st.integers(-2, 2), st.sampled_from(["x", "y", None, True]))
    stages = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["match", "project", "set", "unwind"]))
        if kind == "match":
            stages.append({"$match": {draw(field): draw(scalar)}})
        elif kind == "project":
            stages.append({"$project": {name: 1 for name in draw(st.sets(field, min_size=1))}})
        elif kind == "set":
            stages.append({"$set": {"made": {"$ifNull": ["$" + draw(field), "none"]}}})
        else:
            stages.append({"$unwind": {"path": "$" + draw(field), "preserveNullAndEmptyArrays": True}})
    if draw(st.booleans()):
        stages.append({"$group": {"_id": {"$type": "$" + draw(field)}, "n": {"$sum": 1}}})
        stages.append({"$sort": {"_id": 1}})
    else:
        stages.append({"$sort": {"_id": 1, draw(field): 1}})
    return stages


@_settings
@given(docs=st.lists(documents, min_size=1, max_size=20), pipeline=pipelines(),
       deny=st.sets(st.sampled_from(["x", "a.b", "b.x", "x.a"]), max_size=2),
       readable=st.lists(st.booleans(), min_size=20, max_size=20))
def test_a_pipeline_returns_what_it_returns_on_the_readable_part(db, docs, pipeline, deny, readable):
    policy = one_role_policy(FieldRules(deny=tuple(sorted(deny)), mask={"c.x": "email"}))
    stored = [{**doc, "_id": i, "t": 1 if readable[i] else 2} for i, doc in enumerate(docs)]
    plan = policy.plan(ALICE_MEMBER, "read", "docs")
    db.docs.delete_many({})
    db.docs.insert_many(stored)
    db.visible.delete_many({})
    visible = [plan.shape(doc) for doc in stored if plan.allows(doc)]
    if visible:
        db.visible.insert_many(visible)
    try:
        rewritten = rewrite_pipeline(policy, ALICE_MEMBER, "docs", pipeline)
    except FieldNotReadableError:
        return  # a stage named a field under a denied or masked path: refused, nothing to compare
    # Compared as multisets: after $unwind, documents tied on the sort keys may come in any order.
    through_gateway = sorted(repr(canonical(d)) for d in db.docs.aggregate(rewritten))
    on_readable_part = sorted(repr(canonical(d)) for d in db.visible.aggregate(pipeline))
    assert through_gateway == on_readable_part


# --- the view is a barrier: nothing the caller wrote runs before its $match --------------------

UNRESTRICTED = """
roles:
  member: {}
policies:
  docs:
    member:
      actions: [read, aggregate]
      when: doc.tenant == user.tenant_id
  other:
    member:
      actions: [read]
      when: doc.tenant == user.tenant_id
"""


def optimized_like_mongodb(stages):
    """Two of the rewrites MongoDB's optimizer documents (SecantusDB runs stages as written):
    a ``$match`` moves ahead of a ``$sort``, and adjacent ``$match`` stages become one
    ``$match`` of their ``$and``, whose operands it may evaluate in any order (here, the
    later first). Applied inside ``$lookup`` pipelines too."""
    merged: list = []
    for stage in stages:
        if "$lookup" in stage and "pipeline" in stage["$lookup"]:
            stage = {"$lookup": {**stage["$lookup"], "pipeline": optimized_like_mongodb(stage["$lookup"]["pipeline"])}}
        if "$match" not in stage:
            merged.append(stage)
            continue
        position = len(merged)
        while position and "$sort" in merged[position - 1]:
            position -= 1
        if position and "$match" in merged[position - 1]:
            merged[position - 1] = {"$match": {"$and": [stage["$match"], merged[position - 1]["$match"]]}}
        else:
            merged.insert(position, stage)
    return merged


FAILING_MATCH = {"$match": {"$expr": {"$gt": [{"$toInt": "$k"}, 0]}}}


@pytest.mark.parametrize("policy_text", [UNRESTRICTED, POLICY], ids=["no field restricted", "fields restricted"])
@pytest.mark.parametrize("pipeline", [
    [FAILING_MATCH],
    [{"$sort": {"k": 1}}, FAILING_MATCH],  # MongoDB moves a $match ahead of a $sort
    [{"$lookup": {"from": "other", "as": "o", "pipeline": [FAILING_MATCH]}}],
], ids=["source", "after a sort", "lookup"])
def test_a_callers_match_cannot_merge_into_the_views(db, policy_text, pipeline):
    """Another tenant's ``k`` is no number: a caller's ``$match`` merged into the view's would
    fail on it, with the value in the message. The view ends in a computed ``$replaceWith``,
    which no ``$match`` moves across; the view as built before, a bare ``$match`` where no
    field is restricted, lets the caller's merge into it."""
    db.docs.insert_many([{"_id": 1, "tenant": "a", "k": "1"}, {"_id": 2, "tenant": "b", "k": "secret"}])
    db.other.insert_many([{"_id": 10, "tenant": "a", "k": "1"}, {"_id": 11, "tenant": "b", "k": "secret"}])
    stages = rewrite_pipeline(load_policy(policy_text), ALICE, "docs", pipeline)
    views = [stages[:2]] + [stage["$lookup"]["pipeline"][:2] for stage in stages if "$lookup" in stage]
    for match, barrier in views:
        assert "$match" in match and "$replaceWith" in barrier
        assert isinstance(barrier["$replaceWith"], dict), "a bare path or variable may be seen through"
    optimized = optimized_like_mongodb(stages)
    assert optimized[:2] == stages[:2]
    assert [doc["_id"] for doc in db.docs.aggregate(optimized)] == [1]
    naive = without_barrier(stages)
    if policy_text == UNRESTRICTED:
        with pytest.raises(pymongo.errors.OperationFailure, match="secret"):
            list(db.docs.aggregate(optimized_like_mongodb(naive)))


def without_barrier(stages):
    """The stages with the views as built before: no ``$replaceWith`` where no field is restricted."""
    kept = []
    for stage in stages:
        if stage == _BARRIER:
            continue
        if "$lookup" in stage:
            stage = {"$lookup": {**stage["$lookup"], "pipeline": without_barrier(stage["$lookup"]["pipeline"])}}
        kept.append(stage)
    return kept
