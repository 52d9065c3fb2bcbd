"""What each method sends and how it reads the answer, through ``httpx.MockTransport``.

Every test runs on both clients (the ``kind`` parameter behind ``mock_client``).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from bson import ObjectId, json_util

from permission_mongo import (
    AuthenticationError,
    NotFoundError,
    PermissionMongo,
    UnexpectedResponseError,
    ValidationError,
)
from permission_mongo.client import _operations as operations

from .conftest import API_KEY, ClientAdapter, Mocked

OID = ObjectId("507f1f77bcf86cd799439011")
OID2 = ObjectId("507f1f77bcf86cd799439012")
WHEN = datetime.datetime(2024, 3, 4, 10, 0)
STORED = {"_id": OID, "name": "Ada", "created_at": WHEN}


def answer(status: int, payload: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=json_util.dumps(payload), headers=headers)


def body_of(request: httpx.Request) -> Any:
    return json_util.loads(request.content) if request.content else None


CALLS = [
    pytest.param(
        "insert",
        ("users", {"name": "Ada", "born": WHEN}),
        {},
        "POST",
        "/v1/data/users",
        {"name": "Ada", "born": WHEN},
        201,
        STORED,
        STORED,
        id="insert",
    ),
    pytest.param(
        "get",
        ("users", OID),
        {},
        "GET",
        f"/v1/data/users/{OID}",
        None,
        200,
        STORED,
        STORED,
        id="get-by-objectid",
    ),
    pytest.param(
        "get",
        ("users", str(OID)),
        {},
        "GET",
        f"/v1/data/users/{OID}",
        None,
        200,
        STORED,
        STORED,
        id="get-by-string",
    ),
    pytest.param(
        "get",
        ("users", "a/b c"),
        {},
        "GET",
        "/v1/data/users/a%2Fb%20c",
        None,
        200,
        STORED,
        STORED,
        id="get-quotes-the-id",
    ),
    pytest.param(
        "update",
        ("users", OID, {"$set": {"seen": WHEN}}),
        {},
        "PATCH",
        f"/v1/data/users/{OID}",
        {"$set": {"seen": WHEN}},
        200,
        STORED,
        STORED,
        id="update",
    ),
    pytest.param(
        "delete",
        ("users", OID),
        {},
        "DELETE",
        f"/v1/data/users/{OID}",
        None,
        200,
        {"deleted": True, "id": OID},
        {"deleted": True, "id": OID},
        id="delete",
    ),
    pytest.param(
        "find",
        ("users", {"status": "active"}),
        {"limit": 5, "sort": ["name", "-created_at"], "fields": ["name"]},
        "POST",
        "/v1/data/users/find",
        {
            "filter": {"status": "active"},
            "sort": ["name", "-created_at"],
            "fields": ["name"],
            "limit": 5,
        },
        200,
        {"data": [STORED], "pagination": {"has_more": False, "cursor": None}},
        None,
        id="find",
    ),
    pytest.param(
        "find",
        ("users",),
        {"sort": "-created_at", "cursor": "abc"},
        "POST",
        "/v1/data/users/find",
        {"filter": {}, "sort": ["-created_at"], "cursor": "abc"},
        200,
        {"data": [], "pagination": {"has_more": False, "cursor": None}},
        None,
        id="find-defaults",
    ),
    pytest.param(
        "count",
        ("users", {"born": {"$lt": WHEN}}),
        {},
        "POST",
        "/v1/data/users/count",
        {"filter": {"born": {"$lt": WHEN}}},
        200,
        {"count": 42},
        42,
        id="count",
    ),
    pytest.param(
        "aggregate",
        ("users", [{"$match": {"a": 1}}, {"$group": {"_id": "$d"}}]),
        {},
        "POST",
        "/v1/data/users/aggregate",
        {"pipeline": [{"$match": {"a": 1}}, {"$group": {"_id": "$d"}}]},
        200,
        {"data": [{"_id": "x"}]},
        [{"_id": "x"}],
        id="aggregate",
    ),
    pytest.param(
        "batch_create",
        ("users", [{"name": "A"}, {"name": ""}]),
        {},
        "POST",
        "/v1/data/users/batch",
        {"documents": [{"name": "A"}, {"name": ""}]},
        200,
        {
            "created": [STORED["_id"]],
            "failed": [{"index": 1, "error": {"code": "VALIDATION_ERROR", "message": "m"}}],
        },
        {
            "created": [STORED["_id"]],
            "failed": [{"index": 1, "error": {"code": "VALIDATION_ERROR", "message": "m"}}],
        },
        id="batch-create",
    ),
    pytest.param(
        "batch_update",
        ("users",),
        {"ids": [OID, str(OID2)], "update": {"status": "inactive"}},
        "PATCH",
        "/v1/data/users/batch",
        {"ids": [OID, str(OID2)], "update": {"status": "inactive"}},
        200,
        {"matched": 2, "modified": 1},
        {"matched": 2, "modified": 1},
        id="batch-update-ids",
    ),
    pytest.param(
        "batch_update",
        ("users",),
        {"filter": {"d": "sales"}, "update": {"status": "active"}},
        "PATCH",
        "/v1/data/users/batch",
        {"filter": {"d": "sales"}, "update": {"status": "active"}},
        200,
        {"matched": 3, "modified": 3},
        {"matched": 3, "modified": 3},
        id="batch-update-filter",
    ),
    pytest.param(
        "batch_delete",
        ("users",),
        {"ids": [OID]},
        "DELETE",
        "/v1/data/users/batch",
        {"ids": [OID]},
        200,
        {"deleted": 1},
        {"deleted": 1},
        id="batch-delete-ids",
    ),
    pytest.param(
        "batch_delete",
        ("users",),
        {"filter": {"status": "archived"}},
        "DELETE",
        "/v1/data/users/batch",
        {"filter": {"status": "archived"}},
        200,
        {"deleted": 4},
        {"deleted": 4},
        id="batch-delete-filter",
    ),
    pytest.param(
        "batch_delete",
        ("users",),
        {"filter": {}, "all": True},
        "DELETE",
        "/v1/data/users/batch",
        {"filter": {}, "all": True},
        200,
        {"deleted": 9},
        {"deleted": 9},
        id="batch-delete-all",
    ),
]

READS = {"get", "find", "count", "aggregate"}


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "method", "path", "sent", "status", "payload", "expected"), CALLS
)
async def test_wire_mapping(
    mock_client: ClientAdapter,
    mocked: Mocked,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    method: str,
    path: str,
    sent: Any,
    status: int,
    payload: Any,
    expected: Any,
) -> None:
    mocked.answer(answer(status, payload))
    result = await getattr(mock_client, name)(*args, **kwargs)

    request = mocked.last
    assert (request.method, request.url.raw_path.decode()) == (method, path)
    assert body_of(request) == sent
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"].startswith("permission-mongo-python/")
    if sent is not None:
        assert request.headers["Content-Type"] == "application/json"
    # Writes carry an idempotency key; reads, even those sent by POST, need none.
    assert ("Idempotency-Key" in request.headers) is (name not in READS)
    if name == "find":
        assert result["data"] == payload["data"]
        assert result["pagination"] == payload["pagination"]
    else:
        assert result == expected


async def test_bson_types_travel_as_extended_json(
    mock_client: ClientAdapter, mocked: Mocked
) -> None:
    mocked.answer(
        httpx.Response(
            201,
            content=b'{"_id": {"$oid": "507f1f77bcf86cd799439011"},'
            b' "at": {"$date": "2024-03-04T10:00:00Z"},'
            b' "big": {"$numberLong": "9007199254740993"}}',
        )
    )
    document = await mock_client.insert("events", {"ref": OID2, "at": WHEN})
    assert mocked.last.content == (
        b'{"ref": {"$oid": "507f1f77bcf86cd799439012"}, "at": {"$date": "2024-03-04T10:00:00Z"}}'
    )
    assert document == {"_id": OID, "at": WHEN, "big": 9007199254740993}
    assert isinstance(document["_id"], ObjectId)


async def test_get_answers_none_for_a_missing_document(
    mock_client: ClientAdapter, mocked: Mocked
) -> None:
    mocked.answer(answer(404, {"error": {"code": "NOT_FOUND", "message": "Document not found"}}))
    assert await mock_client.get("users", OID) is None


@pytest.mark.parametrize(
    "response",
    [
        # A typo in the collection name must not look like "no such document".
        lambda: answer(
            404, {"error": {"code": "COLLECTION_NOT_FOUND", "message": "no collection"}}
        ),
        # Nor must a URL that does not reach the gateway at all.
        lambda: httpx.Response(404, text="<html>Not Found</html>"),
    ],
    ids=["unknown-collection", "not-the-gateway"],
)
async def test_get_raises_for_other_404s(
    mock_client: ClientAdapter, mocked: Mocked, response: Callable[[], httpx.Response]
) -> None:
    mocked.answer(response())
    with pytest.raises(NotFoundError):
        await mock_client.get("usres", OID)


async def test_update_of_a_missing_document_raises(
    mock_client: ClientAdapter, mocked: Mocked
) -> None:
    mocked.answer(
        answer(
            404,
            {
                "error": {"code": "NOT_FOUND", "message": "Document not found"},
                "meta": {"request_id": "r9"},
            },
        )
    )
    with pytest.raises(NotFoundError) as caught:
        await mock_client.update("users", OID, {"a": 1})
    assert (caught.value.error_code, caught.value.request_id) == ("NOT_FOUND", "r9")


async def test_request_id_falls_back_on_the_header(
    mock_client: ClientAdapter, mocked: Mocked
) -> None:
    mocked.answer(httpx.Response(401, text="unauthorized", headers={"X-Request-ID": "hdr-7"}))
    with pytest.raises(AuthenticationError) as caught:
        await mock_client.count("users")
    assert caught.value.request_id == "hdr-7"


@pytest.mark.parametrize(
    "response",
    [
        lambda: httpx.Response(200, text="<html>captive portal</html>"),
        lambda: answer(200, {"total": 3}),
        lambda: answer(200, {"count": "3"}),
        lambda: answer(200, [1, 2]),
    ],
    ids=["not-json", "missing-key", "wrong-type", "not-an-object"],
)
async def test_answers_of_the_wrong_shape(
    mock_client: ClientAdapter, mocked: Mocked, response: Callable[[], httpx.Response]
) -> None:
    mocked.answer(response())
    with pytest.raises(UnexpectedResponseError) as caught:
        await mock_client.count("users")
    assert caught.value.status_code == 200
    assert caught.value.__cause__ is not None


async def test_page_reads_like_the_raw_answer_and_like_a_list(
    mock_client: ClientAdapter, mocked: Mocked
) -> None:
    docs = [{"_id": i, "n": i} for i in range(3)]
    mocked.answer(answer(200, {"data": docs, "pagination": {"has_more": True, "cursor": "c1"}}))
    page = await mock_client.find("items", {}, limit=3)

    assert len(page) == 3 and list(page) == docs and page[0] == docs[0] and page[1:] == docs[1:]
    assert len(page["data"]) == 3
    assert page["pagination"]["has_more"] is True
    assert page["pagination"]["cursor"] == "c1"
    assert (page.has_more, page.cursor, page.data) == (True, "c1", docs)
    assert repr(page).endswith("of 3 documents, has_more=True>")
    if mock_client.is_async:
        assert [doc async for doc in page] == docs


async def test_pages_follow_the_cursor_with_the_same_query(
    mock_client: ClientAdapter, mocked: Mocked
) -> None:
    mocked.answer(
        answer(
            200, {"data": [{"n": 1}, {"n": 2}], "pagination": {"has_more": True, "cursor": "c1"}}
        ),
        answer(
            200, {"data": [{"n": 3}, {"n": 4}], "pagination": {"has_more": True, "cursor": "c2"}}
        ),
        answer(200, {"data": [{"n": 5}], "pagination": {"has_more": False, "cursor": None}}),
    )
    documents = await mock_client.find_all(
        "items", {"kind": "a"}, sort="-n", fields=["n"], page_size=2, headers={"X-Trace": "t"}
    )
    assert [d["n"] for d in documents] == [1, 2, 3, 4, 5]
    bodies = [body_of(r) for r in mocked.requests]
    query = {"filter": {"kind": "a"}, "sort": ["-n"], "fields": ["n"], "limit": 2}
    assert bodies == [query, {**query, "cursor": "c1"}, {**query, "cursor": "c2"}]
    assert all(r.headers["X-Trace"] == "t" for r in mocked.requests)


async def test_next_page_and_iter_pages(mock_client: ClientAdapter, mocked: Mocked) -> None:
    mocked.answer(
        answer(200, {"data": [{"n": 1}], "pagination": {"has_more": True, "cursor": "c1"}}),
        answer(200, {"data": [{"n": 2}], "pagination": {"has_more": False, "cursor": None}}),
    )
    first = await mock_client.find("items", limit=1)
    second = await mock_client.next_page(first)
    assert [d["n"] for d in second] == [2]
    assert await mock_client.next_page(second) is None
    assert len(mocked.requests) == 2

    mocked.answer(
        answer(200, {"data": [{"n": 1}], "pagination": {"has_more": True, "cursor": "c1"}}),
        answer(200, {"data": [{"n": 2}], "pagination": {"has_more": False, "cursor": None}}),
    )
    pages = await mock_client.pages(await mock_client.find("items", limit=1))
    assert [[d["n"] for d in p] for p in pages] == [[1], [2]]


async def test_find_iter_is_lazy(mock_client: ClientAdapter, mocked: Mocked) -> None:
    mock_client.client.find_iter("items")
    assert mocked.requests == []


async def test_headers_merge_in_order(
    mock_client: ClientAdapter, mocked: Mocked, make_client
) -> None:
    client = make_client(
        "http://gateway.test/",
        transport=mocked.transport,
        headers={"X-Tenant-ID": "t1", "X-App": "a"},
    )
    await client.set_headers({"X-User-ID": "u1", "X-App": None})
    mocked.answer(answer(201, STORED), answer(201, STORED))
    await client.insert("users", {}, headers={"X-Tenant-ID": "t2", "X-Request-ID": "abc-123"})
    sent = mocked.last.headers
    assert (
        mocked.last.url == "http://gateway.test/v1/data/users"
    )  # trailing slash of the url dropped
    assert (sent["X-Tenant-ID"], sent["X-User-ID"], sent["X-Request-ID"]) == ("t2", "u1", "abc-123")
    assert "X-App" not in sent

    # A key the caller chose is kept (to dedupe across processes), not replaced.
    await client.insert("users", {}, headers={"Idempotency-Key": "mine"})
    assert mocked.last.headers["Idempotency-Key"] == "mine"


async def test_each_call_gets_its_own_idempotency_key(
    mock_client: ClientAdapter, mocked: Mocked
) -> None:
    mocked.answer(answer(201, STORED), answer(201, STORED))
    await mock_client.insert("users", {})
    await mock_client.insert("users", {})
    first, second = (r.headers["Idempotency-Key"] for r in mocked.requests)
    assert first != second


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "error"),
    [
        ("insert", ("", {}), {}, ValueError),
        ("insert", ("users", [("name", "x")]), {}, TypeError),
        ("get", ("users", 42), {}, TypeError),
        ("get", ("users", ""), {}, TypeError),
        ("find", ("users", "status=active"), {}, TypeError),
        ("find", ("users",), {"limit": 0}, ValueError),
        ("find", ("users",), {"sort": [("name", 2)]}, ValueError),
        ("find", ("users",), {"sort": [3]}, TypeError),
        ("aggregate", ("users", {"$match": {}}), {}, TypeError),
        ("batch_create", ("users", {"name": "x"}), {}, TypeError),
        ("batch_update", ("users",), {"ids": [OID]}, TypeError),  # no update
        ("batch_update", ("users",), {"update": {"a": 1}}, TypeError),  # no selection
        ("batch_update", ("users",), {"ids": [OID], "filter": {}, "update": {"a": 1}}, TypeError),
        ("batch_delete", ("users",), {}, TypeError),  # would otherwise mean "everything"
        ("batch_delete", ("users",), {"ids": [OID], "all": True}, TypeError),  # all goes with filter={}
        ("batch_delete", ("users",), {"ids": str(OID)}, TypeError),  # a string is not a list of ids
    ],
)
async def test_bad_arguments_fail_before_sending(
    mock_client: ClientAdapter,
    mocked: Mocked,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        await getattr(mock_client, name)(*args, **kwargs)
    assert mocked.requests == []


@pytest.mark.parametrize(
    ("sort", "keys"),
    [
        ("name", ["name"]),
        ("-created_at", ["-created_at"]),
        (["name", "-created_at"], ["name", "-created_at"]),
        ([("name", 1), ("created_at", -1)], ["name", "-created_at"]),
        ({"name": 1, "created_at": -1}, ["name", "-created_at"]),
    ],
)
def test_sort_forms(sort: Any, keys: list[str]) -> None:
    assert operations.sort_keys(sort) == keys


def test_a_lone_field_name_is_one_field() -> None:
    assert operations.find("users", fields="name").body["fields"] == ["name"]


async def test_validation_error_from_400_and_422(
    mock_client: ClientAdapter, mocked: Mocked
) -> None:
    for status in (400, 422):
        mocked.answer(
            answer(
                status,
                {
                    "error": {
                        "code": "VALIDATION_ERROR",
                        "message": "name is required",
                        "details": {"field": "name"},
                    }
                },
            )
        )
        with pytest.raises(ValidationError) as caught:
            await mock_client.insert("users", {"name": ""})
        assert (caught.value.status_code, caught.value.details) == (status, {"field": "name"})


def test_constructor_checks_its_arguments() -> None:
    with pytest.raises(ValueError):
        PermissionMongo("localhost:8080", "key")
    with pytest.raises(ValueError):
        PermissionMongo("http://localhost:8080", "")
