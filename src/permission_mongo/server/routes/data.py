"""``/v1/data/{collection}``: create, read, update, delete, find and count documents, and the
batch forms of create, update and delete (``/batch``, registered before ``/{document_id}``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from .._batch import Selection
from .._data import FindQuery
from .._dependencies import CurrentIdentity, ServicesDep, documented_body, json_body, read_json, validate
from .._idempotency import IdempotentWriteRoute, idempotent_create, idempotent_write, keyed_request
from .._json import ExtendedJSONResponse, parse_extended_json
from .._services import Services
from ..errors import BadRequestError

router = APIRouter(prefix="/v1/data/{collection}", tags=["data"], route_class=IdempotentWriteRoute)


class FindBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: dict[str, Any] = Field(default_factory=dict)
    sort: list[str] | None = None
    fields: list[str] | None = None
    limit: int | None = None
    cursor: str | None = None

    def query(self) -> FindQuery:
        return FindQuery(self.filter, self.sort, self.fields, self.limit, self.cursor)


class CountBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: dict[str, Any] = Field(default_factory=dict)


class BatchCreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[Any]


class BatchSelectionBody(BaseModel):
    """Exactly one of ``ids`` and ``filter``; an empty filter needs ``"all": true``."""

    model_config = ConfigDict(extra="forbid")

    ids: list[Any] | None = None
    filter: dict[str, Any] | None = None
    all: StrictBool = False

    def selection(self) -> Selection:
        return Selection(self.ids, self.filter, self.all)


class BatchUpdateBody(BatchSelectionBody):
    update: Any


async def any_json(request: Request, services: ServicesDep) -> Any:
    return await read_json(request, services.settings.limits.max_body_bytes)


JsonBody = Annotated[Any, Depends(any_json)]
_OBJECT_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}
_QUERY_PARAMETERS = frozenset({"filter", "sort", "fields", "limit", "cursor"})


def bounded_response(services: Services, content: Any) -> ExtendedJSONResponse:
    """An answer of many documents, refused if its JSON passes ``limits.max_response_bytes`` (the
    store has bounded the documents read by the same number, counted as BSON)."""
    response = ExtendedJSONResponse(content)
    services.settings.limits.response_size().check(len(response.body))
    return response


def _listing(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


async def find_query_parameters(request: Request) -> FindQuery:
    """``GET /``: ``filter`` (Extended JSON), ``sort=name,-created_at``, ``fields=a,b``, ``limit``, ``cursor``."""
    params = request.query_params
    unknown = sorted(set(params) - _QUERY_PARAMETERS)
    if unknown:
        raise BadRequestError(
            f"unknown query parameter {unknown[0]!r}; use {', '.join(sorted(_QUERY_PARAMETERS))}",
            details={"parameter": unknown[0]},
        )
    filter_text = params.get("filter")
    body = {
        "filter": {} if filter_text is None else parse_extended_json(filter_text),
        "sort": _listing(params.get("sort")),
        "fields": _listing(params.get("fields")),
        "limit": params.get("limit"),
        "cursor": params.get("cursor"),
    }
    return validate(FindBody, body).query()


@router.post("", status_code=201, summary="Create a document", openapi_extra=_OBJECT_BODY)
@idempotent_create
async def create(
    collection: str, request: Request, identity: CurrentIdentity, services: ServicesDep, body: JsonBody
) -> ExtendedJSONResponse:
    created = await services.data.create(identity, collection, body, keyed=keyed_request(request))
    return ExtendedJSONResponse(created, status_code=201)


@router.get("", summary="Find documents (query parameters)")
async def find_by_query(
    collection: str, identity: CurrentIdentity, services: ServicesDep, query: Annotated[FindQuery, Depends(find_query_parameters)]
) -> ExtendedJSONResponse:
    return bounded_response(services, await services.data.find(identity, collection, query))


@router.post("/find", summary="Find documents", openapi_extra=documented_body(FindBody))
async def find(
    collection: str, identity: CurrentIdentity, services: ServicesDep, body: Annotated[FindBody, Depends(json_body(FindBody))]
) -> ExtendedJSONResponse:
    return bounded_response(services, await services.data.find(identity, collection, body.query()))


@router.post("/count", summary="Count documents", openapi_extra=documented_body(CountBody))
async def count(
    collection: str, identity: CurrentIdentity, services: ServicesDep, body: Annotated[CountBody, Depends(json_body(CountBody))]
) -> ExtendedJSONResponse:
    return ExtendedJSONResponse({"count": await services.data.count(identity, collection, body.filter)})


@router.post(
    "/batch",
    summary="Create documents (each checked as one create; every item reported)",
    openapi_extra=documented_body(BatchCreateBody),
)
@idempotent_create
async def batch_create(
    collection: str,
    request: Request,
    identity: CurrentIdentity,
    services: ServicesDep,
    body: Annotated[BatchCreateBody, Depends(json_body(BatchCreateBody))],
) -> ExtendedJSONResponse:
    result = await services.data.batch_create(identity, collection, body.documents, keyed=keyed_request(request))
    return ExtendedJSONResponse(result.body())


@router.patch(
    "/batch",
    summary="Update the documents given by ids or filter (those the caller may update)",
    openapi_extra=documented_body(BatchUpdateBody),
)
@idempotent_write
async def batch_update(
    collection: str,
    identity: CurrentIdentity,
    services: ServicesDep,
    body: Annotated[BatchUpdateBody, Depends(json_body(BatchUpdateBody))],
) -> ExtendedJSONResponse:
    result = await services.data.batch_update(identity, collection, body.selection(), body.update)
    return ExtendedJSONResponse(result.body())


@router.delete(
    "/batch",
    summary="Delete the documents given by ids or filter (those the caller may delete)",
    openapi_extra=documented_body(BatchSelectionBody),
)
@idempotent_write
async def batch_delete(
    collection: str,
    identity: CurrentIdentity,
    services: ServicesDep,
    body: Annotated[BatchSelectionBody, Depends(json_body(BatchSelectionBody))],
) -> ExtendedJSONResponse:
    return ExtendedJSONResponse({"deleted": await services.data.batch_delete(identity, collection, body.selection())})


@router.get("/{document_id}", summary="Read a document")
async def get(collection: str, document_id: str, identity: CurrentIdentity, services: ServicesDep) -> ExtendedJSONResponse:
    return ExtendedJSONResponse(await services.data.get(identity, collection, document_id))


@router.patch("/{document_id}", summary="Update a document (fields to set, or update operators)", openapi_extra=_OBJECT_BODY)
@idempotent_write
async def update(
    collection: str, document_id: str, identity: CurrentIdentity, services: ServicesDep, body: JsonBody
) -> ExtendedJSONResponse:
    return ExtendedJSONResponse(await services.data.update(identity, collection, document_id, body))


@router.delete("/{document_id}", summary="Delete a document")
@idempotent_write
async def delete(collection: str, document_id: str, identity: CurrentIdentity, services: ServicesDep) -> ExtendedJSONResponse:
    return ExtendedJSONResponse(await services.data.delete(identity, collection, document_id))
