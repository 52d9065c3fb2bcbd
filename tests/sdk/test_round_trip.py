"""Both clients against the fake gateway over real HTTP: bson types round-trip, cursors page."""

from __future__ import annotations

import datetime

from bson import Decimal128, ObjectId

from .conftest import ClientAdapter
from .fake_gateway import FakeGateway


async def test_documents_round_trip_with_bson_types(
    client: ClientAdapter, gateway: FakeGateway
) -> None:
    owner = ObjectId()
    due = datetime.datetime(2024, 3, 4, 10, 0, 0, 123000)
    created = await client.insert(
        "tasks", {"title": "t", "owner": owner, "due": due, "price": Decimal128("9.99")}
    )

    assert isinstance(created["_id"], ObjectId)
    assert isinstance(created["created_at"], datetime.datetime)
    fetched = await client.get("tasks", created["_id"])
    assert fetched == created
    assert (fetched["owner"], fetched["due"], fetched["price"]) == (owner, due, Decimal128("9.99"))
    assert await client.get("tasks", str(created["_id"])) == created  # an id as text works too

    # Filters carry bson types as well.
    assert await client.count("tasks", {"owner": owner, "due": {"$lte": due}}) == 1

    updated = await client.update("tasks", created["_id"], {"$inc": {"views": 1}})
    assert updated["views"] == 1 and updated["updated_at"] >= created["updated_at"]
    assert await client.delete("tasks", created["_id"]) == {"deleted": True, "id": created["_id"]}
    assert await client.get("tasks", created["_id"]) is None


async def test_find_iter_walks_every_page(client: ClientAdapter, gateway: FakeGateway) -> None:
    gateway.seed("items", *[{"n": n, "kind": "a" if n % 3 else "b"} for n in range(45)])

    documents = await client.find_all(
        "items", {"kind": "a"}, sort=["-n"], fields=["n"], page_size=7
    )

    expected = sorted((n for n in range(45) if n % 3), reverse=True)
    assert [d["n"] for d in documents] == expected
    assert all(set(d) == {"_id", "n"} for d in documents)
    assert len(gateway.requests_to("POST", "/v1/data/items/find")) == -(-len(expected) // 7)


async def test_pages_by_hand(client: ClientAdapter, gateway: FakeGateway) -> None:
    gateway.seed("items", *[{"n": n} for n in range(5)])
    page = await client.find("items", sort="n", limit=2)
    seen = [d["n"] for d in page]
    while page["pagination"]["has_more"]:
        page = await client.find("items", sort="n", limit=2, cursor=page["pagination"]["cursor"])
        seen += [d["n"] for d in page]
    assert seen == [0, 1, 2, 3, 4]
    assert await client.all_documents(
        await client.find("items", sort="n", limit=2)
    ) == await client.find_all("items", sort="n", page_size=2)
