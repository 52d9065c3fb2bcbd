"""``GET /v1/whoami``: the identity the gateway resolved for the caller's credentials.

It is what every policy condition sees as ``user``, so it answers "why was I denied?".
"""

from __future__ import annotations

from fastapi import APIRouter

from .._dependencies import CurrentIdentity
from .._json import ExtendedJSONResponse

router = APIRouter(tags=["identity"])


@router.get("/v1/whoami", summary="The caller's identity, as policies see it")
async def whoami(identity: CurrentIdentity) -> ExtendedJSONResponse:
    return ExtendedJSONResponse(
        {
            "id": identity.id,
            "tenant_id": identity.tenant_id,
            "roles": list(identity.roles),
            "attributes": dict(identity.attributes),
            "subordinates": list(identity.subordinates),
            "direct_reports": list(identity.direct_reports),
            "ancestors": list(identity.ancestors),
        }
    )
