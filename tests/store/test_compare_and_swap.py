"""The compare-and-swap of updates (issue 8, class 8), against the real database.

An update is written only if the stored document is still the one its post-image was checked
on. For random BSON values ``stored`` and ``read``, the swap of ``{"_id", "v": read}`` writes
over ``{"_id", "v": stored}`` if and only if the two are identical: the same BSON type and value
at every place, doubles bit for bit (NaN payloads aside), decimals with their exponent, keys in
their order, null apart from missing. ``read`` is most often ``stored`` changed in one place
into what the database's ``$eq`` finds equal (1 and 1.0, 0.0 and -0.0, 1.0 and 1.00, keys
reordered...), which is where a compare with ``$eq`` fails; the naive swap is shown failing.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
import uuid
from decimal import Decimal
from typing import Any

import bson
import pytest
from bson import Code, Decimal128, Int64, ObjectId, Regex, Timestamp
from bson.binary import Binary
from bson.codec_options import CodecOptions
from bson.max_key import MaxKey
from bson.min_key import MinKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from permission_mongo.store._documents import swap_if_unchanged

OPTIONS: CodecOptions[Any] = CodecOptions(tz_aware=True, tzinfo=dt.UTC, uuid_representation=bson.binary.UuidRepresentation.STANDARD)

NAN_WITH_PAYLOAD = struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_0000_0001))[0]
doubles = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.5, math.nan, NAN_WITH_PAYLOAD, math.inf, -math.inf, 2.0**53, 5e-324]),
    st.floats(allow_nan=True, allow_infinity=True),
)
def _decimal128(text: str) -> Decimal128 | None:
    try:
        return Decimal128(text)
    except Exception:  # more digits than a Decimal128 holds
        return None


decimals = st.one_of(
    st.sampled_from(["1.0", "1.00", "1", "1E+1", "10", "-0", "0", "0.000", "NaN", "Infinity", "-Infinity"]),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
).map(_decimal128).filter(lambda d: d is not None)
datetimes = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=dt.UTC)
)
scalars = st.one_of(
    doubles,
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**63), 2**63 - 1).map(Int64),
    decimals,
    st.text(max_size=5),
    st.booleans(),
    st.none(),
    datetimes,
    st.builds(Binary, st.binary(max_size=4), st.sampled_from([0, 5, 0x80])),
    st.uuids(),
    st.builds(Regex, st.sampled_from(["a", "a.b", "^x$"]), st.sampled_from(["", "i", "ms", "imsx"])),
    st.sampled_from([ObjectId("65a000000000000000000001"), ObjectId("65a000000000000000000002")]),
    st.builds(Timestamp, st.integers(0, 5), st.integers(0, 5)),
    st.sampled_from([MinKey(), MaxKey(), Code("x"), Code("y")]),
)
names = st.sampled_from(["a", "b", "c", "0", "$x", "a.b"])
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(names, inner, max_size=3)),
    max_leaves=8,
)


def _same_number_of_another_kind(value: Any) -> list[Any]:
    """Values ``$eq`` finds equal to ``value`` that are not identical to it."""
    if isinstance(value, bool):
        return []
    if isinstance(value, float):
        if value != value:
            return [Decimal128("NaN")]
        out: list[Any] = [-value] if value == 0 else []
        if value.is_integer() and abs(value) < 2**31:
            out += [int(value), Int64(int(value)), Decimal128(str(int(value)))]
        return out
    if isinstance(value, Int64):
        return [int(value)] if abs(value) < 2**31 else [float(value)] if abs(value) < 2**53 else []
    if isinstance(value, int):
        return [Int64(value), float(value)]
    if isinstance(value, Decimal128):
        number = value.to_decimal()
        if number.is_nan():
            return [math.nan]
        if number.is_infinite():
            return [float(number)]
        sign, digits, exponent = number.as_tuple()
        assert isinstance(exponent, int)
        out = [Decimal128(Decimal((sign, (*digits, 0), exponent - 1)))] if len(digits) < 34 and exponent > -6176 else []
        if number == 0:
            out.append(Decimal128(number.copy_negate()))
        return out
    return []


def _equal_but_not_identical(value: Any, data: st.DataObject) -> Any:
    """``value`` changed in one place into something ``$eq`` may well find equal."""
    if isinstance(value, dict) and value:
        key = data.draw(st.sampled_from(sorted(value)))
        change = data.draw(st.sampled_from(["inner", "reorder", "null for missing"]))
        if change == "reorder" and len(value) > 1:
            return dict(reversed(list(value.items())))
        if change == "null for missing" and value[key] is None:
            return {k: v for k, v in value.items() if k != key}
        return {**value, key: _equal_but_not_identical(value[key], data)}
    if isinstance(value, list) and value:
        index = data.draw(st.integers(0, len(value) - 1))
        return [*value[:index], _equal_but_not_identical(value[index], data), *value[index + 1:]]
    if isinstance(value, Binary) or isinstance(value, uuid.UUID):
        raw = value.bytes if isinstance(value, uuid.UUID) else bytes(value)
        return Binary(raw, 0 if getattr(value, "subtype", 4) != 0 else 5)
    if isinstance(value, Regex):
        return Regex(value.pattern, "" if value.flags else "i")
    others = _same_number_of_another_kind(value)
    return data.draw(st.sampled_from(others)) if others else value


def _canonical(value: Any) -> bytes:
    """BSON bytes, NaN payloads aside."""

    def plain(item: Any) -> Any:
        if isinstance(item, float) and item != item:
            return math.nan
        if isinstance(item, dict):
            return {k: plain(v) for k, v in item.items()}
        if isinstance(item, list):
            return [plain(v) for v in item]
        return item

    return bson.encode({"v": plain(value)}, codec_options=OPTIONS)


@pytest.fixture(scope="module")
def collection(module_db: Any) -> Any:
    return module_db.get_collection("swaps", codec_options=OPTIONS)


def swapped(collection: Any, stored: Any, read: Any, *, swap: Any = swap_if_unchanged) -> bool:
    key = ObjectId()
    collection.insert_one({"_id": key, "v": stored})
    try:
        result = collection.update_one(*swap({"_id": key, "v": read}, {"_id": key, "swapped": True}))
        assert result.matched_count == 1 or swap is not swap_if_unchanged  # found by _id, whatever it holds
        return result.modified_count == 1
    finally:
        collection.delete_one({"_id": key})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(stored=values, data=st.data())
def test_the_swap_writes_if_and_only_if_the_stored_document_is_identical(collection: Any, stored: Any, data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(["same", "equal, not identical", "another"]))
    read = {"same": lambda: stored, "another": lambda: data.draw(values)}.get(kind, lambda: _equal_but_not_identical(stored, data))()
    assert swapped(collection, stored, read) == (_canonical(stored) == _canonical(read))


def _naive_swap(before: dict[str, Any], after: dict[str, Any]) -> Any:
    return {"_id": before["_id"], "$expr": {"$eq": ["$$ROOT", {"$literal": before}]}}, {"$set": {"swapped": True}}


# (stored, read, whether a compare with $eq is wrong on every server; where it depends on the
# server: NaN and key order on SecantusDB, decimal exponents on MongoDB)
EQ_TRAPS = [
    (1, 1.0, True),
    (1, Int64(1), True),
    (0.0, -0.0, True),
    (math.nan, math.nan, False),
    ({"x": [1, math.nan]}, {"x": [1, math.nan]}, False),
    (Decimal128("1.0"), Decimal128("1.00"), False),
    ({"a": 1, "b": 2}, {"b": 2, "a": 1}, False),
]


@pytest.mark.parametrize("stored, read, eq_always_wrong", EQ_TRAPS, ids=repr)
def test_a_compare_with_eq_is_wrong_where_the_swap_is_right(collection: Any, stored: Any, read: Any, eq_always_wrong: bool) -> None:
    identical = _canonical(stored) == _canonical(read)
    assert swapped(collection, stored, read) == identical
    if eq_always_wrong:
        assert swapped(collection, stored, read, swap=_naive_swap) != identical, "the naive compare should have failed here"


def test_a_compare_with_eq_is_wrong_on_this_server_too(collection: Any) -> None:
    wrong = [swapped(collection, stored, read, swap=_naive_swap) != (_canonical(stored) == _canonical(read))
             for stored, read, always in EQ_TRAPS if not always]
    assert any(wrong), "the naive compare should fail on some of these on any server"
