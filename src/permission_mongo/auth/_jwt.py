"""JWT verification: one configured key, an explicit list of algorithms, nothing else accepted.

The token's header never chooses the key or widens the algorithm list: ``alg: none`` and
algorithm confusion (an HS256 token "signed" with the RSA public key) fail because only the
configured algorithms are allowed and all of them use the one configured key type.

A token carrying a role of the built-in ``pm:`` namespace is refused unless its issuer is in
``builtin_roles_issuers``: an identity provider that can mint tokens for the data plane should
not thereby be able to mint gateway administrators.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, ed448, rsa
from jwt.algorithms import get_default_algorithms

from ..policy import Identity
from ._errors import ExpiredTokenError, InvalidTokenError
from ._roles import BUILTIN_ROLES, is_reserved_role

__all__ = ["HMAC_ALGORITHMS", "PUBLIC_KEY_ALGORITHMS", "JwtSettings", "JwtSettingsError", "JwtVerifier"]

# The minimum secret length for each HMAC algorithm is its hash size (RFC 7518, 3.2).
HMAC_ALGORITHMS = {"HS256": 32, "HS384": 48, "HS512": 64}
PUBLIC_KEY_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# The claims that fill the identity's own fields; every other claim is an attribute.
_IDENTITY_CLAIMS = ("sub", "tenant_id", "roles")
_PRIVATE_KEY_TYPES = (
    rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey,
)


class JwtSettingsError(ValueError):
    """A JWT setting is wrong. ``setting`` names it (``secret``, ``algorithm``...)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting
        self.message = message


@dataclass(frozen=True)
class JwtSettings:
    algorithms: tuple[str, ...]
    secret: str | None = None
    public_key: str | None = None  # PEM
    issuer: str | None = None
    audience: tuple[str, ...] = ()
    leeway: float = 0.0
    # Issuers whose tokens may carry built-in roles (pm:admin, pm:pdp); none by default.
    builtin_roles_issuers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.algorithms:
            raise JwtSettingsError("algorithm", "no algorithm is configured")
        unknown = [a for a in self.algorithms if a not in HMAC_ALGORITHMS and a not in PUBLIC_KEY_ALGORITHMS]
        if unknown:
            known = ", ".join([*HMAC_ALGORITHMS, *sorted(PUBLIC_KEY_ALGORITHMS)])
            raise JwtSettingsError("algorithm", f"unsupported algorithm {unknown[0]!r}; use one of {known}")
        hmac = [a for a in self.algorithms if a in HMAC_ALGORITHMS]
        if hmac and len(hmac) != len(self.algorithms):
            raise JwtSettingsError(
                "algorithm",
                "HMAC (HS*) and public-key algorithms cannot be mixed: a token could choose "
                "which kind of key its signature is checked with",
            )
        if hmac:
            if self.public_key:
                raise JwtSettingsError("public_key", f"{hmac[0]} uses a secret, not a public key")
            if not self.secret:
                raise JwtSettingsError("secret", f"{hmac[0]} needs a secret")
            needed = max(HMAC_ALGORITHMS[a] for a in hmac)
            if len(self.secret.encode()) < needed:
                raise JwtSettingsError(
                    "secret", f"the secret must be at least {needed} bytes long for {', '.join(hmac)}"
                )
        else:
            if self.secret:
                raise JwtSettingsError("secret", f"{self.algorithms[0]} uses a public key, not a secret")
            if not self.public_key:
                raise JwtSettingsError("public_key", f"{self.algorithms[0]} needs a public key (PEM)")
        if self.leeway < 0:
            raise JwtSettingsError("leeway", "leeway must be zero or more seconds")
        if self.builtin_roles_issuers and self.issuer is None:
            raise JwtSettingsError(
                "builtin_roles_issuers",
                "set auth.jwt.issuer too: built-in roles are only taken from tokens whose issuer is verified",
            )
        for issuer in self.builtin_roles_issuers:
            if issuer != self.issuer:
                raise JwtSettingsError(
                    "builtin_roles_issuers",
                    f"{issuer!r} is not the issuer this gateway verifies ({self.issuer!r}); "
                    "list only auth.jwt.issuer here",
                )


class JwtVerifier:
    def __init__(self, settings: JwtSettings) -> None:
        self.settings = settings
        self._key = _prepare_key(settings)

    def verify(self, token: str) -> Identity:
        """The identity a valid token carries; InvalidTokenError or ExpiredTokenError otherwise."""
        settings = self.settings
        required = ["sub", "exp"]
        if settings.issuer is not None:
            required.append("iss")
        if settings.audience:
            required.append("aud")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=list(settings.algorithms),
                issuer=settings.issuer,
                audience=list(settings.audience) or None,
                leeway=settings.leeway,
                options={"require": required},
            )
        except jwt.ExpiredSignatureError as exc:
            raise ExpiredTokenError("the token has expired") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidTokenError(f"invalid token: {exc}") from exc
        except jwt.PyJWTError as exc:
            raise InvalidTokenError("invalid token") from exc
        return identity_from_claims(claims, builtin_roles_issuers=settings.builtin_roles_issuers)


def _prepare_key(settings: JwtSettings) -> Any:
    if settings.secret:
        return settings.secret.encode()
    algorithms = get_default_algorithms()
    key: Any = None
    for name in settings.algorithms:
        try:
            key = algorithms[name].prepare_key(settings.public_key)
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise JwtSettingsError("public_key", f"the public key cannot verify {name} tokens: {exc}") from exc
    if isinstance(key, _PRIVATE_KEY_TYPES):
        raise JwtSettingsError("public_key", "this is a private key; configure the public key only")
    return key


def identity_from_claims(claims: Mapping[str, Any], *, builtin_roles_issuers: tuple[str, ...] = ()) -> Identity:
    """``sub`` is the id, ``tenant_id`` the tenant, ``roles`` the roles; the rest are attributes.

    Roles of the built-in namespace are accepted only from ``builtin_roles_issuers``, and only
    spelt exactly as a built-in role. Otherwise the token is refused rather than stripped of
    them: a token claiming powers it cannot have is forged or its issuer misconfigured, and
    either way nothing it says should be trusted (nor should its meaning change by endpoint).
    """
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise InvalidTokenError("invalid token: the sub claim must be a non-empty string")
    tenant_id = claims.get("tenant_id")
    if tenant_id is not None and not isinstance(tenant_id, str):
        raise InvalidTokenError("invalid token: the tenant_id claim must be a string")
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise InvalidTokenError("invalid token: the roles claim must be a list of strings")
    reserved = [role for role in roles if is_reserved_role(role)]
    if reserved:
        if claims.get("iss") not in builtin_roles_issuers:
            raise InvalidTokenError(
                f"invalid token: the role {reserved[0][:64]!r} is built in (pm:*) and is granted by API "
                "keys only; to let this token's issuer grant it, list the issuer in "
                "auth.jwt.builtin_roles_issuers"
            )
        unknown = [role for role in reserved if role not in BUILTIN_ROLES]
        if unknown:
            raise InvalidTokenError(
                f"invalid token: {unknown[0][:64]!r} is not a built-in role; they are {', '.join(sorted(BUILTIN_ROLES))}"
            )
    attributes = {name: value for name, value in claims.items() if name not in _IDENTITY_CLAIMS}
    return Identity(id=sub, tenant_id=tenant_id, roles=roles, attributes=attributes)
