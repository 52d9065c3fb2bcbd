"""Idempotency-Key under database faults (issue 9, items 2 and 3), on a SecantusDB of its own
whose ``failCommand`` fail point makes the gateway's commands fail as a sick database would.

- A write the database applied but did not confirm (a write concern error) is not applied
  again by the retry: a create settles by its ids derived from the key (one document, the same
  ``_id`` answered), an update or a delete is refused (409, outcome unknown).
- A claim of the key whose reply was lost does not lock the key for the lease (60 s): it is
  read back, or, if the database does not answer that either, released as soon as it does, by
  the gateway that claimed it; the retry goes to another gateway on the same database.
- A pending record whose attempt died counts as an unknown outcome.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pymongo
import pytest
from bson import ObjectId

from permission_mongo import ConflictError, PermissionMongo, RetryConfig
from permission_mongo.embedded import EmbeddedDatabase

from .harness import (
    JWT_AUDIENCE,
    JWT_ISSUER,
    JWT_SECRET,
    Gateway,
    assert_error,
    clean_environment,
    ejson,
    make_token,
    serve_command,
    user_client,
    write_config,
)

EXPENSES = "/v1/data/expenses"
DATABASE = "faults"
OPERATION_TIMEOUT = 2  # seconds; a blocked command outlasts it
LEASE = 60  # the default: a key locked by a lost reply would be locked this long


def draft(**fields: Any) -> dict[str, Any]:
    return {"title": "Taxi", "amount": 12, "status": "draft", **fields}


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Gateway, pymongo.MongoClient]]:
    """Two gateways on one database that can be told to fail commands."""
    with EmbeddedDatabase(tmp_path_factory.mktemp("idem-faults-db"), durable=False, test_commands=True) as database:
        config = write_config(
            tmp_path_factory.mktemp("idem-faults-config"),
            f"""\
mongodb:
  timeout: 5
  operation_timeout: {OPERATION_TIMEOUT}
auth:
  jwt: {{algorithm: HS256, secret: {JWT_SECRET}, issuer: "{JWT_ISSUER}", audience: {JWT_AUDIENCE}}}
idempotency:
  lease_seconds: {LEASE}
""",
        )
        command = serve_command(config, "--port", "0", "--mongodb-uri", database.uri, "--database", DATABASE)
        first = Gateway(command, env=clean_environment()).start()
        second = Gateway(command, env=clean_environment()).start()
        client: pymongo.MongoClient = pymongo.MongoClient(database.uri, tz_aware=True)
        try:
            for gateway in (first, second):  # each makes its indexes before the faults begin
                with user_client(gateway, "warm-up", "warm-up", ["user"]) as warm:
                    response = warm.post(EXPENSES, json=draft(), headers={"Idempotency-Key": uuid.uuid4().hex})
                    assert response.status_code == 201, response.text
            yield first, second, client
        finally:
            client.close()
            first.stop()
            second.stop()


@pytest.fixture
def fault_off(faulty: tuple[Gateway, Gateway, pymongo.MongoClient]) -> Iterator[None]:
    yield
    faulty[2].admin.command("configureFailPoint", "failCommand", mode="off")


def fail(client: pymongo.MongoClient, *commands: str, skip: int = 0, times: int = 1, **data: Any) -> None:
    """Fail the gateways' next ``times`` of ``commands`` (after ``skip`` of them), not this test's."""
    client.admin.command(
        "configureFailPoint", "failCommand", mode={"skip": skip, "times": times},
        data={"failCommands": list(commands), "appName": "permission-mongo", **data},
    )


NOT_CONFIRMED = {"writeConcernError": {"code": 64, "errmsg": "waiting for replication timed out"}}
# The command waits longer than the gateway does, then runs: its reply is lost, its effect is not.
REPLY_LOST = {"blockConnection": True, "blockTimeMS": int(OPERATION_TIMEOUT * 1000 + 500)}


def sdk(gateway: Gateway, tenant: str, user: str = "alice") -> PermissionMongo:
    token = make_token({"sub": user, "tenant_id": tenant, "roles": ["user"]})
    return PermissionMongo(url=gateway.url, api_key=token, timeout=30, retry_config=RetryConfig(backoff_factor=0))


def stored(client: pymongo.MongoClient, tenant: str) -> list[dict[str, Any]]:
    return list(client[DATABASE].expenses.find({"tenant_id": tenant}))


@contextlib.contextmanager
def both(gateway: Gateway, other: Gateway, tenant: str) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Clients of the two gateways with one token (a token made a second later is another identity)."""
    token = make_token({"sub": "alice", "tenant_id": tenant, "roles": ["user"]})
    with gateway.client(token) as first, other.client(token) as second:
        yield first, second


def answers(gateway: Gateway, request_line: str, status: int) -> int:
    return gateway.output.count(f'"{request_line} HTTP/1.1" {status}')


# --- item 2: a write applied but not confirmed is not applied twice -------------------------------

