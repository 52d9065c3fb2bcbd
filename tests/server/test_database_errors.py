"""Database errors, time limits and answer sizes (issue 8, class 7, class 6 in part, and the
error-text half of class 1).

A database error reaches the caller as the status and stable code the one table
(``store.DATABASE_ERRORS``) gives it, with a message about the caller's own request: never the
database's text, which quotes stored values (a failed conversion names the string it met) and
namespaces. Every database operation has a time limit, and an answer a limit in bytes: past
either, a 400 naming the setting. Nothing a caller sends makes a 500: lone surrogates, a
``$range`` too large, a result document over 16 MiB, concurrent batches.

Tests run against the real gateway and database; the table is also walked in-process, where a
canary can be put in the database's message itself.
"""

from __future__ import annotations

import concurrent.futures
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pymongo
import pymongo.errors
import pymongo.monitoring
import pytest
from bson import ObjectId

from permission_mongo.embedded import EmbeddedDatabase
from permission_mongo.server._error_responses import status_and_code
from permission_mongo.store import DATABASE_ERRORS, ResultTooLargeError, SizeLimit, Store, StoreError, TimeLimit
from permission_mongo.store._errors import bulk_write_failures, store_error

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
QUERY_TIME = TimeLimit(10_000, "limits.query_max_time_ms")

# What each database error code answers over HTTP, written out here rather than derived from
# the table, so a changed entry is a changed test.
BAD_REQUEST = (400, "BAD_REQUEST")
CONFLICT = (409, "CONFLICT")
UNAVAILABLE = (503, "SERVICE_UNAVAILABLE")
FAULT = (500, "INTERNAL_ERROR")
EXPECTED: dict[int, tuple[int, str]] = {
    **dict.fromkeys(
        [2, 4, 9, 14, 15, 16, 20, 22, 28, 29, 30, 40, 52, 53, 54, 55, 56, 57, 66, 72, 96, 121, 146, 168, 241,
         292, 10334, 17419, 17420, 40324, 51091, 51108, 50, 262],
        BAD_REQUEST,
    ),
    **dict.fromkeys([11000, 11001, 12582], CONFLICT),
    **dict.fromkeys(
        [6, 7, 24, 43, 46, 64, 89, 91, 112, 117, 133, 134, 175, 189, 237, 251, 9001, 10058, 10107, 11600, 11601,
         11602, 13435, 13436],
        UNAVAILABLE,
    ),
    **dict.fromkeys([1, 8, 13, 18, 26, 59, 67, 85, 86, 115, 166], FAULT),
}
TIME_CODES = (50, 262)


def canary() -> str:
    return f"CANARY{uuid.uuid4().hex[:12]}"


# --- the table, entry by entry, in-process ------------------------------------------------------------

def test_every_entry_of_the_table_is_expected_here() -> None:
    assert set(DATABASE_ERRORS) == set(EXPECTED)


def _translated(code: int, errmsg: str) -> StoreError:
    error = store_error(pymongo.errors.OperationFailure(errmsg, code, {"ok": 0, "errmsg": errmsg, "code": code}), QUERY_TIME)
    assert error is not None
    return error


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_each_code_answers_its_status_and_never_the_database_text(code: int) -> None:
    secret = canary()
    errmsg = f"Executor error during find command: pm.expenses :: caused by :: Failed to parse '{secret}'"
    error = _translated(code, errmsg)
    assert status_and_code(error) == EXPECTED[code]
    shown = f"{error} {error.details}"
    assert secret not in shown and "pm.expenses" not in shown
    if code in TIME_CODES:
        assert "limits.query_max_time_ms" in str(error)
        assert error.details["setting"] == "limits.query_max_time_ms"
    else:
        assert f"code {code}" in str(error)
        assert error.details == {"database_code": code, "database_error": DATABASE_ERRORS[code].name}


def test_the_naive_translation_would_have_shown_the_stored_value() -> None:
    # What the gateway answered before the table: the database's errmsg, which quotes the value.
    secret = canary()
    exc = pymongo.errors.OperationFailure(f"Failed to parse number '{secret}' in $convert", 241)
    naive = f"the database refused the request: {exc.details and exc.details.get('errmsg') or exc}"
    assert secret in naive
    assert secret not in str(_translated(241, str(exc)))


