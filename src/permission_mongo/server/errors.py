"""Errors the gateway raises while handling a request. They know nothing of HTTP:
``_error_responses.ERROR_TABLE`` maps each class (and those of auth, store and policy, such as
the policy's FieldNotReadableError and QueryError) to a status and a stable code.

    GatewayError
    ├── BadRequestError
    │   ├── MalformedJsonError
    │   ├── UnsupportedMediaTypeError
    │   └── PayloadTooLargeError
    ├── RequestValidationError
    ├── ForbiddenError
    │   └── FieldNotWritableError
    ├── NotFoundError
    │   └── CollectionNotFoundError
    ├── ConflictError
    │   └── DocumentTooDeepError
    ├── RateLimitExceededError
    └── ServiceUnavailableError
        └── RequestInProgressError
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "GatewayError",
    "BadRequestError",
    "MalformedJsonError",
    "UnsupportedMediaTypeError",
    "PayloadTooLargeError",
    "RequestValidationError",
    "ForbiddenError",
    "FieldNotWritableError",
    "NotFoundError",
    "CollectionNotFoundError",
    "ConflictError",
    "DocumentTooDeepError",
    "RateLimitExceededError",
    "ServiceUnavailableError",
    "RequestInProgressError",
]


class GatewayError(Exception):
    """Base class. ``message`` says what to fix; ``details`` is safe to show the caller."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class BadRequestError(GatewayError):
    """The request cannot be understood as sent."""


class MalformedJsonError(BadRequestError):
    """The body is not JSON, or not valid Extended JSON."""


class UnsupportedMediaTypeError(BadRequestError):
    """The body is sent with a content type other than JSON."""


class PayloadTooLargeError(BadRequestError):
    """The body is larger than ``limits.max_body_bytes``."""


class RequestValidationError(GatewayError):
    """The request is well-formed JSON but does not have the expected shape."""

    @classmethod
    def listing(cls, problems: list[dict[str, str]]) -> RequestValidationError:
        """One error for every problem (``{"field", "message"}``), the first in the message."""
        first = problems[0] if problems else {"field": "request", "message": "invalid"}
        message = f"{first['field']}: {first['message']}"
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more)"
        return cls(message, details={"errors": problems})


class ForbiddenError(GatewayError):
    """The caller is authenticated but may not do this."""


class FieldNotWritableError(ForbiddenError):
    """The request writes a field the caller may not write."""


class NotFoundError(GatewayError):
    """No such thing, or the caller may not know it exists."""


class CollectionNotFoundError(NotFoundError):
    """The policy names no such collection."""


class ConflictError(GatewayError):
    """The request conflicts with the current state (e.g. a duplicate key)."""


class DocumentTooDeepError(ConflictError):
    """A stored document nests deeper than the gateway can change or answer with (written
    directly to the database: the gateway writes none deeper than ``limits.max_document_depth``)."""


class RateLimitExceededError(GatewayError):
    """Too many requests; ``retry_after`` seconds until the next one may succeed."""

    def __init__(self, message: str, *, retry_after: float, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class ServiceUnavailableError(GatewayError):
    """A dependency the request needs is down; retrying later may succeed."""


class RequestInProgressError(ServiceUnavailableError):
    """A request with this Idempotency-Key is still running; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float = 1.0, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after
