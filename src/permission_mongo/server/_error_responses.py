"""From exceptions to the error envelope. The one place statuses and codes are chosen.

    {"error": {"code": "...", "message": "...", "details": {...}}, "meta": {"request_id": "..."}}

``ERROR_TABLE`` maps domain error classes to (status, code); a class not listed takes the
entry of its nearest listed base class, so a new subclass needs no new entry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import fastapi.exceptions
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ExceptionHandler

from ..auth import (
    ExpiredTokenError,
    InvalidTokenError,
    MissingCredentialsError,
    UnknownApiKeyError,
    UnknownRoleError,
)
from ..policy import (
    ActionNotAllowedError,
    FieldNotReadableError,
    QueryError,
    UnknownActionError,
    UnknownCollectionError,
)
from ..policy._update import UpdateError
from ..store import (
    DatabaseFaultError,
    DatabaseUnavailableError,
    DuplicateKeyError,
    InvalidIdError,
    InvalidQueryError,
    UnreadableDocumentError,
)
from . import errors
from ._json import ExtendedJSONResponse, dumps

__all__ = ["ERROR_TABLE", "error_body", "exception_handlers", "retry_after", "status_and_code"]

ERROR_TABLE: Mapping[type[Exception], tuple[int, str]] = {
    errors.BadRequestError: (400, "BAD_REQUEST"),
    errors.PayloadTooLargeError: (413, "BAD_REQUEST"),
    errors.UnsupportedMediaTypeError: (415, "BAD_REQUEST"),
    errors.RequestValidationError: (422, "VALIDATION_ERROR"),
    errors.ForbiddenError: (403, "FORBIDDEN"),
    errors.FieldNotWritableError: (403, "FIELD_NOT_WRITABLE"),
    errors.NotFoundError: (404, "NOT_FOUND"),
    errors.CollectionNotFoundError: (404, "COLLECTION_NOT_FOUND"),
    errors.ConflictError: (409, "CONFLICT"),
    errors.RateLimitExceededError: (429, "RATE_LIMIT_EXCEEDED"),
    errors.ServiceUnavailableError: (503, "SERVICE_UNAVAILABLE"),
    MissingCredentialsError: (401, "UNAUTHORIZED"),
    InvalidTokenError: (401, "INVALID_TOKEN"),
    ExpiredTokenError: (401, "EXPIRED_TOKEN"),
    UnknownApiKeyError: (404, "NOT_FOUND"),
    UnknownRoleError: (422, "VALIDATION_ERROR"),
    DatabaseUnavailableError: (503, "SERVICE_UNAVAILABLE"),
    DatabaseFaultError: (500, "INTERNAL_ERROR"),
    DuplicateKeyError: (409, "CONFLICT"),
    UnreadableDocumentError: (409, "CONFLICT"),
    InvalidIdError: (400, "BAD_REQUEST"),
    InvalidQueryError: (400, "BAD_REQUEST"),  # QueryTimeoutError and ResultTooLargeError too
    UpdateError: (400, "BAD_REQUEST"),
    UnknownCollectionError: (404, "COLLECTION_NOT_FOUND"),
    UnknownActionError: (400, "BAD_REQUEST"),
    FieldNotReadableError: (400, "FIELD_NOT_READABLE"),
    QueryError: (400, "BAD_REQUEST"),
    ActionNotAllowedError: (403, "FORBIDDEN"),
}

# Codes for the framework's own HTTP errors (unknown route, wrong method, body too large).
_CODE_BY_STATUS = {
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMIT_EXCEEDED",
    503: "SERVICE_UNAVAILABLE",
}


def status_and_code(exc: Exception) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    raise LookupError(f"{type(exc).__name__} is not in the error table")


def error_body(code: str, message: str, details: Mapping[str, Any] | None, request_id: str | None) -> bytes:
    return dumps(
        {
            "error": {"code": code, "message": message, "details": dict(details or {})},
            "meta": {"request_id": request_id},
        }
    )


def _error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    request_id = getattr(request.state, "request_id", None)
    return Response(
        error_body(code, message, details, request_id),
        status_code=status,
        headers=dict(headers or {}),
        media_type=ExtendedJSONResponse.media_type,
    )


def _headers_for(exc: Exception, status: int) -> dict[str, str]:
    headers: dict[str, str] = {}
    if status == 401:
        # RFC 6750: say how to authenticate, and whether the token sent was the problem.
        headers["WWW-Authenticate"] = (
            'Bearer error="invalid_token"' if isinstance(exc, InvalidTokenError) else "Bearer"
        )
    if status in (429, 503):
        # Every "try again later" says when (RFC 9110): the SDK and proxies wait that long.
        headers["Retry-After"] = retry_after(getattr(exc, "retry_after", None))
    return headers


def retry_after(seconds: float | None) -> str:
    """A ``Retry-After`` value: whole seconds, at least 1 (1 when nothing better is known)."""
    return str(max(1, math.ceil(seconds or 1)))


async def _handle_domain_error(request: Request, exc: Exception) -> Response:
    status, code = status_and_code(exc)
    details = getattr(exc, "details", None)
    return _error_response(request, status, code, str(exc), details, _headers_for(exc, status))


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    code = _CODE_BY_STATUS.get(status, "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR")
    method, path = request.method, request.url.path
    if status == 404:
        message = f"no route {method} {path}; the API is described at /docs"
    elif status == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"{method} is not allowed on {path}; allowed: {allowed}"
    elif status == 413:
        message = "the request body is too large"
    else:
        message = str(exc.detail)
    headers = dict(exc.headers or {})
    if status in (429, 503):
        headers.setdefault("Retry-After", retry_after(None))
    return _error_response(request, status, code, message, headers=headers)


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


async def _handle_request_validation(request: Request, exc: Exception) -> Response:
    # FastAPI's own validation of path, query and header parameters.
    assert isinstance(exc, fastapi.exceptions.RequestValidationError)
    problems = [{"field": _location(e["loc"]), "message": e["msg"]} for e in exc.errors()]
    return await _handle_domain_error(request, errors.RequestValidationError.listing(problems))


def exception_handlers() -> dict[Any, ExceptionHandler]:
    handlers: dict[Any, ExceptionHandler] = {cls: _handle_domain_error for cls in ERROR_TABLE}
    handlers[HTTPException] = _handle_http_exception
    handlers[fastapi.exceptions.RequestValidationError] = _handle_request_validation
    return handlers