@pytest.mark.parametrize(("code", "expected"), [(16554, BAD_REQUEST), (51024, BAD_REQUEST), (9999, FAULT), (None, FAULT)])
def test_unknown_codes_are_the_request_s_from_10000_else_the_database_s(code: int | None, expected: Any) -> None:
    error = _translated(code, f"boom {canary()}")  # type: ignore[arg-type]
    assert status_and_code(error) == expected
    assert "CANARY" not in str(error)


def test_a_time_limit_of_the_gateway_s_own_operations_is_a_503() -> None:
    error = store_error(pymongo.errors.ExecutionTimeout("operation exceeded time limit", 50), TimeLimit(10_000))
    assert error is not None and status_and_code(error) == UNAVAILABLE


def test_bulk_write_errors_go_through_the_same_table() -> None:
    secret = canary()
    exc = pymongo.errors.BulkWriteError({"writeErrors": [
        {"index": 0, "code": 11000, "errmsg": f"E11000 duplicate key error collection: pm.expenses dup key: {{ _id: \"{secret}\" }}"},
        {"index": 2, "code": 241, "errmsg": f"Failed to parse '{secret}'"},
        {"index": 3, "code": 16554, "errmsg": f"$add only supports numeric types, not string '{secret}'"},
        {"index": 4, "code": 1, "errmsg": secret},
    ], "writeConcernErrors": []})
    failures = bulk_write_failures(exc, QUERY_TIME)
    assert {index: status_and_code(error) for index, error in failures.items()} == {
        0: CONFLICT, 2: BAD_REQUEST, 3: BAD_REQUEST, 4: FAULT,
    }
    assert not any(secret in f"{error} {error.details}" for error in failures.values())


def test_the_database_text_is_logged_not_answered(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="permission_mongo.store"):
        error = _translated(241, "Failed to parse 'the-database-text'")
    assert "the-database-text" not in str(error)
    assert any("the-database-text" in record.getMessage() for record in caplog.records)


# --- real database errors through the gateway: no stored value in any answer ---------------------------

@pytest.fixture
def canaries(gateway_db: pymongo.database.Database, tenant: str) -> Iterator[list[str]]:
    """Documents of the caller's tenant and of another, each holding a canary string."""
    values = [canary() for _ in range(4)]
    other = f"{tenant}-other"
    gateway_db.expenses.insert_many([
        {"tenant_id": owner, "owner_id": "root", "title": value, "amount": 3, "status": "draft", "note": value}
        for owner, value in zip([tenant, tenant, other, other], values)
    ])
    yield values
    gateway_db.expenses.delete_many({"tenant_id": {"$in": [tenant, other]}})


FAILING = {
    "conversion": {"$expr": {"$gt": [{"$toInt": "$title"}, 0]}},
    "convert": {"$expr": {"$gt": [{"$convert": {"input": "$note", "to": "double"}}, 0]}},
    "date": {"$expr": {"$gt": [{"$dateFromString": {"dateString": "$title"}}, 0]}},
    "division": {"$expr": {"$gt": [{"$divide": ["$amount", {"$subtract": ["$amount", "$amount"]}]}, 0]}},
    "add": {"$expr": {"$gt": [{"$add": ["$title", 1]}, 0]}},
    "array": {"$expr": {"$gt": [{"$arrayElemAt": ["$title", 0]}, 0]}},
}  # a pattern that does not compile is refused before the database (tests/engine/test_regex.py)


def _calls(failing: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("POST", f"{EXPENSES}/find", {"filter": failing}),
        ("POST", f"{EXPENSES}/count", {"filter": failing}),
        ("PATCH", f"{EXPENSES}/batch", {"filter": failing, "update": {"$set": {"amount": 4}}}),
        ("DELETE", f"{EXPENSES}/batch", {"filter": failing}),
        ("POST", f"{EXPENSES}/aggregate", {"pipeline": [{"$match": failing}]}),
    ]


@pytest.mark.parametrize("kind", sorted(FAILING))
def test_a_failing_expression_answers_a_400_without_stored_values(
    gateway: Gateway, gateway_db: pymongo.database.Database, canaries: list[str], tenant: str, kind: str
) -> None:
    with user_client(gateway, "root", tenant, ["admin"]) as root:
        for method, path, body in _calls(FAILING[kind]):
            response = root.request(method, path, json=body)
            error = assert_error(response, 400, "BAD_REQUEST")
            assert not any(value in response.text for value in canaries), (path, response.text)
            assert gateway_db.name not in response.text and "expenses ::" not in response.text
            assert error["details"]["database_code"]


