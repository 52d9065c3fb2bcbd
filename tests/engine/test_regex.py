"""Regular expressions that can backtrack exponentially never reach the database (issue 8,
class 6): refused with a QueryError (a 400) saying why and how to rewrite, wherever a caller's
pattern goes: ``$regex`` (with ``$options``), BSON regular expression values in a filter (as a
value, in ``$in``, ``$nin``, ``$all``, ``$not``, ``$elemMatch``), and the expression operators
``$regexMatch``, ``$regexFind`` and ``$regexFindAll`` in ``$expr`` and in pipeline stages.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from bson import Regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from permission_mongo.policy import Identity, QueryError, check_expression, check_filter, load_policy, rewrite_pipeline
from permission_mongo.policy._regex import MAX_PATTERN_LENGTH, MAX_UNBOUNDED, MAX_WAYS, check_pattern
from permission_mongo.store._errors import InvalidQueryError, store_error
from permission_mongo.store._limits import TimeLimit


@contextmanager
def translated_errors() -> Iterator[None]:
    """The block's pymongo errors as the gateway's store would raise them (for the sync driver)."""
    try:
        yield
    except Exception as exc:
        error = store_error(exc, TimeLimit(10_000))
        if error is None:
            raise
        raise error from exc


def anything(path: str) -> None:
    """A check_field that allows every field: these tests are about patterns."""


def refusal(pattern: str, options: str = "") -> QueryError:
    with pytest.raises(QueryError) as info:
        check_pattern(pattern, options, where="the filter on 'name'")
    return info.value


# --- what is refused, and why -----------------------------------------------------------------

REFUSED = [
    # nested quantifiers, at any depth, whatever the quantifier
    ("(a+)+", "nested_quantifier"),
    ("(a*)*", "nested_quantifier"),
    ("(a+)*$", "nested_quantifier"),
    ("^(\\w+\\s?)*$", "nested_quantifier"),
    ("(?:x+y?)+", "nested_quantifier"),
    ("((ab)*c)+", "nested_quantifier"),
    ("(a{1,3}){2,}", "nested_quantifier"),
    ("(a+){2}", "nested_quantifier"),  # an exact count still repeats the choice
    ("(?=a+)+", "nested_quantifier"),
    ("(?<n>a+)+", "nested_quantifier"),
    ("(a+)+?", "nested_quantifier"),
    ("(a+)++", "nested_quantifier"),
    ("(?i:a+)+", "nested_quantifier"),
    ("(\\N{2,5})+", "nested_quantifier"),  # \N{2,5} is \N repeated, not a character name
    # quantified alternations
    ("(a|aa)+", "nested_quantifier"),
    ("(a|b)*", "nested_quantifier"),
    ("^(a|a){20}$", "nested_quantifier"),
    ("((?:a|b)c)+", "nested_quantifier"),
    # a quantifier on a quantifier
    ("a{2}{3}", "nested_quantifier"),
    ("a**", "nested_quantifier"),
    # backreferences, recursion, subroutines, conditionals
    ("(a)\\1", "backreference"),
    ("(a*)b\\12", "backreference"),
    ("(?<n>a)\\k<n>", "backreference"),
    ("(?<n>a)\\k'n'", "backreference"),
    ("(?<n>a)\\k{n}", "backreference"),
    ("(a)\\g{1}", "backreference"),
    ("(a)\\g1", "backreference"),
    ("(a)\\g{-1}", "backreference"),
    ("(?<n>a)\\g<n>", "backreference"),
    ("(?P<n>a)(?P=n)", "backreference"),
    ("(?P<n>a)(?P>n)", "backreference"),
    ("a(?R)?b", "backreference"),
    ("(a)(?1)", "backreference"),
    ("(a)(?-1)", "backreference"),
    ("(?<n>a)(?&n)", "backreference"),
    ("(a)?(?(1)b|c)", "backreference"),
    # verbs and callouts
    ("(*LIMIT_MATCH=100000000)a", "verb"),
    ("a(*SKIP)b", "verb"),
    ("a(?C1)b", "callout"),
    # exponential without nesting: optional parts and alternatives in sequence
    ("a?" * 17 + "a" * 17, "too_many_choices"),
    ("(a|aa)" * 17, "too_many_choices"),
    ("a*" * (MAX_UNBOUNDED + 1) + "b", "too_many_quantifiers"),
    # too long
    ("a" * (MAX_PATTERN_LENGTH + 1), "too_long"),
]


@pytest.mark.parametrize(("pattern", "reason"), REFUSED, ids=[p[:40] for p, _ in REFUSED])
def test_patterns_that_can_backtrack_exponentially_are_refused(pattern: str, reason: str) -> None:
    error = refusal(pattern)
    assert error.details["reason"] == reason
    assert "the filter on 'name'" in error.message


def test_the_message_says_why_and_how_to_rewrite() -> None:
    error = refusal("^(a+)+$")
    assert error.message == (
        "the filter on 'name': the regular expression '^(a+)+$' is refused at character 2: the group "
        "'(a+)' is repeated by + and holds the quantifier +, so it can backtrack exponentially; "
        "rewrite it so that no repeated group holds a choice: (a+)+ as a+, (a|b)+ as [ab]+, "
        "(?:x+y?)+ as [xy]+ if that is what you mean"
    )
    assert error.details == {"operator": "$regex", "reason": "nested_quantifier", "position": 2}
    assert "backreferences" in refusal("(a)\\1").message
    assert f"at most {MAX_PATTERN_LENGTH}" in refusal("a" * 600).message


SAFE = [
    "^abc", "foo.*bar", "[a-z]+@example\\.com$", "(?i)^acme", "^acme", "acme$", "(ab)+", "(?:abc)*",
    "^\\d{3}-\\d{4}$", "^[A-Z]{2}\\d+$", "\\bword\\b", "^https?://", "(?:https?://)?example\\.com",
    "^(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\\b", "^\\s*\\w+\\s*=\\s*\\w+\\s*$",
    "^\\+?[0-9]{1,3}[-. ]?\\(?[0-9]{3}\\)?[-. ]?[0-9]{3}[-. ]?[0-9]{4}$",
    "(foo|bar)?baz", "a+?b", "a++b", "(?>a+)b", "^(?=.*\\d)(?=.*[a-z]).{8,}$", 
    "café", "[()+*]+", "\\(a+\\)+", "[(a+)]+", "[\\]+]+", "[]+]+", "[^]+]+", "[[:alpha:]]+",
    "(?P<name>ab)+", "((?:ab){2})+", "(a)+", "(?#a comment)a+", "a{,3}",
    "(\\.\\d)+", "x{", "a{x}", "\\\\(a)+",
]


@pytest.mark.parametrize("pattern", SAFE)
def test_common_safe_patterns_are_accepted(pattern: str) -> None:
    check_pattern(pattern, "", where="test")


# --- the scanner reads PCRE, not text ---------------------------------------------------------

@pytest.mark.parametrize(("pattern", "options"), [
    ("(a+) +", "x"),            # under x, the space is not pattern: (a+)+
    ("(a+)\t*", "x"),
    ("(a+)#c\n+", "x"),         # a comment between the group and its quantifier
    ("(?x)(a+) +", ""),
    ("(?x:b)(?x)(a+) +", ""),
    ("(?^x)(a+) +", ""),
    ("(?i)(?x)(a+) +", ""),
])
def test_the_x_flag_is_followed(pattern: str, options: str) -> None:
    assert refusal(pattern, options).details["reason"] == "nested_quantifier"
    if options:  # the same pattern without the flag is a group and a repeated space
        check_pattern(pattern, "", where="test")


@pytest.mark.parametrize(("pattern", "options"), [("(?x:b)(a+) +", ""), ("(?x:(a+)) +", ""), ("#(a+)\n", ""),
                                                 ("(?-x:(a+) +)", "x")])
def test_the_x_flag_ends_where_it_ends(pattern: str, options: str) -> None:
    check_pattern(pattern, options, where="test")


def test_a_comment_under_x_hides_nothing_after_its_line() -> None:
    check_pattern("#(a+)+", "x", where="test")  # all comment
    assert refusal("#note\n(a+)+", "x").details["reason"] == "nested_quantifier"


@pytest.mark.parametrize("pattern", ["(a", "a)", "[a", "\\", "a\\Q", "(?<1a>x)", "(?xx)a", "(?z)a", "+a", "a|*", "a{3,2}"])
def test_malformed_patterns_are_refused_before_the_database(pattern: str) -> None:
    assert refusal(pattern).details["reason"] in ("syntax", "unsupported_syntax")


# --- every place a caller's pattern reaches the database --------------------------------------

BAD = "(a+)+$"
FILTERS: list[dict[str, Any]] = [
    {"name": {"$regex": BAD}},
    {"name": {"$regex": BAD, "$options": "i"}},
    {"name": {"$regex": "(a+) +$", "$options": "x"}},
    {"name": {"$regex": Regex("(a+) +$", "x")}},
    {"name": {"$regex": Regex("(a+) +$"), "$options": "x"}},
    {"name": Regex(BAD)},
    {"name": re.compile("(a+) +$", re.VERBOSE)},
    {"name": {"$in": ["x", Regex(BAD)]}},
    {"name": {"$nin": [Regex(BAD)]}},
    {"name": {"$all": [Regex(BAD)]}},
    {"name": {"$not": Regex(BAD)}},
    {"name": {"$not": {"$regex": BAD}}},
    {"name": {"$eq": Regex(BAD)}},
    {"tags": {"$elemMatch": {"$regex": BAD}}},
    {"items": {"$elemMatch": {"sku": Regex(BAD)}}},
    {"$or": [{"a": 1}, {"$and": [{"name": {"$regex": BAD}}]}]},
    {"$expr": {"$regexMatch": {"input": "$name", "regex": BAD}}},
    {"$expr": {"$regexMatch": {"input": "$name", "regex": Regex(BAD)}}},
    {"$expr": {"$regexMatch": {"input": "$name", "regex": "(a+) +$", "options": "x"}}},
    {"$expr": {"$eq": [{"$regexFind": {"input": "$name", "regex": BAD}}, None]}},
    {"$expr": {"$gt": [{"$size": {"$regexFindAll": {"input": "$name", "regex": BAD}}}, 0]}},
]


@pytest.mark.parametrize("filter_", FILTERS, ids=repr)
def test_every_filter_position_is_checked(filter_: dict[str, Any]) -> None:
    with pytest.raises(QueryError) as info:
        check_filter(filter_, anything)
    assert info.value.details["reason"] == "nested_quantifier"


@pytest.mark.parametrize("operand", [
    {"input": "$name", "regex": "$pattern"},               # a field path: stored data as a pattern
    {"input": "$name", "regex": "$$ROOT.pattern"},
    {"input": "$name", "regex": "$$p"},
    {"input": "$name", "regex": {"$concat": ["(a+)", "+"]}},
    {"input": "$name", "regex": {"$literal": 5}},
    {"input": "$name", "regex": 5},
    {"input": "$name", "regex": "a", "options": "$flags"},
    {"input": "$name", "regex": "a", "options": {"$concat": ["x"]}},
    "not an object",
])
@pytest.mark.parametrize("op", ["$regexMatch", "$regexFind", "$regexFindAll"])
def test_an_expression_pattern_must_be_a_constant(op: str, operand: Any) -> None:
    with pytest.raises(QueryError) as info:
        check_expression({op: operand}, anything, variables=["p"])
    assert info.value.details["operator"] == op


def test_safe_patterns_pass_every_position() -> None:
    check_filter({"name": {"$regex": "^acme", "$options": "i"}, "tags": {"$in": [Regex("^a"), "b"]},
                  "$expr": {"$regexMatch": {"input": "$name", "regex": "(ab)+", "options": "i"}}}, anything)
    check_expression({"$regexFind": {"input": "$name", "regex": {"$literal": "$"}}}, anything)
    with pytest.raises(QueryError):
        check_expression({"$regexFind": {"input": "$name", "regex": {"$literal": "(a+)+"}}}, anything)


POLICY = """
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
ALICE = Identity(id="alice", tenant_id="a", roles=["member"])
MATCH = {"$regexMatch": {"input": "$name", "regex": BAD}}


