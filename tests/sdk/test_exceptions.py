"""Errors built from the gateway's error envelope."""

from __future__ import annotations

import pickle

from permission_mongo import (
    APIStatusError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
)
from permission_mongo.client._exceptions import status_error_from_body


def envelope(
    code: str, message: str, details: dict | None = None, request_id: str = "req-1"
) -> dict:
    return {
        "error": {"code": code, "message": message, "details": details or {}},
        "meta": {"request_id": request_id},
    }


def test_envelope_fills_every_attribute() -> None:
    error = status_error_from_body(
        403,
        envelope("FORBIDDEN", "role viewer may not update documents", {"action": "update"}),
        request_id="from-header",
    )
    assert type(error) is PermissionDeniedError
    assert error.status_code == 403
    assert error.error_code == "FORBIDDEN"
    assert error.message == "role viewer may not update documents"
    assert error.details == {"action": "update"}
    assert error.request_id == "req-1"  # the envelope's id wins over the header's
    assert error.retry_after is None
    assert str(error) == "role viewer may not update documents"


def test_stable_codes_pass_through_whatever_the_class() -> None:
    error = status_error_from_body(400, envelope("FIELD_NOT_READABLE", "cannot filter on salary"))
    assert isinstance(error, ValidationError)
    assert error.error_code == "FIELD_NOT_READABLE"
    missing = status_error_from_body(404, envelope("COLLECTION_NOT_FOUND", "no collection 'x'"))
    assert isinstance(missing, NotFoundError) and missing.error_code == "COLLECTION_NOT_FOUND"


def test_rate_limit_carries_retry_after() -> None:
    error = status_error_from_body(
        429, envelope("RATE_LIMIT_EXCEEDED", "slow down"), retry_after=2.0
    )
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 2.0


def test_body_that_is_not_an_envelope_falls_back_on_the_status() -> None:
    error = status_error_from_body(502, "<html>Bad gateway</html>", request_id="abc")
    assert type(error) is ServerError
    assert error.message == "HTTP 502 Bad Gateway"
    assert error.error_code == "INTERNAL_ERROR"
    assert error.details == {}
    assert error.request_id == "abc"

    odd = status_error_from_body(418, {"error": "nope"})
    assert type(odd) is APIStatusError
    assert (odd.error_code, odd.message) == ("HTTP_ERROR", "HTTP 418 I'm a Teapot")


def test_errors_survive_pickling() -> None:
    error = status_error_from_body(
        429, envelope("RATE_LIMIT_EXCEEDED", "slow down", {"n": 1}), retry_after=3
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (
        copy.status_code,
        copy.error_code,
        copy.message,
        copy.details,
        copy.request_id,
        copy.retry_after,
    ) == (
        429,
        "RATE_LIMIT_EXCEEDED",
        "slow down",
        {"n": 1},
        "req-1",
        3,
    )