def test_the_sdk_retries_a_create_the_database_did_not_confirm_into_one_document(
    faulty: tuple[Gateway, Gateway, pymongo.MongoClient], tenant: str, fault_off: None
) -> None:
    # A single create drew a fresh ObjectId per attempt and its record was released on the 503:
    # the retry stored a second document and the SDK returned the second id.
    gateway, _, client = faulty
    seen = answers(gateway, f"POST {EXPENSES}", 503)
    fail(client, "insert", skip=1, **NOT_CONFIRMED)  # the first insert claims the key
    with sdk(gateway, tenant) as alice:
        created = alice.insert("expenses", draft())
    assert answers(gateway, f"POST {EXPENSES}", 503) == seen + 1  # the first attempt was answered 503
    documents = stored(client, tenant)
    assert [document["_id"] for document in documents] == [created["_id"]]


def test_the_retry_of_an_unconfirmed_create_answers_201_as_a_fresh_create_would(
    faulty: tuple[Gateway, Gateway, pymongo.MongoClient], tenant: str, fault_off: None
) -> None:
    gateway, other, client = faulty
    key = {"Idempotency-Key": uuid.uuid4().hex}
    with both(gateway, other, tenant) as (alice, again):
        fresh = alice.post(EXPENSES, json=draft(title="fresh"), headers={"Idempotency-Key": uuid.uuid4().hex})
        fail(client, "insert", skip=1, **NOT_CONFIRMED)
        assert_error(alice.post(EXPENSES, json=draft(), headers=key), 503, "SERVICE_UNAVAILABLE")
        [document] = [d for d in stored(client, tenant) if d["title"] == "Taxi"]  # applied, not confirmed
        retried = again.post(EXPENSES, json=draft(), headers=key)  # through the other gateway
        replayed = alice.post(EXPENSES, json=draft(), headers=key)
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    body = retried.json()
    assert list(body) == list(fresh.json())  # the same shape as a fresh create's answer
    assert body["_id"] == {"$oid": str(document["_id"])}
    assert ejson(retried)["created_at"] == document["created_at"].replace(tzinfo=None)  # the stored document's
    assert replayed.status_code == 201 and replayed.content == retried.content
    assert len(stored(client, tenant)) == 2  # the fresh one and this one


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_an_update_or_delete_whose_outcome_is_unknown_is_not_run_again(
    faulty: tuple[Gateway, Gateway, pymongo.MongoClient], tenant: str, fault_off: None, method: str
) -> None:
    gateway, other, client = faulty
    doc_id = ObjectId()
    client[DATABASE].expenses.insert_one({"_id": doc_id, "tenant_id": tenant, "owner_id": "alice", **draft()})
    path, key = f"{EXPENSES}/{doc_id}", {"Idempotency-Key": uuid.uuid4().hex}
    body = {"$inc": {"amount": 1}} if method == "PATCH" else None
    with both(gateway, other, tenant) as (alice, again):
        fail(client, "update" if method == "PATCH" else "delete", **NOT_CONFIRMED)
        assert_error(alice.request(method, path, json=body, headers=key), 503, "SERVICE_UNAVAILABLE")
        for retry in (alice, again):
            error = assert_error(retry.request(method, path, json=body, headers=key), 409, "CONFLICT")
            assert error["details"] == {"header": "Idempotency-Key", "outcome": "unknown"}
            assert "may or may not have been applied" in error["message"] and "new key" in error["message"]
    if method == "PATCH":
        assert client[DATABASE].expenses.find_one({"_id": doc_id})["amount"] == 13
    else:
        assert client[DATABASE].expenses.find_one({"_id": doc_id}) is None


def test_the_sdk_never_applies_an_unconfirmed_inc_twice(
    faulty: tuple[Gateway, Gateway, pymongo.MongoClient], tenant: str, fault_off: None
) -> None:
    gateway, _, client = faulty
    doc_id = ObjectId()
    client[DATABASE].expenses.insert_one({"_id": doc_id, "tenant_id": tenant, "owner_id": "alice", **draft()})
    fail(client, "update", **NOT_CONFIRMED)
    with sdk(gateway, tenant) as alice, pytest.raises(ConflictError) as refused:
        alice.update("expenses", doc_id, {"$inc": {"amount": 1}})
    assert refused.value.details == {"header": "Idempotency-Key", "outcome": "unknown"}
    assert client[DATABASE].expenses.find_one({"_id": doc_id})["amount"] == 13  # +1, once


