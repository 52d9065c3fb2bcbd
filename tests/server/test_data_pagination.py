"""Cursor pagination: every document exactly once, in sort order, across pages, with ties,
missing values, null and mixed types in the sort key; cursors bound to their query and caller."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from bson import ObjectId

from .harness import Gateway, assert_error, user_client

CUSTOMERS = "/v1/data/customers"
# Ties (1 and 1.0 are equal in a sort), missing and null (which sort alike), and values of
# every kind a sort orders across types: numbers, strings, objects, ObjectIds, booleans, dates.
RANKS: list[Any] = [
    1, 1.0, 1, 2, -5, 2.5, float("nan"), None, "missing", "missing", None, "a", "a", "B", "", {"x": 1}, {"x": 1},
    ObjectId("65a000000000000000000001"), False, True, True, dt.datetime(2024, 1, 1), dt.datetime(2023, 1, 1),
    0, 0, 0, 0, "b",
]


@pytest.fixture
def ranked(gateway_db: Any, tenant: str) -> list[dict[str, Any]]:
    documents = []
    for i, rank in enumerate(RANKS):
        doc: dict[str, Any] = {"_id": ObjectId(), "tenant_id": tenant, "name": f"c{i % 4}", "seq": i}
        if rank != "missing":
            doc["rank"] = rank
        documents.append(doc)
    documents.append({"_id": f"s-{tenant}", "tenant_id": tenant, "name": "c1", "rank": 1, "seq": 99})
    gateway_db.customers.insert_many(documents)
    gateway_db.customers.insert_one({"tenant_id": "elsewhere", "rank": 1})
    return documents


@pytest.fixture
def admin_client(gateway: Gateway, tenant: str) -> Iterator[httpx.Client]:
    with user_client(gateway, "root", tenant, ["admin"]) as client:
        yield client


def all_pages(client: httpx.Client, body: dict[str, Any], *, get: bool = False) -> list[list[Any]]:
    pages: list[list[Any]] = []
    cursor = None
    while True:
        if get:
            params = {k: ",".join(v) if isinstance(v, list) else str(v) for k, v in body.items()}
            response = client.get(CUSTOMERS, params={**params, **({"cursor": cursor} if cursor else {})})
        else:
            response = client.post(f"{CUSTOMERS}/find", json={**body, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append([doc["seq"] for doc in page["data"]])
        assert page["pagination"]["has_more"] is (page["pagination"]["cursor"] is not None)
        cursor = page["pagination"]["cursor"]
        if cursor is None:
            return pages


def expected_order(gateway_db: Any, tenant: str, sort: list[tuple[str, int]]) -> list[int]:
    # No collation: the collection has no default one, so this is the simple (binary) order.
    keys = sort if any(path == "_id" for path, _ in sort) else [*sort, ("_id", 1)]
    found = gateway_db.customers.find({"tenant_id": tenant}, sort=keys)
    return [doc["seq"] for doc in found]


@pytest.mark.parametrize(
    "sort, mongo_sort",
    [
        (["rank"], [("rank", 1)]),
        (["-rank"], [("rank", -1)]),
        (["name", "-rank"], [("name", 1), ("rank", -1)]),
        (["-name", "rank"], [("name", -1), ("rank", 1)]),
        ([], []),
        (["-_id"], [("_id", -1)]),
    ],
    ids=repr,
)
@pytest.mark.parametrize("limit", [1, 3, 7])
def test_pages_hold_every_document_once_in_sort_order(
    admin_client: httpx.Client, gateway_db: Any, tenant: str, ranked: list[dict[str, Any]],
    sort: list[str], mongo_sort: list[tuple[str, int]], limit: int,
) -> None:
    pages = all_pages(admin_client, {"sort": sort, "limit": limit})
    assert all(len(page) == limit for page in pages[:-1])
    seen = [seq for page in pages for seq in page]
    assert sorted(seen) == sorted(doc["seq"] for doc in ranked)  # none repeated, none skipped
    assert seen == expected_order(gateway_db, tenant, mongo_sort)


def test_get_pages_like_post(admin_client: httpx.Client, ranked: list[dict[str, Any]]) -> None:
    body = {"sort": ["-rank", "name"], "limit": 4, "filter": '{"seq": {"$lt": 20}}'}
    via_get = all_pages(admin_client, body, get=True)
    via_post = all_pages(admin_client, {"sort": ["-rank", "name"], "limit": 4, "filter": {"seq": {"$lt": 20}}})
    assert via_get == via_post and sum(len(page) for page in via_get) == 20


def _first_cursor(client: httpx.Client, body: dict[str, Any]) -> str:
    page = client.post(f"{CUSTOMERS}/find", json=body).json()
    assert page["pagination"]["cursor"], page
    return page["pagination"]["cursor"]


def test_a_cursor_only_works_with_its_own_query(
    gateway: Gateway, tenant: str, admin_client: httpx.Client, ranked: list[dict[str, Any]]
) -> None:
    body = {"filter": {"seq": {"$gte": 0}}, "sort": ["rank"], "fields": ["name", "seq"], "limit": 2}
    cursor = _first_cursor(admin_client, body)
    assert admin_client.post(f"{CUSTOMERS}/find", json={**body, "cursor": cursor, "limit": 5}).status_code == 200
    for changed in ({"sort": ["-rank"]}, {"filter": {"seq": {"$gte": 1}}}, {"fields": ["name"]}, {"sort": ["rank", "name"]}):
        error = assert_error(admin_client.post(f"{CUSTOMERS}/find", json={**body, **changed, "cursor": cursor}), 400, "BAD_REQUEST")
        assert "another query" in error["message"]
    with user_client(gateway, "root2", tenant, ["admin"]) as other:
        assert_error(other.post(f"{CUSTOMERS}/find", json={**body, "cursor": cursor}), 400, "BAD_REQUEST")
    with user_client(gateway, "root", tenant, ["admin", "viewer"]) as more_roles:
        assert_error(more_roles.post(f"{CUSTOMERS}/find", json={**body, "cursor": cursor}), 400, "BAD_REQUEST")
    payload, signature = cursor.split(".")
    for forged in (payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature, payload + ".", cursor + "x"):
        assert_error(admin_client.post(f"{CUSTOMERS}/find", json={**body, "cursor": forged}), 400, "BAD_REQUEST")


def test_sorting_by_a_field_holding_arrays_is_refused_when_paging(
    admin_client: httpx.Client, gateway_db: Any, tenant: str
) -> None:
    gateway_db.customers.insert_many([{"tenant_id": tenant, "rank": [3, 1]}, {"tenant_id": tenant, "rank": 2}])
    assert admin_client.post(f"{CUSTOMERS}/find", json={"sort": ["rank"]}).status_code == 200  # one page: exact
    error = assert_error(admin_client.post(f"{CUSTOMERS}/find", json={"sort": ["rank"], "limit": 1}), 400, "BAD_REQUEST")
    assert error["details"] == {"field": "rank"}


def test_a_schema_array_cannot_be_a_sort_key(gateway: Gateway, tenant: str) -> None:
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        error = assert_error(alice.post("/v1/data/expenses/find", json={"sort": ["tags"]}), 400, "BAD_REQUEST")
    assert "array" in error["message"]


def test_the_next_page_may_leave_out_sort_and_fields(
    admin_client: httpx.Client, ranked: list[dict[str, Any]], gateway_db: Any, tenant: str
) -> None:
    # The SDK documentation's next-page call sends the filter, the limit and the cursor only:
    # the cursor carries the sort and fields of the request that made it.
    body = {"filter": {"name": {"$exists": True}}, "sort": ["-rank"], "fields": ["seq", "rank"], "limit": 7}
    seen: list[int] = []
    response = admin_client.post(f"{CUSTOMERS}/find", json=body)
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [doc["seq"] for doc in page["data"]]
        assert all(set(doc) <= {"_id", "seq", "rank"} for doc in page["data"])
        cursor = page["pagination"]["cursor"]
        if cursor is None:
            break
        response = admin_client.post(f"{CUSTOMERS}/find", json={"filter": body["filter"], "limit": 7, "cursor": cursor})
    assert seen == expected_order(gateway_db, tenant, [("rank", -1)])
    other_sort = {"filter": body["filter"], "sort": ["rank"], "cursor": _first_cursor(admin_client, body)}
    assert_error(admin_client.post(f"{CUSTOMERS}/find", json=other_sort), 400, "BAD_REQUEST")