def test_the_database_itself_quotes_the_stored_value(db: pymongo.database.Database) -> None:
    # Why the table exists: the naive answer (the database's message) names the value it met.
    secret = canary()
    db.expenses.insert_one({"title": secret})
    with pytest.raises(pymongo.errors.OperationFailure) as caught:
        db.expenses.count_documents(FAILING["conversion"])
    assert secret in str(caught.value)


def test_a_failing_projection_answers_a_400_without_stored_values(
    gateway: Gateway, canaries: list[str], tenant: str
) -> None:
    with user_client(gateway, "root", tenant, ["admin"]) as root:
        for stage in ({"$project": {"n": {"$toInt": "$title"}}}, {"$group": {"_id": {"$toDate": "$note"}}}):
            response = root.post(f"{EXPENSES}/aggregate", json={"pipeline": [stage]})
            assert_error(response, 400, "BAD_REQUEST")
            assert not any(value in response.text for value in canaries), response.text


# --- what used to answer 500 -------------------------------------------------------------------------

SURROGATE = "\\ud800"  # the JSON escape, sent as text: a lone surrogate once parsed


def _raw(client: httpx.Client, method: str, path: str, text: str) -> httpx.Response:
    return client.request(method, path, content=text.encode(), headers={"Content-Type": "application/json"})


@pytest.fixture
def own_document(gateway_db: pymongo.database.Database, tenant: str) -> Iterator[str]:
    document_id = ObjectId()
    gateway_db.expenses.insert_one(
        {"_id": document_id, "tenant_id": tenant, "owner_id": "root", "title": "t", "amount": 1, "status": "draft"}
    )
    yield str(document_id)
    gateway_db.expenses.delete_one({"_id": document_id})


SURROGATE_BODIES = [
    ("POST", "/find", '{"filter": {"title": "%s"}}'),
    ("POST", "/find", '{"filter": {"%s": 1}}'),
    ("POST", "/find", '{"filter": {"$expr": {"$eq": ["$title", "%s"]}}}'),
    ("POST", "/find", '{"fields": ["title%s"], "limit": 1}'),
    ("POST", "/find", '{"sort": ["x%s"]}'),
    ("POST", "/count", '{"filter": {"title": {"$in": ["a", "%s"]}}}'),
    ("POST", "", '{"title": "%s", "amount": 1, "status": "draft"}'),
    ("POST", "", '{"title": "t", "amount": 1, "status": "draft", "x%s": 1}'),
    ("PATCH", "/{id}", '{"title": "%s"}'),
    ("PATCH", "/{id}", '{"$max": {"title": "%s"}}'),
    ("PATCH", "/{id}", '{"$set": {"a%s": 1}}'),
    ("PATCH", "/batch", '{"filter": {"title": "%s"}, "update": {"$set": {"amount": 2}}}'),
    ("DELETE", "/batch", '{"filter": {"title": "%s"}}'),
    ("POST", "/aggregate", '{"pipeline": [{"$match": {"title": "%s"}}]}'),
    ("POST", "/aggregate", '{"pipeline": [{"$project": {"x": {"$concat": ["$title", "%s"]}}}]}'),
]


@pytest.mark.parametrize(("method", "suffix", "template"), SURROGATE_BODIES)
def test_a_lone_surrogate_anywhere_is_a_400(
    gateway: Gateway, own_document: str, tenant: str, method: str, suffix: str, template: str
) -> None:
    with user_client(gateway, "root", tenant, ["admin"]) as root:
        response = _raw(root, method, EXPENSES + suffix.format(id=own_document), template % SURROGATE)
    error = assert_error(response, 400, "BAD_REQUEST")
    assert "surrogate" in error["message"]


def test_a_lone_surrogate_in_a_query_parameter_filter_is_a_400(gateway: Gateway, tenant: str) -> None:
    with user_client(gateway, "root", tenant, ["admin"]) as root:
        response = root.get(EXPENSES, params={"filter": '{"title": "%s"}' % SURROGATE})
    assert "surrogate" in assert_error(response, 400, "BAD_REQUEST")["message"]