@pytest.mark.parametrize("pipeline", [
    [{"$match": {"name": {"$regex": BAD}}}],
    [{"$match": {"$expr": MATCH}}],
    [{"$project": {"hit": MATCH}}],
    [{"$addFields": {"hit": {"$regexFind": {"input": "$name", "regex": BAD}}}}],
    [{"$group": {"_id": MATCH}}],
    [{"$facet": {"a": [{"$match": {"name": Regex(BAD)}}]}}],
    [{"$lookup": {"from": "other", "as": "o", "pipeline": [{"$match": {"name": {"$in": [Regex(BAD)]}}}]}}],
    [{"$unionWith": {"coll": "other", "pipeline": [{"$set": {"hit": MATCH}}]}}],
    [{"$lookup": {"from": "other", "let": {"p": "$name"}, "as": "o",
                  "pipeline": [{"$match": {"$expr": {"$regexMatch": {"input": "$name", "regex": "$$p"}}}}]}}],
], ids=repr)
def test_every_pipeline_position_is_checked(pipeline: list[dict[str, Any]]) -> None:
    with pytest.raises(QueryError):
        rewrite_pipeline(load_policy(POLICY), ALICE, "docs", pipeline)


# --- what the database does with what the checker lets through --------------------------------

ATOMS = ["a", "b", ".", "\\d", "\\w", "[ab]", "[^a]", "\\(", "\\\\", "\\Q+(\\E", "[(+]", "^", "$", " ", "#", "é",
         "\\x41", "\\x{42}", "\\p{L}", "\\z", "\\Z", "\\b", "(?i)", "(?x)"]
