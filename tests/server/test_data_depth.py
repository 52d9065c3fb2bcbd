"""Nesting depth (issue 8, class 6): written documents are bounded, deep stored ones are no 500.

A value 600 levels deep was once stored by a create that then answered 500 (the answer could
not be written as JSON), and every later read of the collection answered 500. Now a create, an
update's values and its new document nest at most ``limits.max_document_depth`` (100) levels,
or 422 naming the setting, nothing written. A document stored deeper directly in the database
is answered when the gateway can write it as JSON, and otherwise refused with a 409 saying what
to do, as are updates of it; never a 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pymongo.errors
import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .harness import Gateway, assert_error, ejson, user_client

CUSTOMERS = "/v1/data/customers"


def nest(levels: int, kind: str = "doc") -> Any:
    """A value of ``levels`` documents (or arrays) one inside the other, around a 1."""
    value: Any = 1
    for _ in range(levels):
        value = {"a": value} if kind == "doc" else [value]
    return value


@pytest.fixture
def admin(gateway: Gateway, tenant: str) -> Iterator[httpx.Client]:
    with user_client(gateway, "root", tenant, ["admin"]) as client:
        yield client


def refused_for_depth(response: httpx.Response) -> dict[str, Any]:
    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert "limits.max_document_depth" in error["message"]
    return error


@pytest.mark.parametrize("kind", ["doc", "array"])
def test_a_create_nests_at_most_the_limit(admin: httpx.Client, gateway_db: Any, tenant: str, kind: str) -> None:
    # {"name", "deep": 99 levels} nests 100 levels, the top-level document included.
    created = admin.post(CUSTOMERS, json={"name": "at the limit", "deep": nest(99, kind)})
    assert created.status_code == 201, created.text
    assert ejson(created)["deep"] == nest(99, kind)
    for levels in (100, 600):
        refused_for_depth(admin.post(CUSTOMERS, json={"name": "too deep", "deep": nest(levels, kind)}))
    result = ejson(admin.post(f"{CUSTOMERS}/batch", json={"documents": [{"name": "ok"}, {"name": "x", "deep": nest(600, kind)}]}))
    assert len(result["created"]) == 1 and [f["index"] for f in result["failed"]] == [1]
    assert result["failed"][0]["error"]["code"] == "VALIDATION_ERROR"
    assert "limits.max_document_depth" in result["failed"][0]["error"]["message"]
    assert gateway_db.customers.count_documents({"tenant_id": tenant, "name": "too deep"}) == 0
    assert admin.get(CUSTOMERS).status_code == 200  # the collection still reads


def test_an_update_writes_at_most_the_limit(admin: httpx.Client, gateway_db: Any, tenant: str) -> None:
    key = ObjectId()
    gateway_db.customers.insert_one({"_id": key, "tenant_id": tenant, "name": "c", "x": nest(98)})
    path = f"{CUSTOMERS}/{key}"
    assert admin.patch(path, json={"$set": {"a.b": nest(98)}}).status_code == 200  # 2 + 98 levels
    error = refused_for_depth(admin.patch(path, json={"$set": {"a.b": nest(99)}}))
    assert error["details"]["errors"][0]["field"] == "a.b"
    refused_for_depth(admin.patch(path, json={"a": nest(600)}))
    refused_for_depth(admin.patch(path, json={"$push": {"list": nest(99)}}))  # 1 + an element + 99
    refused_for_depth(admin.patch(path, json={"$addToSet": {"list": {"$each": [1, nest(99)]}}}))
    assert admin.patch(path, json={"$push": {"list": nest(98)}}).status_code == 200
    # A $rename moves a stored value: the new document tells how deep it lands.
    assert admin.patch(path, json={"$rename": {"x": "y.z"}}).status_code == 200  # 2 + 98
    refused_for_depth(admin.patch(path, json={"$rename": {"y.z": "y.w.v"}}))
    stored = gateway_db.customers.find_one({"_id": key})
    assert stored["y"] == {"z": nest(98)} and stored["a"] == {"b": nest(98)}
    ids = {"ids": [str(key)]}
    refused_for_depth(admin.patch(f"{CUSTOMERS}/batch", json={**ids, "update": {"$set": {"deep": nest(600)}}}))
    result = ejson(admin.patch(f"{CUSTOMERS}/batch", json={**ids, "update": {"$rename": {"y.z": "y.w.v"}}}))
    assert result["modified"] == 0 and result["refused"][0]["error"]["code"] == "VALIDATION_ERROR"


def mixed(kinds: list[str]) -> Any:
    value: Any = "x"
    for kind in kinds:
        value = {"k": value} if kind == "doc" else [value, 1]
    return value


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(kinds=st.lists(st.sampled_from(["doc", "array"]), min_size=90, max_size=110) | st.lists(st.sampled_from(["doc", "array"]), max_size=900))
def test_any_nesting_is_created_or_refused_by_the_bound(gateway: Gateway, kinds: list[str]) -> None:
    # nest(value) under "deep": len(kinds) levels, and the top-level document.
    with user_client(gateway, "root", "depth-tenant", ["admin"]) as admin:
        for method, path, body in (
            ("POST", CUSTOMERS, {"name": "n", "deep": mixed(kinds)}),
            ("POST", f"{CUSTOMERS}/batch", {"documents": [{"name": "n", "deep": mixed(kinds)}]}),
        ):
            response = admin.request(method, path, json=body)
            assert response.status_code < 500, response.text
            failed = response.status_code == 422 or (response.status_code == 200 and bool(response.json()["failed"]))
            assert failed == (len(kinds) + 1 > 100), (len(kinds), response.text[:300])


def _deepest_storable(collection: Any, tenant: str) -> int:
    """How deep a document the database takes from pymongo (SecantusDB: some 980 levels, as
    deep as the driver encodes here; MongoDB: 180)."""
    for levels in range(1000, 0, -10):
        try:
            collection.insert_one({"_id": f"probe-{tenant}", "tenant_id": "nobody", "v": nest(levels)})
        except (pymongo.errors.OperationFailure, RecursionError):
            continue
        collection.delete_one({"_id": f"probe-{tenant}"})
        return levels
    raise AssertionError("the database stores no nesting at all")


def test_a_document_stored_deeper_than_the_gateway_writes_is_no_500(admin: httpx.Client, gateway_db: Any, tenant: str) -> None:
    deepest = _deepest_storable(gateway_db.customers, tenant)
    depths = sorted({150, 300, deepest})
    shallow = ObjectId()
    gateway_db.customers.insert_one({"_id": shallow, "tenant_id": tenant, "name": "shallow"})
    stored = {levels: f"deep-{levels}-{tenant}" for levels in depths}
    try:
        for levels, key in stored.items():
            gateway_db.customers.insert_one({"_id": key, "tenant_id": tenant, "name": "deep", "v": nest(levels)})
        for levels, key in stored.items():
            read = admin.get(f"{CUSTOMERS}/{key}")
            assert read.status_code in (200, 409), read.text
            if read.status_code == 409:
                assert "directly in the database" in read.json()["error"]["message"]
            else:  # what the driver reads and JSON output takes is answered whole
                assert ejson(read)["v"] == nest(levels)
            # Deeper than the gateway writes: not updated (nor failing).
            error = assert_error(admin.patch(f"{CUSTOMERS}/{key}", json={"name": "x"}), 409, "CONFLICT")
            assert "limits.max_document_depth" in error["message"] or "directly in the database" in error["message"]
        assert admin.get(f"{CUSTOMERS}/deep-150-{tenant}").status_code == 200
        assert_error(admin.get(f"{CUSTOMERS}/{stored[deepest]}"), 409, "CONFLICT")  # beyond what the driver reads
        for filter_ in ({}, {"name": "deep"}):
            assert_error(admin.post(f"{CUSTOMERS}/find", json={"filter": filter_}), 409, "CONFLICT")
        # The rest of the collection stays readable.
        assert admin.get(f"{CUSTOMERS}/{shallow}").status_code == 200
        page = admin.post(f"{CUSTOMERS}/find", json={"filter": {"name": "shallow"}})
        assert page.status_code == 200 and [d["_id"]["$oid"] for d in page.json()["data"]] == [str(shallow)]
        assert admin.post(f"{CUSTOMERS}/count", json={"filter": {}}).status_code == 200
    finally:
        gateway_db.customers.delete_many({"_id": {"$in": list(stored.values())}})
