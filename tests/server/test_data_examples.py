"""The examples' expenses app end to end, through API keys made with the admin API: each role
sees and does what ``examples/policy.yml`` says. And no credential ever reaches the log
(DESIGN invariant 8)."""

from __future__ import annotations


import httpx
import pytest

from .harness import Gateway, assert_error, ejson, make_token

EXPENSES = "/v1/data/expenses"
CUSTOMERS = "/v1/data/customers"


@pytest.fixture
def keys(admin: httpx.Client, tenant: str) -> dict[str, str]:
    """One API key per person of the example tenant."""
    people = {"ann": ["user"], "max": ["manager"], "vic": ["viewer"], "ada": ["admin"], "eve": ["user"]}
    made = {}
    for person, roles in people.items():
        response = admin.post("/v1/admin/api-keys", json={"identity": {"id": person, "tenant_id": tenant, "roles": roles}})
        assert response.status_code == 201, response.text
        made[person] = response.json()["key"]
    return made


def test_the_expenses_app(gateway: Gateway, keys: dict[str, str]) -> None:
    ann, max_, vic, ada, eve = (gateway.client(keys[p]) for p in ("ann", "max", "vic", "ada", "eve"))
    with ann, max_, vic, ada, eve:
        # Ann files a draft and submits it; internal notes are not hers to write.
        assert_error(ann.post(EXPENSES, json={"title": "Hotel", "amount": 300, "status": "draft", "internal_notes": "x"}), 403, "FIELD_NOT_WRITABLE")
        draft = ann.post(EXPENSES, json={"title": "Hotel", "amount": 300, "status": "draft", "submitter_email": "ann@acme.test"})
        assert draft.status_code == 201, draft.text
        path = f"{EXPENSES}/{draft.json()['_id']['$oid']}"
        # Eve, another user of the tenant, cannot see Ann's draft at all.
        assert_error(eve.get(path), 404, "NOT_FOUND")
        assert eve.post(f"{EXPENSES}/count", json={}).json() == {"count": 0}
        assert ann.patch(path, json={"status": "submitted"}).status_code == 200
        assert_error(ann.patch(path, json={"status": "approved"}), 403, "FORBIDDEN")  # not her call
        assert_error(ann.patch(path, json={"approved_by": "ann"}), 403, "FIELD_NOT_WRITABLE")
        assert eve.post(f"{EXPENSES}/count", json={}).json() == {"count": 1}  # submitted: viewers read it
        # Vic the viewer reads submitted expenses with the email masked, never internal notes.
        seen = vic.get(path).json()
        assert seen["submitter_email"] == "a***@acme.test" and "internal_notes" not in seen
        assert_error(vic.post(f"{EXPENSES}/find", json={"filter": {"submitter_email": "ann@acme.test"}}), 400, "FIELD_NOT_READABLE")
        assert_error(vic.patch(path, json={"title": "x"}), 403, "FORBIDDEN")
        # Ada the admin approves it and adds notes; the amount stays Ann's.
        approved = ada.patch(path, json={"status": "approved", "approved_by": "ada", "internal_notes": "ok"})
        assert approved.status_code == 200, approved.text
        assert ejson(approved)["approved_by"] == "ada"
        # Approved: Ann reads it as a viewer does (email masked) and can no longer change it.
        assert ann.get(path).json()["submitter_email"] == "a***@acme.test"
        assert_error(ann.patch(path, json={"title": "x"}), 403, "FORBIDDEN")
        assert_error(ann.delete(path), 403, "FORBIDDEN")
        assert vic.get(path).json()["status"] == "approved"
        # A manager's approved expense: only the manager rule holds, which keeps the amount.
        own = ada.post(EXPENSES, json={"title": "Lunch", "amount": 20, "status": "approved", "owner_id": "max"})
        assert own.status_code == 201, own.text
        own_path = f"{EXPENSES}/{own.json()['_id']['$oid']}"
        assert_error(max_.patch(own_path, json={"amount": 25}), 403, "FIELD_NOT_WRITABLE")
        assert max_.patch(own_path, json={"title": "Team lunch"}).status_code == 200
        # Customers: users create them; viewers see email and phone masked, tax id redacted.
        customer = ann.post(CUSTOMERS, json={"name": "Globex", "email": "ops@globex.test", "phone": "+1-555-123-4567", "tax_id": "T-1"})
        assert customer.status_code == 201, customer.text
        assert customer.json()["tax_id"] == "***"  # masked for Ann too
        assert_error(ann.post(CUSTOMERS, json={"name": "X", "credit_limit": 5}), 403, "FIELD_NOT_WRITABLE")
        shown = vic.get(CUSTOMERS, params={"sort": "name"}).json()["data"]
        assert [(c["name"], c["email"], c["phone"], c["tax_id"]) for c in shown] == [("Globex", "o***@globex.test", "+1-***-***-4567", "***")]
        assert ada.delete(f"{CUSTOMERS}/{customer.json()['_id']['$oid']}").json()["deleted"] is True


def test_no_credential_reaches_the_log(gateway: Gateway, keys: dict[str, str], admin_key: str, tenant: str) -> None:
    token = make_token({"sub": "ann", "tenant_id": tenant, "roles": ["user"]})
    for credential in (keys["ann"], token, admin_key, keys["ann"][:-2] + "xx", token + "x"):
        with gateway.client(credential) as client:
            client.post(EXPENSES, json={"title": "t", "amount": 1, "status": "draft"}, headers={"Idempotency-Key": credential[-20:] + "k"})
            client.get(EXPENSES, params={"filter": '{"secret": 1}'})
            client.post(f"{EXPENSES}/find", json={"filter": {"$where": "1"}})
            client.get(f"{EXPENSES}/not an id")
    output = gateway.output
    assert "POST /v1/data/expenses" in output  # the log is there, and holds no credential
    for secret in (keys["ann"], token, admin_key, token.split(".")[2]):
        assert secret not in output
