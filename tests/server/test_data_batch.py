"""Batch create, update and delete (``/v1/data/{collection}/batch``), black-box over HTTP.

Each item of a batch create is checked as a single create is, and reported with its index and
the code the single call would answer; a batch update applies the single-update rules (field
rules and the post-image rule) per document and reports those refused; update and delete only
reach what the caller may read and update (or delete). An interrupted batch says what it did,
and a retry with the same Idempotency-Key never creates a second copy.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pymongo
import pytest
from bson import ObjectId

from permission_mongo import PermissionMongo, RetryConfig
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
NOTES = "/v1/data/notes"


def draft(**fields: Any) -> dict[str, Any]:
    return {"title": "Taxi", "amount": 12, "status": "draft", **fields}


def oid(value: Any) -> dict[str, str]:
    return {"$oid": str(value)}


def batch(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return ejson(response)


def codes(result: dict[str, Any]) -> dict[int, str]:
    return {failure["index"]: failure["error"]["code"] for failure in result["failed"]}


# --- batch create ------------------------------------------------------------------------------

def test_each_document_is_checked_as_a_single_create_and_reported_by_index(
    gateway: Gateway, tenant: str, gateway_db: Any
) -> None:
    given, existing = ObjectId(), ObjectId()
    gateway_db.expenses.insert_one({"_id": existing, "tenant_id": "elsewhere", "title": "x"})
    documents = [
        draft(title="first"),                          # 0 created
        "not a document",                              # 1 VALIDATION_ERROR
        draft(approved_by="alice"),                    # 2 FIELD_NOT_WRITABLE (deny_write)
        draft(status="approved"),                      # 3 FORBIDDEN (the create rule)
        draft(_id=oid(given), title="given id"),       # 4 FIELD_NOT_WRITABLE (the gateway chooses ids)
        draft(title="second"),                         # 5 created
        draft(_id="65a000000000000000000001"),         # 6 FIELD_NOT_WRITABLE
        draft(title="last"),                           # 7 created
        draft(created_by="mallory"),                   # 8 FIELD_NOT_WRITABLE (system field)
        draft(tenant_id="other"),                      # 9 FIELD_NOT_WRITABLE (tenant)
        draft(**{"$where": "1"}),                      # 10 BAD_REQUEST (field name)
        draft(_id=oid(existing)),                      # 11 FIELD_NOT_WRITABLE, as 4: nothing said of the id
    ]
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        result = batch(alice.post(f"{EXPENSES}/batch", json={"documents": documents}))
    assert codes(result) == {
        1: "VALIDATION_ERROR", 2: "FIELD_NOT_WRITABLE", 3: "FORBIDDEN", 4: "FIELD_NOT_WRITABLE", 6: "FIELD_NOT_WRITABLE",
        8: "FIELD_NOT_WRITABLE", 9: "FIELD_NOT_WRITABLE", 10: "BAD_REQUEST", 11: "FIELD_NOT_WRITABLE",
    }
    assert [f["index"] for f in result["failed"]] == sorted(codes(result))
    for failure in result["failed"]:
        assert failure["error"]["message"]
    by_index = {f["index"]: f["error"] for f in result["failed"]}
    assert by_index[2]["details"] == {"field": "approved_by"}
    assert by_index[4] == by_index[11]
    # Created: the good ones, in the order sent, each exactly as a single create stores it.
    assert len(result["created"]) == 3 and given not in result["created"]
    stored = {doc["_id"]: doc for doc in gateway_db.expenses.find({"tenant_id": tenant})}
    assert set(stored) == set(result["created"])
    assert [stored[i]["title"] for i in result["created"]] == ["first", "second", "last"]
    for doc in stored.values():
        assert doc["owner_id"] == "alice" and doc["created_by"] == "alice" and doc["created_at"] == doc["updated_at"]
    assert gateway_db.expenses.find_one({"_id": existing}) == {"_id": existing, "tenant_id": "elsewhere", "title": "x"}


def test_a_batch_where_everything_fails_is_still_answered_item_by_item(gateway: Gateway, tenant: str, gateway_db: Any) -> None:
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        result = batch(alice.post(f"{EXPENSES}/batch", json={"documents": [draft(status="approved"), 5]}))
        assert result == {"created": [], "failed": [
            {"index": 0, "error": result["failed"][0]["error"]}, {"index": 1, "error": result["failed"][1]["error"]},
        ]}
        assert codes(result) == {0: "FORBIDDEN", 1: "VALIDATION_ERROR"}
        assert batch(alice.post(f"{EXPENSES}/batch", json={"documents": []})) == {"created": [], "failed": []}
    assert gateway_db.expenses.count_documents({"tenant_id": tenant}) == 0


def test_1000_documents_in_one_call_and_1001_refused(gateway: Gateway, tenant: str, gateway_db: Any) -> None:
    documents = [{"title": f"t{i}", "amount": i, "status": "draft"} for i in range(1000)]
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        error = assert_error(
            alice.post(f"{EXPENSES}/batch", json={"documents": [*documents, draft()]}), 422, "VALIDATION_ERROR"
        )
        assert "1000" in error["message"] and error["details"]["errors"][0]["field"] == "documents"
        assert gateway_db.expenses.count_documents({"tenant_id": tenant}) == 0
        result = batch(alice.post(f"{EXPENSES}/batch", json={"documents": documents}))
        assert result["failed"] == [] and len(set(result["created"])) == 1000
        # One batch update may touch as many, and the cap counts what the caller may update.
        updated = batch(alice.patch(f"{EXPENSES}/batch", json={"filter": {"amount": {"$gte": 0}}, "update": {"currency": "EUR"}}))
        assert updated == {"matched": 1000, "modified": 1000, "refused": []}
        assert batch(alice.request("DELETE", f"{EXPENSES}/batch", json={"ids": [oid(i) for i in result["created"][:10]]})) == {"deleted": 10}
    stored = list(gateway_db.expenses.find({"tenant_id": tenant}, {"amount": 1, "currency": 1}))
    assert len(stored) == 990 and {doc["currency"] for doc in stored} == {"EUR"}
    assert sorted(doc["amount"] for doc in stored) == list(range(10, 1000))


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"documents": {"title": "x"}}, 422, "VALIDATION_ERROR"),
        ({"documents": "x"}, 422, "VALIDATION_ERROR"),
        ({}, 422, "VALIDATION_ERROR"),
        ({"documents": [], "extra": 1}, 422, "VALIDATION_ERROR"),
        ([draft()], 422, "VALIDATION_ERROR"),
    ],
    ids=repr,
)
def test_request_level_errors_use_the_envelope(gateway: Gateway, tenant: str, body: Any, status: int, code: str) -> None:
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        assert_error(alice.post(f"{EXPENSES}/batch", json=body), status, code)


def test_a_caller_without_create_unknown_collections_and_no_credentials(gateway: Gateway, tenant: str, client: httpx.Client) -> None:
    body = {"documents": [draft()]}
    with user_client(gateway, "vic", tenant, ["viewer"]) as viewer, user_client(gateway, "ada", tenant, ["admin"]) as admin:
        assert_error(viewer.post(f"{EXPENSES}/batch", json=body), 403, "FORBIDDEN")
        assert_error(viewer.patch(f"{EXPENSES}/batch", json={"ids": [], "update": {"a": 1}}), 403, "FORBIDDEN")
        assert_error(viewer.request("DELETE", f"{EXPENSES}/batch", json={"ids": []}), 403, "FORBIDDEN")
        for collection in ("nothing_here", "_pm_idempotency"):
            path = f"/v1/data/{collection}/batch"
            assert_error(admin.post(path, json=body), 404, "COLLECTION_NOT_FOUND")
            assert_error(admin.patch(path, json={"ids": [], "update": {"a": 1}}), 404, "COLLECTION_NOT_FOUND")
            assert_error(admin.request("DELETE", path, json={"ids": []}), 404, "COLLECTION_NOT_FOUND")
    assert_error(client.post(f"{EXPENSES}/batch", json=body), 401, "UNAUTHORIZED")


def test_a_repeated_batch_replays_its_answer(gateway: Gateway, tenant: str, gateway_db: Any) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"documents": [draft(), draft(status="approved")]}
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        first = alice.post(f"{EXPENSES}/batch", json=body, headers=key)
        again = alice.post(f"{EXPENSES}/batch", json=body, headers=key)
        assert first.status_code == again.status_code == 200 and again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        ids = ejson(first)["created"]
        update_key = {"Idempotency-Key": uuid.uuid4().hex}
        for _ in range(2):
            response = alice.patch(f"{EXPENSES}/batch", json={"ids": [oid(ids[0])], "update": {"$inc": {"amount": 1}}}, headers=update_key)
            assert batch(response) == {"matched": 1, "modified": 1, "refused": []}
        delete_key = {"Idempotency-Key": uuid.uuid4().hex}
        for _ in range(2):
            assert batch(alice.request("DELETE", f"{EXPENSES}/batch", json={"ids": [oid(ids[0])]}, headers=delete_key)) == {"deleted": 1}
    assert gateway_db.expenses.count_documents({"tenant_id": tenant}) == 0


# --- batch update ------------------------------------------------------------------------------

@pytest.fixture
def writer(notes_gateway: Gateway, tenant: str) -> Iterator[httpx.Client]:
    with user_client(notes_gateway, "w1", tenant, ["writer"]) as client:
        yield client


def note(tenant: str, **fields: Any) -> dict[str, Any]:
    return {"_id": ObjectId(), "tenant_id": tenant, "owner_id": "w1", "title": "batch", "labels": ["draft"], "level": 3,
            "audit": "ok", "created_by": "w1", **fields}


@pytest.fixture
def notes(notes_database: Any, tenant: str) -> dict[str, dict[str, Any]]:
    """Notes titled "batch": three the writer may update, three it may not."""
    made = {
        "low": note(tenant, level=3),
        "top": note(tenant, level=5),        # $inc would take it past 5: refused by the post-image
        "mid": note(tenant, level=4),
        "other_owner": note(tenant, owner_id="w2", created_by="w2"),
        "locked": note(tenant, labels=["draft", "locked"]),
        "other_tenant": note("elsewhere-" + tenant),
    }
    notes_database.notes.insert_many(list(made.values()))
    return made


def stored(notes_database: Any, document: dict[str, Any]) -> dict[str, Any]:
    return notes_database.notes.find_one({"_id": document["_id"]})


def test_the_post_image_rule_holds_per_document(writer: httpx.Client, notes: dict[str, dict[str, Any]], notes_database: Any) -> None:
    result = batch(writer.patch(f"{NOTES}/batch", json={"filter": {"title": "batch"}, "update": {"$inc": {"level": 1}}}))
    assert result["matched"] == 3 and result["modified"] == 2
    assert [(r["id"], r["error"]["code"]) for r in result["refused"]] == [(notes["top"]["_id"], "FORBIDDEN")]
    assert stored(notes_database, notes["low"])["level"] == 4 and stored(notes_database, notes["mid"])["level"] == 5
    assert stored(notes_database, notes["low"])["updated_by"] == "w1"
    for name in ("top", "other_owner", "locked", "other_tenant"):  # refused, or never in scope
        assert stored(notes_database, notes[name]) == notes[name]


def test_field_rules_hold_per_document(gateway: Gateway, tenant: str, gateway_db: Any) -> None:
    # A manager's own draft: the user rule holds too, and lets it write the amount; its own
    # approved expense: only the manager rule holds, which keeps the amount.
    own_draft = {"_id": ObjectId(), "tenant_id": tenant, "owner_id": "max", "status": "draft", "title": "a", "amount": 1}
    approved = {"_id": ObjectId(), "tenant_id": tenant, "owner_id": "max", "status": "approved", "title": "b", "amount": 1}
    gateway_db.expenses.insert_many([own_draft, approved])
    with user_client(gateway, "max", tenant, ["manager"]) as manager:
        result = batch(manager.patch(f"{EXPENSES}/batch", json={"ids": [str(own_draft["_id"]), oid(approved["_id"])], "update": {"amount": 25}}))
    assert result["matched"] == 2 and result["modified"] == 1
    [refused] = result["refused"]
    assert refused["id"] == approved["_id"] and refused["error"]["code"] == "FIELD_NOT_WRITABLE"
    assert refused["error"]["details"] == {"field": "amount"}
    assert gateway_db.expenses.find_one({"_id": own_draft["_id"]})["amount"] == 25
    assert gateway_db.expenses.find_one({"_id": approved["_id"]}) == approved


def test_ids_as_oid_and_as_strings_and_documents_out_of_scope_are_skipped(
    writer: httpx.Client, notes: dict[str, dict[str, Any]], notes_database: Any
) -> None:
    ids = [oid(notes["low"]["_id"]), str(notes["mid"]["_id"]), str(notes["mid"]["_id"])]
    ids += [oid(notes[name]["_id"]) for name in ("other_owner", "locked", "other_tenant")] + [str(ObjectId()), "no-such-note"]
    result = batch(writer.patch(f"{NOTES}/batch", json={"ids": ids, "update": {"title": "renamed"}}))
    assert result == {"matched": 2, "modified": 2, "refused": []}
    assert {doc["_id"] for doc in notes_database.notes.find({"title": "renamed"})} == {notes["low"]["_id"], notes["mid"]["_id"]}
    for name in ("other_owner", "locked", "other_tenant"):
        assert stored(notes_database, notes[name]) == notes[name]


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"ids": [], "filter": {}, "update": {"a": 1}}, 400, "BAD_REQUEST"),
        ({"update": {"a": 1}}, 400, "BAD_REQUEST"),
        ({"filter": None, "update": {"a": 1}}, 400, "BAD_REQUEST"),
        ({"filter": {}, "update": {"a": 1}}, 400, "BAD_REQUEST"),
        ({"filter": {}, "all": False, "update": {"a": 1}}, 400, "BAD_REQUEST"),
        ({"filter": {}, "all": "true", "update": {"a": 1}}, 422, "VALIDATION_ERROR"),
        ({"filter": {"title": "batch"}}, 422, "VALIDATION_ERROR"),
        ({"filter": {"secret": "s"}, "update": {"a": 1}}, 400, "FIELD_NOT_READABLE"),
        ({"filter": {"$where": "1"}, "update": {"a": 1}}, 400, "BAD_REQUEST"),
        ({"ids": ["not an id"], "update": {"a": 1}}, 400, "BAD_REQUEST"),
        ({"ids": [5], "update": {"a": 1}}, 400, "BAD_REQUEST"),
        ({"ids": "abc", "update": {"a": 1}}, 422, "VALIDATION_ERROR"),
        ({"filter": {"title": "batch"}, "update": {"$where": "1"}}, 400, "BAD_REQUEST"),
        ({"filter": {"title": "batch"}, "update": {}}, 422, "VALIDATION_ERROR"),
        ({"filter": {"title": "batch"}, "update": {"$set": {"created_by": "x"}}}, 403, "FIELD_NOT_WRITABLE"),
        ({"filter": {"title": "batch"}, "update": {"tenant_id": "x"}}, 403, "FIELD_NOT_WRITABLE"),
    ],
    ids=repr,
)
def test_malformed_batch_updates_write_nothing(
    writer: httpx.Client, notes: dict[str, dict[str, Any]], notes_database: Any, body: Any, status: int, code: str
) -> None:
    error = assert_error(writer.patch(f"{NOTES}/batch", json=body), status, code)
    if body.get("filter") == {} and "ids" not in body and not body.get("all"):
        assert '"all": true' in error["message"]
    for document in notes.values():
        assert stored(notes_database, document) == document


def test_an_empty_filter_needs_all_true(writer: httpx.Client, notes: dict[str, dict[str, Any]], notes_database: Any) -> None:
    result = batch(writer.patch(f"{NOTES}/batch", json={"filter": {}, "all": True, "update": {"$set": {"tag": "x"}}}))
    assert result == {"matched": 3, "modified": 3, "refused": []}  # only what it may update, in its tenant
    assert {doc["_id"] for doc in notes_database.notes.find({"tag": "x"})} == {notes[n]["_id"] for n in ("low", "top", "mid")}
    error = assert_error(writer.request("DELETE", f"{NOTES}/batch", json={"filter": {}}), 400, "BAD_REQUEST")
    assert '"all": true' in error["message"]
    assert_error(writer.request("DELETE", f"{NOTES}/batch", json={"ids": [], "filter": {"title": "x"}}), 400, "BAD_REQUEST")
    assert_error(writer.request("DELETE", f"{NOTES}/batch", json={}), 400, "BAD_REQUEST")
    assert notes_database.notes.count_documents({"_id": {"$in": [d["_id"] for d in notes.values()]}}) == 6
    assert batch(writer.request("DELETE", f"{NOTES}/batch", json={"filter": {}, "all": True})) == {"deleted": 3}
    assert {doc["_id"] for doc in notes_database.notes.find({"_id": {"$in": [d["_id"] for d in notes.values()]}})} == {
        notes[n]["_id"] for n in ("other_owner", "locked", "other_tenant")
    }


# --- batch delete ------------------------------------------------------------------------------

def test_batch_delete_reaches_only_what_the_caller_may_delete(
    notes_gateway: Gateway, tenant: str, notes: dict[str, dict[str, Any]], notes_database: Any
) -> None:
    everything = [d["_id"] for d in notes.values()]
    with user_client(notes_gateway, "w1", tenant, ["writer"]) as writer:
        ids = [oid(notes["low"]["_id"]), str(notes["other_tenant"]["_id"]), str(notes["other_owner"]["_id"])]
        assert batch(writer.request("DELETE", f"{NOTES}/batch", json={"ids": ids})) == {"deleted": 1}
        assert batch(writer.request("DELETE", f"{NOTES}/batch", json={"filter": {"level": {"$gte": 4}}})) == {"deleted": 2}
    remaining = {doc["_id"] for doc in notes_database.notes.find({"_id": {"$in": everything}})}
    assert remaining == {notes[n]["_id"] for n in ("other_owner", "locked", "other_tenant")}
    # An auditor deletes all of its tenant's notes, and nothing of another tenant's.
    with user_client(notes_gateway, "aud", tenant, ["auditor"]) as auditor:
        assert_error(auditor.request("DELETE", f"{NOTES}/batch", json={"filter": {"secret": "s"}}), 400, "FIELD_NOT_READABLE")
        assert batch(auditor.request("DELETE", f"{NOTES}/batch", json={"filter": {}, "all": True})) == {"deleted": 2}
    assert stored(notes_database, notes["other_tenant"]) == notes["other_tenant"]


# --- the SDK against the live gateway ------------------------------------------------------------

def test_the_sdk_batch_calls_return_what_its_docs_show(gateway: Gateway, tenant: str, gateway_db: Any) -> None:
    token = make_token({"sub": "alice", "tenant_id": tenant, "roles": ["user"]})
    with PermissionMongo(url=gateway.url, api_key=token) as client:
        result = client.batch_create("expenses", [draft(title="a"), draft(title="b"), draft(status="approved")])
        assert len(result["created"]) == 2 and all(isinstance(i, ObjectId) for i in result["created"])
        [failure] = result["failed"]
        assert failure["index"] == 2 and failure["error"]["code"] == "FORBIDDEN" and failure["error"]["message"]
        first, second = result["created"]
        updated = client.batch_update("expenses", ids=[first, str(second)], update={"status": "submitted"})
        assert (updated["matched"], updated["modified"]) == (2, 2)
        updated = client.batch_update("expenses", filter={"title": "a"}, update={"status": "approved"})
        assert (updated["matched"], updated["modified"]) == (1, 0) and updated["refused"][0]["id"] == first
        assert client.batch_delete("expenses", ids=[str(first)]) == {"deleted": 1}
        assert client.batch_delete("expenses", filter={"title": "b"}) == {"deleted": 1}
    assert gateway_db.expenses.count_documents({"tenant_id": tenant}) == 0


# --- interrupted batches (SecantusDB's failCommand fail point) ------------------------------------

@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, pymongo.MongoClient]]:
    """A gateway on a database of its own that can be told to fail commands; batches of 5;
    expenses take ids chosen by callers."""
    with EmbeddedDatabase(tmp_path_factory.mktemp("faulty-db"), durable=False, test_commands=True) as database:
        config = write_config(
            tmp_path_factory.mktemp("faulty-config"),
            f"""\