def test_a_batch_create_reports_the_item_with_a_lone_surrogate_and_creates_the_others(
    gateway: Gateway, gateway_db: pymongo.database.Database, tenant: str
) -> None:
    text = (
        '{"documents": [{"title": "first", "amount": 1}, {"title": "%s", "amount": 1}, '
        '{"title": "third", "amount": 1}, {"title": "fourth", "amount": 1, "%s": 2}]}' % (SURROGATE, SURROGATE)
    )
    with user_client(gateway, "root", tenant, ["admin"]) as root:
        response = _raw(root, "POST", f"{EXPENSES}/batch", text)
    assert response.status_code == 200, response.text
    result = ejson(response)
    assert [failure["index"] for failure in result["failed"]] == [1, 3]
    assert {failure["error"]["code"] for failure in result["failed"]} == {"BAD_REQUEST"}
    stored = gateway_db.expenses.find({"tenant_id": tenant}, sort=[("title", 1)])
    assert [document["title"] for document in stored] == ["first", "third"]
    assert len(result["created"]) == 2


@pytest.mark.parametrize("claims", [{"sub": "\ud800"}, {"tenant_id": "a\udfff"}, {"team": {"\ud800": 1}}])
def test_a_token_holding_a_lone_surrogate_is_refused(gateway: Gateway, claims: dict[str, Any]) -> None:
    # Signed by the issuer, yet unusable: an idempotent write hashed the identity (500) and the
    # database stores none of it.
    with gateway.client(make_token(claims)) as client:
        assert_error(client.get("/v1/whoami"), 401, "INVALID_TOKEN")
        response = client.post(EXPENSES, json={"title": "t", "amount": 1}, headers={"Idempotency-Key": uuid.uuid4().hex})
        assert_error(response, 401, "INVALID_TOKEN")


def test_a_deeply_nested_pipeline_is_a_400(gateway: Gateway, tenant: str) -> None:
    # Looked through for $graphLookup before the rewriter bounds its depth: by recursion, once.
    depth = 400
    text = '{"pipeline": [{"$match": %s{"title": "x"}%s}]}' % ('{"$and": [' * depth, "]}" * depth)
    with user_client(gateway, "root", tenant, ["admin"]) as root:
        assert_error(_raw(root, "POST", f"{EXPENSES}/aggregate", text), 400, "BAD_REQUEST")


def test_a_range_too_large_is_a_400(gateway: Gateway, own_document: str, tenant: str) -> None:
    pipeline = [{"$project": {"r": {"$range": [0, 10**9]}}}]
    with user_client(gateway, "root", tenant, ["admin"]) as root:
        error = assert_error(root.post(f"{EXPENSES}/aggregate", json={"pipeline": pipeline}), 400, "BAD_REQUEST")
    assert "$range" in error["message"]


@pytest.mark.parametrize("size", [2_000_000, 5_000_000])
def test_a_result_document_over_16_mib_is_a_400(gateway: Gateway, own_document: str, tenant: str, size: int) -> None:
    # 2 million numbers are past the answer limit (16 MiB); 5 million past what the database
    # can send at all (its reply is larger than the driver's maximum message).
    pipeline = [{"$project": {"r": {"$range": [0, size]}}}]
    with user_client(gateway, "root", tenant, ["admin"]) as root:
        assert_error(root.post(f"{EXPENSES}/aggregate", json={"pipeline": pipeline}), 400, "BAD_REQUEST")


def test_a_pipeline_computing_a_date_beyond_year_9999_is_answered(gateway: Gateway, own_document: str, tenant: str) -> None:
    # Python's datetime ends at year 9999; such a result is sent as milliseconds.
    pipeline = [{"$project": {"far": {"$toDate": 2**53 + 1}, "before": {"$toDate": -(2**53)}}}]
    with user_client(gateway, "root", tenant, ["admin"]) as root:
        response = root.post(f"{EXPENSES}/aggregate", json={"pipeline": pipeline})
    assert response.status_code == 200, response.text
    assert response.json()["data"][0]["far"] == {"$date": {"$numberLong": str(2**53 + 1)}}


