"""Patterns that can backtrack exponentially are refused with a 400 before they reach the
database (issue 8, class 6); safe patterns still work. The documents hold a text on which
``^(a+)+$`` backtracks: if the gateway sent the pattern, the database would answer (slowly) and
these tests would see a 200.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .harness import Gateway, assert_error, user_client

NOTES = "/v1/data/notes"
EVIL = "^(a+)+$"


@pytest.fixture
def reader(notes_gateway: Gateway, tenant: str) -> Iterator[httpx.Client]:
    with user_client(notes_gateway, "r1", tenant, ["reader"]) as client:
        yield client


@pytest.fixture
def notes(notes_database: Any, tenant: str) -> None:
    notes_database.notes.insert_many([
        {"tenant_id": tenant, "labels": ["public"], "title": "a" * 16 + "!", "level": 1},
        {"tenant_id": tenant, "labels": ["public"], "title": "acme report", "level": 2},
        {"tenant_id": tenant, "labels": ["public"], "title": "ACME plan", "level": 3},
    ])


@pytest.mark.parametrize("filter_", [
    {"title": {"$regex": EVIL}},
    {"title": {"$regex": "^(a+) +$", "$options": "x"}},
    {"title": {"$regularExpression": {"pattern": EVIL, "options": ""}}},
    {"title": {"$in": [{"$regularExpression": {"pattern": EVIL, "options": "i"}}]}},
    {"title": {"$not": {"$regularExpression": {"pattern": EVIL, "options": ""}}}},
    {"$expr": {"$regexMatch": {"input": "$title", "regex": EVIL}}},
    {"title": {"$regex": "^(a|aa)+$"}},
    {"title": {"$regex": "(a)\\1"}},
], ids=repr)
@pytest.mark.parametrize("endpoint", ["find", "count", "get"])
def test_an_exponential_pattern_is_a_400_that_says_why(
    reader: httpx.Client, notes: None, filter_: dict[str, Any], endpoint: str
) -> None:
    if endpoint == "get":
        response = reader.get(NOTES, params={"filter": json.dumps(filter_)})
    else:
        response = reader.post(f"{NOTES}/{endpoint}", json={"filter": filter_})
    error = assert_error(response, 400, "BAD_REQUEST")
    assert error["details"]["reason"] in ("nested_quantifier", "backreference")
    assert "exponential" in error["message"]


def test_a_pattern_from_a_field_is_refused(reader: httpx.Client, notes: None) -> None:
    filter_ = {"$expr": {"$regexMatch": {"input": "$title", "regex": "$title"}}}
    error = assert_error(reader.post(f"{NOTES}/find", json={"filter": filter_}), 400, "BAD_REQUEST")
    assert "constant" in error["message"] and error["details"] == {"operator": "$regexMatch"}


def test_safe_patterns_still_work(reader: httpx.Client, notes: None) -> None:
    for filter_, expected in [
        ({"title": {"$regex": "^acme", "$options": "i"}}, 2),
        ({"title": {"$regularExpression": {"pattern": "(?i)^acme", "options": ""}}}, 2),
        ({"title": {"$regex": "^a+!$"}}, 1),
        ({"$expr": {"$regexMatch": {"input": "$title", "regex": "report$"}}}, 1),
    ]:
        response = reader.post(f"{NOTES}/count", json={"filter": filter_})
        assert response.json() == {"count": expected}, (filter_, response.text)


def test_a_pattern_over_the_length_limit_is_a_400(reader: httpx.Client, notes: None) -> None:
    error = assert_error(reader.post(f"{NOTES}/find", json={"filter": {"title": {"$regex": "a" * 513}}}), 400, "BAD_REQUEST")
    assert error["details"] == {"operator": "$regex", "reason": "too_long", "limit": 512}


def test_operators_beside_a_regex_are_kept(reader: httpx.Client, notes: None) -> None:
    # Extended JSON's legacy {"$regex", "$options"} form: json_util alone reads this object as
    # a bare regular expression and drops "$ne" without a word (the count would be 2).
    filter_ = {"title": {"$regex": "^acme", "$options": "i", "$ne": "ACME plan"}}
    response = reader.post(f"{NOTES}/count", json={"filter": filter_})
    assert response.json() == {"count": 1}, response.text
    evil = {"title": {"$regex": EVIL, "$options": "i", "$ne": "x"}}
    assert_error(reader.post(f"{NOTES}/count", json={"filter": evil}), 400, "BAD_REQUEST")
