"""The error table and the catch-all, in-process: the one failure no request can provoke on
purpose is a bug, so the outermost middleware is exercised with an app that raises."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from permission_mongo.auth import ExpiredTokenError, InvalidTokenError, MissingCredentialsError
from permission_mongo.policy import ActionNotAllowedError, FieldNotReadableError, QueryError
from permission_mongo.server import ERROR_TABLE
from permission_mongo.server import errors
from permission_mongo.server._error_responses import status_and_code
from permission_mongo.server._middleware import RequestContextMiddleware
from permission_mongo.store import DatabaseUnavailableError

CODES = {
    "BAD_REQUEST", "UNAUTHORIZED", "INVALID_TOKEN", "EXPIRED_TOKEN", "FORBIDDEN", "NOT_FOUND",
    "COLLECTION_NOT_FOUND", "CONFLICT", "VALIDATION_ERROR", "FIELD_NOT_READABLE",
    "FIELD_NOT_WRITABLE", "RATE_LIMIT_EXCEEDED", "SERVICE_UNAVAILABLE", "INTERNAL_ERROR",
}


def test_every_code_in_the_table_is_a_documented_one() -> None:
    assert {code for _, code in ERROR_TABLE.values()} <= CODES


def test_every_gateway_error_is_mapped() -> None:
    for cls in vars(errors).values():
        if isinstance(cls, type) and issubclass(cls, errors.GatewayError) and cls is not errors.GatewayError:
            status_and_code(cls.__new__(cls))  # raises LookupError if unmapped


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (MissingCredentialsError("x"), (401, "UNAUTHORIZED")),
        (InvalidTokenError("x"), (401, "INVALID_TOKEN")),
        (ExpiredTokenError("x"), (401, "EXPIRED_TOKEN")),  # more specific than its base
        (FieldNotReadableError("x"), (400, "FIELD_NOT_READABLE")),
        (QueryError("x"), (400, "BAD_REQUEST")),
        (ActionNotAllowedError("read", "x"), (403, "FORBIDDEN")),
        (DatabaseUnavailableError("x"), (503, "SERVICE_UNAVAILABLE")),
    ],
)
def test_the_most_specific_class_wins(error: Exception, expected: tuple[int, str]) -> None:
    assert status_and_code(error) == expected


def test_a_subclass_needs_no_entry_of_its_own() -> None:
    class TenantNotFoundError(errors.NotFoundError):
        pass

    assert status_and_code(TenantNotFoundError("x")) == (404, "NOT_FOUND")


async def _crashing_app(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("secret internals")


async def test_an_unhandled_error_is_a_generic_500_with_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    transport = httpx.ASGITransport(app=RequestContextMiddleware(_crashing_app))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        with caplog.at_level(logging.ERROR, logger="permission_mongo.server"):
            response = await client.get("/boom", headers={"X-Request-ID": "req-1"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-1"
    body = response.json()
    assert body["error"]["code"] == "INTERNAL_ERROR"
    assert body["meta"] == {"request_id": "req-1"}
    assert "secret internals" not in response.text
    assert any("req-1" in record.getMessage() and record.exc_info for record in caplog.records)
