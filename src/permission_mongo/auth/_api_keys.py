"""API keys: ``pm_`` followed by 32 random bytes (url-safe base64), stored as a SHA-256 hash.

A key has 256 bits of entropy, so a fast hash is enough and lets the key be found by an
index lookup on its hash: the database never sees the key, and nothing compares a
caller-controlled prefix. Keys are never logged; only their ids and names are.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..policy import Identity
from ..store import ApiKeyListing, ApiKeyRecord, ApiKeyStore
from ._credentials import ADMIN_KEY_CREDENTIAL, Authenticated, api_key_credential
from ._errors import ExpiredTokenError, InvalidTokenError, UnknownApiKeyError, UnknownRoleError
from ._roles import ADMIN_ROLE, BUILTIN_ROLES

__all__ = [
    "API_KEY_PREFIX",
    "ApiKeys",
    "generate_api_key",
    "hash_api_key",
    "identity_to_record",
    "is_admin",
    "is_well_formed_api_key",
]

API_KEY_PREFIX = "pm_"
_ADMIN_IDENTITY = Identity(id=ADMIN_ROLE, tenant_id=None, roles=[ADMIN_ROLE])
_KEY_BYTES = 32
# What a key looks like: the prefix and at least 32 characters of url-safe base64.
_KEY_SHAPE = re.compile(r"pm_[A-Za-z0-9_-]{32,256}")
_CACHE_LIMIT = 10_000


def generate_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(_KEY_BYTES)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def is_well_formed_api_key(key: str) -> bool:
    return _KEY_SHAPE.fullmatch(key) is not None


def is_admin(identity: Identity) -> bool:
    return ADMIN_ROLE in identity.roles


def identity_to_record(identity: Identity) -> dict[str, Any]:
    return {
        "id": identity.id,
        "tenant_id": identity.tenant_id,
        "roles": list(identity.roles),
        "attributes": dict(identity.attributes),
    }


def _identity_from_record(record: Mapping[str, Any]) -> Identity:
    return Identity(
        id=record.get("id"),
        tenant_id=record.get("tenant_id"),
        roles=record.get("roles") or [],
        attributes=record.get("attributes") or {},
    )


@dataclass(frozen=True)
class _CachedKey:
    key_id: str
    identity: Identity
    expires_at: datetime | None
    cached_at: float


class ApiKeys:
    """Creates, lists, revokes and authenticates API keys, and knows the bootstrap admin key.

    Successful lookups are cached for ``cache_seconds`` (never failures, so a key created by
    another gateway process works at once). A revocation drops the key from this process's
    cache immediately; other processes notice within ``cache_seconds``. With ``known_roles``,
    a key may only carry those roles (and the built-in roles).
    """

    def __init__(
        self,
        store: ApiKeyStore,
        *,
        admin_key: str | None = None,
        cache_seconds: float = 5.0,
        known_roles: Collection[str] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._admin_key_hash = hash_api_key(admin_key) if admin_key else None
        self._cache_seconds = cache_seconds
        self._known_roles = None if known_roles is None else frozenset(known_roles) | BUILTIN_ROLES
        self._cache: dict[str, _CachedKey] = {}
        self._monotonic = monotonic
        self._now = now

    async def create(
        self,
        identity: Identity,
        *,
        name: str | None = None,
        expires_at: datetime | None = None,
        created_by: str | None = None,
    ) -> tuple[ApiKeyRecord, str]:
        """Store a new key for ``identity``; return its record and the key, which is shown once."""
        self._check_roles(identity.roles)
        key = generate_api_key()
        record = await self._store.insert(
            key_hash=hash_api_key(key),
            identity=identity_to_record(identity),
            name=name,
            created_at=self._now(),
            expires_at=expires_at,
            created_by=created_by,
        )
        return record, key

    def _check_roles(self, roles: Collection[str]) -> None:
        if self._known_roles is None:
            return
        unknown = [role for role in roles if role not in self._known_roles]
        if unknown:
            known = sorted(self._known_roles)
            raise UnknownRoleError(
                f"unknown role {unknown[0]!r}; the policy defines: {', '.join(known)}",
                details={"unknown": unknown, "known": known},
            )

    async def list(self) -> ApiKeyListing:
        return await self._store.list()

    async def revoke(self, key_id: str) -> ApiKeyRecord:
        record = await self._store.revoke(key_id, at=self._now())
        if record is None:
            raise UnknownApiKeyError(f"no API key has the id {key_id!r}", details={"id": key_id})
        self._forget(key_id)
        return record

    async def authenticate(self, key: str) -> Authenticated:
        if not is_well_formed_api_key(key):
            raise InvalidTokenError("invalid API key")
        key_hash = hash_api_key(key)
        if self._admin_key_hash is not None and hmac.compare_digest(key_hash, self._admin_key_hash):
            return Authenticated(_ADMIN_IDENTITY, ADMIN_KEY_CREDENTIAL)
        cached = self._cached(key_hash)
        if cached is None:
            record = await self._store.find_by_hash(key_hash)
            # The lookup was by this hash; comparing again keeps any comparison constant-time.
            if record is None or not hmac.compare_digest(record.key_hash, key_hash):
                raise InvalidTokenError("invalid API key")
            if record.revoked_at is not None:
                raise InvalidTokenError("this API key has been revoked")
            cached = _CachedKey(record.id, _identity_from_record(record.identity), record.expires_at, self._monotonic())
            self._remember(key_hash, cached)
        if cached.expires_at is not None and cached.expires_at <= self._now():
            raise ExpiredTokenError("this API key has expired")
        return Authenticated(cached.identity, api_key_credential(cached.key_id))

    def _cached(self, key_hash: str) -> _CachedKey | None:
        cached = self._cache.get(key_hash)
        if cached is not None and self._monotonic() - cached.cached_at >= self._cache_seconds:
            del self._cache[key_hash]
            return None
        return cached

    def _remember(self, key_hash: str, entry: _CachedKey) -> None:
        if self._cache_seconds <= 0:
            return
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key_hash] = entry

    def _forget(self, key_id: str) -> None:
        for key_hash in [h for h, entry in self._cache.items() if entry.key_id == key_id]:
            del self._cache[key_hash]
