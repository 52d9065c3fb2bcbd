"""``POST /v1/data/{collection}/aggregate``: a caller's pipeline, rewritten by the policy.

The policy package's rewriter does the enforcement (the read filter and the field view at
every place a collection enters, allow-listed stages and operators, fields named only where
the caller may filter on them); this runs the result under the server's limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..policy import COLLATION, Identity, PipelineLimits, Policy, UnknownCollectionError, rewrite_pipeline
from ..store import Store
from ._settings import LimitSettings
from .errors import BadRequestError, RequestValidationError, ServiceUnavailableError

__all__ = ["Aggregator"]


def _mentions(value: Any, operator: str) -> bool:
    # A loop, not recursion: this runs before the rewriter bounds the pipeline's depth.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, Mapping):
            if operator in item:
                return True
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


class Aggregator:
    def __init__(self, policy: Policy | None, store: Store, limits: LimitSettings) -> None:
        self.policy = policy
        self.store = store
        self.limits = limits

    async def aggregate(self, identity: Identity, collection: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, Mapping) or set(body) != {"pipeline"}:
            raise RequestValidationError.listing(
                [{"field": "body", "message": 'send {"pipeline": [stage, ...]} and nothing else'}]
            )
        if self.policy is None:
            raise UnknownCollectionError(collection)
        pipeline = body["pipeline"]
        limits = PipelineLimits(
            max_stages=self.limits.max_pipeline_stages, graph_lookup=await self._graph_lookup_enforced(pipeline)
        )
        rewritten = rewrite_pipeline(self.policy, identity, collection, pipeline, limits)
        most = self.limits.max_aggregate_results
        found = await self.store.documents(collection).aggregate(
            rewritten,
            collation=COLLATION,
            time_limit=self.limits.aggregate_time(),
            max_bytes=self.limits.response_size(),
            limit=most + 1,
        )
        if len(found) > most:
            raise BadRequestError(
                f"the pipeline returns more than {most} documents; add a $limit or narrow its $match",
                details={"limit": most},
            )
        return {"data": found}

    async def _graph_lookup_enforced(self, pipeline: Any) -> bool:
        """Whether this database lets $graphLookup be enforced: decided at start-up; if that
        probe proved nothing, probed again here (once for all waiting requests), and refused
        with a 503 while still unproven. A pipeline without the stage never waits for it."""
        capability = self.store.capabilities.graph_lookup
        if not _mentions(pipeline, "$graphLookup"):
            return capability.known is True
        enforced = await capability.answer()
        if enforced is None:
            raise ServiceUnavailableError(
                "$graphLookup is unavailable for now: the gateway could not yet determine whether "
                "this database applies restrictSearchWithMatch, which enforcing the caller's read "
                "rules inside the search depends on; retry later",
                details={"stage": "$graphLookup"},
            )
        return enforced
