"""Existence through create (issue 8, class 4): a create must not tell that an id exists.

A duplicate ``_id`` answers 409 whichever tenant's document holds it, and the gateway's
ObjectIds are sequential, so a caller choosing ids could probe another tenant's 1,000 at a
time. So a create may give its ``_id`` only where the collection opts in
(``collections.X.access.client_ids: true``): the examples' expenses do not, the test policy's
notes do, and show the trade-off that opting in makes.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from .harness import Gateway, assert_error, ejson, user_client

EXPENSES = "/v1/data/expenses"
NOTES = "/v1/data/notes"


def draft(**fields: Any) -> dict[str, Any]:
    return {"title": "Taxi", "amount": 12, "status": "draft", **fields}


def note(**fields: Any) -> dict[str, Any]:
    return {"title": "n", "labels": ["draft"], "level": 1, **fields}


def test_an_id_stored_elsewhere_and_a_new_one_answer_alike(gateway: Gateway, gateway_db: Any, tenant: str) -> None:
    elsewhere, fresh = ObjectId(), ObjectId()
    gateway_db.expenses.insert_one({"_id": elsewhere, "tenant_id": "another-tenant", "title": "x"})
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        errors = [
            assert_error(alice.post(EXPENSES, json=draft(_id={"$oid": str(key)})), 403, "FIELD_NOT_WRITABLE")
            for key in (elsewhere, fresh)
        ]
        assert errors[0] == errors[1]
        assert errors[0]["details"] == {"field": "_id"} and "client_ids" in errors[0]["message"]
        for body in (draft(_id="inv-001"), draft(_id="65a000000000000000000001"), draft(_id={"a": 1})):
            assert_error(alice.post(EXPENSES, json=body), 403, "FIELD_NOT_WRITABLE")
        # A batch reports each such item, the same whether the id exists or not.
        ids = [elsewhere, fresh] + [ObjectId() for _ in range(998)]
        response = alice.post(f"{EXPENSES}/batch", json={"documents": [{"_id": {"$oid": str(i)}} for i in ids]})
        assert response.status_code == 200, response.text
        result = ejson(response)
        assert result["created"] == [] and [f["index"] for f in result["failed"]] == list(range(1000))
        assert all(f["error"] == result["failed"][0]["error"] for f in result["failed"])
        assert result["failed"][0]["error"]["code"] == "FIELD_NOT_WRITABLE"
        # Without an _id the gateway chooses one.
        assert isinstance(ejson(alice.post(EXPENSES, json=draft()))["_id"], ObjectId)
    assert gateway_db.expenses.count_documents({"_id": {"$in": ids}}) == 1
    assert gateway_db.expenses.find_one({"_id": elsewhere})["tenant_id"] == "another-tenant"


def test_an_opted_in_collection_takes_string_and_object_ids(notes_gateway: Gateway, tenant: str) -> None:
    string_id = f"inv-{tenant}:001"
    with user_client(notes_gateway, "w1", tenant, ["writer"]) as writer:
        response = writer.post(NOTES, json=note(_id=string_id))
        assert response.status_code == 201, response.text
        assert writer.get(f"{NOTES}/{string_id}").json()["_id"] == string_id
        assert writer.patch(f"{NOTES}/{string_id}", json={"level": 3}).json()["level"] == 3
        oid = ObjectId()
        assert ejson(writer.post(NOTES, json=note(_id={"$oid": str(oid)})))["_id"] == oid
        assert_error(writer.post(NOTES, json=note(_id="65a000000000000000000001")), 422, "VALIDATION_ERROR")
        assert_error(writer.post(NOTES, json=note(_id={"a": 1})), 422, "VALIDATION_ERROR")
        assert_error(writer.post(NOTES, json=note(_id="has space")), 422, "VALIDATION_ERROR")
        assert writer.delete(f"{NOTES}/{string_id}").json() == {"deleted": True, "id": string_id}


def test_opting_in_tells_that_an_id_exists_anywhere(notes_gateway: Gateway, notes_database: Any, tenant: str) -> None:
    """The trade-off of ``client_ids: true``: a duplicate is a 409, even of an id the caller
    cannot read (another tenant's), which is what the refusal elsewhere prevents."""
    elsewhere = ObjectId()
    notes_database.notes.insert_one({"_id": elsewhere, "tenant_id": "another-tenant", "labels": ["draft"]})
    with user_client(notes_gateway, "w1", tenant, ["writer"]) as writer:
        assert_error(writer.get(f"{NOTES}/{elsewhere}"), 404, "NOT_FOUND")
        assert_error(writer.post(NOTES, json=note(_id={"$oid": str(elsewhere)})), 409, "CONFLICT")
        given = ObjectId()
        response = writer.post(f"{NOTES}/batch", json={"documents": [note(_id={"$oid": str(given)}), note(_id={"$oid": str(given)})]})
        result = ejson(response)
        assert result["created"] == [given] and [f["error"]["code"] for f in result["failed"]] == ["CONFLICT"]
