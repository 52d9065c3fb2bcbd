"""Idempotency-Key on data-plane writes: a repeat replays the first answer and writes nothing;
another body under the same key is a 409; a repeat while the first runs is a 503 to retry; a
repeat by another identity (fewer roles, another credential) is a 409; reads ignore the key."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from bson import ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st

from permission_mongo.auth import Authenticated
from permission_mongo.policy import Identity

from .harness import Gateway, assert_error, make_token, user_client
from .test_api_keys import create_key

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
    key = {"Idempotency-Key": uuid.uuid4().hex}
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        assert alice.post(EXPENSES, json=draft(), headers=key).status_code == 201
        # Put its record back as a running request holds it: pending, under a lease.
        record = gateway_db["_pm_idempotency"].find_one(sort=[("created_at", -1)])
        gateway_db["_pm_idempotency"].update_one(
            {"_id": record["_id"]},
            {"$set": {"state": "pending", "lease_until": dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)}},
        )
        response = alice.post(EXPENSES, json=draft(), headers=key)
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


# --- only writes, and only for the identity that made them ------------------------------------

def records(gateway_db: Any) -> int:
    return gateway_db["_pm_idempotency"].count_documents({})


def test_reads_sent_by_post_are_never_stored_or_replayed(gateway: Gateway, tenant: str, gateway_db: Any) -> None:
    # The naive rule (every POST under /v1/data/ is idempotent) stored these answers and gave
    # them back after the data, or the caller's rights, had changed.
    key = {"Idempotency-Key": uuid.uuid4().hex}
    reads = [
        (f"{EXPENSES}/find", {"filter": {}}, lambda body: len(body["data"])),
        (f"{EXPENSES}/count", {"filter": {}}, lambda body: body["count"]),
        (f"{EXPENSES}/aggregate", {"pipeline": [{"$match": {}}]}, lambda body: len(body["data"])),
    ]
    with user_client(gateway, "alice", tenant, ["admin"]) as alice:
        before = records(gateway_db)
        firsts = []
        for path, body, size in reads:
            response = alice.post(path, json=body, headers=key)
            assert response.status_code == 200, response.text
            firsts.append(size(response.json()))
        assert alice.post(EXPENSES, json=draft()).status_code == 201
        for (path, body, size), first in zip(reads, firsts, strict=True):
            again = alice.post(path, json=body, headers=key)
            assert "idempotent-replayed" not in again.headers
            assert size(again.json()) == first + 1
    assert records(gateway_db) == before  # and nothing was stored for them


def test_a_demoted_token_replaying_a_create_gets_409_not_the_stored_answer(
    gateway: Gateway, tenant: str, gateway_db: Any
) -> None:
    # Same sub and tenant, fewer roles: the naive record key (user id and tenant) replayed the
    # admin's answer to the demoted token.
    key = {"Idempotency-Key": uuid.uuid4().hex}
    with user_client(gateway, "alice", tenant, ["admin"]) as admin:
        created = admin.post(EXPENSES, json=draft(internal_notes="for admins"), headers=key)
    assert created.status_code == 201, created.text
    with user_client(gateway, "alice", tenant, ["viewer"]) as demoted:
        refused = demoted.post(EXPENSES, json=draft(internal_notes="for admins"), headers=key)
    error = assert_error(refused, 409, "CONFLICT")
    assert "another identity" in error["message"]
    assert "idempotent-replayed" not in refused.headers
    assert created.json()["_id"]["$oid"] not in refused.text
    assert gateway_db.expenses.count_documents({"tenant_id": tenant}) == 1  # and not written again


def test_a_token_with_other_claims_is_another_identity(gateway: Gateway, tenant: str, gateway_db: Any) -> None:
    # Any claim may decide access (conditions read user.attributes.*), so any difference counts.
    key = {"Idempotency-Key": uuid.uuid4().hex}
    with user_client(gateway, "alice", tenant, ["user"], department="sales") as alice:
        assert alice.post(EXPENSES, json=draft(), headers=key).status_code == 201
    with user_client(gateway, "alice", tenant, ["user"], department="audit") as moved:
        assert_error(moved.post(EXPENSES, json=draft(), headers=key), 409, "CONFLICT")
    assert gateway_db.expenses.count_documents({"tenant_id": tenant}) == 1


def test_an_api_key_and_a_jwt_of_the_same_user_do_not_share_records(
    gateway: Gateway, admin: httpx.Client, tenant: str, gateway_db: Any
) -> None:
    identity = {"id": "alice", "tenant_id": tenant, "roles": ["user"]}
    first_key, second_key = create_key(admin, identity=identity)["key"], create_key(admin, identity=identity)["key"]
    token = make_token(sub="alice", tenant_id=tenant, roles=["user"])
    for first, second in [(token, first_key), (first_key, token), (first_key, second_key)]:
        key = {"Idempotency-Key": uuid.uuid4().hex}
        with gateway.client(first) as one, gateway.client(second) as other:
            # Both see the same identity...
            assert {k: v for k, v in one.get("/v1/whoami").json().items() if k != "attributes"} == {
                k: v for k, v in other.get("/v1/whoami").json().items() if k != "attributes"
            }
            assert one.post(EXPENSES, json=draft(), headers=key).status_code == 201
            # ...but a credential is part of who is asking: which key, or a token.
            assert_error(other.post(EXPENSES, json=draft(), headers=key), 409, "CONFLICT")
            assert one.post(EXPENSES, json=draft(), headers=key).headers["idempotent-replayed"] == "true"
    assert gateway_db.expenses.count_documents({"tenant_id": tenant}) == 3


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)
identities = st.builds(
    Identity,
    id=st.text(max_size=4) | st.none(),
    tenant_id=st.text(max_size=4) | st.none(),
    roles=st.lists(st.text(max_size=4), max_size=3),
    attributes=st.dictionaries(st.text(max_size=4), values, max_size=3),
    subordinates=st.lists(st.text(max_size=3), max_size=2),
    direct_reports=st.lists(st.text(max_size=3), max_size=2),
    ancestors=st.lists(st.text(max_size=3), max_size=2),
)
credentials = st.sampled_from(["jwt", "admin-key", "api-key:1", "api-key:2"])


def _canon(value: Any) -> Any:
    """Equal exactly when the values are, with type (True is not 1, 1 is not 1.0), and dicts
    compared without regard to order."""
    if isinstance(value, dict | type(Identity().attributes)):
        return ("dict", tuple(sorted((key, _canon(item)) for key, item in value.items())))
    if isinstance(value, list | tuple):
        return ("list", tuple(_canon(item) for item in value))
    return (type(value).__name__, repr(value))


def _as_data(caller: Authenticated) -> Any:
    identity = caller.identity
    return caller.credential, tuple((f.name, _canon(getattr(identity, f.name))) for f in dataclasses.fields(identity))


@settings(max_examples=300, deadline=None)
@given(a=identities, b=identities, credential_a=credentials, credential_b=credentials)
def test_the_fingerprint_differs_exactly_when_something_that_decides_access_does(
    a: Identity, b: Identity, credential_a: str, credential_b: str
) -> None:
    one, other = Authenticated(a, credential_a), Authenticated(b, credential_b)
    same = _as_data(one) == _as_data(other)
    assert (one.fingerprint() == other.fingerprint()) is same
    # The order claims arrive in is not a difference.
    reordered = dataclasses.replace(a, attributes=dict(reversed(list(a.attributes.items()))))
    assert Authenticated(reordered, credential_a).fingerprint() == one.fingerprint()