def test_a_document_holding_a_64_bit_integer_can_be_updated_and_read(gateway: Gateway, tenant: str) -> None:
    # Stored as an int64 and read back as bson's Int64: evaluating the policy and the schema on
    # it used to scan range(-2**63, 2**63) for it, blocking the gateway.
    with user_client(gateway, "root", tenant, ["admin"]) as root:
        created = ejson(root.post(EXPENSES, json={"title": "big", "amount": 2**40, "status": "draft"}))
        path = f"{EXPENSES}/{created['_id']}"
        assert root.patch(path, json={"$inc": {"amount": 1}}).status_code == 200
        assert ejson(root.get(path))["amount"] == 2**40 + 1
        assert ejson(root.post(f"{EXPENSES}/count", json={"filter": {"amount": {"$gt": 2**39}}})) == {"count": 1}


def test_concurrent_batches_on_the_same_documents_never_answer_500(
    gateway: Gateway, gateway_db: pymongo.database.Database, tenant: str
) -> None:
    ids = gateway_db.expenses.insert_many([
        {"tenant_id": tenant, "owner_id": "root", "title": f"d{i}", "amount": 1, "status": "draft"} for i in range(20)
    ]).inserted_ids
    selection = [{"$oid": str(document_id)} for document_id in ids]
    requests = [
        ("PATCH", f"{EXPENSES}/batch", {"ids": selection, "update": {"$inc": {"amount": 1}}}),
        ("POST", f"{EXPENSES}/batch", {"documents": [{"title": f"n{i}", "amount": 1} for i in range(20)]}),
        ("DELETE", f"{EXPENSES}/batch", {"ids": selection[:5]}),
        ("PATCH", f"{EXPENSES}/batch", {"filter": {"amount": {"$gte": 1}}, "update": {"$set": {"status": "submitted"}}}),
    ] * 3
    with user_client(gateway, "root", tenant, ["admin"]) as root:
        with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
            responses = list(pool.map(lambda call: root.request(call[0], call[1], json=call[2]), requests))
    for response in responses:
        assert response.status_code == 200, response.text
        items = ejson(response).get("failed", []) + ejson(response).get("refused", [])
        assert not any(item["error"]["code"] == "INTERNAL_ERROR" for item in items), response.text


# --- time limits and answer sizes: gateways of tight limits, on a database that can fail commands ----------

TIME_LIMITS = {"query_max_time_ms": 1000, "aggregate_max_time_ms": 1000}
SIZE_LIMITS = {"max_response_bytes": 8192}
HEAVY_TENANT = f"heavy-{uuid.uuid4().hex[:8]}"
# Small data, slow to filter: each document costs the database a 300-step $reduce, 3,000 of
# them several seconds, well past the limits above. It matches none of them.
HEAVY = {"$expr": {"$gt": [
    {"$reduce": {"input": {"$range": [0, 300]}, "initialValue": 0, "in": {"$add": ["$$value", "$$this"]}}}, 10**9,
]}}


@pytest.fixture(scope="module")
def limits_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pymongo.MongoClient]:
    with EmbeddedDatabase(tmp_path_factory.mktemp("limits-db"), durable=False, test_commands=True) as database:
        client: pymongo.MongoClient = pymongo.MongoClient(database.uri, tz_aware=False)
        try:
            yield client
        finally:
            client.close()


def _limited_gateway(
    tmp_path_factory: pytest.TempPathFactory, client: pymongo.MongoClient, name: str, limits: dict[str, int]
) -> Iterator[tuple[Gateway, pymongo.database.Database]]:
    lines = "".join(f"  {key}: {value}\n" for key, value in limits.items())
    config = write_config(
        tmp_path_factory.mktemp(f"{name}-config"),
        f"""\
mongodb:
  timeout: 5
auth:
  jwt: {{algorithm: HS256, secret: {JWT_SECRET}, issuer: "{JWT_ISSUER}", audience: {JWT_AUDIENCE}}}
limits:
{lines}""",
    )
    host, port = client.address
    uri = f"mongodb://{host}:{port}/?retryWrites=false"
    server = Gateway(serve_command(config, "--port", "0", "--mongodb-uri", uri, "--database", name), env=clean_environment())
    server.start()
    try:
        yield server, client[name]
    finally:
        server.stop()


@pytest.fixture(scope="module")
def hurried(
    tmp_path_factory: pytest.TempPathFactory, limits_database: pymongo.MongoClient
) -> Iterator[tuple[Gateway, pymongo.database.Database]]:
    yield from _limited_gateway(tmp_path_factory, limits_database, "hurried", TIME_LIMITS)


