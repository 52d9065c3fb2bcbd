"""Why a caller could not be authenticated. No HTTP here: the server maps these to responses."""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "MissingCredentialsError",
    "InvalidTokenError",
    "ExpiredTokenError",
    "UnknownApiKeyError",
    "UnknownRoleError",
]


class AuthError(Exception):
    """Base class of the auth package's errors. ``details`` is safe to show the caller."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class MissingCredentialsError(AuthError):
    """No usable ``Authorization: Bearer`` header was sent."""


class InvalidTokenError(AuthError):
    """A token was sent but is not acceptable: bad signature, algorithm, issuer, audience,
    claims, or an unknown or revoked API key."""


class ExpiredTokenError(InvalidTokenError):
    """The token or API key was valid once and has expired."""


class UnknownApiKeyError(AuthError):
    """No API key has this id (management API)."""


class UnknownRoleError(AuthError):
    """An API key would carry a role the policy does not define (most likely a typo)."""