mongodb:
  timeout: 5
auth:
  jwt: {{algorithm: HS256, secret: {JWT_SECRET}, issuer: "{JWT_ISSUER}", audience: {JWT_AUDIENCE}}}
limits:
  max_batch_size: 5
""",
        )
        schema = (config / "schema.yml").read_text()
        access = "access: {tenant_field: tenant_id, owner_field: owner_id}"
        assert schema.count(access) == 1
        (config / "schema.yml").write_text(schema.replace(access, access[:-1] + ", client_ids: true}"))
        command = serve_command(config, "--port", "0", "--mongodb-uri", database.uri, "--database", "faulty")
        server = Gateway(command, env=clean_environment()).start()
        client: pymongo.MongoClient = pymongo.MongoClient(database.uri, tz_aware=False)
        try:
            yield server, client
        finally:
            client.close()
            server.stop()


def fail_next(client: pymongo.MongoClient, command: str, *, skip: int = 0, **data: Any) -> None:
    """Fail the gateway's next ``command`` (after ``skip`` of them), not this test's."""
    client.admin.command(
        "configureFailPoint", "failCommand", mode={"skip": skip, "times": 1},
        data={"failCommands": [command], "appName": "permission-mongo", **data},
    )


@pytest.fixture
def fault_off(faulty: tuple[Gateway, pymongo.MongoClient]) -> Iterator[None]:
    yield
    faulty[1].admin.command("configureFailPoint", "failCommand", mode="off")


def test_the_cap_is_configurable(faulty: tuple[Gateway, pymongo.MongoClient], tenant: str) -> None:
    gateway, client = faulty
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        assert_error(alice.post(f"{EXPENSES}/batch", json={"documents": [draft()] * 6}), 422, "VALIDATION_ERROR")
        assert len(batch(alice.post(f"{EXPENSES}/batch", json={"documents": [draft()] * 5}))["created"]) == 5
        assert len(batch(alice.post(f"{EXPENSES}/batch", json={"documents": [draft()]}))["created"]) == 1
        # Six documents it may update: refused whole, nothing written.
        error = assert_error(alice.patch(f"{EXPENSES}/batch", json={"filter": {"title": "Taxi"}, "update": {"amount": 1}}), 400, "BAD_REQUEST")
        assert error["details"] == {"max": 5} and "Nothing was written" in error["message"]
        assert_error(alice.patch(f"{EXPENSES}/batch", json={"ids": [str(ObjectId())] * 6, "update": {"amount": 1}}), 422, "VALIDATION_ERROR")
        assert batch(alice.request("DELETE", f"{EXPENSES}/batch", json={"filter": {"title": "Taxi"}})) == {"deleted": 6}
    assert client.faulty.expenses.count_documents({"tenant_id": tenant}) == 0


def test_a_connection_lost_during_the_insert_is_a_503_and_the_retry_creates_once(
    faulty: tuple[Gateway, pymongo.MongoClient], tenant: str, fault_off: None
) -> None:
    gateway, client = faulty
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"documents": [draft(title="a"), draft(title="b"), draft(status="approved")]}
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        fail_next(client, "insert", skip=1, closeConnection=True)  # the first insert claims the key
        assert_error(alice.post(f"{EXPENSES}/batch", json=body, headers=key), 503, "SERVICE_UNAVAILABLE")
        assert client.faulty.expenses.count_documents({"tenant_id": tenant}) == 0
        result = batch(alice.post(f"{EXPENSES}/batch", json=body, headers=key))
    assert len(result["created"]) == 2 and codes(result) == {2: "FORBIDDEN"}
    assert sorted(doc["_id"] for doc in client.faulty.expenses.find({"tenant_id": tenant})) == sorted(result["created"])


def test_writes_done_but_not_confirmed_are_a_503_and_the_retry_finds_them(
    faulty: tuple[Gateway, pymongo.MongoClient], tenant: str, fault_off: None
) -> None:
    # The database applies the insert, then fails to confirm it (a write concern error): the
    # outcome is uncertain, so 503; the retry with the same key meets the stored documents
    # (same derived ids, same content) and reports them created, without a second copy.
    gateway, client = faulty
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"documents": [draft(title="a"), draft(title="b", _id="given-" + tenant), 7]}
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        fail_next(client, "insert", skip=1, writeConcernError={"code": 91, "errmsg": "shutting down"})
        assert_error(alice.post(f"{EXPENSES}/batch", json=body, headers=key), 503, "SERVICE_UNAVAILABLE")
        written = [doc["_id"] for doc in client.faulty.expenses.find({"tenant_id": tenant})]
        assert len(written) == 2 and "given-" + tenant in written
        result = batch(alice.post(f"{EXPENSES}/batch", json=body, headers=key))
        # "given-..." was the caller's own id: a duplicate of it is a conflict, as for a single create.
        assert codes(result) == {1: "CONFLICT", 2: "VALIDATION_ERROR"}
        assert result["created"] == [doc_id for doc_id in written if isinstance(doc_id, ObjectId)]
        # The same key with another body is refused while the answer is kept.
        assert_error(alice.post(f"{EXPENSES}/batch", json={"documents": [draft()]}, headers=key), 409, "CONFLICT")
        # The same documents under another key are new documents.
        assert len(batch(alice.post(f"{EXPENSES}/batch", json={"documents": [draft(title="a")]}, headers={"Idempotency-Key": uuid.uuid4().hex}))["created"]) == 1
    assert client.faulty.expenses.count_documents({"tenant_id": tenant}) == 3


def test_a_batch_update_interrupted_reports_exactly_what_it_wrote(
    faulty: tuple[Gateway, pymongo.MongoClient], tenant: str, fault_off: None
) -> None:
    gateway, client = faulty
    ids = [ObjectId() for _ in range(5)]
    client.faulty.expenses.insert_many(
        [{"_id": i, "tenant_id": tenant, "owner_id": "alice", "status": "draft", "title": "t", "amount": 1} for i in ids]
    )
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        fail_next(client, "update", skip=2, closeConnection=True)
        result = batch(alice.patch(f"{EXPENSES}/batch", json={"ids": [oid(i) for i in ids], "update": {"$inc": {"amount": 1}}}))
    refused = {r["id"] for r in result["refused"]}
    assert result["matched"] == 5 and result["modified"] + len(refused) == 5 and refused
    assert {r["error"]["code"] for r in result["refused"]} == {"SERVICE_UNAVAILABLE"}
    amounts = {doc["_id"]: doc["amount"] for doc in client.faulty.expenses.find({"tenant_id": tenant})}
    # Every document reported modified was modified once; the one whose write failed was not.
    assert {i for i in ids if amounts[i] == 2} == set(ids) - refused
    assert {i for i in ids if amounts[i] == 1} == refused


def test_the_sdk_retries_an_uncertain_batch_create_into_one_copy(
    faulty: tuple[Gateway, pymongo.MongoClient], tenant: str, fault_off: None
) -> None:
    # The SDK sends one Idempotency-Key for every attempt of a call and retries a 503 itself.
    gateway, client = faulty
    token = make_token({"sub": "alice", "tenant_id": tenant, "roles": ["user"]})
    unavailable = '"POST /v1/data/expenses/batch HTTP/1.1" 503'
    seen = gateway.output.count(unavailable)
    fail_next(client, "insert", skip=1, writeConcernError={"code": 91, "errmsg": "shutting down"})
    with PermissionMongo(url=gateway.url, api_key=token, retry_config=RetryConfig(backoff_factor=0)) as sdk:
        result = sdk.batch_create("expenses", [draft(title="a"), draft(title="b")])
    assert result["failed"] == [] and len(result["created"]) == 2
    assert gateway.output.count(unavailable) == seen + 1  # the first attempt was answered 503
    assert sorted(doc["_id"] for doc in client.faulty.expenses.find({"tenant_id": tenant})) == sorted(result["created"])