def test_a_pending_record_whose_attempt_died_is_an_unknown_outcome(
    faulty: tuple[Gateway, Gateway, pymongo.MongoClient], tenant: str
) -> None:
    # An attempt that died (its gateway killed) leaves its record pending; once the lease ran out,
    # the next attempt took it over and ran again: an $inc applied twice.
    gateway, _, client = faulty
    records = client[DATABASE]["_pm_idempotency"]

    def died(response: httpx.Response) -> None:
        assert response.status_code in (200, 201), response.text
        newest = records.find_one(sort=[("created_at", -1)])
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        records.update_one({"_id": newest["_id"]}, {"$set": {"state": "pending", "lease_until": past}})

    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        create_key = {"Idempotency-Key": uuid.uuid4().hex}
        created = alice.post(EXPENSES, json=draft(), headers=create_key)
        died(created)
        again = alice.post(EXPENSES, json=draft(), headers=create_key)  # a create settles by running again
        assert again.status_code == 201 and again.json()["_id"] == created.json()["_id"]
        path, update_key = f"{EXPENSES}/{created.json()['_id']['$oid']}", {"Idempotency-Key": uuid.uuid4().hex}
        died(alice.patch(path, json={"$inc": {"amount": 1}}, headers=update_key))
        error = assert_error(alice.patch(path, json={"$inc": {"amount": 1}}, headers=update_key), 409, "CONFLICT")
        assert error["details"]["outcome"] == "unknown"
    [document] = stored(client, tenant)
    assert document["amount"] == 13


# --- item 3: a claim whose reply was lost does not lock the key -----------------------------------

@pytest.mark.parametrize("fault", [NOT_CONFIRMED, REPLY_LOST], ids=["not-confirmed", "reply-lost"])
@pytest.mark.parametrize("call", ["insert", "batch_create"])
def test_a_lost_claim_does_not_lock_the_key_for_the_lease(
    faulty: tuple[Gateway, Gateway, pymongo.MongoClient], tenant: str, fault_off: None, fault: dict[str, Any], call: str
) -> None:
    # The claim (the first insert) was applied but its answer lost: every retry answered "still
    # in progress" (503) for the lease's 60 s, and the SDK gave up.
    gateway, _, client = faulty
    fail(client, "insert", **fault)
    started = time.monotonic()
    with sdk(gateway, tenant) as alice:
        if call == "insert":
            ids = [alice.insert("expenses", draft())["_id"]]
        else:
            result = alice.batch_create("expenses", [draft(title="a"), draft(title="b")])
            assert result["failed"] == []
            ids = result["created"]
    elapsed = time.monotonic() - started
    assert elapsed < 10, elapsed  # the lease is 60 s
    assert sorted(document["_id"] for document in stored(client, tenant)) == sorted(ids)


def _until_answered(client: httpx.Client, key: dict[str, str], bound: float) -> httpx.Response:
    """POST one create with ``key`` until it is not "still in progress", at most ``bound`` seconds."""
    deadline = time.monotonic() + bound
    while True:
        response = client.post(EXPENSES, json=draft(), headers=key)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_a_claim_the_database_cannot_confirm_nor_show_is_released_once_it_answers(
    faulty: tuple[Gateway, Gateway, pymongo.MongoClient], tenant: str, fault_off: None
) -> None:
    # The claim's reply is lost and reading the record back fails too: the attempt answers 503,
    # and its gateway deletes the record as soon as the database answers; the retry, through
    # the other gateway, finds the key free.
    gateway, other, client = faulty
    key = {"Idempotency-Key": uuid.uuid4().hex}
    fail(client, "insert", "find", times=2, **REPLY_LOST)
    with both(gateway, other, tenant) as (alice, again):
        assert_error(alice.post(EXPENSES, json=draft(), headers=key), 503, "SERVICE_UNAVAILABLE")
        answered = time.monotonic()
        retried = _until_answered(again, key, bound=10)
        assert time.monotonic() - answered < 10
    assert retried.status_code == 201, retried.text
    assert [document["_id"] for document in stored(client, tenant)] == [ObjectId(retried.json()["_id"]["$oid"])]


def test_a_release_the_database_failed_is_retried_until_it_is_done(
    faulty: tuple[Gateway, Gateway, pymongo.MongoClient], tenant: str, fault_off: None
) -> None:
    # The create fails (500, nothing written) and so does the release of its record, which was
    # then left pending: the key was locked for the lease.
    gateway, other, client = faulty
    key = {"Idempotency-Key": uuid.uuid4().hex}
    fail(client, "insert", "delete", skip=1, times=2, errorCode=8)  # after the claim: the create, the release
    with both(gateway, other, tenant) as (alice, again):
        assert_error(alice.post(EXPENSES, json=draft(), headers=key), 500, "INTERNAL_ERROR")
        retried = _until_answered(again, key, bound=10)
    assert retried.status_code == 201, retried.text
    assert len(stored(client, tenant)) == 1


def test_ids_made_under_a_key_still_sort_by_creation(faulty: tuple[Gateway, Gateway, pymongo.MongoClient], tenant: str) -> None:
    # Ids derived from the key alone (a hash) sorted at random: a find in _id order no longer
    # listed documents as they were created.
    gateway, _, client = faulty
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with sdk(gateway, tenant) as alice:
        made = [alice.insert("expenses", draft(title=str(n)))["_id"] for n in range(5)]
        made += alice.batch_create("expenses", [draft(title="batch")])["created"]
    assert made == sorted(made)
    assert all(before <= oid.generation_time <= dt.datetime.now(dt.UTC) for oid in made)
    assert [document["_id"] for document in client[DATABASE].expenses.find({"tenant_id": tenant}).sort("_id")] == made
