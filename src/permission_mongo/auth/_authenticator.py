"""From an ``Authorization`` header to an identity: API keys (``pm_...``) or JWTs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..policy import Identity
from ._api_keys import API_KEY_PREFIX, ApiKeys
from ._credentials import JWT_CREDENTIAL, Authenticated
from ._errors import InvalidTokenError, MissingCredentialsError
from ._jwt import JwtVerifier

__all__ = ["Authenticator", "bearer_token"]

_MAX_TOKEN_LENGTH = 16_384


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not authorization or not authorization.strip():
        raise MissingCredentialsError("authentication required: send Authorization: Bearer <token>")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise MissingCredentialsError(
            f"unsupported authorization scheme {scheme[:20]!r}: send Authorization: Bearer <token>"
        )
    token = token.strip()
    if not token:
        raise MissingCredentialsError("the Authorization header has no token after Bearer")
    if len(token) > _MAX_TOKEN_LENGTH:
        raise InvalidTokenError("invalid token: too long")
    return token


class Authenticator:
    def __init__(self, api_keys: ApiKeys, jwt: JwtVerifier | None = None) -> None:
        self.api_keys = api_keys
        self.jwt = jwt

    async def authenticate(self, authorization: str | None) -> Authenticated:
        token = bearer_token(authorization)
        if token.startswith(API_KEY_PREFIX):
            return await self.api_keys.authenticate(token)
        if self.jwt is None:
            raise InvalidTokenError(
                "JWT authentication is not configured on this gateway; use an API key (pm_...)"
            )
        identity = self.jwt.verify(token)
        _check_unicode(identity)
        return Authenticated(identity, JWT_CREDENTIAL)


def _check_unicode(identity: Identity) -> None:
    """A JWT's JSON may spell a lone surrogate (``"\\ud800"``), which no database stores and no
    UTF-8 encoder takes: refused here, rather than failing wherever the identity is used."""
    pending: list[Any] = [identity.id, identity.tenant_id, list(identity.roles), dict(identity.attributes)]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            try:
                value.encode()
            except UnicodeEncodeError:
                raise InvalidTokenError(
                    "invalid token: a claim holds a lone surrogate, which is not valid Unicode"
                ) from None
        elif isinstance(value, Mapping):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, (list, tuple)):
            pending.extend(value)
