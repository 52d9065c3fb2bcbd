"""Masked values through writes (issue 8, class 3): a masked field may only be overwritten or
removed whole; no update may move, copy or compare it.

Two policies: the examples', where ``customers.tax_id`` (a string in the schema) is masked
(``redact``) for a ``user``, who may update its tenant's customers; and the notes policy, where
``contact`` (a string of at most 8 characters) and ``phones`` (no schema) are masked for a
``writer``. Each update below would, without the rule, answer differently for two stored values
the caller sees as the same ``"***"``: through the answer, an array's length, a type error or a
schema error. ``naive_answer`` computes what the gateway answers without the rule (the engine's
post-image, shaped for the caller) and shows the difference; the gateway refuses both alike and
leaves both documents as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from bson import ObjectId

from permission_mongo.policy import Identity, Policy, load_policy
from permission_mongo.policy._update import UpdateError, apply_update, written_paths
from permission_mongo.policy._validate import validate_document

from .conftest import NOTES_POLICY
from .harness import EXAMPLES, Gateway, assert_error, ejson, user_client

CUSTOMERS = "/v1/data/customers"
NOTES = "/v1/data/notes"


def naive_answer(policy: Policy, identity: Identity, collection: str, before: dict[str, Any], update: dict[str, Any]) -> Any:
    """What an update answers when only the write rules guard masked fields: the error the
    database (the engine) raises, the schema problems of what it writes, or the new state as
    the caller reads it (ids aside)."""
    try:
        after = apply_update(before, update)
    except UpdateError as exc:
        return ("error", exc.message)
    written = written_paths(update, before)
    problems = [
        problem for problem in validate_document(policy.collection(collection), after)
        if any(problem["field"] == path or problem["field"].startswith(path + ".") or path.startswith(problem["field"] + ".")
               for path in written)
    ]
    if problems:
        return ("invalid", problems)
    shaped = policy.plan(identity, "read", collection).shape(after) or {}
    return ("ok", {k: v for k, v in shaped.items() if k != "_id"})


class Case:
    """One collection, one caller, and how to store a document holding a masked value."""

    def __init__(self, policy: Policy, collection: str, path: str, identity: Identity, make: Callable[[Any], dict[str, Any]]):
        self.policy, self.collection, self.path, self.identity, self.make = policy, collection, path, identity, make

    def seen(self, document: dict[str, Any]) -> Any:
        shaped = self.policy.plan(self.identity, "read", self.collection).shape(document)
        assert shaped is not None
        return {k: v for k, v in shaped.items() if k != "_id"}


@pytest.fixture
def customers(gateway: Gateway, gateway_db: Any, tenant: str) -> tuple[Case, httpx.Client, Any]:
    def make(value: Any) -> dict[str, Any]:
        return {"_id": ObjectId(), "tenant_id": tenant, "name": "Globex", "email": "ops@globex.test", "tax_id": value}

    case = Case(load_policy(EXAMPLES), "customers", CUSTOMERS, Identity(id="alice", tenant_id=tenant, roles=["user"]), make)
    with user_client(gateway, "alice", tenant, ["user"]) as client:
        yield case, client, gateway_db.customers


@pytest.fixture
def notes(notes_gateway: Gateway, notes_database: Any, tenant: str) -> tuple[Case, httpx.Client, Any]:
    def make(value: Any) -> dict[str, Any]:
        return {"_id": ObjectId(), "tenant_id": tenant, "owner_id": "w1", "labels": ["draft"], "level": 1, **value}

    case = Case(load_policy(NOTES_POLICY), "notes", NOTES, Identity(id="w1", tenant_id=tenant, roles=["writer"]), make)
    with user_client(notes_gateway, "w1", tenant, ["writer"]) as client:
        yield case, client, notes_database.notes


# (which policy, the update, two stored values the caller sees alike that the naive gateway
# tells apart: tax_id's value for customers, the masked fields for notes)
LEAKS = [
    ("customers", {"$rename": {"tax_id": "tax_copy"}}, "T-1", "T-2"),     # the clear value, moved
    ("customers", {"$inc": {"tax_id": 1}}, "T-1", 7),                      # a type error, or none
    ("customers", {"$mul": {"tax_id": 2}}, "T-1", 7),
    ("customers", {"$min": {"tax_id": "M"}}, "A", 3),                      # BSON order, then the schema's type
    ("customers", {"$max": {"tax_id": "M"}}, "A", {"x": 1}),
    ("customers", {"$push": {"tax_id": "x"}}, "T-1", 7),                   # the type, in the error
    ("customers", {"$addToSet": {"tax_id": "x"}}, "T-1", 7),
    ("customers", {"$pull": {"tax_id": "x"}}, "T-1", 7),
    ("customers", {"$set": {"tax_id.x": 1}}, "T-1", {}),                   # a path through a scalar
    ("customers", {"$set": {"tax_id.0": "z"}}, "T-1", 7),
    ("customers", {"$unset": {"tax_id.x": ""}}, {"x": 1}, "T-1"),          # the schema's type, after
    ("notes", {"$max": {"contact": "m"}}, {"contact": "zzzzzzzzzzzz"}, {"contact": "abc"}),  # max_length
    ("notes", {"$addToSet": {"phones": "a"}}, {"phones": ["a"]}, {"phones": ["b"]}),         # a length
    ("notes", {"$pull": {"phones": "a"}}, {"phones": ["a", "b"]}, {"phones": ["c", "b"]}),
    ("notes", {"$pull": {"phones": {"$in": ["a"]}}}, {"phones": ["a", "b"]}, {"phones": ["c", "b"]}),
    ("notes", {"$push": {"phones": {"$each": ["x"], "$slice": -1}}}, {"phones": "a"}, {"phones": 7}),
    ("notes", {"$rename": {"phones": "numbers"}}, {"phones": ["1"]}, {"phones": ["2"]}),
]


@pytest.mark.parametrize("which, update, first, second", LEAKS, ids=repr)
def test_an_update_depending_on_a_masked_value_is_refused_alike(
    request: pytest.FixtureRequest, which: str, update: dict[str, Any], first: Any, second: Any
) -> None:
    case, client, collection = request.getfixturevalue(which)
    documents = [case.make(first), case.make(second)]
    assert case.seen(documents[0]) == case.seen(documents[1]), "the caller sees them alike"
    naive = [naive_answer(case.policy, case.identity, case.collection, document, update) for document in documents]
    assert naive[0] != naive[1], "without the rule the answers would tell them apart"

    collection.insert_many(documents)
    errors = []
    for document in documents:
        errors.append(assert_error(client.patch(f"{case.path}/{document['_id']}", json=update), 403, "FIELD_NOT_WRITABLE"))
        assert collection.find_one({"_id": document["_id"]}) == document
    assert errors[0] == errors[1]
    assert "masked" in errors[0]["message"]


def test_a_batch_update_refuses_each_document_alike(customers: tuple[Case, httpx.Client, Any]) -> None:
    case, client, collection = customers
    documents = [case.make("T-1"), case.make("T-2")]
    collection.insert_many(documents)
    ids = [{"$oid": str(document["_id"])} for document in documents]
    for update in ({"$rename": {"tax_id": "tax_copy"}}, {"$inc": {"tax_id": 1}}, {"$pull": {"tax_id": "T"}}):
        response = client.patch(f"{CUSTOMERS}/batch", json={"ids": ids, "update": update})
        assert response.status_code == 200, response.text
        result = ejson(response)
        assert result["matched"] == 2 and result["modified"] == 0
        assert [refused["id"] for refused in result["refused"]] == [document["_id"] for document in documents]
        errors = [refused["error"] for refused in result["refused"]]
        assert errors[0] == errors[1] and errors[0]["code"] == "FIELD_NOT_WRITABLE"
    for document in documents:
        assert collection.find_one({"_id": document["_id"]}) == document


@pytest.mark.parametrize(
    "update, stored",
    [
        ({"$set": {"tax_id": "N-1"}}, "N-1"),
        ({"tax_id": "N-2"}, "N-2"),
        ({"$unset": {"tax_id": ""}}, None),
        ({"$rename": {"email": "tax_id"}}, "ops@globex.test"),
    ],
    ids=repr,
)
def test_a_masked_field_is_overwritten_or_removed_whole(
    customers: tuple[Case, httpx.Client, Any], update: dict[str, Any], stored: Any
) -> None:
    case, client, collection = customers
    document = case.make("T-1")
    collection.insert_one(document)
    response = client.patch(f"{CUSTOMERS}/{document['_id']}", json=update)
    assert response.status_code == 200, response.text
    assert response.json().get("tax_id") == (None if stored is None else "***")
    assert collection.find_one({"_id": document["_id"]}).get("tax_id") == stored


def test_a_role_showing_the_field_unmasked_may_compute_on_it(gateway: Gateway, customers: tuple[Case, httpx.Client, Any], tenant: str) -> None:
    case, _, collection = customers
    document = case.make("T-1")
    collection.insert_one(document)
    with user_client(gateway, "max", tenant, ["manager"]) as manager:  # read and update, nothing masked
        response = manager.patch(f"{CUSTOMERS}/{document['_id']}", json={"$rename": {"tax_id": "previous_tax_id"}})
    assert response.status_code == 200, response.text
    assert response.json()["previous_tax_id"] == "T-1"


def test_a_rename_from_a_missing_field_onto_a_masked_one_judges_nothing_stored(
    notes: tuple[Case, httpx.Client, Any],
) -> None:
    """MongoDB renames nothing when the source is missing, so the masked target keeps what it
    holds: the schema check must not judge it (one stored value is over ``max_length``)."""
    case, client, collection = notes
    documents = [case.make({"contact": "zzzzzzzzzzzz"}), case.make({"contact": "abc"})]
    collection.insert_many(documents)
    answers = [client.patch(f"{NOTES}/{d['_id']}", json={"$rename": {"fresh": "contact"}}) for d in documents]
    assert [answer.status_code for answer in answers] == [200, 200], answers[0].text
    assert answers[0].json()["contact"] == answers[1].json()["contact"] == "***"
