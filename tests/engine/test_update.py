"""The update post-image (DESIGN.md invariant 5): ``apply_update`` computes what the database
would store, checked against the real database.

For random documents and random updates of the allow-listed operators, ``update_one`` on the
database and ``apply_update`` agree: the same new document, or both refuse. The gateway checks
the policy on what ``apply_update`` returns, so this is what makes that check trustworthy.

``PM_UPDATE_EXAMPLES`` raises the number of examples for long runs.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from typing import Any

import pymongo.errors
import pytest
from bson import Decimal128, Int64, ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from permission_mongo.policy._update import UpdateError, apply_update, bson_compare

EXAMPLES = int(os.environ.get("PM_UPDATE_EXAMPLES", "250"))

NAMES = ["a", "b", "c", "0", "1"]
SCALARS = [
    None, True, False, 0, 1, -1, 2, 2.5, -0.5, 0.0, 2**31 - 1, -(2**31), 2**40, Int64(3), 2**63 - 1,
    math.nan, math.inf, "", "x", "y", "X", "é",
    dt.datetime(2024, 1, 1), dt.datetime(2024, 6, 1, 12, 30, 0, 123000),
    ObjectId("65a000000000000000000001"), ObjectId("65a000000000000000000002"),
]
scalars = st.sampled_from(SCALARS)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(NAMES), children, max_size=3),
    ),
    max_leaves=6,
)
documents = st.dictionaries(st.sampled_from(NAMES), values, max_size=4)
paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(".".join)
numbers = st.sampled_from([1, -1, 0, 2, 2.5, -0.5, 2**31 - 1, 2**62, Int64(7), 0.0, math.nan, Decimal128("1.5")])

_ARGUMENTS: dict[str, Any] = {
    "$set": values,
    "$unset": st.just(""),
    "$inc": st.one_of(numbers, scalars),
    "$mul": st.one_of(numbers, scalars),
    "$min": values,
    "$max": values,
    "$push": st.one_of(
        values,
        st.fixed_dictionaries(
            {"$each": st.lists(values, max_size=3)},
            optional={"$position": st.integers(-3, 3), "$slice": st.integers(-3, 3)},
        ),
    ),
    "$addToSet": st.one_of(values, st.fixed_dictionaries({"$each": st.lists(values, max_size=3)})),
    # A sub-document given to $pull is a query, which the gateway refuses: values and $in only.
    "$pull": st.one_of(values.filter(lambda v: not isinstance(v, dict)), st.fixed_dictionaries({"$in": st.lists(values, max_size=3)})),
    "$rename": paths,
}


@st.composite
def updates(draw: st.DrawFn) -> dict[str, Any]:
    operators = draw(st.lists(st.sampled_from(sorted(_ARGUMENTS)), min_size=1, max_size=3, unique=True))
    return {
        operator: draw(st.dictionaries(paths, _ARGUMENTS[operator], min_size=1, max_size=3))
        for operator in operators
    }


def canonical(value: Any) -> Any:
    """A form that compares equal exactly when MongoDB stores the same thing: types kept apart
    (1, 1.0, Int64(1) and True differ), NaN equal to NaN, sub-document key order ignored
    (servers differ in where they append new fields; the policy never reads key order)."""
    if isinstance(value, dict):
        return ("doc", tuple(sorted((key, canonical(item)) for key, item in value.items())))
    if isinstance(value, list):
        return ("array", tuple(canonical(item) for item in value))
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    if isinstance(value, Int64):
        return ("long", int(value))
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int" if -(2**31) <= value < 2**31 else "long", value)
    if isinstance(value, Decimal128):
        return ("decimal", str(value))
    return (type(value).__name__, value)


_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


class Tally:
    agreed = 0
    refused = 0


def test_apply_update_matches_the_database(module_db: Any) -> None:
    collection = module_db["updates"]
    tally = Tally()

    @_settings
    @given(document=documents, update_list=st.lists(updates(), min_size=1, max_size=4))
    def check(document: dict[str, Any], update_list: list[dict[str, Any]]) -> None:
        collection.delete_many({})
        stored = [{"_id": i, **document} for i in range(len(update_list))]
        collection.insert_many(stored)
        for i, update in enumerate(update_list):
            try:
                collection.update_one({"_id": i}, update)
                expected: Any = collection.find_one({"_id": i})
            except (pymongo.errors.WriteError, pymongo.errors.OperationFailure) as exc:
                expected = f"refused: {exc}"
            try:
                computed: Any = apply_update(stored[i], update)
            except UpdateError as exc:
                if exc.stricter and not isinstance(expected, str):
                    tally.refused += 1  # refused on purpose where the database lets it through
                    continue
                computed = f"refused: {exc}"
            if isinstance(expected, str) or isinstance(computed, str):
                assert isinstance(expected, str) and isinstance(computed, str), (
                    f"\ndocument: {stored[i]}\nupdate:   {update}\ndatabase: {expected}\ncomputed: {computed}"
                )
                tally.refused += 1
            else:
                assert canonical(computed) == canonical(expected), (
                    f"\ndocument: {stored[i]}\nupdate:   {update}\ndatabase: {expected}\ncomputed: {computed}"
                )
                tally.agreed += 1

    check()
    print(f"\n{tally.agreed} updates computed as the database applied them, {tally.refused} refused by both")
    assert tally.agreed > EXAMPLES // 2


def test_the_input_document_is_not_modified() -> None:
    document = {"_id": 1, "a": {"b": [1, 2]}, "c": 3}
    before = repr(document)
    apply_update(document, {"$push": {"a.b": 3}, "$inc": {"c": 1}, "$unset": {"a.x": ""}})
    assert repr(document) == before


@pytest.mark.parametrize(
    "update, message",
    [
        ({}, "non-empty"),
        ({"$where": {"a": 1}}, "unsupported update operator '$where'"),
        ({"$set": {"a.$": 1}}, "positional"),
        ({"$set": {"a.$[]": 1}}, "positional"),
        ({"$set": {}}, "non-empty"),
        ({"$set": {"a..b": 1}}, "empty part"),
        ({"$set": {"a": {"$gt": 1}}}, "invalid field name '$gt'"),
        ({"$set": {"a": {"b.c": 1}}}, "invalid field name 'b.c'"),
        ({"$push": {"a": {"$each": [1], "$sort": 1}}}, "unsupported modifier '$sort'"),
        ({"$pull": {"a": {"b": 1}}}, "query conditions are not supported"),
        ({"$set": {"a": 1}, "$unset": {"a.b": ""}}, "conflict"),
        ({"$rename": {"a": "a.b"}}, "same path"),
        ({"$inc": {"a": "1"}}, "needs a number"),
        ({"$set": {"_id": 2}}, "immutable"),
    ],
)
def test_refusals_say_what_is_wrong(update: dict[str, Any], message: str) -> None:
    with pytest.raises(UpdateError, match=None) as raised:
        apply_update({"_id": 1, "a": 1}, update)
    assert message in str(raised.value)


def test_inc_on_a_string_is_refused() -> None:
    with pytest.raises(UpdateError, match="cannot apply \\$inc to 'name'"):
        apply_update({"name": "x"}, {"$inc": {"name": 1}})


def test_new_fields_follow_mongodb_field_order() -> None:
    # MongoDB 5.0+ applies changes by field name, so new fields appear in that order.
    new = apply_update({"m": 1}, {"$set": {"z": 1, "b": 2}, "$inc": {"a.c": 1}})
    assert list(new) == ["m", "a", "b", "z"]


def test_bson_order_across_types() -> None:
    ordered = [None, math.nan, -1, 0, 2.5, "", "a", {"a": 1}, [0], b"x", ObjectId(), False, True, dt.datetime(2024, 1, 1)]
    for i, low in enumerate(ordered):
        for high in ordered[i + 1:]:
            assert bson_compare(low, high) == -1, (low, high)
            assert bson_compare(high, low) == 1, (high, low)


def test_nesting_depth_counts_documents_and_arrays_without_recursing() -> None:
    from permission_mongo.policy._update import check_field_names, nesting_depth, update_depths

    assert [nesting_depth(v) for v in (1, {}, [], {"a": 1}, {"a": [{}]}, [[1], 2])] == [0, 1, 1, 1, 3, 2]
    deep: Any = 1
    for _ in range(50_000):  # far deeper than Python's recursion limit
        deep = [{"a": deep}]
    assert nesting_depth(deep) == 100_000
    check_field_names(deep)  # no RecursionError either
    assert dict(update_depths({
        "$set": {"a.b": {"c": 1}, "x": 1}, "$push": {"l": [1]}, "$addToSet": {"s": {"$each": [1, [2]]}},
        "$unset": {"u": ""}, "$rename": {"r": "q"}, "$pull": {"p": [[1]]}, "$inc": {"n.m": 1},
    })) == {"a.b": 3, "x": 1, "l": 3, "s": 3, "n.m": 2}
