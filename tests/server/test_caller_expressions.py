"""A caller's ``$expr`` never runs on a document outside the caller's read scope.

Tenant B stores a document whose fields make the failing expressions fail (a string where A's
documents hold numeric strings, a zero divisor, a date that does not parse), each value a
canary. Tenant A sends those expressions through every entry point that takes a filter: the
answer is the one A gets when B's document does not exist, and no canary appears in it. The
naive query the data plane used to send, ``{"$and": [caller, plan.filter]}``, does evaluate
A's expression on B's document: the database fails, naming B's value.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pymongo.errors
import pytest

from permission_mongo.policy import COLLATION, Identity, load_policy
from permission_mongo.policy._expression import MAX_EXPRESSIONS

from .harness import EXAMPLES, Gateway, assert_error, ejson, user_client

EXPENSES = "/v1/data/expenses"

FAILING_EXPRESSIONS = {
    "toInt": {"$gt": [{"$toInt": "$code"}, 1]},
    "convert": {"$eq": [{"$convert": {"input": "$code", "to": "int"}}, 3]},
    "divide": {"$gt": [{"$divide": [12, "$divisor"]}, 5]},
    "dateFromString": {"$lt": [{"$dayOfMonth": {"$dateFromString": {"dateString": "$when"}}}, 3]},
    "add": {"$gt": [{"$add": [1, "$code_number"]}, 2]},
}
# The documents of A each expression is true on (A's documents are numbered 1 to 3).
EXPECTED = {"toInt": {2, 3}, "convert": {3}, "divide": {1, 2}, "dateFromString": {1, 2}, "add": {2, 3}}


@pytest.fixture
def tenants(gateway_db: Any) -> Iterator[dict[str, Any]]:
    tenant_a, tenant_b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    canary = f"canary{uuid.uuid4().hex[:8]}"
    mine = [
        {"_id": f"{tenant_a}-{i}", "tenant_id": tenant_a, "owner_id": "alice", "title": f"t{i}", "amount": i,
         "status": "submitted", "code": str(i), "divisor": [1, 2, 4][i - 1], "when": f"2024-01-0{i}",
         "code_number": i, "n": i}
        for i in (1, 2, 3)
    ]
    theirs = {"_id": f"{tenant_b}-x", "tenant_id": tenant_b, "owner_id": "bob", "title": canary, "amount": 1,
              "status": "submitted", "code": canary, "divisor": 0, "when": canary, "code_number": canary}
    gateway_db.expenses.insert_many([*mine, theirs])
    yield {"a": tenant_a, "b": tenant_b, "canary": canary, "mine": mine, "theirs": theirs}
    gateway_db.expenses.delete_many({"tenant_id": {"$in": [tenant_a, tenant_b]}})


@pytest.fixture
def alice(gateway: Gateway, tenants: dict[str, Any]) -> Iterator[httpx.Client]:
    with user_client(gateway, "alice", tenants["a"], ["admin"]) as client:
        yield client


def requests(alice: httpx.Client, filter_: dict[str, Any]) -> dict[str, Callable[[], httpx.Response]]:
    """Every entry point that takes a caller's filter, each as a call to repeat."""
    return {
        "find": lambda: alice.post(f"{EXPENSES}/find", json={"filter": filter_, "sort": ["_id"]}),
        "GET ?filter=": lambda: alice.get(EXPENSES, params={"filter": json.dumps(filter_), "sort": "_id"}),
        "count": lambda: alice.post(f"{EXPENSES}/count", json={"filter": filter_}),
        "aggregate": lambda: alice.post(
            f"{EXPENSES}/aggregate", json={"pipeline": [{"$match": filter_}, {"$sort": {"_id": 1}}]}),
        "batch update": lambda: alice.patch(
            f"{EXPENSES}/batch", json={"filter": filter_, "update": {"$set": {"currency": "EUR"}}}),
        "batch delete": lambda: alice.request("DELETE", f"{EXPENSES}/batch", json={"filter": filter_}),
    }