@pytest.fixture(scope="module")
def bounded(
    tmp_path_factory: pytest.TempPathFactory, limits_database: pymongo.MongoClient
) -> Iterator[tuple[Gateway, pymongo.database.Database]]:
    yield from _limited_gateway(tmp_path_factory, limits_database, "bounded", SIZE_LIMITS)


@pytest.fixture
def hurried_root(hurried: tuple[Gateway, Any], tenant: str) -> Iterator[httpx.Client]:
    with user_client(hurried[0], "root", tenant, ["admin"]) as client:
        yield client


@pytest.fixture
def root(bounded: tuple[Gateway, Any], tenant: str) -> Iterator[httpx.Client]:
    with user_client(bounded[0], "root", tenant, ["admin"]) as client:
        yield client


def fail_find(database: pymongo.database.Database, code: int) -> None:
    database.client.admin.command(
        "configureFailPoint", "failCommand", mode="alwaysOn",
        data={"failCommands": ["find"], "errorCode": code, "appName": "permission-mongo"},
    )


# 121 and 11000 carry extra information the fail point cannot give; they are met for real above
# (the in-process table) and in the create tests. pymongo turns the "not primary" codes into a
# connection failure (503) before any table sees them, and then waits for its next look at the
# server (up to 10 s): they are walked in-process only.
NOT_PRIMARY = {91, 189, 10058, 10107, 11600, 11602, 13435, 13436}
INJECTABLE = sorted(set(EXPECTED) - {121, 11000} - NOT_PRIMARY)
# Codes pymongo retries a read on, until the time limit: what ends the retries decides the
# answer, the code's own entry, the time limit's 400, or the 503 of a driver that gave up
# (its backoff overflows after a thousand instant failures).
RETRIED_BY_THE_DRIVER = {6, 7, 89, 134, 262, 9001}
SERVICE_UNAVAILABLE = (503, "SERVICE_UNAVAILABLE")


def test_each_injected_database_error_reaches_the_caller_as_its_table_entry(
    hurried: tuple[Gateway, pymongo.database.Database], hurried_root: httpx.Client
) -> None:
    # On the gateway of short time limits: the codes pymongo retries are retried for a second.
    database, root = hurried[1], hurried_root
    answers, expected = {}, {}
    try:
        for code in INJECTABLE:
            fail_find(database, code)
            response = root.post(f"{EXPENSES}/find", json={})
            database.client.admin.command("configureFailPoint", "failCommand", mode="off")
            answers[code] = (response.status_code, response.json()["error"]["code"])
            expected[code] = EXPECTED[code]
            if code in RETRIED_BY_THE_DRIVER and answers[code] == BAD_REQUEST:
                assert "limits.query_max_time_ms" in response.text
                expected[code] = BAD_REQUEST
            elif code in RETRIED_BY_THE_DRIVER and answers[code] == SERVICE_UNAVAILABLE:
                expected[code] = SERVICE_UNAVAILABLE
            assert "failCommand" not in response.text and "failpoint" not in response.text.lower()
    finally:
        database.client.admin.command("configureFailPoint", "failCommand", mode="off")
    assert answers == expected


@pytest.fixture(scope="module")
def heavy_data(hurried: tuple[Gateway, pymongo.database.Database]) -> None:
    hurried[1].expenses.insert_many([
        {"tenant_id": HEAVY_TENANT, "owner_id": "root", "title": f"t{i}", "amount": i, "status": "draft"}
        for i in range(3000)
    ])


@pytest.mark.parametrize(
    ("method", "path", "body", "setting"),
    [
        ("POST", "/find", {"filter": HEAVY}, "limits.query_max_time_ms"),
        ("POST", "/count", {"filter": HEAVY}, "limits.query_max_time_ms"),
        ("PATCH", "/batch", {"filter": HEAVY, "update": {"$set": {"amount": 1}}}, "limits.query_max_time_ms"),
        ("DELETE", "/batch", {"filter": HEAVY}, "limits.query_max_time_ms"),
        ("POST", "/aggregate", {"pipeline": [{"$match": HEAVY}]}, "limits.aggregate_max_time_ms"),
    ],
)
def test_an_operation_past_its_time_limit_is_a_400_naming_the_setting(
    hurried: tuple[Gateway, Any], heavy_data: None, method: str, path: str, body: Any, setting: str
) -> None:
    # Without the limit, each would be answered, seconds later.
    with user_client(hurried[0], "root", HEAVY_TENANT, ["admin"]) as root:
        error = assert_error(root.request(method, EXPENSES + path, json=body), 400, "BAD_REQUEST")
    assert setting in error["message"]
    assert error["details"] == {"setting": setting, "max_time_ms": TIME_LIMITS[setting.split(".")[1]]}


