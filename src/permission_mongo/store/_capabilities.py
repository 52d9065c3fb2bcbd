"""What the connected server really does, where servers differ in ways enforcement relies on.

Each probe runs in a collection of its own (``_pm_probe_<random>``, dropped after), so probes
running at once, in one process or in several gateways sharing the database, cannot disturb
one another. Only a proven answer is kept: a probe that failed (the database was down, the
answer was not one of the two expected) leaves the capability unknown, callers refuse what
depends on it, and a later call probes again, one probe at a time.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pymongo.errors
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from ..policy import INTERNAL_COLLECTION_PREFIX

__all__ = ["PROBE_PREFIX", "Capabilities", "ProbeInconclusiveError", "ProvenOnce", "graph_lookup_enforced"]

PROBE_PREFIX = INTERNAL_COLLECTION_PREFIX + "probe_"
logger = logging.getLogger("permission_mongo.store")


class ProbeInconclusiveError(Exception):
    """The server answered a probe with neither of the answers that would prove something."""


async def graph_lookup_enforced(database: AsyncDatabase[dict[str, Any]]) -> bool:
    """Whether ``$graphLookup`` applies ``restrictSearchWithMatch`` (some servers ignore it,
    and then a caller's read filter cannot be enforced inside the search).

    True only if the search left out the one document the restriction excludes; False only if
    it found it; anything else raises ProbeInconclusiveError. Raises pymongo's errors as they
    come (the caller treats every failure alike: not proven)."""
    name = PROBE_PREFIX + secrets.token_hex(8)
    probe = database[name]
    try:
        await probe.insert_many([{"_id": 1, "to": 2}, {"_id": 2, "to": None, "hidden": True}])
    except pymongo.errors.ServerSelectionTimeoutError:
        raise  # nothing reached the server: nothing to drop
    except Exception:
        await _drop(probe)
        raise
    try:
        cursor = await probe.aggregate([
            {"$match": {"_id": 1}},
            {"$graphLookup": {
                "from": name, "startWith": "$to", "connectFromField": "to",
                "connectToField": "_id", "as": "found",
                "restrictSearchWithMatch": {"hidden": {"$ne": True}},
            }},
        ])
        found = await cursor.to_list()
    finally:
        await _drop(probe)
    reached = [doc.get("_id") for doc in found[0].get("found", ())] if len(found) == 1 else None
    if reached == []:
        return True
    if reached == [2]:
        return False
    raise ProbeInconclusiveError(f"$graphLookup probe answered {found!r}")


async def _drop(probe: AsyncCollection[dict[str, Any]]) -> None:
    try:
        await probe.drop()
    except Exception as exc:  # the answer stands; a leftover probe collection is harmless
        logger.warning("could not drop the probe collection %s: %s", probe.name, type(exc).__name__)


class ProvenOnce:
    """An answer computed by ``probe`` and kept once proven. Concurrent callers share one
    probe (single flight); a failed probe is not kept, so the next call probes again."""

    def __init__(self, name: str, probe: Callable[[], Awaitable[bool]]) -> None:
        self.name = name
        self._probe = probe
        self._proven: bool | None = None
        self._flight: asyncio.Future[bool | None] | None = None

    @property
    def known(self) -> bool | None:
        """The proven answer, or None if none is yet (without probing)."""
        return self._proven

    async def answer(self) -> bool | None:
        """The proven answer, probing if there is none yet; None if this probe failed."""
        if self._proven is not None:
            return self._proven
        if self._flight is None:
            self._flight = asyncio.ensure_future(self._run())
        # Shielded: a caller that gives up (client gone) does not cancel the others' probe.
        return await asyncio.shield(self._flight)

    async def _run(self) -> bool | None:
        try:
            value = await self._probe()
        except Exception as exc:  # every failure means the same: not proven, refuse for now
            logger.warning(
                "capability %s not determined (%s: %.200s); refusing what depends on it until a probe succeeds",
                self.name, type(exc).__name__, exc,
            )
            return None
        else:
            self._proven = value
            logger.info("capability %s: %s", self.name, value)
            return value
        finally:
            self._flight = None

    def cancel(self) -> None:
        """Stop a probe in flight (the process is stopping)."""
        if self._flight is not None:
            self._flight.cancel()


class Capabilities:
    """The server's capabilities the gateway depends on, for one database."""

    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self.graph_lookup = ProvenOnce(
            "$graphLookup restrictSearchWithMatch enforced", lambda: graph_lookup_enforced(database)
        )

    async def probe_all(self) -> None:
        """Decide every capability now (at start-up, before serving); never raises."""
        await asyncio.gather(self.graph_lookup.answer())

    def cancel(self) -> None:
        self.graph_lookup.cancel()
