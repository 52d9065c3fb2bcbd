"""The traps of DESIGN.md section 3, one named test each.

Every test runs the same documents through the engine's plan and through the naive
translation a first attempt would write, against the real database: the plan must match
exactly the documents the evaluator allows, and the naive filter must not (which shows the
test can fail).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from permission_mongo.policy import COLLATION, Identity, load_policy

POLICY = """
roles:
  member: {}
policies:
  docs:
    member:
      actions: [read]
      when: {condition}
"""


def _ids(collection, filter_: dict[str, Any], collation: dict[str, Any] = COLLATION) -> set[int]:
    return {doc["_id"] for doc in collection.find(filter_, {"_id": 1}, collation=collation)}


def check_trap(db, condition: str, documents: list[dict[str, Any]], naive: dict[str, Any], *,
               identity: Identity | None = None, allowed: set[int]) -> None:
    """The plan's filter, the evaluator and ``allowed`` agree; the naive filter does not."""
    identity = identity or Identity(id="u1", tenant_id="acme", roles=["member"])
    policy = load_policy(POLICY.replace("{condition}", repr(condition)))
    collection = db["docs"]
    collection.insert_many([{"_id": i, **doc} for i, doc in enumerate(documents)])
    plan = policy.plan(identity, "read", "docs")

    evaluated = {i for i, doc in enumerate(documents) if policy.allows(identity, "read", "docs", doc)}
    assert evaluated == allowed
    assert _ids(collection, plan.filter) == allowed
    assert _ids(collection, naive) != allowed, "the naive translation should have failed here"


def test_equality_does_not_match_an_array_holding_the_value(db):
    check_trap(db, 'doc.status == "open"',
               [{"status": "open"}, {"status": ["open", "closed"]}, {"status": "closed"}],
               naive={"status": "open"}, allowed={0})


def test_in_does_not_match_an_array_holding_a_member(db):
    check_trap(db, 'doc.status in ["open", "draft"]',
               [{"status": "open"}, {"status": ["open"]}, {"status": "closed"}],
               naive={"status": {"$in": ["open", "draft"]}}, allowed={0})


def test_ordering_does_not_match_an_array_holding_a_smaller_value(db):
    check_trap(db, "doc.amount < 5",
               [{"amount": 1}, {"amount": [1, 10]}, {"amount": 10}],
               naive={"amount": {"$lt": 5}}, allowed={0})


def test_not_equal_does_not_match_a_missing_field(db):
    check_trap(db, 'doc.status != "closed"',
               [{"status": "open"}, {}, {"status": "closed"}],
               naive={"status": {"$ne": "closed"}}, allowed={0})


def test_not_in_does_not_match_a_missing_field(db):
    check_trap(db, '!(doc.status in ["closed"])',
               [{"status": "open"}, {}, {"status": "closed"}],
               naive={"status": {"$nin": ["closed"]}}, allowed={0})


def test_negated_comparison_does_not_match_a_missing_field(db):
    check_trap(db, "!(doc.amount > 5)",
               [{"amount": 1}, {}, {"amount": 10}],
               naive={"amount": {"$not": {"$gt": 5}}}, allowed={0})


def test_not_has_needs_the_parent_to_exist(db):
    # has(doc.a.b) is an error when doc.a is missing; $exists: false matches it anyway.
    check_trap(db, "!has(doc.meta.archived)",
               [{"meta": {}}, {}, {"meta": {"archived": True}}],
               naive={"meta.archived": {"$exists": False}}, allowed={0})


def test_user_without_tenant_sees_no_document_without_one(db):
    # {tenant_id: null} matches every document with no tenant field at all.
    check_trap(db, "doc.tenant_id == user.tenant_id",
               [{"tenant_id": "acme"}, {}, {"tenant_id": None}],
               naive={"tenant_id": None},
               identity=Identity(id="u1", tenant_id=None, roles=["member"]), allowed=set())


def test_null_literal_does_not_match_a_missing_field(db):
    check_trap(db, "doc.deleted_at == null",
               [{"deleted_at": None}, {}, {"deleted_at": "2024-01-01"}],
               naive={"deleted_at": None}, allowed={0})


def test_true_is_not_one(db):
    # Python's True == 1 and True in [1]: an evaluator on Python equality gets these wrong.
    policy = load_policy(POLICY.replace("{condition}", repr("doc.level in [1, 2]")))
    ident = Identity(id="u1", roles=["member"])
    assert policy.allows(ident, "read", "docs", {"level": 1})
    assert not policy.allows(ident, "read", "docs", {"level": True})
    assert (True in [1, 2]) is True  # the naive evaluation
    check_trap(db, "doc.flag == true",
               [{"flag": True}, {"flag": 1}, {"flag": 1.0}],
               naive={"$expr": {"$eq": [{"$toBool": "$flag"}, True]}}, allowed={0})


def test_nan_equals_nothing(db):
    check_trap(db, "doc.score == user.attributes.score",
               [{"score": math.nan}, {"score": 1.0}],
               naive={"score": math.nan},
               identity=Identity(id="u1", roles=["member"], attributes={"score": math.nan}), allowed=set())


def test_nan_is_not_ordered(db):
    # CEL: NaN < 5 is false, so !(NaN < 5) is true; $gte misses NaN.
    check_trap(db, "!(doc.score < 5)",
               [{"score": math.nan}, {"score": 1}, {"score": 7}],
               naive={"score": {"$gte": 5}}, allowed={0, 2})


