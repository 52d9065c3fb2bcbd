"""``POST /v1/data/{collection}/aggregate`` over HTTP: the rewriter's enforcement reaches the
wire (invariant 4), with the server's limits; and a property test, through the gateway, against
the same pipeline run directly on the readable part of the data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pymongo
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from permission_mongo.policy import Identity, load_policy

from ..engine.strategies import documents
from ..engine.test_pipeline import canonical, graph_lookup_enforced, pipelines
from .harness import (
    JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET, Gateway, assert_error, clean_environment, ejson, serve_command, user_client,
)

POLICY = """
roles:
  member: {}
  reader: {}
policies:
  orders:
    member:
      actions: [read, aggregate]
      when: doc.tenant_id == user.tenant_id
      fields:
        deny: [cost, x, a.b]
        mask: {email: email}
    reader:
      actions: [read]
      when: doc.tenant_id == user.tenant_id
  customers:
    member:
      actions: [read]
      when: doc.tenant_id == user.tenant_id
      fields: {deny: [secret]}
  vault:
    reader: {actions: [read]}
"""
SERVER = f"""
auth:
  jwt: {{algorithm: HS256, secret: {JWT_SECRET}, issuer: "{JWT_ISSUER}", audience: {JWT_AUDIENCE}}}
limits:
  max_pipeline_stages: 5
  max_aggregate_results: 50
