"""Find and count: no oracle (invariant 3), the operator allow-list, bad input (invariant 7).

On the notes policy a reader may not read ``secret`` or ``meta.internal`` and sees ``email``
only masked; an auditor sees only title, labels, level and audit. Naming any field the caller
may not read unmasked, anywhere in a filter, sort or projection, is refused, and the refusal
does not depend on the data (it cannot be used to probe values).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from bson import ObjectId

from .harness import Gateway, assert_error, ejson, user_client

NOTES = "/v1/data/notes"


@pytest.fixture
def reader(notes_gateway: Gateway, tenant: str) -> Iterator[httpx.Client]:
    with user_client(notes_gateway, "r1", tenant, ["reader"]) as client:
        yield client


@pytest.fixture
def notes(notes_database: Any, tenant: str) -> list[dict[str, Any]]:
    documents = [
        {"_id": ObjectId(), "tenant_id": tenant, "owner_id": "w1", "title": f"n{i}", "labels": ["public"],
         "level": i, "secret": f"s{i}", "email": f"user{i}@example.com", "meta": {"internal": i, "tag": "t"},
         "items": [{"sku": "a", "cost": i}]}
        for i in range(5)
    ]
    documents.append({"_id": ObjectId(), "tenant_id": tenant, "title": "private", "labels": [], "level": 9})
    notes_database.notes.insert_many(documents)
    return documents


HIDDEN_FILTERS = [
    ({"secret": "s1"}, "secret"),
    ({"secret": {"$exists": True}}, "secret"),
    ({"email": {"$regex": "^user1"}}, "email"),
    ({"meta.internal": 1}, "meta.internal"),
    ({"meta": {"internal": 1, "tag": "t"}}, "meta"),
    ({"meta": {"$type": "object"}}, "meta"),
    ({"$and": [{"level": 1}, {"secret": "s1"}]}, "secret"),
    ({"$or": [{"level": 1}, {"$nor": [{"secret": "s1"}]}]}, "secret"),
    ({"level": {"$not": {"$gt": 1}}, "secret": {"$not": {"$eq": "s"}}}, "secret"),
    ({"meta": {"$elemMatch": {"internal": 1}}}, "meta"),
    ({"items": {"$all": [{"$elemMatch": {"sku": "a"}}]}, "meta": {"$all": [{"$elemMatch": {"x": 1}}]}}, "meta"),
    ({"$expr": {"$eq": ["$secret", "s1"]}}, "secret"),
    ({"$expr": {"$gt": [{"$strLenCP": "$email"}, 3]}}, "email"),
    ({"$expr": {"$eq": ["$meta", {"$literal": {}}]}}, "meta"),
    ({"secret.0": "s"}, "secret.0"),
]


@pytest.mark.parametrize("filter_, field", HIDDEN_FILTERS, ids=repr)
def test_filters_naming_unreadable_fields_are_refused(
    reader: httpx.Client, notes: list[dict[str, Any]], filter_: dict[str, Any], field: str
) -> None:
    for response in (
        reader.post(f"{NOTES}/find", json={"filter": filter_}),
        reader.get(NOTES, params={"filter": json.dumps(filter_)}),
        reader.post(f"{NOTES}/count", json={"filter": filter_}),
    ):
        error = assert_error(response, 400, "FIELD_NOT_READABLE")
        assert error["details"] == {"field": field}


def test_the_refusal_does_not_depend_on_the_data(reader: httpx.Client, notes: list[dict[str, Any]]) -> None:
    answers = {
        json.dumps(reader.post(f"{NOTES}/count", json={"filter": {"secret": value}}).json()["error"]["message"])
        for value in ("s1", "nope")
    }
    assert len(answers) == 1


def test_positions_do_not_get_around_field_rules(notes_gateway: Gateway, tenant: str, notes: list[dict[str, Any]]) -> None:
    # The auditor may read labels but not items: items.0.cost names items.cost.
    with user_client(notes_gateway, "a1", tenant, ["auditor"]) as auditor:
        assert_error(auditor.post(f"{NOTES}/find", json={"filter": {"items.0.cost": 1}}), 400, "FIELD_NOT_READABLE")
        assert auditor.post(f"{NOTES}/find", json={"filter": {"labels.0": "public"}}).status_code == 200


@pytest.mark.parametrize("sort", [["secret"], ["-email"], ["level", "-meta.internal"], ["meta"]])
def test_sorting_by_unreadable_fields_is_refused(reader: httpx.Client, notes: list[dict[str, Any]], sort: list[str]) -> None:
    assert_error(reader.post(f"{NOTES}/find", json={"sort": sort}), 400, "FIELD_NOT_READABLE")
    assert_error(reader.get(NOTES, params={"sort": ",".join(sort)}), 400, "FIELD_NOT_READABLE")


@pytest.mark.parametrize("fields", [["secret"], ["title", "email"], ["meta"]])
def test_projecting_unreadable_fields_is_refused(reader: httpx.Client, notes: list[dict[str, Any]], fields: list[str]) -> None:
    assert_error(reader.post(f"{NOTES}/find", json={"fields": fields}), 400, "FIELD_NOT_READABLE")


def test_readable_queries_return_shaped_documents(reader: httpx.Client, notes: list[dict[str, Any]]) -> None:
    response = reader.post(f"{NOTES}/find", json={"filter": {"level": {"$gte": 3}, "meta.tag": "t"}, "sort": ["-level"]})
    assert response.status_code == 200, response.text
    data = ejson(response)["data"]
    assert [d["title"] for d in data] == ["n4", "n3"]
    assert all("secret" not in d and d["meta"] == {"tag": "t"} for d in data)
    assert data[0]["email"] == "u***@example.com"
    assert reader.post(f"{NOTES}/count", json={"filter": {"level": {"$gte": 3}}}).json() == {"count": 2}
    assert reader.post(f"{NOTES}/count", json={}).json() == {"count": 5}


def test_fields_projects_after_shaping(reader: httpx.Client, notes: list[dict[str, Any]]) -> None:
    response = reader.get(NOTES, params={"fields": "title,items.sku", "sort": "level", "limit": "2"})
    assert response.status_code == 200, response.text
    data = ejson(response)["data"]
    assert data == [
        {"_id": notes[0]["_id"], "title": "n0", "items": [{"sku": "a"}]},
        {"_id": notes[1]["_id"], "title": "n1", "items": [{"sku": "a"}]},
    ]


@pytest.mark.parametrize(
    "filter_, operator",
    [
        ({"$where": "this.secret == 's1'"}, "$where"),
        ({"level": {"$where": "1"}}, "$where"),
        ({"$text": {"$search": "x"}}, "$text"),
        ({"$jsonSchema": {"required": ["secret"]}}, "$jsonSchema"),
        ({"$expr": {"$function": {"body": "return 1", "args": [], "lang": "js"}}}, "$function"),
        ({"$expr": {"$accumulator": {}}}, "$accumulator"),
        ({"$expr": {"$getField": "secret"}}, "$getField"),
        ({"$expr": {"$eq": ["$$ROOT", {}]}}, "$$ROOT"),
        ({"level": {"$near": [0, 0]}}, "$near"),
        ({"level": {"$bitsAllSet": 1}}, "$bitsAllSet"),
        ({"$unknown": 1}, "$unknown"),
    ],
    ids=repr,
)
def test_operators_off_the_allow_list_are_refused_by_name(
    reader: httpx.Client, notes: list[dict[str, Any]], filter_: dict[str, Any], operator: str
) -> None:
    error = assert_error(reader.post(f"{NOTES}/find", json={"filter": filter_}), 400, "BAD_REQUEST")
    assert error["details"] == {"operator": operator} and operator in error["message"]


def test_allowed_operators_work(reader: httpx.Client, notes: list[dict[str, Any]]) -> None:
    queries = [
        ({"level": {"$in": [1, 2]}}, 2),
        ({"level": {"$mod": [2, 0]}}, 3),
        ({"title": {"$regex": "^n[12]$"}}, 2),
        ({"labels": {"$all": ["public"]}, "labels.0": "public"}, 5),
        ({"items": {"$elemMatch": {"cost": {"$gte": 3}}}}, 2),
        ({"items": {"$size": 1}, "level": {"$not": {"$lt": 4}}}, 1),
        ({"$expr": {"$gt": ["$level", {"$add": [1, 2]}]}}, 1),
        ({"$or": [{"level": 0}, {"title": "n4"}]}, 2),
    ]
    for filter_, expected in queries:
        response = reader.post(f"{NOTES}/count", json={"filter": filter_})
        assert response.json() == {"count": expected}, (filter_, response.text)


@pytest.mark.parametrize(
    "request_, status, code",
    [
        ({"filter": []}, 422, "VALIDATION_ERROR"),
        ({"filter": {"level": {"$in": 5}}}, 400, "BAD_REQUEST"),
        ({"filter": {"title": {"$regex": "("}}}, 400, "BAD_REQUEST"),
        ({"filter": {"$and": []}}, 400, "BAD_REQUEST"),
        ({"filter": {"$or": {"a": 1}}}, 400, "BAD_REQUEST"),
        ({"filter": {"level": {"$gt": 1, "x": 2}}}, 400, "BAD_REQUEST"),
        ({"filter": {"": 1}}, 400, "BAD_REQUEST"),
        ({"filter": {"a..b": 1}}, 400, "BAD_REQUEST"),
        ({"filter": {"$expr": {"$add": ["$title", 1]}}}, 400, "BAD_REQUEST"),
        ({"sort": "level"}, 422, "VALIDATION_ERROR"),
        ({"sort": ["level", "level"]}, 400, "BAD_REQUEST"),
        ({"sort": ["labels"]}, 400, "BAD_REQUEST"),
        ({"sort": ["labels.0"]}, 400, "BAD_REQUEST"),
        ({"fields": ["title", "title"]}, 400, "BAD_REQUEST"),
        ({"limit": 0}, 422, "VALIDATION_ERROR"),
        ({"limit": 501}, 422, "VALIDATION_ERROR"),
        ({"limit": "many"}, 422, "VALIDATION_ERROR"),
        ({"cursor": "garbage"}, 400, "BAD_REQUEST"),
        ({"unknown": 1}, 422, "VALIDATION_ERROR"),
    ],
    ids=repr,
)
def test_bad_queries_get_a_4xx_with_a_stable_code(
    reader: httpx.Client, notes: list[dict[str, Any]], request_: dict[str, Any], status: int, code: str
) -> None:
    error = assert_error(reader.post(f"{NOTES}/find", json=request_), status, code)
    assert error["message"]


@pytest.mark.parametrize(
    "params, status, code",
    [
        ({"filter": "{"}, 400, "BAD_REQUEST"),
        ({"filter": "[1]"}, 422, "VALIDATION_ERROR"),
        ({"limit": "x"}, 422, "VALIDATION_ERROR"),
        ({"sort": "-"}, 400, "BAD_REQUEST"),
        ({"skip": "10"}, 400, "BAD_REQUEST"),
    ],
    ids=repr,
)
def test_bad_query_parameters_get_a_4xx(reader: httpx.Client, params: dict[str, str], status: int, code: str) -> None:
    assert_error(reader.get(NOTES, params=params), status, code)


def test_the_default_page_size_is_20(notes_gateway: Gateway, tenant: str, notes_database: Any) -> None:
    notes_database.notes.insert_many([{"tenant_id": tenant, "labels": ["public"], "level": i} for i in range(25)])
    with user_client(notes_gateway, "r1", tenant, ["reader"]) as reader:
        page = reader.get(NOTES).json()
    assert len(page["data"]) == 20 and page["pagination"]["has_more"] is True