def test_dotted_path_does_not_cross_an_array_of_subdocuments(db):
    check_trap(db, 'doc.address.city == "Paris"',
               [{"address": {"city": "Paris"}}, {"address": [{"city": "Paris"}]}, {"address": {"city": "Rome"}}],
               naive={"address.city": "Paris"}, allowed={0})


def test_user_value_that_is_an_operator_is_not_one(db):
    # A caller-controlled attribute {"$ne": null} dropped into a filter would match everything.
    check_trap(db, "doc.owner_id == user.attributes.owner",
               [{"owner_id": "u1"}, {"owner_id": "u2"}],
               naive={"owner_id": {"$ne": None}},
               identity=Identity(id="u1", roles=["member"], attributes={"owner": {"$ne": None}}), allowed=set())


def test_user_string_that_looks_like_a_field_path_stays_a_string(db):
    # In an aggregation expression "$owner_id" is a field path; values go in as $literal.
    check_trap(db, "doc.tags == user.attributes.tags",
               [{"tags": ["$owner_id"], "owner_id": "x"}, {"tags": ["x"], "owner_id": "x"}],
               naive={"$expr": {"$eq": ["$tags", ["$owner_id"]]}},
               identity=Identity(id="u1", roles=["member"], attributes={"tags": ["$owner_id"]}), allowed={0})


def test_strings_compare_under_the_simple_collation(db):
    # Under a case-insensitive collation "ACME" == "acme"; the plan insists on the simple one.
    policy = load_policy(POLICY.replace("{condition}", repr("doc.tenant_id == user.tenant_id")))
    ident = Identity(id="u1", tenant_id="acme", roles=["member"])
    collection = db["docs"]
    collection.insert_many([{"_id": 0, "tenant_id": "acme"}, {"_id": 1, "tenant_id": "ACME"}])
    plan = policy.plan(ident, "read", "docs")
    assert plan.collation == {"locale": "simple"}
    assert _ids(collection, plan.filter, plan.collation) == {0}
    assert not policy.allows(ident, "read", "docs", {"tenant_id": "ACME"})
    case_insensitive = {"locale": "en", "strength": 2}
    assert _ids(collection, plan.filter, case_insensitive) == {0, 1}, "the naive collation should have failed"


def test_a_number_no_bson_type_holds_denies_instead_of_failing(db):
    # A JWT claim may carry any integer; one beyond 64 bits cannot even be sent to MongoDB.
    policy = load_policy(POLICY.replace("{condition}", repr("doc.n == user.attributes.n || doc.n < user.attributes.n")))
    ident = Identity(id="u1", roles=["member"], attributes={"n": 2**70})
    db.docs.insert_many([{"_id": 0, "n": 1}, {"_id": 1, "n": 2**62}])
    plan = policy.plan(ident, "read", "docs")
    assert not plan.allowed and _ids(db.docs, plan.filter) == set()
    assert not policy.allows(ident, "read", "docs", {"n": 1})
    with pytest.raises(OverflowError):  # the naive translation
        _ids(db.docs, {"n": {"$lt": 2**70}})


def test_integers_and_doubles_compare_exactly_beyond_2_to_the_53(db):
    # A deliberate deviation from CEL, which compares an int with a double through double
    # (conformance case not_lt_dyn_int_big_lossy_double): MongoDB compares them exactly, and a
    # filter can only be exact if the evaluator does the same.
    conditions = {
        "doc.n == 9007199254740992.0": lambda n: n == 2**53,
        "doc.n > 9007199254740992.0": lambda n: n > 2**53,
        "doc.n < 9223372036854775808.0": lambda n: n < 2**63,
        "doc.n == user.attributes.big": lambda n: n == 2**53 + 1,
    }
    cel = {  # the same conditions read through double, as CEL does
        "doc.n == 9007199254740992.0": lambda n: float(n) == 2.0**53,
        "doc.n > 9007199254740992.0": lambda n: float(n) > 2.0**53,
        "doc.n < 9223372036854775808.0": lambda n: float(n) < 2.0**63,
        "doc.n == user.attributes.big": lambda n: float(n) == float(2**53 + 1),
    }
    values = [2**53, 2**53 + 1, 2**63 - 1, 9007199254740992.0, 2.0**63]
    db.docs.insert_many([{"_id": i, "n": n} for i, n in enumerate(values)])
    ident = Identity(id="u1", roles=["member"], attributes={"big": 2**53 + 1})
    for condition, exact in conditions.items():
        policy = load_policy(POLICY.replace("{condition}", repr(condition)))
        allowed = {i for i, n in enumerate(values) if exact(n)}
        plan = policy.plan(ident, "read", "docs")
        assert _ids(db.docs, plan.filter) == allowed, condition
        assert {i for i, n in enumerate(values) if policy.allows(ident, "read", "docs", {"n": n})} == allowed
        assert {i for i, n in enumerate(values) if cel[condition](n)} != allowed, "CEL's reading should differ"
def test_a_stored_64_bit_integer_is_a_number_like_any_other(db):
    # bson decodes a stored int64 as Int64, a subclass of int: range membership, O(1) for an
    # exact int, scans for it (2**62 steps here), and every evaluation on the document hung.
    policy = load_policy(POLICY.replace("{condition}", repr("doc.n > 2")))
    ident = Identity(id="u1", roles=["member"])
    db.docs.insert_one({"_id": 0, "n": 2**62})
    stored = db.docs.find_one({"_id": 0})
    assert type(stored["n"]) is not int and isinstance(stored["n"], int)
    assert policy.allows(ident, "read", "docs", stored)
    assert _ids(db.docs, policy.plan(ident, "read", "docs").filter) == {0}
