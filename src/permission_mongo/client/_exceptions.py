"""Everything the SDK raises.

::

    PermissionMongoError               base: catch this to catch anything the SDK raises
    ├── APIConnectionError             no answer: refused, reset, DNS, broken protocol
    │   └── APITimeoutError            no answer in time
    ├── UnexpectedResponseError        an answer that is not the gateway's (e.g. 2xx, not JSON)
    └── APIStatusError                 the gateway answered with an error status
        ├── ValidationError            400, 422: the request is wrong, the message says how
        ├── AuthenticationError        401: missing, invalid or expired key or token
        ├── PermissionDeniedError      403: the policy does not allow it
        ├── NotFoundError              404: missing, or not visible to the caller
        ├── ConflictError              409
        ├── RateLimitError             429: see ``retry_after``
        └── ServerError                5xx

Every error has ``status_code`` (None when there was no answer), ``error_code`` (the gateway's
stable code, such as ``"FORBIDDEN"``), ``message``, ``details`` (a dict, empty when the gateway
sent none) and ``request_id`` (quote it when reporting a problem). Status errors also have
``retry_after``: the seconds the gateway asked to wait, when it said.

The status of an answer picks the class through one table, ``_BY_STATUS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "ConflictError",
    "NotFoundError",
    "PermissionDeniedError",
    "PermissionMongoError",
    "RateLimitError",
    "ServerError",
    "UnexpectedResponseError",
    "ValidationError",
    "envelope_code",
    "error_class_for",
    "status_error_from_body",
]


class PermissionMongoError(Exception):
    """Base class of every error the SDK raises."""

    default_code: ClassVar[str] = "ERROR"
    """The ``error_code`` used when the answer did not carry one."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: str | None = None,
        details: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.error_code = error_code or self.default_code
        self.details: dict[str, Any] = dict(details or {})
        self.request_id = request_id

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status_code={self.status_code!r}, "
            f"error_code={self.error_code!r}, request_id={self.request_id!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle (multiprocessing, task queues) rebuilds from the attributes, because the
        # keyword-only constructors cannot be called with ``self.args`` alone.
        return (_restore, (type(self), self.message, self.__dict__))


class APIConnectionError(PermissionMongoError):
    """The gateway could not be reached or the connection broke before an answer."""

    default_code = "CONNECTION_ERROR"


class APITimeoutError(APIConnectionError):
    """The gateway did not answer within the client's timeout."""

    default_code = "TIMEOUT"


class UnexpectedResponseError(PermissionMongoError):
    """The answer is not shaped like the gateway's (a proxy's page, a truncated body...)."""

    default_code = "UNEXPECTED_RESPONSE"


class APIStatusError(PermissionMongoError):
    """The gateway answered with an error status; its error envelope fills the attributes."""

    default_code = "HTTP_ERROR"

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_code: str | None = None,
        details: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message,
            status_code=status_code,
            error_code=error_code,
            details=details,
            request_id=request_id,
        )
        self.status_code: int = status_code
        self.retry_after = retry_after


class ValidationError(APIStatusError):
    """The request is invalid (bad filter, a field that fails the schema, an unreadable field
    in a query...). ``error_code`` tells which, ``details`` says where."""

    default_code = "VALIDATION_ERROR"


class AuthenticationError(APIStatusError):
    """The API key or token is missing, invalid, expired or revoked."""

    default_code = "UNAUTHORIZED"


class PermissionDeniedError(APIStatusError):
    """The caller is authenticated but the policy does not allow this action."""

    default_code = "FORBIDDEN"


class NotFoundError(APIStatusError):
    """The document (or collection) does not exist or is not visible to the caller."""

    default_code = "NOT_FOUND"


class ConflictError(APIStatusError):
    """The request conflicts with the current state (duplicate key, a retry still running)."""

    default_code = "CONFLICT"


class RateLimitError(APIStatusError):
    """Too many requests; ``retry_after`` holds the seconds the gateway asked to wait."""

    default_code = "RATE_LIMIT_EXCEEDED"


class ServerError(APIStatusError):
    """The gateway or something behind it failed (5xx)."""

    default_code = "INTERNAL_ERROR"


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    # The gateway reports schema failures as VALIDATION_ERROR; whether under 400 or 422, users
    # catch the one class the documentation names.
    422: ValidationError,
    429: RateLimitError,
}


def error_class_for(status_code: int) -> type[APIStatusError]:
    """The exception class for an error answer with this status."""
    found = _BY_STATUS.get(status_code)
    if found is not None:
        return found
    return ServerError if status_code >= 500 else APIStatusError


def status_error_from_body(
    status_code: int,
    body: Any,
    *,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> APIStatusError:
    """Build the error for an answer, from the gateway's envelope when the body is one::

        {"error": {"code": ..., "message": ..., "details": {...}}, "meta": {"request_id": ...}}

    ``body`` is the decoded JSON (anything else, e.g. a proxy's HTML as text, is tolerated);
    ``request_id`` is the ``X-Request-ID`` header, used when the envelope has none.
    """
    error = _member(body, "error")
    meta_request_id = _member(body, "meta").get("request_id")
    if isinstance(meta_request_id, str):
        request_id = meta_request_id

    message = error.get("message")
    details = error.get("details")
    cls = error_class_for(status_code)
    return cls(
        message if isinstance(message, str) and message else _status_line(status_code),
        status_code=status_code,
        error_code=envelope_code(body),
        details=details if isinstance(details, dict) else None,
        request_id=request_id,
        retry_after=retry_after,
    )


def envelope_code(body: Any) -> str | None:
    """The ``error.code`` of a gateway envelope, or None when ``body`` is not one."""
    code = _member(body, "error").get("code")
    return code if isinstance(code, str) else None


def _member(body: Any, name: str) -> dict[str, Any]:
    value = body.get(name) if isinstance(body, dict) else None
    return value if isinstance(value, dict) else {}


def _restore(
    cls: type[PermissionMongoError], message: str, state: dict[str, Any]
) -> PermissionMongoError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


def _status_line(status_code: int) -> str:
    try:
        return f"HTTP {status_code} {HTTPStatus(status_code).phrase}"
    except ValueError:
        return f"HTTP {status_code}"
