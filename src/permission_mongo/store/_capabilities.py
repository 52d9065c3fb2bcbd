"""What the connected server really does, where servers differ in ways enforcement relies on."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

__all__ = ["PROBE_COLLECTION", "graph_lookup_enforced"]

PROBE_COLLECTION = "_pm_probe"


async def graph_lookup_enforced(database: AsyncDatabase[dict[str, Any]]) -> bool:
    """Whether ``$graphLookup`` applies ``restrictSearchWithMatch`` (some servers ignore it,
    and then a caller's read filter cannot be enforced inside the search)."""
    probe = database[PROBE_COLLECTION]
    await probe.delete_many({})
    await probe.insert_many([{"_id": 1, "to": 2}, {"_id": 2, "to": None, "hidden": True}])
    try:
        cursor = await probe.aggregate([
            {"$match": {"_id": 1}},
            {"$graphLookup": {
                "from": PROBE_COLLECTION, "startWith": "$to", "connectFromField": "to",
                "connectToField": "_id", "as": "found",
                "restrictSearchWithMatch": {"hidden": {"$ne": True}},
            }},
        ])
        found = await cursor.to_list()
    finally:
        await probe.drop()
    return bool(found) and found[0].get("found") == []
