"""Page cursors: opaque, signed, bound to the query that made them; paging by range, never skip.

A cursor holds the sort-key values and ``_id`` of the last document of a page, and a digest
of what it is bound to (collection, caller's id, tenant and roles, filter, sort and fields),
signed with HMAC-SHA256 under the server's cursor secret. Sent with another query or by another
caller, or altered, it is refused.

The next page is "after the last document" in sort order. The query language cannot say that
exactly: ``{a: {$gt: v}}`` only matches values of ``v``'s type, and a missing field sorts like
null. So the condition is an ``$expr``, whose comparisons order values across types the way a
sort does, with ``$ifNull`` making a missing field null::

    (k1 > v1) or (k1 == v1 and k2 > v2) or ... or (k1 == v1 and ... and _id > last_id)

(``<`` for descending keys). An array value sorts by its smallest or largest element but
compares whole in ``$expr``, so a field holding arrays cannot be paged exactly: such sorts are
refused (see ``_query.parse_sort`` and ``sort_values``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import bson
from bson.errors import BSONError

from ..store import ENCODING_ERRORS, unencodable
from .errors import BadRequestError

__all__ = ["Cursor", "CursorCodec", "after_condition", "sort_values", "with_tiebreak"]

_MISSING: Any = object()


def with_tiebreak(sort: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """The sort with ``_id`` last (ascending unless the caller sorted by it), so ties are broken."""
    keys = list(sort)
    if not any(path == "_id" for path, _ in keys):
        keys.append(("_id", 1))
    return keys


def _value_at(document: Mapping[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if isinstance(value, list):
            raise _array_error(path)
        if not isinstance(value, Mapping) or part not in value:
            return None  # missing sorts like null
        value = value[part]
    if isinstance(value, list):
        raise _array_error(path)
    return value


def _array_error(path: str) -> BadRequestError:
    return BadRequestError(
        f"cannot page by {path!r}: some documents hold arrays there, and results sorted by an array "
        "cannot be paged exactly; sort by a field without arrays",
        details={"field": path},
    )


def sort_values(document: Mapping[str, Any], sort: Sequence[tuple[str, int]]) -> list[Any]:
    """The document's values of the sort keys (with the tie-break): what a cursor stores."""
    return [_value_at(document, path) for path, _ in sort]


def after_condition(sort: Sequence[tuple[str, int]], values: Sequence[Any]) -> dict[str, Any]:
    """A filter matching exactly the documents after the one whose sort values are ``values``."""
    terms: list[Any] = []
    equal: list[Any] = []
    for (path, direction), value in zip(sort, values):
        key = "$_id" if path == "_id" else {"$ifNull": ["$" + path, None]}
        literal = {"$literal": value}
        beyond = {"$gt" if direction == 1 else "$lt": [key, literal]}
        terms.append({"$and": [*equal, beyond]} if equal else beyond)
        equal.append({"$eq": [key, literal]})
    return {"$expr": terms[0] if len(terms) == 1 else {"$or": terms}}


def _encoded(content: Mapping[str, Any]) -> bytes:
    # What the caller sent may not be encodable (a lone surrogate in a field name): a 400.
    try:
        return bson.encode(content)
    except ENCODING_ERRORS as exc:
        raise unencodable(exc) from exc


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    """Makes and reads cursors under one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @staticmethod
    def binding(
        collection: str,
        identity: tuple[Any, Any, Sequence[str]],
        filter: Mapping[str, Any],
        sort: Sequence[tuple[str, int]],
        fields: Sequence[str] | None,
    ) -> bytes:
        """A digest of what a cursor may only be used with."""
        user_id, tenant_id, roles = identity
        description = {
            "c": collection,
            "u": [user_id, tenant_id, sorted(roles)],
            "f": dict(filter),
            "s": [[path, direction] for path, direction in sort],
            "p": None if fields is None else list(fields),
        }
        return hashlib.sha256(_encoded(description)).digest()

    def encode(
        self, binding: bytes, values: Sequence[Any], sort: Sequence[str] | None, fields: Sequence[str] | None
    ) -> str:
        """A cursor continuing after ``values``; it carries the query's sort and fields, so the
        next-page request may leave them out."""
        payload = _encoded({
            "b": binding,
            "v": list(values),
            "s": None if sort is None else list(sort),
            "p": None if fields is None else list(fields),
        })
        signature = hmac.new(self._secret, payload, hashlib.sha256).digest()
        return f"{_b64(payload)}.{_b64(signature)}"

    def decode(self, cursor: str) -> Cursor:
        """What a cursor holds; BadRequestError if it is not one of ours or was altered. Check
        it against the request with ``Cursor.check`` before using its values."""
        invalid = BadRequestError(
            "invalid cursor: pass the cursor of the previous page, unchanged", details={"field": "cursor"}
        )
        if not isinstance(cursor, str) or len(cursor) > 16_384 or cursor.count(".") != 1:
            raise invalid
        payload_text, signature_text = cursor.split(".")
        try:
            payload, signature = _unb64(payload_text), _unb64(signature_text)
        except (binascii.Error, ValueError):
            raise invalid from None
        expected = hmac.new(self._secret, payload, hashlib.sha256).digest()
        if not hmac.compare_digest(signature, expected):
            raise invalid
        try:
            content = bson.decode(payload, codec_options=_CODEC_OPTIONS)
        except (BSONError, ValueError):  # pragma: no cover - signed by us, so well-formed
            raise invalid from None
        return Cursor(bytes(content["b"]), list(content["v"]), content.get("s"), content.get("p"))


@dataclass(frozen=True)
class Cursor:
    """A decoded cursor: the digest of its query, the sort values it continues after, and the
    query's sort and fields as the caller wrote them."""

    binding: bytes
    values: list[Any]
    sort: list[str] | None
    fields: list[str] | None

    def check(self, binding: bytes) -> None:
        if not hmac.compare_digest(self.binding, binding):
            raise BadRequestError(
                "this cursor belongs to another query: send the same filter (and sort and fields, "
                "or leave them out) as the request that returned it; only limit may change",
                details={"field": "cursor"},
            )


_CODEC_OPTIONS = bson.CodecOptions(tz_aware=True, tzinfo=bson.tz_util.utc)
