"""JSON on the wire, as MongoDB Extended JSON (relaxed mode).

Users write documents and filters with ``ObjectId``, ``datetime``, ``Decimal128``... as they do
with pymongo; those travel as ``{"$oid": ...}``, ``{"$date": ...}`` and come back as the same
bson types. Datetimes come back naive, in UTC, as pymongo's ``MongoClient`` returns them by
default; naive datetimes sent are taken as UTC, as pymongo does.
"""

from __future__ import annotations

from typing import Any

from bson import json_util

_OPTIONS = json_util.JSONOptions(json_mode=json_util.JSONMode.RELAXED, tz_aware=False)


def dumps(value: Any) -> bytes:
    """Encode a request body. Raises ``TypeError`` for values with no Extended JSON form."""
    return json_util.dumps(value, json_options=_OPTIONS).encode("utf-8")


def loads(data: bytes | str) -> Any:
    """Decode a response body; raises ``ValueError`` when it is not JSON."""
    return json_util.loads(data, json_options=_OPTIONS)
