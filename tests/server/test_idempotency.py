"""Idempotency-Key on data-plane writes: a repeat replays the first answer and writes nothing;
another body under the same key is a 409; a repeat while the first runs is a 503 to retry."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

import pytest
from bson import ObjectId

from .harness import Gateway, assert_error, user_client

EXPENSES = "/v1/data/expenses"


def draft(**fields: Any) -> dict[str, Any]:
    return {"title": "Taxi", "amount": 12, "status": "draft", **fields}


def test_a_repeated_create_replays_the_first_answer(gateway: Gateway, tenant: str, gateway_db: Any) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        first = alice.post(EXPENSES, json=draft(), headers=key)
        again = alice.post(EXPENSES, json=draft(), headers=key)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert gateway_db.expenses.count_documents({"tenant_id": tenant}) == 1


def test_the_same_key_with_another_body_is_a_conflict(gateway: Gateway, tenant: str, gateway_db: Any) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        assert alice.post(EXPENSES, json=draft(), headers=key).status_code == 201
        error = assert_error(alice.post(EXPENSES, json=draft(amount=13), headers=key), 409, "CONFLICT")
    assert "Idempotency-Key" in error["message"]
    assert gateway_db.expenses.count_documents({"tenant_id": tenant}) == 1


def test_patch_and_delete_replay_too(gateway: Gateway, tenant: str, gateway_db: Any) -> None:
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        doc_id = alice.post(EXPENSES, json=draft()).json()["_id"]["$oid"]
        path = f"{EXPENSES}/{doc_id}"
        key = {"Idempotency-Key": uuid.uuid4().hex}
        first = alice.patch(path, json={"$inc": {"amount": 1}}, headers=key)
        assert alice.patch(path, json={"$inc": {"amount": 1}}, headers=key).content == first.content
        assert gateway_db.expenses.find_one({"_id": ObjectId(doc_id)})["amount"] == 13
        key = {"Idempotency-Key": uuid.uuid4().hex}
        deleted = alice.delete(path, headers=key)
        again = alice.delete(path, headers=key)
        assert deleted.status_code == again.status_code == 200 and again.json() == {"deleted": True, "id": {"$oid": doc_id}}
        assert_error(alice.delete(path, headers={"Idempotency-Key": uuid.uuid4().hex}), 404, "NOT_FOUND")


def test_error_answers_are_replayed_but_keys_are_per_caller_and_path(gateway: Gateway, tenant: str, gateway_db: Any) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    with user_client(gateway, "alice", tenant, ["user"]) as alice, user_client(gateway, "bob", tenant, ["user"]) as bob:
        refused = alice.post(EXPENSES, json=draft(status="approved"), headers=key)
        assert_error(refused, 403, "FORBIDDEN")
        assert alice.post(EXPENSES, json=draft(status="approved"), headers=key).content == refused.content
        # Another caller, or another path, with the same key is another request.
        assert bob.post(EXPENSES, json=draft(), headers=key).status_code == 201
        assert alice.post("/v1/data/customers", json={"name": "c"}, headers=key).status_code == 201


def test_a_repeat_while_the_first_is_running_is_503_with_retry_after(
    gateway: Gateway, tenant: str, gateway_db: Any
) -> None:
    # The record a running request holds, as the gateway writes it: pending, with a lease.
    key = uuid.uuid4().hex
    record_id = hashlib.sha256("\x00".join(["alice", tenant, "POST", EXPENSES, key]).encode()).hexdigest()
    body = b'{"title":"Taxi"}'
    now = dt.datetime.now(dt.UTC)
    gateway_db["_pm_idempotency"].insert_one({
        "_id": record_id, "request_hash": hashlib.sha256(body).hexdigest(), "state": "pending",
        "created_at": now, "lease_until": now + dt.timedelta(seconds=60), "expires_at": now + dt.timedelta(hours=1),
    })
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        response = alice.post(EXPENSES, content=body, headers={"Idempotency-Key": key, "Content-Type": "application/json"})
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert response.headers["retry-after"] == "1"


def test_records_expire_by_ttl_index(gateway: Gateway, tenant: str, gateway_db: Any) -> None:
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        alice.post(EXPENSES, json=draft(), headers={"Idempotency-Key": uuid.uuid4().hex})
    indexes = gateway_db["_pm_idempotency"].index_information()
    assert any(spec.get("expireAfterSeconds") == 0 and spec["key"] == [("expires_at", 1)] for spec in indexes.values())
    record = gateway_db["_pm_idempotency"].find_one(sort=[("created_at", -1)])
    assert dt.timedelta(hours=23) < record["expires_at"] - record["created_at"] <= dt.timedelta(hours=24, seconds=1)


@pytest.mark.parametrize("key", ["", "x" * 256, "é"])
def test_a_malformed_key_is_400(gateway: Gateway, tenant: str, key: str) -> None:
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        response = alice.post(EXPENSES, json=draft(), headers={"Idempotency-Key": key.encode()})
    assert_error(response, 400, "BAD_REQUEST")
