"""``/v1/admin/api-keys``: create (the key is shown once), list (never keys or hashes), revoke."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from ...policy import Identity
from ...policy._update import nesting_depth
from ...store import ApiKeyRecord
from .._dependencies import AdminIdentity, ServicesDep, documented_body, json_body
from .._json import ExtendedJSONResponse, dumps
from ..errors import DocumentTooDeepError, RequestValidationError

router = APIRouter(prefix="/v1/admin/api-keys", tags=["admin"])
logger = logging.getLogger("permission_mongo.server")


class IdentityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=256)
    tenant_id: str | None = Field(default=None, min_length=1, max_length=256)
    roles: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("attributes")
    @classmethod
    def _plain_attribute_names(cls, attributes: dict[str, Any]) -> dict[str, Any]:
        # Conditions read ``user.attributes.NAME``; names MongoDB would treat specially are refused.
        for name in attributes:
            if not name or name.startswith("$") or "." in name:
                raise ValueError(f"attribute name {name!r} must be non-empty, without '.' or a leading '$'")
        return attributes

    def to_identity(self) -> Identity:
        return Identity(id=self.id, tenant_id=self.tenant_id, roles=self.roles, attributes=self.attributes)


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identity: IdentityIn
    name: str | None = Field(default=None, max_length=200)
    expires_at: AwareDatetime | None = None

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, expires_at: datetime | None) -> datetime | None:
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise ValueError("expires_at must be in the future")
        return expires_at


def api_key_view(record: ApiKeyRecord) -> dict[str, Any]:
    """What callers may see of a key: never the key, never its hash."""
    return {
        "id": record.id,
        "name": record.name,
        "identity": dict(record.identity),
        "created_at": record.created_at,
        "created_by": record.created_by,
        "expires_at": record.expires_at,
        "revoked": record.revoked_at is not None,
        "revoked_at": record.revoked_at,
    }


def _check_stored_depth(identity: IdentityIn, max_depth: int) -> None:
    """422 if the key's record would nest deeper than ``limits.max_document_depth``, the bound
    of every document the gateway stores (the record, its identity, the attributes' own levels)."""
    depth = 1 + nesting_depth(identity.model_dump())
    if depth > max_depth:
        raise RequestValidationError.listing([{
            "field": "identity.attributes",
            "message": f"the API key would be stored nesting {depth} levels of documents and arrays; "
            f"at most {max_depth} (limits.max_document_depth)",
        }])


@router.post("", status_code=201, summary="Create an API key", openapi_extra=documented_body(ApiKeyCreate))
async def create_api_key(
    admin: AdminIdentity,
    body: Annotated[ApiKeyCreate, Depends(json_body(ApiKeyCreate))],
    services: ServicesDep,
) -> ExtendedJSONResponse:
    _check_stored_depth(body.identity, services.settings.limits.max_document_depth)
    record, key = await services.api_keys.create(
        body.identity.to_identity(), name=body.name, expires_at=body.expires_at, created_by=admin.id
    )
    return ExtendedJSONResponse({**api_key_view(record), "key": key}, status_code=201)


def _answerable(view: Mapping[str, Any]) -> bool:
    try:
        dumps(view)
    except DocumentTooDeepError:
        return False
    return True


@router.get(
    "",
    summary="List API keys (without the keys)",
    description="`data` holds the keys; `unreadable` the ids of stored keys that cannot be read or answered "
    "(written directly in the database, nested too deeply): fix or delete them there.",
)
async def list_api_keys(_: AdminIdentity, services: ServicesDep) -> ExtendedJSONResponse:
    listing = await services.api_keys.list()
    views, unreadable = [], list(listing.unreadable)
    for record in listing.records:
        view = api_key_view(record)
        if _answerable(view):
            views.append(view)
        else:
            # One such key must not make the listing fail for every admin.
            logger.warning("API key %s nests too deeply to be answered as JSON; it was written directly in the database", record.id)
            unreadable.append(record.id)
    return ExtendedJSONResponse({"data": views, "unreadable": unreadable})


@router.delete("/{key_id}", summary="Revoke an API key")
async def revoke_api_key(key_id: str, _: AdminIdentity, services: ServicesDep) -> ExtendedJSONResponse:
    record = await services.api_keys.revoke(key_id)
    return ExtendedJSONResponse(api_key_view(record))