"""
ORDERS = "/v1/data/orders/aggregate"


@pytest.fixture(scope="module")
def database(mongo_client: pymongo.MongoClient) -> Iterator[pymongo.database.Database]:
    name = f"pmtest_agg_{uuid.uuid4().hex[:12]}"
    yield mongo_client[name]
    mongo_client.drop_database(name)


@pytest.fixture(scope="module")
def aggregate_gateway(tmp_path_factory: pytest.TempPathFactory, mongo_uri: str, database: Any) -> Iterator[Gateway]:
    config = tmp_path_factory.mktemp("aggregate-config")
    (config / "policy.yml").write_text(POLICY)
    (config / "server.yml").write_text(SERVER)
    command = serve_command(config, "--port", "0", "--mongodb-uri", mongo_uri, "--database", database.name)
    server = Gateway(command, env=clean_environment()).start()
    yield server
    server.stop()


@pytest.fixture
def seeded(database: Any) -> str:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    database.orders.insert_many([
        {"tenant_id": tenant, "status": "open", "amount": 5, "cost": 3, "email": "ann@x.com", "customer": 1},
        {"tenant_id": tenant, "status": "open", "amount": 7, "cost": 4, "customer": 2},
        {"tenant_id": tenant, "status": "paid", "amount": 11, "cost": 6, "customer": 1},
        {"tenant_id": "other", "status": "open", "amount": 1000, "cost": 999, "customer": 1},
    ])
    database.customers.insert_many([
        {"tenant_id": tenant, "n": 1, "name": "Acme", "secret": "s1"},
        {"tenant_id": "other", "n": 1, "name": "Rival", "secret": "s2"},
    ])
    return tenant


def post(gateway: Gateway, tenant: str, pipeline: Any, roles: tuple[str, ...] = ("member",)) -> Any:
    with user_client(gateway, "u1", tenant, list(roles)) as client:
        return client.post(ORDERS, json={"pipeline": pipeline})


def test_the_pipeline_starts_from_the_callers_view(aggregate_gateway: Gateway, seeded: str) -> None:
    response = post(aggregate_gateway, seeded, [{"$sort": {"amount": 1}}])
    assert response.status_code == 200, response.text
    found = ejson(response)["data"]
    assert [d["amount"] for d in found] == [5, 7, 11]
    assert all("cost" not in d for d in found)
    assert found[0]["email"] == "a***@x.com"


def test_group_sees_only_the_callers_documents(aggregate_gateway: Gateway, seeded: str) -> None:
    pipeline = [{"$group": {"_id": "$status", "total": {"$sum": "$amount"}}}, {"$sort": {"_id": 1}}]
    assert ejson(post(aggregate_gateway, seeded, pipeline))["data"] == [
        {"_id": "open", "total": 12}, {"_id": "paid", "total": 11},
    ]


def test_lookup_sees_only_the_callers_tenant_and_fields(aggregate_gateway: Gateway, seeded: str) -> None:
    pipeline = [
        {"$match": {"customer": 1}},
        {"$lookup": {"from": "customers", "localField": "customer", "foreignField": "n", "as": "c"}},
        {"$project": {"c": 1}},
    ]
    found = ejson(post(aggregate_gateway, seeded, pipeline))["data"]
    joined = [c for d in found for c in d["c"]]
    assert [c["name"] for c in joined] == ["Acme", "Acme"]
    assert all("secret" not in c for c in joined)


@pytest.mark.parametrize(("pipeline", "status", "code", "detail"), [
    ([{"$match": {"cost": 3}}], 400, "FIELD_NOT_READABLE", {"field": "cost", "collection": "orders"}),
    ([{"$group": {"_id": "$email"}}], 400, "FIELD_NOT_READABLE", {"field": "email", "collection": "orders"}),
    ([{"$out": "stolen"}], 400, "BAD_REQUEST", {"stage": "$out"}),
    ([{"$merge": {"into": "stolen"}}], 400, "BAD_REQUEST", {"stage": "$merge"}),
    ([{"$project": {"x": {"$function": {}}}}], 400, "BAD_REQUEST", {"operator": "$function"}),
    ([{"$match": {"amount": 1}}] * 6, 400, "BAD_REQUEST", {"stages": 6, "limit": 5}),
    ([{"$lookup": {"from": "vault", "pipeline": [], "as": "v"}}], 403, "FORBIDDEN", {"action": "read", "collection": "vault"}),
    ([{"$unionWith": "_pm_api_keys"}], 404, "COLLECTION_NOT_FOUND", None),
    ("not a list", 400, "BAD_REQUEST", None),
])
def test_refusals(aggregate_gateway: Gateway, seeded: str, pipeline: Any, status: int, code: str, detail: Any) -> None:
    error = assert_error(post(aggregate_gateway, seeded, pipeline), status, code)
    if detail is not None:
        assert error["details"] == detail


def test_aggregate_needs_the_aggregate_action(aggregate_gateway: Gateway, seeded: str) -> None:
    assert_error(post(aggregate_gateway, seeded, [], roles=("reader",)), 403, "FORBIDDEN")


def test_the_body_is_a_pipeline_and_nothing_else(aggregate_gateway: Gateway, seeded: str) -> None:
    with user_client(aggregate_gateway, "u1", seeded, ["member"]) as client:
        assert_error(client.post(ORDERS, json={"pipeline": [], "allowDiskUse": True}), 422, "VALIDATION_ERROR")
        assert_error(client.post("/v1/data/nowhere/aggregate", json={"pipeline": []}), 404, "COLLECTION_NOT_FOUND")


def test_results_over_the_limit_are_refused_not_cut(aggregate_gateway: Gateway, database: Any) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    database.orders.insert_many([{"tenant_id": tenant, "amount": i} for i in range(51)])
    error = assert_error(post(aggregate_gateway, tenant, []), 400, "BAD_REQUEST")
    assert error["details"] == {"limit": 50}
    assert len(ejson(post(aggregate_gateway, tenant, [{"$limit": 50}]))["data"]) == 50


def test_graph_lookup_is_enforced_or_refused(aggregate_gateway: Gateway, seeded: str, database: Any) -> None:
    pipeline = [{"$graphLookup": {"from": "customers", "startWith": "$customer", "connectFromField": "n",
                                  "connectToField": "n", "as": "g"}}]
    response = post(aggregate_gateway, seeded, pipeline)
    if not graph_lookup_enforced(database):
        assert "graphLookup" in assert_error(response, 400, "BAD_REQUEST")["message"]
        return
    found = ejson(response)["data"]
    assert {g["name"] for d in found for g in d["g"]} <= {"Acme"}
    assert all("secret" not in g for d in found for g in d["g"])


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(docs=st.lists(documents, max_size=12), pipeline=pipelines(), readable=st.lists(st.booleans(), min_size=12, max_size=12))
def test_through_the_gateway_equals_the_pipeline_on_the_readable_part(aggregate_gateway, database, docs, pipeline, readable):
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    stored = [{**doc, "tenant_id": tenant if readable[i] else "other"} for i, doc in enumerate(docs)]
    if stored:
        database.orders.insert_many(stored)
    plan = load_policy(POLICY).plan(Identity(id="u1", tenant_id=tenant, roles=["member"]), "read", "orders")
    visible = database[f"visible_{tenant}"]
    shaped = [plan.shape(doc) for doc in stored if plan.allows(doc)]
    if shaped:
        visible.insert_many(shaped)
    response = post(aggregate_gateway, tenant, pipeline)
    if response.status_code == 400 and response.json()["error"]["code"] == "FIELD_NOT_READABLE":
        return  # the pipeline named a denied field: refused, nothing to compare
    assert response.status_code == 200, response.text
    through_gateway = sorted(repr(canonical(d)) for d in ejson(response)["data"])
    on_readable_part = sorted(repr(canonical(d)) for d in visible.aggregate(pipeline))
    visible.drop()
    assert through_gateway == on_readable_part