QUANTIFIERS = ["", "", "*", "+", "?", "{2}", "{1,3}", "{2,}", "*?", "++", "{,2}"]


@st.composite
def patterns(draw: st.DrawFn, depth: int = 0) -> str:
    pieces = []
    for _ in range(draw(st.integers(1, 4))):
        if depth < 2 and draw(st.integers(0, 3)) == 0:
            opener = draw(st.sampled_from(["(", "(?:", "(?=", "(?!", "(?>", "(?<n>", "(?i:", "(?x:"]))
            inner = draw(patterns(depth + 1))
            if draw(st.booleans()):
                inner += "|" + draw(patterns(depth + 1))
            piece = opener + inner + ")"
        else:
            piece = draw(st.sampled_from(ATOMS))
        pieces.append(piece + draw(st.sampled_from(QUANTIFIERS)))
    return "".join(pieces)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pattern=patterns(), options=st.sampled_from(["", "i", "x", "s", "m"]))
def test_an_accepted_pattern_compiles_in_python_and_runs_on_the_database(db, pattern: str, options: str) -> None:
    try:
        check_pattern(pattern, options, where="test")
    except QueryError as error:
        assert error.details["reason"] in REASONS
        return
    flags = re.VERBOSE if "x" in options else 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        re.compile(pattern.replace("\\z", "\\Z"), flags)
    db.docs.replace_one({"_id": 1}, {"name": "a (b) c"}, upsert=True)  # a pattern compiles when it meets a value
    with translated_errors():  # the embedded database runs it in both places: no 500
        list(db.docs.find({"name": {"$regex": pattern, "$options": options}}))
        list(db.docs.aggregate([{"$match": {"$expr": {
            "$regexMatch": {"input": "$name", "regex": {"$literal": pattern}, "options": options}}}}]))


