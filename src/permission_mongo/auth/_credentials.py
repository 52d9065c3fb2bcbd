"""Who authenticated, and with what: the identity and the credential that proved it."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bson import json_util

from ..policy import Identity

__all__ = ["ADMIN_KEY_CREDENTIAL", "JWT_CREDENTIAL", "Authenticated", "api_key_credential"]

ADMIN_KEY_CREDENTIAL = "admin-key"
JWT_CREDENTIAL = "jwt"
_CANONICAL = json_util.JSONOptions(json_mode=json_util.JSONMode.CANONICAL, tz_aware=True)


def api_key_credential(key_id: str) -> str:
    return f"api-key:{key_id}"


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


@dataclass(frozen=True)
class Authenticated:
    identity: Identity
    credential: str  # which kind of credential, and which one for API keys

    def fingerprint(self) -> str:
        """A hash of everything that decides what this caller may do: the credential and every
        field of the identity (roles, attributes, every claim of a token, the hierarchy...).
        Two requests with the same fingerprint are decided alike; any difference changes it."""
        fields = {field.name: _plain(getattr(self.identity, field.name)) for field in dataclasses.fields(self.identity)}
        text = json_util.dumps({"credential": self.credential, "identity": fields}, sort_keys=True, json_options=_CANONICAL)
        return hashlib.sha256(text.encode()).hexdigest()
