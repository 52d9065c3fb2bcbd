"""Filter combination: the small algebra the compiler builds plans with."""

from permission_mongo.policy._compile import NONE, conjoin, disjoin


def test_conjoin_merges_operators_on_one_field():
    assert conjoin({"a": {"$exists": True}}, {"a": {"$eq": 1}}) == {"a": {"$eq": 1}}


def test_conjoin_keeps_top_level_operators_apart():
    # Two $expr (or $or) are two conditions, never one expression with two operators.
    left, right = {"$expr": {"$eq": ["$a", 1]}}, {"$expr": {"$ne": ["$b", 2]}}
    assert conjoin(left, right) == {"$and": [left, right]}


def test_all_and_none():
    assert conjoin({}, {"a": 1}) == {"a": 1}
    assert conjoin(NONE, {"a": 1}) is NONE
    assert disjoin(NONE, {"a": 1}) == {"a": 1}
    assert disjoin({}, {"a": 1}) == {}
    assert disjoin(NONE, NONE) is NONE


def test_disjoin_drops_a_part_implied_by_a_weaker_one():
    weaker = {"t": {"$eq": "acme"}}
    stronger = {"t": {"$eq": "acme"}, "o": {"$eq": "u1"}}
    assert disjoin(stronger, weaker) == weaker
    assert disjoin(weaker, {"o": {"$eq": "u1"}}) == {"$or": [weaker, {"o": {"$eq": "u1"}}]}
