"""schema.yml's field declarations hold for what a write would store (examples' expenses:
title required, amount a number >= 0, status and currency from their lists)."""

from __future__ import annotations

from typing import Any

from .harness import Gateway, assert_error, ejson, user_client

EXPENSES = "/v1/data/expenses"


def test_create_reports_every_problem(gateway: Gateway, tenant: str, gateway_db: Any) -> None:
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        error = assert_error(alice.post(EXPENSES, json={"amount": -1, "status": "draft", "currency": "XYZ"}), 422, "VALIDATION_ERROR")
    assert {problem["field"] for problem in error["details"]["errors"]} == {"title", "amount", "currency"}
    assert gateway_db.expenses.count_documents({"tenant_id": tenant}) == 0


def test_update_checks_the_fields_it_writes(gateway: Gateway, tenant: str, gateway_db: Any) -> None:
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        created = ejson(alice.post(EXPENSES, json={"title": "Taxi", "amount": 12, "status": "draft"}))
        path = f"{EXPENSES}/{created['_id']}"
        error = assert_error(alice.patch(path, json={"$inc": {"amount": -20}}), 422, "VALIDATION_ERROR")
        assert error["details"]["errors"] == [{"field": "amount", "message": "must be at least 0"}]
        assert_error(alice.patch(path, json={"title": None}), 422, "VALIDATION_ERROR")
        # A stored document that breaks a rule (written before it existed) stays updatable elsewhere.
        gateway_db.expenses.update_one({"_id": created["_id"]}, {"$set": {"currency": "XYZ"}})
        assert alice.patch(path, json={"title": "Train"}).status_code == 200
    assert gateway_db.expenses.find_one({"_id": created["_id"]})["amount"] == 12


def test_batch_create_reports_invalid_documents_by_index(gateway: Gateway, tenant: str) -> None:
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        response = alice.post(f"{EXPENSES}/batch", json={"documents": [
            {"title": "ok", "amount": 1, "status": "draft"},
            {"title": "bad", "amount": "one", "status": "draft"},
        ]})
    body = response.json()
    assert response.status_code == 200 and len(body["created"]) == 1
    assert [(f["index"], f["error"]["code"]) for f in body["failed"]] == [(1, "VALIDATION_ERROR")]


def test_numbers_beyond_64_bits_are_bad_requests(gateway: Gateway, tenant: str) -> None:
    huge = "1" + "0" * 25  # valid JSON; no BSON number holds it
    with user_client(gateway, "alice", tenant, ["user"]) as alice:
        headers = {"Content-Type": "application/json"}
        for path, body in [
            (f"{EXPENSES}/find", '{"filter": {"amount": ' + huge + "}}"),
            (f"{EXPENSES}/count", '{"filter": {"amount": {"$lt": ' + huge + "}}}"),
            (EXPENSES, '{"title": "t", "amount": ' + huge + ', "status": "draft"}'),
        ]:
            response = alice.post(path, content=body, headers=headers)
            assert 400 <= response.status_code < 500, (path, response.text)
