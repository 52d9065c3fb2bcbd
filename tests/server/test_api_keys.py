"""API keys: created by an admin and shown once, stored hashed, listed without secrets,
revoked with effect on the next request, refused when expired; never logged."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pymongo
import pymongo.errors
import pytest
from bson import ObjectId

from .harness import Gateway, assert_error

KEYS = "/v1/admin/api-keys"


def create_key(admin: httpx.Client, **body: Any) -> dict[str, Any]:
    body.setdefault("identity", {"id": "bob", "tenant_id": "acme", "roles": ["user"]})
    response = admin.post(KEYS, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def as_key(gateway: Gateway, key: str) -> httpx.Client:
    return gateway.client(key)


def test_create_returns_the_key_once_with_its_identity(admin: httpx.Client) -> None:
    identity = {"id": "bob", "tenant_id": "acme", "roles": ["user", "viewer"], "attributes": {"department": "sales"}}
    created = create_key(admin, identity=identity, name="bob's laptop")
    assert created["key"].startswith("pm_") and len(created["key"]) >= 3 + 43
    assert ObjectId.is_valid(created["id"])
    assert created["identity"] == identity
    assert created["name"] == "bob's laptop"
    assert created["revoked"] is False and created["expires_at"] is None
    assert "key_hash" not in created


def test_a_key_authenticates_as_its_identity(admin: httpx.Client, gateway: Gateway) -> None:
    identity = {"id": "carol", "tenant_id": "globex", "roles": ["manager"], "attributes": {"level": 7}}
    created = create_key(admin, identity=identity)
    with as_key(gateway, created["key"]) as carol:
        me = carol.get("/v1/whoami").json()
    assert {name: me[name] for name in identity} == identity


def test_keys_are_unique(admin: httpx.Client) -> None:
    keys = {create_key(admin)["key"] for _ in range(3)}
    assert len(keys) == 3


def test_the_list_never_shows_keys_or_hashes(admin: httpx.Client) -> None:
    created = create_key(admin, name="listed")
    response = admin.get(KEYS)
    assert response.status_code == 200
    listed = {entry["id"]: entry for entry in response.json()["data"]}
    assert listed[created["id"]]["name"] == "listed"
    assert created["key"] not in response.text
    assert hashlib.sha256(created["key"].encode()).hexdigest() not in response.text
    assert all("key" not in entry and "key_hash" not in entry for entry in listed.values())


def test_keys_are_stored_hashed(admin: httpx.Client, mongo_client: pymongo.MongoClient, gateway_database: str) -> None:
    created = create_key(admin)
    stored = mongo_client[gateway_database]["_pm_api_keys"].find_one({"_id": ObjectId(created["id"])})
    assert stored is not None
    assert stored["key_hash"] == hashlib.sha256(created["key"].encode()).hexdigest()
    assert created["key"] not in repr(stored)


def test_a_revoked_key_is_refused_on_the_next_request(admin: httpx.Client, gateway: Gateway) -> None:
    created = create_key(admin)
    with as_key(gateway, created["key"]) as bob:
        assert bob.get("/v1/whoami").status_code == 200  # now cached in the gateway
        revoked = admin.delete(f"{KEYS}/{created['id']}")
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["revoked"] is True and revoked.json()["revoked_at"] is not None
        assert_error(bob.get("/v1/whoami"), 401, "INVALID_TOKEN")
    listed = {entry["id"]: entry for entry in admin.get(KEYS).json()["data"]}
    assert listed[created["id"]]["revoked"] is True


def test_revoking_twice_keeps_the_first_revocation(admin: httpx.Client) -> None:
    created = create_key(admin)
    first = admin.delete(f"{KEYS}/{created['id']}").json()
    second = admin.delete(f"{KEYS}/{created['id']}")
    assert second.status_code == 200
    assert second.json()["revoked_at"] == first["revoked_at"]


def test_revoking_an_unknown_key_is_not_found(admin: httpx.Client) -> None:
    assert_error(admin.delete(f"{KEYS}/{ObjectId()}"), 404, "NOT_FOUND")


def test_an_expired_key_is_refused(
    admin: httpx.Client, gateway: Gateway, mongo_client: pymongo.MongoClient, gateway_database: str
) -> None:
    created = create_key(admin, expires_at=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    assert created["expires_at"] is not None
    # Let it expire in the database, before the gateway has seen it.
    mongo_client[gateway_database]["_pm_api_keys"].update_one(
        {"_id": ObjectId(created["id"])}, {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}}
    )
    with as_key(gateway, created["key"]) as bob:
        assert_error(bob.get("/v1/whoami"), 401, "EXPIRED_TOKEN")


@pytest.mark.parametrize(
    "expires_at",
    [
        pytest.param("2001-01-01T00:00:00Z", id="past"),
        pytest.param("2999-01-01T00:00:00", id="no-timezone"),
        pytest.param("tomorrow", id="not-a-date"),
    ],
)
def test_a_bad_expiry_is_a_validation_error(admin: httpx.Client, expires_at: str) -> None:
    body = {"identity": {"id": "bob"}, "expires_at": expires_at}
    error = assert_error(admin.post(KEYS, json=body), 422, "VALIDATION_ERROR")
    assert error["details"]["errors"][0]["field"] == "expires_at"


def test_expiry_may_be_extended_json(admin: httpx.Client) -> None:
    created = create_key(admin, expires_at={"$date": "2999-01-01T00:00:00Z"})
    assert created["expires_at"] == {"$date": "2999-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    "identity",
    [
        pytest.param({"id": ""}, id="empty-id"),
        pytest.param({"id": "x", "roles": [""]}, id="empty-role"),
        pytest.param({"id": "x", "attributes": {"$where": 1}}, id="operator-attribute"),
        pytest.param({"id": "x", "attributes": {"a.b": 1}}, id="dotted-attribute"),
        pytest.param({"id": "x", "tenant": "acme"}, id="unknown-field"),
    ],
)
def test_a_bad_identity_is_a_validation_error(admin: httpx.Client, identity: dict[str, Any]) -> None:
    assert_error(admin.post(KEYS, json={"identity": identity}), 422, "VALIDATION_ERROR")


def test_the_management_api_needs_credentials(client: httpx.Client) -> None:
    assert_error(client.get(KEYS), 401, "UNAUTHORIZED")
    assert_error(client.post(KEYS, json={"identity": {"id": "x"}}), 401, "UNAUTHORIZED")
    assert_error(client.delete(f"{KEYS}/{ObjectId()}"), 401, "UNAUTHORIZED")


def test_the_management_api_needs_the_admin_role(admin: httpx.Client, gateway: Gateway) -> None:
    created = create_key(admin, identity={"id": "dave", "tenant_id": "acme", "roles": ["admin"]})
    with as_key(gateway, created["key"]) as dave:
        assert_error(dave.get(KEYS), 403, "FORBIDDEN")
        assert_error(dave.post(KEYS, json={"identity": {"id": "x", "roles": ["pm:admin"]}}), 403, "FORBIDDEN")
        assert_error(dave.delete(f"{KEYS}/{created['id']}"), 403, "FORBIDDEN")


def test_a_key_with_the_admin_role_may_manage_keys(admin: httpx.Client, gateway: Gateway) -> None:
    created = create_key(admin, identity={"id": "ops", "roles": ["pm:admin"]})
    with as_key(gateway, created["key"]) as ops:
        assert create_key(ops)["key"].startswith("pm_")


@pytest.mark.parametrize("token", ["pm_", "pm_short", "pm_" + "A" * 43, "pm_" + "!" * 43])
def test_unknown_or_malformed_keys_are_invalid(client: httpx.Client, token: str) -> None:
    response = client.get("/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 401, "INVALID_TOKEN")


def test_keys_never_reach_the_log(admin: httpx.Client, gateway: Gateway, admin_key: str) -> None:
    created = create_key(admin)
    with as_key(gateway, created["key"]) as bob:
        bob.get("/v1/whoami")
        bob.get("/v1/admin/api-keys")
    with as_key(gateway, created["key"] + "x") as wrong:
        wrong.get("/v1/whoami")
    admin.delete(f"{KEYS}/{created['id']}")
    with as_key(gateway, created["key"]) as revoked:
        revoked.get("/v1/whoami")
    output = gateway.output
    assert "/v1/whoami" in output  # the log is being captured
    for secret in (created["key"], admin_key, hashlib.sha256(created["key"].encode()).hexdigest()):
        assert secret not in output


def test_a_key_may_only_carry_roles_the_policy_defines(admin: httpx.Client) -> None:
    response = admin.post(KEYS, json={"identity": {"id": "x", "roles": ["user", "superuser"]}})
    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert error["details"]["unknown"] == ["superuser"]
    assert {"viewer", "user", "manager", "admin", "pm:admin"} <= set(error["details"]["known"])


# --- depth (issue 9): a key's record nests at most limits.max_document_depth levels -----------

def nest(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def test_a_key_nests_at_most_the_limit(admin: httpx.Client, mongo_client: pymongo.MongoClient, gateway_database: str) -> None:
    # Stored as {"identity": {"attributes": {"deep": ...}}}: three levels and those of "deep".
    owner = f"deep-{ObjectId()}"
    create_key(admin, identity={"id": owner, "attributes": {"deep": nest(97)}})
    for levels in (98, 700):
        response = admin.post(KEYS, json={"identity": {"id": owner, "attributes": {"deep": nest(levels)}}})
        error = assert_error(response, 422, "VALIDATION_ERROR")
        assert error["details"]["errors"][0]["field"] == "identity.attributes"
        assert "limits.max_document_depth" in error["message"] and "at most 100" in error["message"]
    assert mongo_client[gateway_database]["_pm_api_keys"].count_documents({"identity.id": owner}) == 1
    assert admin.get(KEYS).status_code == 200


def test_a_stored_key_that_cannot_be_read_does_not_break_the_listing(
    admin: httpx.Client, gateway: Gateway, mongo_client: pymongo.MongoClient, gateway_database: str
) -> None:
    # Written directly in the database: too deep to answer as JSON (700 levels, and as deep as
    # the database stores: SecantusDB some 980), and without the fields of a key record (what
    # the driver cannot decode fails the same way; SecantusDB stores no invalid BSON to show it).
    keys = mongo_client[gateway_database]["_pm_api_keys"]
    good = create_key(admin, name="readable")
    record = {"key_hash": "0" * 64, "name": None, "created_at": datetime.now(UTC), "revoked_at": None}
    broken = {
        ObjectId(): {**record, "key_hash": "1" * 64, "identity": {"id": "x", "attributes": {"deep": nest(700)}}},
        ObjectId(): {"name": "no key hash"},
    }
    try:
        for key_id, document in broken.items():
            keys.insert_one({"_id": key_id, **document})
        deepest = ObjectId()
        for levels in range(1000, 700, -10):  # as deep as this process encodes and the database stores
            try:
                keys.insert_one({"_id": deepest, **record, "key_hash": "2" * 64, "identity": {"attributes": {"deep": nest(levels)}}})
            except (pymongo.errors.OperationFailure, RecursionError):
                continue
            broken[deepest] = {}
            break
        response = admin.get(KEYS)
        assert response.status_code == 200, response.text
        listing = response.json()
        assert good["id"] in {entry["id"] for entry in listing["data"]}
        assert {str(key_id) for key_id in broken} <= set(listing["unreadable"])
        assert not {str(key_id) for key_id in broken} & {entry["id"] for entry in listing["data"]}
        for key_id in broken:
            assert f"API key {key_id}" in gateway.output  # logged for the operator
    finally:
        keys.delete_many({"_id": {"$in": list(broken)}})
