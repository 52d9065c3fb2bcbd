"""``POST /v1/data/{collection}/aggregate``."""

from __future__ import annotations

from fastapi import APIRouter

from .._dependencies import CurrentIdentity, ServicesDep
from .._json import ExtendedJSONResponse
from .data import JsonBody, bounded_response

router = APIRouter(prefix="/v1/data/{collection}", tags=["data"])

_PIPELINE_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["pipeline"], "additionalProperties": False,
    "properties": {"pipeline": {"type": "array", "items": {"type": "object"}}},
}}}}}


@router.post("/aggregate", summary="Run an aggregation pipeline", openapi_extra=_PIPELINE_BODY)
async def aggregate(collection: str, identity: CurrentIdentity, services: ServicesDep, body: JsonBody) -> ExtendedJSONResponse:
    return bounded_response(services, await services.aggregator.aggregate(identity, collection, body))