def answer(response: httpx.Response) -> tuple[int, Any]:
    body = response.json()
    body.pop("meta", None)  # the request id
    return response.status_code, body


@pytest.mark.parametrize("name", sorted(FAILING_EXPRESSIONS))
def test_a_failing_expression_answers_as_if_other_tenants_documents_did_not_exist(
    alice: httpx.Client, gateway_db: Any, tenants: dict[str, Any], name: str
) -> None:
    expression = FAILING_EXPRESSIONS[name]
    filters = [
        {"$expr": expression},
        {"$and": [{"n": {"$gte": 1}}, {"$expr": expression}]},
        {"$or": [{"$expr": expression}, {"n": {"$lt": 0}}]},
        {"$nor": [{"$expr": {"$not": [expression]}}]},
    ]

    def reset(with_theirs: bool) -> None:
        gateway_db.expenses.delete_many({"tenant_id": {"$in": [tenants["a"], tenants["b"]]}})
        gateway_db.expenses.insert_many(tenants["mine"] + ([tenants["theirs"]] if with_theirs else []))

    for filter_ in filters:
        for entry, send in requests(alice, filter_).items():
            reset(with_theirs=True)
            response = send()
            assert tenants["canary"] not in response.text, (entry, filter_)
            with_theirs = answer(response)
            reset(with_theirs=False)
            assert with_theirs == answer(send()), (entry, filter_)
            assert with_theirs[0] == 200, (entry, filter_, with_theirs)
    # The answers are the right ones, not the same error twice.
    reset(with_theirs=True)
    found = ejson(alice.post(f"{EXPENSES}/find", json={"filter": {"$expr": expression}}))["data"]
    assert {doc["n"] for doc in found} == EXPECTED[name]
    assert alice.post(f"{EXPENSES}/count", json={"filter": {"$expr": expression}}).json()["count"] == len(EXPECTED[name])


@pytest.mark.parametrize("name", sorted(FAILING_EXPRESSIONS))
def test_the_naive_conjunction_evaluates_the_expression_on_the_other_tenants_document(
    gateway_db: Any, tenants: dict[str, Any], name: str
) -> None:
    policy = load_policy(EXAMPLES)
    plan = policy.plan(Identity(id="alice", tenant_id=tenants["a"], roles=["admin"]), "read", "expenses")
    caller = {"$expr": FAILING_EXPRESSIONS[name]}
    with pytest.raises(pymongo.errors.OperationFailure) as failure:
        list(gateway_db.expenses.find({"$and": [caller, plan.filter]}, collation=COLLATION))
    if name in ("toInt", "convert", "dateFromString"):
        assert tenants["canary"] in str(failure.value)  # the other tenant's value, in the message
    restricted = list(gateway_db.expenses.find(plan.restrict(caller), collation=COLLATION))
    assert {doc["n"] for doc in restricted} == EXPECTED[name]


def test_a_filter_holds_a_bounded_number_of_expressions(alice: httpx.Client, tenants: dict[str, Any]) -> None:
    """Each $expr carries its own copy of the guard, so a small filter of many $expr would
    become a query over the database's size limit: their number is bounded, with a 400."""
    one = {"$expr": {"$gte": ["$n", 1]}}
    for entry, send in requests(alice, {"$or": [one] * MAX_EXPRESSIONS}).items():
        assert send().status_code == 200, entry
    for entry, send in requests(alice, {"$or": [one] * MAX_EXPRESSIONS, "$nor": [one]}).items():
        if entry == "aggregate":
            continue  # a pipeline's $match is not guarded (the view is the barrier)
        error = assert_error(send(), 400, "BAD_REQUEST")
        assert error["details"] == {"operator": "$expr", "limit": MAX_EXPRESSIONS}, entry
        assert str(MAX_EXPRESSIONS) in error["message"]
