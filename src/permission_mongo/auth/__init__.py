"""Authentication: API keys and JWTs, each turned into a ``permission_mongo.policy.Identity``."""

from __future__ import annotations

from ._api_keys import (
    API_KEY_PREFIX,
    ApiKeys,
    generate_api_key,
    hash_api_key,
    identity_to_record,
    is_admin,
    is_well_formed_api_key,
)
from ._authenticator import Authenticator, bearer_token
from ._credentials import Authenticated
from ._errors import (
    AuthError,
    ExpiredTokenError,
    InvalidTokenError,
    MissingCredentialsError,
    UnknownApiKeyError,
    UnknownRoleError,
)
from ._jwt import HMAC_ALGORITHMS, PUBLIC_KEY_ALGORITHMS, JwtSettings, JwtSettingsError, JwtVerifier
from ._roles import ADMIN_ROLE, BUILTIN_ROLES, PDP_ROLE, is_reserved_role

__all__ = [
    "ADMIN_ROLE",
    "API_KEY_PREFIX",
    "ApiKeys",
    "AuthError",
    "Authenticated",
    "Authenticator",
    "BUILTIN_ROLES",
    "ExpiredTokenError",
    "HMAC_ALGORITHMS",
    "InvalidTokenError",
    "JwtSettings",
    "JwtSettingsError",
    "JwtVerifier",
    "MissingCredentialsError",
    "PDP_ROLE",
    "PUBLIC_KEY_ALGORITHMS",
    "UnknownApiKeyError",
    "UnknownRoleError",
    "bearer_token",
    "generate_api_key",
    "hash_api_key",
    "identity_to_record",
    "is_admin",
    "is_reserved_role",
    "is_well_formed_api_key",
]
