"""Every failure is the error envelope with a stable code, framework errors included, and
every response carries X-Request-ID."""

from __future__ import annotations

import httpx
import pytest

from .harness import assert_error

CREATE_KEY = "/v1/admin/api-keys"


def test_unknown_route_is_not_found(client: httpx.Client) -> None:
    error = assert_error(client.get("/v1/nothing-here"), 404, "NOT_FOUND")
    assert "/v1/nothing-here" in error["message"]


def test_wrong_method_is_405_with_allow(client: httpx.Client) -> None:
    response = client.delete("/health")
    assert_error(response, 405, "BAD_REQUEST")
    assert response.headers["allow"] == "GET"


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"identity": ', b"not json", b"[1, 2,]", b'{"a": NaN}', b'{"a": Infinity}'],
)
def test_malformed_json_is_400(admin: httpx.Client, body: bytes) -> None:
    response = admin.post(CREATE_KEY, content=body, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "BAD_REQUEST")


def test_malformed_json_says_where(admin: httpx.Client) -> None:
    response = admin.post(CREATE_KEY, content=b'{\n  "identity": }', headers={"Content-Type": "application/json"})
    error = assert_error(response, 400, "BAD_REQUEST")
    assert error["details"] == {"line": 2, "column": 15}


def test_duplicate_keys_are_refused(admin: httpx.Client) -> None:
    body = b'{"identity": {"id": "a", "id": "b"}}'
    error = assert_error(admin.post(CREATE_KEY, content=body, headers={"Content-Type": "application/json"}), 400, "BAD_REQUEST")
    assert "duplicate key 'id'" in error["message"]


def test_empty_body_is_400(admin: httpx.Client) -> None:
    assert_error(admin.post(CREATE_KEY, content=b"", headers={"Content-Type": "application/json"}), 400, "BAD_REQUEST")


def test_body_not_utf8_is_400(admin: httpx.Client) -> None:
    response = admin.post(CREATE_KEY, content=b'{"identity": "\xff"}', headers={"Content-Type": "application/json"})
    assert_error(response, 400, "BAD_REQUEST")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"])
def test_wrong_content_type_is_415(admin: httpx.Client, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = admin.post(CREATE_KEY, content=b'{"identity": {"id": "x"}}', headers=headers)
    assert_error(response, 415, "BAD_REQUEST")


def test_json_media_type_variants_are_accepted(admin: httpx.Client) -> None:
    body = b'{"identity": {"id": "media"}}'
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        assert admin.post(CREATE_KEY, content=body, headers={"Content-Type": content_type}).status_code == 201


def test_body_over_the_limit_is_413(admin: httpx.Client) -> None:
    big = {"identity": {"id": "x", "attributes": {"blob": "x" * 70_000}}}
    assert_error(admin.post(CREATE_KEY, json=big), 413, "BAD_REQUEST")


@pytest.mark.parametrize(
    "value",
    [{"$oid": "not-an-object-id"}, {"$oid": 5}, {"$date": "yesterday"}, {"$numberLong": "x"}, {"$uuid": "zz"},
     {"$numberDecimal": "abc"}, {"$numberDecimal": "1e999999"}, {"$numberDecimal": "1" * 40},
     {"$binary": "AA==", "$type": "00", "kept": 1}],  # json_util would drop "kept"
)
def test_invalid_extended_json_is_400(admin: httpx.Client, value: object) -> None:
    body = {"identity": {"id": "x", "attributes": {"v": value}}}
    assert_error(admin.post(CREATE_KEY, json=body), 400, "BAD_REQUEST")


def test_extended_json_round_trips(admin: httpx.Client) -> None:
    attributes = {
        "org": {"$oid": "64b7f0c2a1b2c3d4e5f60718"},
        "hired": {"$date": "2021-03-04T05:06:07.089Z"},
        "big": {"$numberLong": "9007199254740993"},
        "ratio": 0.5,
    }
    created = admin.post(CREATE_KEY, json={"identity": {"id": "ejson", "attributes": attributes}})
    assert created.status_code == 201, created.text
    assert created.json()["identity"]["attributes"] == {
        "org": {"$oid": "64b7f0c2a1b2c3d4e5f60718"},
        "hired": {"$date": "2021-03-04T05:06:07.089Z"},
        "big": 9007199254740993,
        "ratio": 0.5,
    }


def test_request_shape_errors_are_422_listing_every_problem(admin: httpx.Client) -> None:
    response = admin.post(CREATE_KEY, json={"identity": {"roles": "admin"}, "colour": "red"})
    error = assert_error(response, 422, "VALIDATION_ERROR")
    fields = {problem["field"] for problem in error["details"]["errors"]}
    assert fields == {"identity.id", "identity.roles", "colour"}


def test_body_that_is_not_an_object_is_422(admin: httpx.Client) -> None:
    assert_error(admin.post(CREATE_KEY, json=[1, 2]), 422, "VALIDATION_ERROR")


def test_invalid_object_id_in_the_path_is_400(admin: httpx.Client) -> None:
    error = assert_error(admin.delete(f"{CREATE_KEY}/not-an-id"), 400, "BAD_REQUEST")
    assert "not-an-id" in error["message"]


def test_a_sane_request_id_is_echoed(client: httpx.Client) -> None:
    for path in ("/health", "/nowhere"):
        response = client.get(path, headers={"X-Request-ID": "trace-42.a:b_c"})
        assert response.headers["x-request-id"] == "trace-42.a:b_c"
    assert client.get("/nowhere", headers={"X-Request-ID": "trace-42"}).json()["meta"]["request_id"] == "trace-42"


@pytest.mark.parametrize("sent", ["", "has space", "x" * 200, "semi;colon", "-leading-dash", "ünïcode"])
def test_an_insane_request_id_is_replaced(client: httpx.Client, sent: str) -> None:
    response = client.get("/health", headers={"X-Request-ID": sent.encode()})
    generated = response.headers["x-request-id"]
    assert generated != sent and len(generated) == 32


def test_request_ids_are_generated_and_unique(client: httpx.Client) -> None:
    ids = {client.get("/health").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5
