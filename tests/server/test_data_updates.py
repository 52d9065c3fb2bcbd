"""PATCH and the post-image rule (DESIGN invariant 5), on the notes policy.

A writer may update notes of its tenant that it owns, labelled "draft", not "locked", with a
level from 0 to 5; ``audit`` and ``meta.reviewed`` are deny_write, ``secret`` is hidden. Every
allowed update operator can carry a document out of that: each such update is refused and
leaves the stored document as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from bson import ObjectId

from .harness import Gateway, assert_error, ejson, user_client

NOTES = "/v1/data/notes"


@pytest.fixture
def writer(notes_gateway: Gateway, tenant: str) -> Iterator[httpx.Client]:
    with user_client(notes_gateway, "w1", tenant, ["writer"]) as client:
        yield client


@pytest.fixture
def note(notes_database: Any, tenant: str) -> dict[str, Any]:
    document = {
        "_id": ObjectId(), "tenant_id": tenant, "owner_id": "w1", "title": "n", "labels": ["draft"],
        "level": 3, "audit": "ok", "meta": {"reviewed": False, "tag": "a"}, "secret": "s",
        "created_by": "w1",
    }
    notes_database.notes.insert_one(document)
    return document


def stored(notes_database: Any, note: dict[str, Any]) -> dict[str, Any]:
    return notes_database.notes.find_one({"_id": note["_id"]})


POST_IMAGE_VIOLATIONS = [
    {"$set": {"owner_id": "w2"}},
    {"owner_id": "w2"},
    {"$unset": {"owner_id": ""}},
    {"$rename": {"owner_id": "previous_owner"}},
    {"$rename": {"level": "old_level"}},
    {"$rename": {"title": "level"}},
    {"$inc": {"level": 10}},
    {"$mul": {"level": 2.5}},
    {"$max": {"level": 6}},
    {"$min": {"level": -1}},
    {"$set": {"level": "3"}},
    {"$push": {"labels": "locked"}},
    {"$push": {"labels": {"$each": ["x", "locked"], "$position": 0}}},
    {"$push": {"labels": {"$each": ["x"], "$slice": -1}}},
    {"$addToSet": {"labels": "locked"}},
    {"$pull": {"labels": "draft"}},
    {"$pull": {"labels": {"$in": ["draft"]}}},
    {"$set": {"labels": ["public"]}},
    {"labels.0": "public"},
]


@pytest.mark.parametrize("update", POST_IMAGE_VIOLATIONS, ids=repr)
def test_an_update_leaving_the_writers_rule_is_refused(
    writer: httpx.Client, note: dict[str, Any], notes_database: Any, update: dict[str, Any]
) -> None:
    assert_error(writer.patch(f"{NOTES}/{note['_id']}", json=update), 403, "FORBIDDEN")
    assert stored(notes_database, note) == note


UNWRITABLE = [
    ({"$set": {"tenant_id": "other"}}, "tenant_id"),
    ({"tenant_id": "other"}, "tenant_id"),
    ({"$unset": {"tenant_id": ""}}, "tenant_id"),
    ({"$rename": {"tenant_id": "t"}}, "tenant_id"),
    ({"$rename": {"title": "tenant_id"}}, "tenant_id"),
    ({"$set": {"_id": "x"}}, "_id"),
    ({"$set": {"created_by": "w2"}}, "created_by"),
    ({"$unset": {"created_at": ""}}, "created_at"),
    ({"updated_at": {"$date": "2020-01-01T00:00:00Z"}}, "updated_at"),
    ({"$set": {"updated_by": "w2"}}, "updated_by"),
    ({"$set": {"audit": "changed"}}, "audit"),
    ({"$unset": {"audit": ""}}, "audit"),
    ({"$rename": {"audit": "a2"}}, "audit"),
    ({"$rename": {"title": "audit"}}, "audit"),
    ({"meta.reviewed": True}, "meta.reviewed"),
    ({"$set": {"meta": {"tag": "b"}}}, "meta"),
    ({"$set": {"secret": "leak"}}, "secret"),
    ({"$unset": {"secret": ""}}, "secret"),
    ({"$rename": {"secret": "public_secret"}}, "secret"),
    ({"$push": {"audit": "x"}}, "audit"),
]


@pytest.mark.parametrize("update, field", UNWRITABLE, ids=repr)
def test_unwritable_and_system_fields_are_refused(
    writer: httpx.Client, note: dict[str, Any], notes_database: Any, update: dict[str, Any], field: str
) -> None:
    error = assert_error(writer.patch(f"{NOTES}/{note['_id']}", json=update), 403, "FIELD_NOT_WRITABLE")
    assert error["details"]["field"] == field
    assert stored(notes_database, note) == note


ALLOWED = [
    ({"$set": {"title": "t2"}}, {"title": "t2"}),
    ({"title": "t2", "meta.tag": "b"}, {"title": "t2", "meta": {"reviewed": False, "tag": "b"}}),
    ({"$inc": {"level": 2}}, {"level": 5}),
    ({"$mul": {"level": 0}}, {"level": 0}),
    ({"$min": {"level": 1}}, {"level": 1}),
    ({"$max": {"level": 4}}, {"level": 4}),
    ({"$push": {"labels": "public"}}, {"labels": ["draft", "public"]}),
    ({"$addToSet": {"labels": {"$each": ["draft", "x"]}}}, {"labels": ["draft", "x"]}),
    ({"$unset": {"meta.tag": ""}}, {"meta": {"reviewed": False}}),
    ({"$rename": {"title": "heading"}}, {"heading": "n"}),
]


@pytest.mark.parametrize("update, changes", ALLOWED, ids=repr)
def test_allowed_updates_are_written_and_returned_shaped(
    writer: httpx.Client, note: dict[str, Any], notes_database: Any, update: dict[str, Any], changes: dict[str, Any]
) -> None:
    response = writer.patch(f"{NOTES}/{note['_id']}", json=update)
    assert response.status_code == 200, response.text
    after = stored(notes_database, note)
    expected = {**note, **changes, "updated_by": "w1"}
    if "$rename" in update:
        del expected["title"]
    assert {k: v for k, v in after.items() if k != "updated_at"} == expected
    returned = ejson(response)
    assert "secret" not in returned
    assert returned == {k: v for k, v in after.items() if k != "secret"} | {"updated_at": returned["updated_at"]}


@pytest.mark.parametrize(
    "update, status, code",
    [
        ({"$where": "1"}, 400, "BAD_REQUEST"),
        ({"$set": {"a": 1}, "title": "x"}, 400, "BAD_REQUEST"),
        ({"$set": 5}, 400, "BAD_REQUEST"),
        ({"$set": {}}, 400, "BAD_REQUEST"),
        ({"$set": {"labels.$": "x"}}, 400, "BAD_REQUEST"),
        ({"$inc": {"title": 1}}, 400, "BAD_REQUEST"),
        ({"$push": {"level": 1}}, 400, "BAD_REQUEST"),
        ({"$set": {"title": 1}, "$unset": {"title": ""}}, 400, "BAD_REQUEST"),
        ({"title": {"$gt": 1}}, 400, "BAD_REQUEST"),
        ({"bad.": 1}, 400, "BAD_REQUEST"),
        ({}, 422, "VALIDATION_ERROR"),
        ([{"title": 1}], 422, "VALIDATION_ERROR"),
    ],
    ids=repr,
)
def test_malformed_updates_are_refused(
    writer: httpx.Client, note: dict[str, Any], notes_database: Any, update: Any, status: int, code: str
) -> None:
    assert_error(writer.patch(f"{NOTES}/{note['_id']}", json=update), status, code)
    assert stored(notes_database, note) == note


def test_operators_other_than_the_allow_list_are_named(writer: httpx.Client, note: dict[str, Any]) -> None:
    error = assert_error(writer.patch(f"{NOTES}/{note['_id']}", json={"$currentDate": {"x": True}}), 400, "BAD_REQUEST")
    assert error["details"] == {"operator": "$currentDate"} and "$currentDate" in error["message"]


def test_a_document_changed_meanwhile_is_checked_again(
    notes_gateway: Gateway, tenant: str, note: dict[str, Any], notes_database: Any
) -> None:
    # Concurrent writers: each increment is checked against the state it applies to, so the
    # level never passes 5 however the requests interleave.
    from concurrent.futures import ThreadPoolExecutor

    notes_database.notes.update_one({"_id": note["_id"]}, {"$set": {"level": 0}})

    def bump(_: int) -> int:
        with user_client(notes_gateway, "w1", tenant, ["writer"]) as client:
            return client.patch(f"{NOTES}/{note['_id']}", json={"$inc": {"level": 1}}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(bump, range(12)))
    assert statuses.count(200) == 5 and set(statuses) <= {200, 403, 409}, statuses
    assert stored(notes_database, note)["level"] == 5


def test_documents_holding_nan_and_other_values_eq_finds_equal_update_fine(
    writer: httpx.Client, note: dict[str, Any], notes_database: Any
) -> None:
    # The compare-and-swap once compared the stored document with $eq, which never finds a
    # document holding NaN equal to itself on SecantusDB: such a document answered 409 forever.
    import math

    from bson import Decimal128, Int64

    odd = {"score": math.nan, "zero": -0.0, "price": Decimal128("1.10"), "count": Int64(2), "nested": {"x": [math.nan, 1.0]}}
    notes_database.notes.update_one({"_id": note["_id"]}, {"$set": odd})
    response = writer.patch(f"{NOTES}/{note['_id']}", json={"title": "t2"})
    assert response.status_code == 200, response.text
    ids = []
    for _ in range(3):
        ids.append(ObjectId())
        notes_database.notes.insert_one({**note, **odd, "_id": ids[-1]})
    result = ejson(writer.patch(f"{NOTES}/batch", json={"ids": [str(i) for i in ids], "update": {"$inc": {"level": 1}}}))
    assert (result["matched"], result["modified"], result["refused"]) == (3, 3, [])
    for key in [note["_id"], *ids]:
        now = notes_database.notes.find_one({"_id": key})
        assert math.isnan(now["score"]) and math.isnan(now["nested"]["x"][0])
        assert math.copysign(1, now["zero"]) == -1 and str(now["price"]) == "1.10" and type(now["count"]) is Int64
    assert notes_database.notes.find_one({"_id": note["_id"]})["title"] == "t2"


def test_a_document_too_large_to_swap_is_a_400_telling_no_size(
    writer: httpx.Client, note: dict[str, Any], notes_database: Any
) -> None:
    # A known limit (README): the compare-and-swap sends the document as read and as written
    # in one command, so a document over about 8 MiB is not updated through the gateway; the
    # answer says so without a size (the caller cannot see "secret", which makes it that big).
    notes_database.notes.update_one({"_id": note["_id"]}, {"$set": {"secret": "s" * (9 * 1024 * 1024)}})
    try:
        error = assert_error(writer.patch(f"{NOTES}/{note['_id']}", json={"level": 4}), 400, "BAD_REQUEST")
        assert "too large to be updated" in error["message"] and error["details"] == {}
        assert not any(char.isdigit() for char in error["message"].replace("16 MiB", ""))
    finally:
        notes_database.notes.update_one({"_id": note["_id"]}, {"$set": {"secret": "s"}})