@pytest.fixture
def large_documents(bounded: tuple[Gateway, pymongo.database.Database], tenant: str) -> Iterator[None]:
    collection = bounded[1].expenses
    collection.insert_many([
        {"tenant_id": tenant, "owner_id": "root", "title": f"t{i:02}", "amount": i, "status": "draft", "text": "x" * 1000}
        for i in range(20)
    ])
    yield
    collection.delete_many({"tenant_id": tenant})


def test_an_answer_past_the_byte_limit_is_a_400_naming_the_setting(large_documents: None, root: httpx.Client) -> None:
    for method, path, body in [
        ("POST", "/find", {"limit": 20}),
        ("POST", "/aggregate", {"pipeline": []}),
        ("POST", "/aggregate", {"pipeline": [{"$limit": 1}, {"$project": {"r": {"$range": [0, 5000]}}}]}),
    ]:
        error = assert_error(root.request(method, EXPENSES + path, json=body), 400, "BAD_REQUEST")
        assert "limits.max_response_bytes" in error["message"]
        assert error["details"] == {"setting": "limits.max_response_bytes", "max_bytes": 8192}
    assert len(ejson(root.post(f"{EXPENSES}/find", json={"limit": 3}))["data"]) == 3
    assert len(ejson(root.post(f"{EXPENSES}/aggregate", json={"pipeline": [{"$limit": 3}]}))["data"]) == 3


def test_the_byte_limit_holds_for_the_json_sent(
    bounded: tuple[Gateway, pymongo.database.Database], root: httpx.Client, tenant: str
) -> None:
    # Control characters take one byte in BSON and six in JSON (\u0000): read within the limit,
    # sent past it.
    bounded[1].expenses.insert_many([
        {"tenant_id": tenant, "owner_id": "root", "title": "c", "amount": 1, "status": "draft", "text": "\x01" * 1000}
        for _ in range(2)
    ])
    error = assert_error(root.post(f"{EXPENSES}/find", json={"filter": {"title": "c"}}), 400, "BAD_REQUEST")
    assert error["details"]["setting"] == "limits.max_response_bytes"
    assert root.post(f"{EXPENSES}/find", json={"filter": {"title": "c"}, "limit": 1}).status_code == 200


class _Commands(pymongo.monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: pymongo.monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: pymongo.monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: pymongo.monitoring.CommandFailedEvent) -> None:
        pass


async def test_reading_stops_once_the_byte_limit_is_passed(mongo_uri: str, db: pymongo.database.Database) -> None:
    # 600 documents of 2 KB arrive in several batches; a limit of 20 KB is passed in the first.
    db.big.insert_many([{"i": i, "text": "x" * 2000} for i in range(600)])
    commands = _Commands()
    pymongo.monitoring.register(commands)  # reaches the clients created from now on
    store = Store(mongo_uri, db.name, time_limit=QUERY_TIME)
    try:
        documents = store.documents("big")
        cap = SizeLimit(20_000, "limits.max_response_bytes")
        with pytest.raises(ResultTooLargeError):
            await documents.find({}, sort=[("i", 1)], limit=600, collation={"locale": "simple"}, max_bytes=cap)
        with pytest.raises(ResultTooLargeError):
            await documents.aggregate([], collation={"locale": "simple"}, time_limit=QUERY_TIME, max_bytes=cap, limit=600)
        assert "getMore" not in commands.names  # the naive to_list() fetches every batch
        read = await documents.find({}, sort=[("i", 1)], limit=600, collation={"locale": "simple"}, max_bytes=None)
        assert len(read) == 600 and "getMore" in commands.names  # the reply does come in batches
    finally:
        await store.close()
        pymongo.monitoring._LISTENERS.command_listeners.remove(commands)
