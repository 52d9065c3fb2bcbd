"""JSON in and out, with MongoDB types as Extended JSON (``{"$oid": ...}``, ``{"$date": ...}``).

Parsing is stricter than ``json.loads``: duplicate keys and the non-standard ``NaN`` and
``Infinity`` literals are refused, since what a duplicate key means depends on the parser.
Output is relaxed Extended JSON: plain numbers where JSON can hold them.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
import datetime
from datetime import UTC
from typing import Any

import orjson
from bson import ObjectId, json_util
from bson.binary import UuidRepresentation
from bson.errors import BSONError
from starlette.responses import Response

from .errors import DocumentTooDeepError, MalformedJsonError

__all__ = ["ExtendedJSONResponse", "dumps", "parse_extended_json"]

_PARSE_OPTIONS = json_util.JSONOptions(
    json_mode=json_util.JSONMode.RELAXED,
    tz_aware=True,
    tzinfo=UTC,
    uuid_representation=UuidRepresentation.STANDARD,
)
_DUMP_OPTIONS = json_util.JSONOptions(
    json_mode=json_util.JSONMode.RELAXED,
    uuid_representation=UuidRepresentation.STANDARD,
)


class _DuplicateKeyError(ValueError):
    pass


def _object_from_pairs(pairs: Sequence[tuple[str, Any]]) -> Any:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKeyError(f"duplicate key {key!r} in an object")
        seen.add(key)
    if "$regex" in seen and not seen <= _LEGACY_REGEX:
        # A query operator object ({"$regex": "^a", "$ne": "ab"}): json_util would read it as
        # a bare regular expression and drop the other operators without a word.
        return dict(pairs)
    if "$binary" in seen and len(seen) > 1 and not seen <= _LEGACY_BINARY:
        raise ValueError(f"$binary takes $type beside it and nothing else; got {sorted(seen - _LEGACY_BINARY)}")
    return json_util.object_pairs_hook(pairs, _PARSE_OPTIONS)


# Extended JSON's legacy forms, which json_util reads from these keys and ignores any other.
_LEGACY_REGEX = frozenset({"$regex", "$options"})
_LEGACY_BINARY = frozenset({"$binary", "$type"})


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON; send {{\"$numberDouble\": \"{name}\"}}")


_INT64 = range(-(2**63), 2**63)


def _int64(text: str) -> int:
    value = int(text)
    if value not in _INT64:
        raise MalformedJsonError(
            f"the number {text[:40]} does not fit in 64 bits, MongoDB's largest integer; "
            'send it as a string or as {"$numberDecimal": "..."}',
            details={"number": text[:40]},
        )
    return value


def parse_extended_json(text: str) -> Any:
    try:
        return json.loads(
            text, object_pairs_hook=_object_from_pairs, parse_constant=_refuse_constant, parse_int=_int64
        )
    except json.JSONDecodeError as exc:
        raise MalformedJsonError(
            f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            details={"line": exc.lineno, "column": exc.colno},
        ) from exc
    except _DuplicateKeyError as exc:
        raise MalformedJsonError(str(exc)) from exc
    except RecursionError as exc:
        raise MalformedJsonError("the JSON is nested too deeply") from exc
    except (BSONError, ValueError, TypeError, KeyError, ArithmeticError) as exc:
        # json_util raises these for Extended JSON values it cannot convert (ArithmeticError:
        # OverflowError, and decimal's for a $numberDecimal that is not one or needs more than
        # Decimal128's 34 digits).
        raise MalformedJsonError(f"invalid Extended JSON value: {exc}") from exc


def _bson_default(value: Any) -> Any:
    # The two types every document holds, written as json_util writes them; the rest by it.
    kind = type(value)
    if kind is ObjectId:
        return {"$oid": str(value)}
    if kind is datetime.datetime and 1970 <= value.year <= 9999 and (value.tzinfo is None or value.tzinfo is UTC):
        # isoformat(timespec="milliseconds" or "seconds") with a Z, formatted directly: twice
        # as fast, and a find answer holds two of these per document.
        milliseconds = value.microsecond // 1000
        if milliseconds:
            return {"$date": _DATE_MILLISECONDS % (
                value.year, value.month, value.day, value.hour, value.minute, value.second, milliseconds
            )}
        return {"$date": _DATE_SECONDS % (value.year, value.month, value.day, value.hour, value.minute, value.second)}
    return json_util.default(value, json_options=_DUMP_OPTIONS)


_DATE_SECONDS = "%04d-%02d-%02dT%02d:%02d:%02dZ"
_DATE_MILLISECONDS = "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ"
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME


def _needs_json_util(value: Any) -> bool:
    """Whether a value orjson would write differently is inside: NaN and infinities (it
    writes null) and UUIDs (it writes a plain string)."""
    kind = type(value)
    if kind is dict:
        items: Any = value.values()
    elif kind is list or kind is tuple:
        items = value
    elif kind is float:
        return not math.isfinite(value)
    else:
        return kind is uuid.UUID
    # A plain loop, not any() over a generator: this walks every value of every answer.
    for item in items:
        if type(item) in _CHECKED and _needs_json_util(item):
            return True
    return False


_CHECKED = frozenset({float, dict, list, tuple, uuid.UUID})


def dumps(content: Any) -> bytes:
    """Relaxed Extended JSON, compact. orjson writes it (bson types through json_util's own
    conversion), about five times faster than json_util.dumps; what orjson cannot write
    exactly (NaN, infinities, UUIDs, non-string keys, huge integers) goes to json_util."""
    try:
        if not _needs_json_util(content):
            try:
                return orjson.dumps(content, default=_bson_default, option=_ORJSON_OPTIONS)
            except TypeError:
                pass  # also orjson's own limit of depth: json_util goes further
        return json_util.dumps(content, json_options=_DUMP_OPTIONS, separators=(",", ":")).encode()
    except RecursionError:
        raise DocumentTooDeepError(
            "the answer holds a document nested too deeply to be written as JSON; it was stored "
            "directly in the database (the gateway writes none deeper than limits.max_document_depth): "
            "reduce it there, or leave it out with a filter"
        ) from None


class ExtendedJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)