REASONS = {"nested_quantifier", "backreference", "verb", "callout", "too_many_choices", "too_many_quantifiers",
           "too_long", "syntax", "unsupported_syntax"}


@pytest.mark.parametrize("pattern", ["\\p{L}+", "\\x{41}", "^\\Q(a+)+\\E$", "(?<name>ab)", "\\N{U+41}", "(?|a|b)",
                                     "\\h+", "(?U)a+"])
def test_pcre_only_syntax_is_refused_since_the_embedded_database_cannot_run_it(db, pattern: str) -> None:
    assert refusal(pattern).details["reason"] == "unsupported_syntax"
    db.docs.insert_one({"name": "a"})
    # What the naive gateway would have met: the embedded database fails on it (a 500).
    with pytest.raises(Exception) as info, translated_errors():
        list(db.docs.aggregate([{"$match": {"$expr": {"$regexMatch": {"input": "$name", "regex": pattern}}}}]))
    assert not isinstance(info.value, InvalidQueryError)


@pytest.fixture
def names(db):
    db.docs.insert_many([{"_id": i, "name": name} for i, name in enumerate(["acme", "ACME corp", "abab", "x"])])
    return db


def test_accepted_patterns_still_match(names) -> None:
    for pattern, options, expected in [("^acme", "i", {0, 1}), ("(ab)+$", "", {2}), ("(?i)corp$", "", {1})]:
        filter_ = {"name": {"$regex": pattern, "$options": options}}
        check_filter(filter_, anything)
        assert {d["_id"] for d in names.docs.find(filter_)} == expected


def test_the_ways_bound_is_a_bound_on_the_choices() -> None:
    check_pattern("a?" * 16 + "a" * 16, "", where="test")  # 2**16 ways: the limit itself
    assert 2**16 == MAX_WAYS
    assert refusal("a?" * 17).details["reason"] == "too_many_choices"

