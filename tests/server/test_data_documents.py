"""Create, read, update and delete one document, on the examples' expenses policy: system fields,
the tenant and owner, ids, fail-closed (invariant 1) and existence hiding (invariant 6)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from bson import ObjectId

from .harness import Gateway, assert_error, ejson, user_client
from .test_api_keys import create_key

EXPENSES = "/v1/data/expenses"


def draft(**fields: Any) -> dict[str, Any]:
    return {"title": "Taxi", "amount": 12, "status": "draft", **fields}


def created(client: httpx.Client, body: dict[str, Any] | None = None, path: str = EXPENSES) -> dict[str, Any]:
    response = client.post(path, json=draft() if body is None else body)
    assert response.status_code == 201, response.text
    return ejson(response)


def test_create_sets_id_system_fields_tenant_and_owner(gateway: Gateway, tenant: str, gateway_db: Any) -> None:
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        doc = created(alice, draft(internal_notes_ok=1))
    assert isinstance(doc["_id"], ObjectId)
    assert doc["tenant_id"] == tenant and doc["owner_id"] == "alice" and doc["created_by"] == "alice"
    assert doc["created_at"] == doc["updated_at"]
    assert doc["created_at"].microsecond % 1000 == 0
    stored = gateway_db.expenses.find_one({"_id": doc["_id"]})
    assert {k: v for k, v in stored.items() if k not in ("created_at", "updated_at")} == {
        k: v for k, v in doc.items() if k not in ("created_at", "updated_at")
    }


def test_create_keeps_a_given_owner_when_the_policy_allows_it(gateway: Gateway, tenant: str) -> None:
    with user_client(gateway, "root", tenant, ["admin"]) as admin:
        doc = created(admin, draft(owner_id="bob"))
    assert doc["owner_id"] == "bob" and doc["created_by"] == "root"


@pytest.mark.parametrize("field", ["created_by", "created_at", "updated_at", "updated_by"])
def test_create_refuses_system_fields(gateway: Gateway, tenant: str, field: str) -> None:
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        error = assert_error(alice.post(EXPENSES, json=draft(**{field: "x"})), 403, "FIELD_NOT_WRITABLE")
    assert error["details"] == {"field": field}


def test_create_accepts_only_the_callers_own_tenant(gateway: Gateway, tenant: str, gateway_db: Any) -> None:
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        assert_error(alice.post(EXPENSES, json=draft(tenant_id="other", title="t1")), 403, "FIELD_NOT_WRITABLE")
        assert created(alice, draft(tenant_id=tenant, title="t2"))["tenant_id"] == tenant
    assert gateway_db.expenses.count_documents({"title": "t1", "tenant_id": {"$in": [tenant, "other"]}}) == 0


def test_create_needs_the_condition_to_hold_on_the_stored_document(gateway: Gateway, tenant: str, gateway_db: Any) -> None:
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        assert_error(alice.post(EXPENSES, json=draft(status="approved")), 403, "FORBIDDEN")
        assert_error(alice.post(EXPENSES, json=draft(owner_id="bob")), 403, "FORBIDDEN")
    assert gateway_db.expenses.count_documents({"tenant_id": tenant}) == 0


@pytest.mark.parametrize("field", ["approved_by", "internal_notes"])
def test_create_refuses_fields_the_caller_may_not_write(gateway: Gateway, tenant: str, field: str) -> None:
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        error = assert_error(alice.post(EXPENSES, json=draft(**{field: "x"})), 403, "FIELD_NOT_WRITABLE")
    assert error["details"]["field"] == field


@pytest.mark.parametrize("bad_id", ["not an id", "x" * 201, "$gt", "a%00b"])
def test_malformed_ids_are_400(gateway: Gateway, tenant: str, bad_id: str) -> None:
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        for response in (
            alice.get(f"{EXPENSES}/{bad_id}"),
            alice.patch(f"{EXPENSES}/{bad_id}", json={"amount": 1}),
            alice.delete(f"{EXPENSES}/{bad_id}"),
        ):
            assert_error(response, 400, "BAD_REQUEST")


def test_get_patch_delete_round_trip(gateway: Gateway, tenant: str, gateway_db: Any) -> None:
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        doc = created(alice)
        path = f"{EXPENSES}/{doc['_id']}"
        assert ejson(alice.get(path)) == doc
        patched = ejson(alice.patch(path, json={"amount": 20, "currency": "EUR"}))
        assert patched["amount"] == 20 and patched["currency"] == "EUR" and patched["updated_by"] == "alice"
        assert patched["updated_at"] >= doc["updated_at"] and patched["created_at"] == doc["created_at"]
        assert alice.delete(path).json() == {"deleted": True, "id": {"$oid": str(doc["_id"])}}
        assert_error(alice.get(path), 404, "NOT_FOUND")
    assert gateway_db.expenses.find_one({"_id": doc["_id"]}) is None


def test_readable_but_not_deletable_is_403(gateway: Gateway, tenant: str) -> None:
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        doc = created(alice, draft(status="submitted"))
    path = f"{EXPENSES}/{doc['_id']}"
    with user_client(gateway, "vic", tenant, ["viewer"]) as viewer:
        assert viewer.get(path).status_code == 200
        assert_error(viewer.delete(path), 403, "FORBIDDEN")
        assert_error(viewer.patch(path, json={"amount": 1}), 403, "FORBIDDEN")


# --- invariant 6: existence hiding --------------------------------------------------------------

def _comparable(response: httpx.Response, document_id: str) -> tuple[int, str, str, str]:
    body = response.json()["error"]
    return (
        response.status_code,
        body["code"],
        body["message"].replace(document_id, "ID"),
        repr(body["details"]).replace(document_id, "ID"),
    )


def test_unreadable_documents_answer_exactly_like_missing_ones(gateway: Gateway, tenant: str, gateway_db: Any) -> None:
    other_tenant = ObjectId()
    other_owner = ObjectId()
    hidden_draft = ObjectId()
    gateway_db.expenses.insert_many([
        {"_id": other_tenant, "tenant_id": "elsewhere", "owner_id": "alice", "status": "draft", "title": "x", "amount": 1},
        {"_id": other_owner, "tenant_id": tenant, "owner_id": "bob", "status": "draft", "title": "x", "amount": 1},
        {"_id": hidden_draft, "tenant_id": tenant, "owner_id": "bob", "status": "draft", "title": "x", "amount": 1},
    ])
    missing = ObjectId()
    with user_client(gateway, "alice", tenant, ["user"]) as alice, user_client(gateway, "vic", tenant, ["viewer"]) as viewer:
        for client, hidden in ((alice, other_tenant), (alice, other_owner), (viewer, hidden_draft)):
            for method, body in (("GET", None), ("PATCH", {"amount": 2}), ("DELETE", None)):
                seen = [
                    _comparable(client.request(method, f"{EXPENSES}/{oid}", json=body), str(oid))
                    for oid in (hidden, missing)
                ]
                assert seen[0] == seen[1] and seen[0][:2] == (404, "NOT_FOUND"), (method, seen)
    assert gateway_db.expenses.find_one({"_id": other_owner})["amount"] == 1


# --- invariant 1: fail closed --------------------------------------------------------------------

@pytest.mark.parametrize("collection", ["nothing_here", "_pm_api_keys", "_pm_idempotency", "system.users", "_pm_x"])
def test_unknown_and_internal_collections_do_not_exist(gateway: Gateway, tenant: str, collection: str) -> None:
    path = f"/v1/data/{collection}"
    oid = str(ObjectId())
    with user_client(gateway, "alice", tenant, ["admin"]) as admin:
        for response in (
            admin.post(path, json={"a": 1}),
            admin.get(path),
            admin.post(f"{path}/find", json={}),
            admin.post(f"{path}/count", json={}),
            admin.get(f"{path}/{oid}"),
            admin.patch(f"{path}/{oid}", json={"a": 1}),
            admin.delete(f"{path}/{oid}"),
        ):
            assert_error(response, 404, "COLLECTION_NOT_FOUND")


@pytest.mark.parametrize("roles", [[], ["superuser"], ["pm:admin"]])
def test_roles_granting_nothing_are_refused(
    gateway: Gateway, admin: httpx.Client, tenant: str, roles: list[str], gateway_db: Any
) -> None:
    oid = gateway_db.expenses.insert_one({"tenant_id": tenant, "owner_id": "alice", "status": "draft", "title": "x"}).inserted_id
    # pm:admin comes from API keys (a JWT carrying it is refused outright).
    caller = (
        gateway.client(create_key(admin, identity={"id": "alice", "tenant_id": tenant, "roles": roles})["key"])
        if roles == ["pm:admin"] else user_client(gateway, "alice", tenant, roles)
    )
    with caller:
        for response in (
            caller.post(EXPENSES, json=draft()),
            caller.get(EXPENSES),
            caller.post(f"{EXPENSES}/count", json={}),
            caller.get(f"{EXPENSES}/{oid}"),
            caller.patch(f"{EXPENSES}/{oid}", json={"amount": 1}),
            caller.delete(f"{EXPENSES}/{oid}"),
        ):
            assert_error(response, 403, "FORBIDDEN")
    assert gateway_db.expenses.count_documents({"tenant_id": tenant}) == 1


def test_the_bootstrap_admin_key_has_no_data_access(admin: httpx.Client) -> None:
    assert_error(admin.get(EXPENSES), 403, "FORBIDDEN")


def test_a_schema_only_collection_grants_nothing(gateway: Gateway, tenant: str) -> None:
    with user_client(gateway, "alice", tenant, ["admin"]) as admin:
        assert_error(admin.get("/v1/data/users"), 403, "FORBIDDEN")


def test_a_caller_without_a_tenant_sees_nothing(gateway: Gateway, gateway_db: Any) -> None:
    gateway_db.expenses.insert_one({"owner_id": "nomad", "status": "submitted", "title": "no tenant"})
    with user_client(gateway, "nomad", None, ["viewer"]) as nomad:
        assert_error(nomad.get(EXPENSES), 403, "FORBIDDEN")


def test_no_credentials_is_401(client: httpx.Client) -> None:
    assert_error(client.get(EXPENSES), 401, "UNAUTHORIZED")
    assert_error(client.post(EXPENSES, json=draft()), 401, "UNAUTHORIZED")
