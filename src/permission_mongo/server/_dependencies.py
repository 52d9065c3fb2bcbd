"""FastAPI dependencies: the services, the caller's identity, and JSON bodies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import pydantic
from fastapi import Depends, Request, Security
from fastapi.security import HTTPBearer

from ..auth import ADMIN_ROLE, is_admin
from ..policy import Identity
from ._json import parse_extended_json
from ._services import Services
from .errors import ForbiddenError, MalformedJsonError, PayloadTooLargeError, RequestValidationError, UnsupportedMediaTypeError

__all__ = ["AdminIdentity", "CurrentIdentity", "ServicesDep", "documented_body", "json_body", "read_json"]

M = TypeVar("M", bound=pydantic.BaseModel)


async def get_services(request: Request) -> Services:
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, a costly hop per request.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


class _BearerIdentity(HTTPBearer):
    """The caller's identity, as one dependency: it documents the bearer scheme in OpenAPI
    (as ``HTTPBearer``) and authenticates the ``Authorization`` header itself. (A chain of
    services, scheme and identity dependencies cost FastAPI a resolution step each, on every
    request.)"""

    async def __call__(self, request: Request) -> Identity:  # type: ignore[override]
        # The idempotency middleware may have authenticated this request already.
        known: Identity | None = getattr(request.state, "identity", None)
        if known is not None:
            return known
        services: Services = request.app.state.services
        authenticated = await services.authenticator.authenticate(request.headers.get("authorization"))
        return authenticated.identity


current_identity = _BearerIdentity(auto_error=False, description="An API key (pm_...) or a JWT", scheme_name="HTTPBearer")

CurrentIdentity = Annotated[Identity, Security(current_identity)]


async def admin_identity(identity: CurrentIdentity) -> Identity:
    if not is_admin(identity):
        raise ForbiddenError(f"the management API needs the {ADMIN_ROLE} role")
    return identity


AdminIdentity = Annotated[Identity, Depends(admin_identity)]


def _is_json_media_type(content_type: str) -> bool:
    media_type, _, parameters = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type != "application/json" and not (media_type.startswith("application/") and media_type.endswith("+json")):
        return False
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


async def read_json(request: Request, max_bytes: int) -> Any:
    """The body as Extended JSON: a JSON content type, at most ``max_bytes``, UTF-8."""
    content_type = request.headers.get("content-type", "")
    if not _is_json_media_type(content_type):
        raise UnsupportedMediaTypeError(
            "send the body as JSON with Content-Type: application/json",
            details={"content_type": content_type[:100] or None},
        )
    too_large = PayloadTooLargeError(
        f"the request body is larger than the limit of {max_bytes} bytes", details={"max_bytes": max_bytes}
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise MalformedJsonError("the request body is empty; send a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJsonError("the request body is not valid UTF-8") from exc
    return parse_extended_json(text)


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = [
            {"field": ".".join(str(part) for part in e["loc"]) or "body", "message": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise RequestValidationError.listing(problems) from exc


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency reading the body as Extended JSON and validating it against ``model``."""

    async def parse_body(request: Request) -> M:
        services: Services = request.app.state.services
        return validate(model, await read_json(request, services.settings.limits.max_body_bytes))

    return parse_body


def documented_body(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` describing a body that ``json_body`` reads (FastAPI cannot see it)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inlined(model.model_json_schema())}},
        }
    }


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with its ``$defs`` references replaced by the definitions: inside an OpenAPI
    document, ``#/$defs/...`` would point at the document's root, where nothing is."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/"):
                return resolve(definitions[reference.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)
