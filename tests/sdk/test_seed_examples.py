"""The SDK documentation's examples (``shared/seeds/000_*``), run against the real gateway.

One test per example, named after the documentation's section. Each snippet is the
documentation's text, pasted as it stands, and runs against a ``permission-mongo serve``
process on the test database (``tests/server/harness.py``), configured by ``seed_config/``: the
examples' ``users`` collection, scoped to the caller's tenant. Its API keys are made through
the admin API with the bootstrap ``PM_ADMIN_KEY``.

:func:`run` may change only three things in a snippet's text: the gateway URL, the API key and
document ids (the documentation's ids, ``507f1f77bcf86cd799439011`` and ``...012``, are stored
before each test, so they need no change). Names a snippet takes from the text around it
(``client``, ``user_ids``, an import made by an earlier snippet) are handed to it, and a comment
says so. Where an example cannot run as written, the comment beside it says why: that is the
documentation's mistake.

The retry examples' failures cannot be caused on a real gateway; ``test_retries.py`` runs them
against a server that fails on purpose.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import logging
import socket
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pymongo
import pytest
from bson import ObjectId

from permission_mongo import (
    AsyncPermissionMongo,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    PermissionMongo,
    ValidationError,
)
from permission_mongo.client._retry import retry_delay

from ..server.harness import Gateway, clean_environment, new_admin_key, serve_command

SEED_CONFIG = Path(__file__).resolve().parent / "seed_config"
# The documentation itself, in shared/ beside the repository (as in CI), when it is there.
SEED_DOCUMENT = next(iter((Path(__file__).resolve().parents[3] / "shared" / "seeds").glob("000_*.txt")), None)
SEED_URL = "http://localhost:8080"
SEED_KEYS = ('api_key="your-api-key"', 'api_key="key"')
JANE = "507f1f77bcf86cd799439011"  # the documentation's ids
JOHN = "507f1f77bcf86cd799439012"
NOBODY = "507f191e810c19729de860ea"  # an id no document has
ACTIVE = 46  # Jane and 45 engineers: the active users of the examples' tenant

# Who the gateway's API keys stand for (roles from seed_config/policy.yml).
IDENTITIES = {
    "app": {"id": "billing-service", "tenant_id": "acme", "roles": ["app"]},  # the examples' key
    "member": {"id": "mia", "tenant_id": "acme", "roles": ["member"]},
    "guest": {"id": "gus", "tenant_id": "acme", "roles": ["guest"]},
    "globex": {"id": "globex-service", "tenant_id": "globex", "roles": ["app"]},  # another tenant
}


# -- the live gateway ------------------------------------------------------------------------


@dataclass
class Live:
    url: str
    keys: dict[str, str]
    db: pymongo.database.Database
    stored: list[dict[str, Any]]
    """The users every test starts with, as the gateway stored them."""

    def client(self, key: str = "app") -> PermissionMongo:
        return PermissionMongo(url=self.url, api_key=self.keys[key])


def _acme_users() -> list[dict[str, Any]]:
    people = [
        {"_id": ObjectId(JANE), "name": "Jane Smith", "email": "jane.smith@acme.test",
         "department": "engineering", "status": "active", "salary": 100},
        {"_id": ObjectId(JOHN), "name": "John Doe", "email": "john.doe@acme.test",
         "department": "sales", "status": "pending", "salary": 80},
        {"name": "Paula Price", "email": "paula@acme.test", "department": "sales",
         "status": "pending", "salary": 70},
        {"name": "Archie Old", "email": "archie@acme.test", "department": "sales",
         "status": "archived", "last_active": "2022-06-01"},
        {"name": "Amy Recent", "email": "amy@acme.test", "department": "sales",
         "status": "archived", "last_active": "2024-01-01"},
    ]
    engineers = [
        {"name": f"Engineer {n:02}", "email": f"engineer{n}@acme.test",
         "department": "engineering", "status": "active", "salary": 90 + n}
        for n in range(45)
    ]
    return people + engineers


def _globex_users() -> list[dict[str, Any]]:
    # Another tenant's active engineers: no acme result may ever count them.
    return [
        {"name": f"Globex {n}", "email": f"g{n}@globex.test", "department": "engineering",
         "status": "active", "team_id": "t1", "salary": 1000}
        for n in range(5)
    ]


@pytest.fixture(scope="module")
def live(mongo_uri: str, module_db: pymongo.database.Database) -> Iterator[Live]:
    """The gateway on ``seed_config/``, its API keys, and the users the examples refer to."""
    admin_key = new_admin_key()
    command = serve_command(
        SEED_CONFIG, "--port", "0", "--mongodb-uri", mongo_uri, "--database", module_db.name
    )
    server = Gateway(command, env=clean_environment({"PM_ADMIN_KEY": admin_key})).start()
    try:
        keys = {}
        with server.client(admin_key) as admin:
            for name, identity in IDENTITIES.items():
                made = admin.post("/v1/admin/api-keys", json={"identity": identity, "name": name})
                assert made.status_code == 201, made.text
                keys[name] = made.json()["key"]
        live = Live(server.url, keys, module_db, [])
        for key, documents in (("app", _acme_users()), ("globex", _globex_users())):
            with live.client(key) as client:
                for document in documents:
                    wanted = document.pop("_id", None)
                    made = client.insert("users", document)
                    if wanted is not None:
                        # The gateway chooses ids (users do not opt in to client ids): move
                        # the document to the documentation's id, as the gateway stored it.
                        copy = module_db.users.find_one_and_delete({"_id": ObjectId(str(made["_id"]))})
                        module_db.users.insert_one({**copy, "_id": wanted})
        live.stored = list(module_db.users.find())
        yield live
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def fresh_users(live: Live) -> Live:
    """Every test starts from the same users (what earlier tests wrote is put back)."""
    live.db.users.delete_many({})
    live.db.users.insert_many(live.stored)
    return live


@pytest.fixture
def client(live: Live) -> Iterator[PermissionMongo]:
    """The client the documentation's snippets call ``client``: the examples' key."""
    with live.client() as made:
        yield made


@pytest.fixture(autouse=True)
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[PermissionMongo]]:
    """The sync clients a test made; closed afterwards. Several examples make a client and
    never close it (fine in a script that ends there)."""
    made: list[PermissionMongo] = []
    init = PermissionMongo.__init__

    def recording_init(self: PermissionMongo, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(PermissionMongo, "__init__", recording_init)
    yield made
    for client in made:
        client.close()


@pytest.fixture
def exchanges(monkeypatch: pytest.MonkeyPatch) -> list[tuple[httpx.Request, httpx.Response]]:
    """Every request the SDK sent in this test, with the gateway's answer."""
    seen: list[tuple[httpx.Request, httpx.Response]] = []
    send, send_async = httpx.Client.send, httpx.AsyncClient.send

    def recording_send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        response = send(self, request, **kwargs)
        seen.append((request, response))
        return response

    async def recording_send_async(
        self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any
    ) -> httpx.Response:
        response = await send_async(self, request, **kwargs)
        seen.append((request, response))
        return response

    monkeypatch.setattr(httpx.Client, "send", recording_send)
    monkeypatch.setattr(httpx.AsyncClient, "send", recording_send_async)
    return seen


def run(
    source: str,
    live: Live,
    *,
    replace: dict[str, str] | None = None,
    **names: Any,
) -> dict[str, Any]:
    """Execute a documentation snippet against the live gateway; returns its globals.

    The snippet's URL becomes the gateway's and its API key the examples' key (``app``);
    ``replace`` makes other URL substitutions. ``names`` are what the snippet takes from the
    text around it (``client``...): pass a client made with another key to run the same text
    as someone else."""
    assert_from_the_documentation(source)
    code = textwrap.dedent(source).replace(SEED_URL, live.url)
    for placeholder in SEED_KEYS:
        code = code.replace(placeholder, f"api_key={live.keys['app']!r}")
    for old, new in (replace or {}).items():
        code = code.replace(old, new)
    namespace: dict[str, Any] = {"__name__": "seed_example", **names}
    exec(compile(code, "<seed example>", "exec"), namespace)
    return namespace


def _lines(text: str) -> str:
    # The page's "[email protected]" holds a no-break space; the snippets here a plain one.
    text = text.replace("\N{NO-BREAK SPACE}", " ")
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def assert_from_the_documentation(source: str) -> None:
    """The snippet is the documentation's text, line for line (indentation, blank lines and
    no-break spaces aside)."""
    if SEED_DOCUMENT is not None:
        assert _lines(source) in _lines(SEED_DOCUMENT.read_text()), "not the documentation's text"


def printed(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def stored(live: Live, document_id: Any) -> dict[str, Any] | None:
    return live.db.users.find_one({"_id": ObjectId(str(document_id))})


def first_page_of_active_users() -> list[str]:
    # No sort: _id order. The documentation's id is from 2012, older than every id made now.
    return ["Jane Smith", *[f"Engineer {n:02}" for n in range(19)]]


def test_the_snippets_are_checked_against_the_documentation() -> None:
    if SEED_DOCUMENT is None:
        pytest.skip("shared/seeds/ is not beside the repository")
    assert "client.insert(" in SEED_DOCUMENT.read_text()


# -- Quick Start, Client Initialization ------------------------------------------------------


def test_quick_start(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    run('''
        from permission_mongo import PermissionMongo

        # Initialize the client
        client = PermissionMongo(
            url="http://localhost:8080",
            api_key="your-api-key"
        )

        # Create a document with automatic permission checks
        user = client.insert("users", {
            "name": "John Doe",
            "email": "[email protected]",
            "role": "engineer"
        })

        print(f"Created user: {user['_id']}")

        # Query with automatic permission filtering
        active_users = client.find("users", {"status": "active"})
        for user in active_users:
            print(user["name"])
    ''', live)
    out = printed(capsys)
    created = out[0].removeprefix("Created user: ")
    assert ObjectId.is_valid(created)
    assert stored(live, created)["tenant_id"] == "acme"  # the key's tenant, set by the gateway
    assert out[1:] == first_page_of_active_users()  # another tenant's users never appear


def test_client_initialization(
    live: Live, exchanges: list[tuple[httpx.Request, httpx.Response]]
) -> None:
    names = run('''
        from permission_mongo import PermissionMongo

        client = PermissionMongo(
            url="http://localhost:8080",
            api_key="your-api-key"
        )
    ''', live)
    basic = names["client"]
    # Configuration Parameters: timeout 30, max_retries 3.
    assert basic.retry_config.max_retries == 3 and basic._http.timeout.read == 30
    assert basic.count("users", {"status": "active"}) == ACTIVE

    names = run('''
        client = PermissionMongo(
            url="http://localhost:8080",
            api_key="your-api-key",
            timeout=30,  # Request timeout in seconds
            max_retries=3,  # Number of retries on failure
            verify_ssl=True,  # SSL certificate verification
            headers={
                "X-Custom-Header": "value"
            }
        )
    ''', live, PermissionMongo=PermissionMongo)  # imported by the previous snippet
    assert names["client"].count("users", {"status": "active"}) == ACTIVE
    request, response = exchanges[-1]
    assert request.headers["x-custom-header"] == "value" and response.status_code == 200


# -- Document Operations ---------------------------------------------------------------------


def test_create_document(
    live: Live, client: PermissionMongo, capsys: pytest.CaptureFixture[str]
) -> None:
    names = run('''
        # Create a new user
        user = client.insert("users", {
            "name": "Jane Smith",
            "email": "[email protected]",
            "department": "engineering",
            "status": "active"
        })

        print(f"Created user ID: {user['_id']}")
    ''', live, client=client)
    user = names["user"]
    assert printed(capsys) == [f"Created user ID: {user['_id']}"]
    # "The created_by, created_at, and updated_at fields are automatically added based on your
    # authentication context."
    assert user["created_by"] == "billing-service"
    assert isinstance(user["created_at"], dt.datetime) and user["updated_at"] == user["created_at"]
    assert stored(live, user["_id"])["tenant_id"] == "acme"


def test_get_document(live: Live, client: PermissionMongo, capsys: pytest.CaptureFixture[str]) -> None:
    example = '''
        # Get user by ID
        user = client.get("users", "507f1f77bcf86cd799439011")

        if user:
            print(f"User: {user['name']}")
        else:
            print("User not found or no permission")
    '''
    run(example, live, client=client)
    assert printed(capsys) == ["User: Jane Smith"]

    # The same call with another tenant's key: Jane is not theirs to see.
    with live.client("globex") as other_tenant:
        run(example, live, client=other_tenant)
    assert printed(capsys) == ["User not found or no permission"]


def test_update_document(
    live: Live, client: PermissionMongo, capsys: pytest.CaptureFixture[str]
) -> None:
    run('''
        # Update user status
        updated_user = client.update("users", "507f1f77bcf86cd799439011", {
            "status": "inactive",
            "last_active": "2024-03-04T10:00:00Z"
        })

        print(f"Updated user: {updated_user['_id']}")
    ''', live, client=client)
    assert printed(capsys) == [f"Updated user: {JANE}"]
    jane = stored(live, JANE)
    assert (jane["status"], jane["last_active"]) == ("inactive", "2024-03-04T10:00:00Z")


def test_delete_document(
    live: Live, client: PermissionMongo, capsys: pytest.CaptureFixture[str]
) -> None:
    run('''
        # Delete a user
        result = client.delete("users", "507f1f77bcf86cd799439011")

        if result["deleted"]:
            print(f"Deleted user: {result['id']}")
    ''', live, client=client)
    assert printed(capsys) == [f"Deleted user: {JANE}"]
    assert stored(live, JANE) is None


# -- Query Operations ------------------------------------------------------------------------


def test_find_documents(live: Live, client: PermissionMongo, capsys: pytest.CaptureFixture[str]) -> None:
    run('''
        # Find active users
        users = client.find("users", {
            "status": "active",
            "department": "engineering"
        })

        for user in users:
            print(f"{user['name']} - {user['email']}")
    ''', live, client=client)
    out = printed(capsys)
    assert len(out) == 20  # one page, the default limit
    assert out[:2] == ["Jane Smith - jane.smith@acme.test", "Engineer 00 - engineer0@acme.test"]


def test_find_with_pagination(
    live: Live, client: PermissionMongo, capsys: pytest.CaptureFixture[str]
) -> None:
    names = run('''
        # Paginated query
        result = client.find(
            "users",
            {"status": "active"},
            limit=20,
            sort=["name"],
            fields=["name", "email", "department"]
        )

        print(f"Found {len(result['data'])} users")

        # Get next page using cursor
        if result['pagination']['has_more']:
            next_result = client.find(
                "users",
                {"status": "active"},
                limit=20,
                cursor=result['pagination']['cursor']
            )
    ''', live, client=client)
    assert printed(capsys) == ["Found 20 users"]
    first = names["result"]["data"]
    assert [user["name"] for user in first] == sorted(user["name"] for user in first)
    assert all(set(user) == {"_id", "name", "email", "department"} for user in first)
    following = names["next_result"]["data"]
    assert len(following) == 20
    assert not {user["_id"] for user in first} & {user["_id"] for user in following}


def test_count_documents(live: Live, client: PermissionMongo, capsys: pytest.CaptureFixture[str]) -> None:
    names = run('''
        # Count active users
        count = client.count("users", {"status": "active"})
        print(f"Active users: {count}")

        # Count all users in department
        dept_count = client.count("users", {
            "department": "engineering",
            "status": {"$in": ["active", "pending"]}
        })
    ''', live, client=client)
    assert printed(capsys) == [f"Active users: {ACTIVE}"]
    assert names["dept_count"] == ACTIVE  # Jane and the engineers; the pending ones are in sales


def test_aggregate(live: Live, client: PermissionMongo, capsys: pytest.CaptureFixture[str]) -> None:
    names = run('''
        # Group users by department
        result = client.aggregate("users", [
            {"$match": {"status": "active"}},
            {"$group": {
                "_id": "$department",
                "count": {"$sum": 1},
                "avg_salary": {"$avg": "$salary"}
            }},
            {"$sort": {"count": -1}}
        ])

        for dept in result:
            print(f"{dept['_id']}: {dept['count']} users")
    ''', live, client=client)
    # "Permission filters are automatically injected": the other tenant's engineers are not here.
    assert printed(capsys) == [f"engineering: {ACTIVE} users"]
    salaries = [100, *(90 + n for n in range(45))]
    assert names["result"][0]["avg_salary"] == pytest.approx(sum(salaries) / len(salaries))


# -- Batch Operations ------------------------------------------------------------------------


def test_batch_create(live: Live, client: PermissionMongo, capsys: pytest.CaptureFixture[str]) -> None:
    run('''
        # Create multiple users
        users = [
            {"name": "Alice", "email": "[email protected]", "role": "engineer"},
            {"name": "Bob", "email": "[email protected]", "role": "manager"},
            {"name": "Charlie", "email": "[email protected]", "role": "engineer"}
        ]

        result = client.batch_create("users", users)

        print(f"Created: {len(result['created'])} users")
        if result['failed']:
            print(f"Failed: {len(result['failed'])} users")
            for failure in result['failed']:
                print(f"  Index {failure['index']}: {failure['error']['message']}")
    ''', live, client=client)
    assert printed(capsys) == ["Created: 3 users"]
    made = live.db.users.find({"name": {"$in": ["Alice", "Bob", "Charlie"]}})
    assert sorted((user["name"], user["tenant_id"]) for user in made) == [
        ("Alice", "acme"), ("Bob", "acme"), ("Charlie", "acme")
    ]


def test_batch_update(live: Live, client: PermissionMongo, capsys: pytest.CaptureFixture[str]) -> None:
    names = run('''
        # Update by IDs
        result = client.batch_update(
            "users",
            ids=["507f1f77bcf86cd799439011", "507f1f77bcf86cd799439012"],
            update={"status": "inactive"}
        )

        print(f"Matched: {result['matched']}, Modified: {result['modified']}")

        # Update by filter
        result = client.batch_update(
            "users",
            filter={"department": "sales", "status": "pending"},
            update={"status": "active"}
        )
    ''', live, client=client)
    assert printed(capsys) == ["Matched: 2, Modified: 2"]
    assert stored(live, JANE)["status"] == stored(live, JOHN)["status"] == "inactive"
    # John went inactive first, so only Paula was still a pending salesperson.
    assert (names["result"]["matched"], names["result"]["modified"]) == (1, 1)
    assert live.db.users.find_one({"name": "Paula Price"})["status"] == "active"


def test_batch_update_skips_what_the_caller_may_not_modify(live: Live) -> None:
    # "Documents you don't have permission to modify will be silently skipped."
    with live.client("globex") as other_tenant:
        result = other_tenant.batch_update("users", ids=[JANE, JOHN], update={"status": "inactive"})
    assert (result["matched"], result["modified"]) == (0, 0)
    assert stored(live, JANE)["status"] == "active"


def test_batch_delete(live: Live, client: PermissionMongo, capsys: pytest.CaptureFixture[str]) -> None:
    names = run('''
        # Delete by IDs
        result = client.batch_delete(
            "users",
            ids=["507f1f77bcf86cd799439011", "507f1f77bcf86cd799439012"]
        )

        print(f"Deleted {result['deleted']} documents")

        # Delete by filter
        result = client.batch_delete(
            "users",
            filter={"status": "archived", "last_active": {"$lt": "2023-01-01"}}
        )
    ''', live, client=client)
    assert printed(capsys) == ["Deleted 2 documents"]
    assert stored(live, JANE) is None and stored(live, JOHN) is None
    assert names["result"] == {"deleted": 1}  # Archie; Amy was active in 2024
    assert [user["name"] for user in live.db.users.find({"status": "archived"})] == ["Amy Recent"]


# -- Error Handling --------------------------------------------------------------------------


def unreachable_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more


def test_exception_types(live: Live, client: PermissionMongo, capsys: pytest.CaptureFixture[str]) -> None:
    example = '''
        from permission_mongo import (
            PermissionMongoError,
            AuthenticationError,
            PermissionDeniedError,
            NotFoundError,
            ValidationError,
            RateLimitError
        )

        try:
            user = client.get("users", "invalid-id")
        except NotFoundError:
            print("User not found")
        except PermissionDeniedError:
            print("No permission to access this user")
        except AuthenticationError:
            print("Authentication failed")
        except PermissionMongoError as e:
            print(f"Error: {e}")
    '''
    # The documentation is at odds with itself here: get() returns None for a missing document
    # ("Get Document", and "dict or None" in the API reference), so `except NotFoundError` is
    # never taken for a get; update() and delete() of a missing document raise it. And
    # "invalid-id" is a well-formed string id to the gateway, so this prints nothing.
    names = run(example, live, client=client)
    assert names["user"] is None and printed(capsys) == []

    # Each other clause, with the key (or URL) that leads to it.
    with live.client("guest") as guest:  # a role with no rule on users
        run(example, live, client=guest)
    with PermissionMongo(url=live.url, api_key=new_admin_key()) as stranger:  # no such key
        run(example, live, client=stranger)
    with PermissionMongo(url=unreachable_url(), api_key=live.keys["app"]) as nowhere:
        run(example, live, client=nowhere)
    out = printed(capsys)
    assert out[:2] == ["No permission to access this user", "Authentication failed"]
    assert out[2].startswith("Error: GET /v1/data/users/invalid-id failed")
    # NotFoundError, from the calls that raise it:
    with pytest.raises(NotFoundError):
        client.update("users", NOBODY, {"status": "inactive"})
    with pytest.raises(NotFoundError):
        client.delete("users", NOBODY)


def test_error_response_format(
    live: Live, client: PermissionMongo, capsys: pytest.CaptureFixture[str]
) -> None:
    run('''
        try:
            client.insert("users", {"name": ""})
        except ValidationError as e:
            print(f"Status: {e.status_code}")
            print(f"Code: {e.error_code}")
            print(f"Message: {e.message}")
            print(f"Details: {e.details}")
    ''', live, client=client, ValidationError=ValidationError)  # imported in "Exception Types"
    out = printed(capsys)
    assert out[:2] == ["Status: 422", "Code: VALIDATION_ERROR"], out
    assert "name" in out[2] and "name" in out[3]
    assert live.db.users.count_documents({"name": ""}) == 0


# -- Advanced Features -----------------------------------------------------------------------


def test_context_manager(live: Live) -> None:
    # PermissionMongo is imported by the earlier snippets.
    names = run('''
        with PermissionMongo(url="http://localhost:8080", api_key="key") as client:
            users = client.find("users", {"status": "active"})
            # Client automatically closes when exiting the context
    ''', live, PermissionMongo=PermissionMongo)
    assert [user["name"] for user in names["users"]] == first_page_of_active_users()
    assert names["client"]._http.is_closed


def test_async_support(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    run('''
        from permission_mongo import AsyncPermissionMongo
        import asyncio

        async def main():
            async with AsyncPermissionMongo(
                url="http://localhost:8080",
                api_key="your-api-key"
            ) as client:
                # All operations support async
                user = await client.insert("users", {
                    "name": "Async User",
                    "email": "[email protected]"
                })

                users = await client.find("users", {"status": "active"})
                async for user in users:
                    print(user["name"])

        asyncio.run(main())
    ''', live)
    assert printed(capsys) == first_page_of_active_users()
    assert live.db.users.find_one({"name": "Async User"})["tenant_id"] == "acme"


def test_async_client_sees_what_the_sync_client_sees(live: Live) -> None:
    # "All operations support async": every call of the examples, awaited, answers alike.
    import asyncio

    async def calls(client: AsyncPermissionMongo) -> list[Any]:
        page = await client.find("users", {"status": "active"}, limit=20, sort=["name"])
        return [
            await client.get("users", JANE),
            await client.count("users", {"status": "active"}),
            [user async for user in page],
            await client.aggregate("users", [{"$group": {"_id": "$department", "n": {"$sum": 1}}},
                                             {"$sort": {"_id": 1}}]),
        ]

    async def main() -> list[Any]:
        async with AsyncPermissionMongo(url=live.url, api_key=live.keys["app"]) as client:
            return await calls(client)

    with live.client() as client:
        expected = [
            client.get("users", JANE),
            client.count("users", {"status": "active"}),
            list(client.find("users", {"status": "active"}, limit=20, sort=["name"])),
            client.aggregate("users", [{"$group": {"_id": "$department", "n": {"$sum": 1}}},
                                       {"$sort": {"_id": 1}}]),
        ]
    assert asyncio.run(main()) == expected


def test_custom_headers(
    live: Live,
    client: PermissionMongo,
    exchanges: list[tuple[httpx.Request, httpx.Response]],
) -> None:
    names = run('''
        # Add custom headers to a single request
        user = client.get(
            "users",
            "507f1f77bcf86cd799439011",
            headers={"X-Request-ID": "abc-123"}
        )

        # Update default headers
        client.set_headers({
            "X-Tenant-ID": "tenant-123",
            "X-User-ID": "user-456"
        })
    ''', live, client=client)
    assert names["user"]["name"] == "Jane Smith"
    request, response = exchanges[-1]
    assert request.headers["x-request-id"] == response.headers["x-request-id"] == "abc-123"

    # Later requests carry the default headers, and the gateway takes the caller's tenant from
    # the API key, never from a header: the same users as before.
    assert client.count("users", {"status": "active"}) == ACTIVE
    request, _ = exchanges[-1]
    assert (request.headers["x-tenant-id"], request.headers["x-user-id"]) == ("tenant-123", "user-456")
    assert "x-request-id" not in request.headers  # that one was for a single request


def test_retry_configuration(live: Live) -> None:
    names = run('''
        from permission_mongo import RetryConfig

        client = PermissionMongo(
            url="http://localhost:8080",
            api_key="your-api-key",
            retry_config=RetryConfig(
                max_retries=5,
                backoff_factor=2,  # Exponential backoff: 2, 4, 8, 16 seconds
                retry_on_status=[408, 429, 500, 502, 503, 504]
            )
        )
    ''', live, PermissionMongo=PermissionMongo)  # imported by the earlier snippets
    config = names["client"].retry_config
    assert config.max_retries == 5
    assert config.retry_on_status == {408, 429, 500, 502, 503, 504}
    # The comment's waits (before jitter, which only shortens them):
    waits = [retry_delay(n, None, config=config, now=0, rand=0.0) for n in range(4)]
    assert waits == [2, 4, 8, 16]
    assert names["client"].count("users") == len(live.stored) - len(_globex_users())


# -- Best Practices --------------------------------------------------------------------------


def acme_ids(live: Live) -> list[str]:
    return [str(user["_id"]) for user in live.stored if user["tenant_id"] == "acme"]


def test_connection_pooling(live: Live, opened: list[PermissionMongo]) -> None:
    user_ids = (acme_ids(live) * 2)[:100]  # the snippet's list of ids
    good = run('''
        # Good: Reuse client
        client = PermissionMongo(url="http://localhost:8080", api_key="key")

        for i in range(100):
            user = client.get("users", user_ids[i])
    ''', live, PermissionMongo=PermissionMongo, user_ids=user_ids)
    assert good["user"]["_id"] == ObjectId(user_ids[99]) and len(opened) == 1

    bad = run('''
        # Bad: Creating new client for each request
        for i in range(100):
            client = PermissionMongo(url="http://localhost:8080", api_key="key")
            user = client.get("users", user_ids[i])
    ''', live, PermissionMongo=PermissionMongo, user_ids=user_ids)
    assert bad["user"] == good["user"] and len(opened) == 101  # it works, one client per call


def test_pagination(live: Live, client: PermissionMongo) -> None:
    names = run('''
        def fetch_all_users():
            """Fetch all users using cursor pagination"""
            cursor = None
            all_users = []

            while True:
                result = client.find(
                    "users",
                    {"status": "active"},
                    limit=100,
                    cursor=cursor
                )

                all_users.extend(result['data'])

                if not result['pagination']['has_more']:
                    break

                cursor = result['pagination']['cursor']

            return all_users
    ''', live, client=client)
    fetch_all_users = names["fetch_all_users"]
    everyone = fetch_all_users()
    assert len(everyone) == ACTIVE and len({user["_id"] for user in everyone}) == ACTIVE

    # More users than one page holds: the loop follows the cursor to the end.
    client.batch_create("users", [{"name": f"New {n:03}", "status": "active"} for n in range(200)])
    everyone = fetch_all_users()
    assert len(everyone) == ACTIVE + 200 and len({user["_id"] for user in everyone}) == ACTIVE + 200


def test_error_handling_best_practice(
    live: Live, client: PermissionMongo, caplog: pytest.LogCaptureFixture
) -> None:
    example = '''
        import logging
        from permission_mongo import PermissionDeniedError, NotFoundError

        logger = logging.getLogger(__name__)

        def safe_get_user(user_id):
            try:
                return client.get("users", user_id)
            except NotFoundError:
                logger.warning(f"User {user_id} not found")
                return None
            except PermissionDeniedError:
                logger.error(f"Permission denied for user {user_id}")
                raise
            except Exception as e:
                logger.exception(f"Unexpected error fetching user {user_id}")
                raise
    '''
    safe_get_user = run(example, live, client=client)["safe_get_user"]
    assert safe_get_user(JANE)["name"] == "Jane Smith"
    # get() already returns None for a missing user (see test_exception_types): the None comes
    # without the NotFoundError branch's warning.
    assert safe_get_user(NOBODY) is None

    with live.client("guest") as guest:
        safe_get_user = run(example, live, client=guest)["safe_get_user"]
        with pytest.raises(PermissionDeniedError):
            safe_get_user(JANE)
    messages = [r.getMessage() for r in caplog.records if r.name == "seed_example"]
    assert messages == [f"Permission denied for user {JANE}"]


def test_batch_operations_best_practice(live: Live, client: PermissionMongo) -> None:
    user_ids = acme_ids(live)
    run('''
        # Good: Batch update
        client.batch_update(
            "users",
            ids=user_ids,
            update={"last_notification": datetime.now()}
        )
    ''', live, client=client, user_ids=user_ids, datetime=dt.datetime)  # the snippet imports neither
    notified = live.db.users.find({"last_notification": {"$exists": True}})
    assert sorted(str(user["_id"]) for user in notified) == sorted(user_ids)


def test_the_bad_individual_update_example_is_wrong_as_written(
    live: Live, client: PermissionMongo
) -> None:
    # Documentation mistake: "Bad: Individual updates" calls update() without its collection;
    # it should read client.update("users", user_id, {...}). As written it cannot run.
    with pytest.raises(TypeError):
        run('''
            # Bad: Individual updates
            for user_id in user_ids:
                client.update(user_id, {"last_notification": datetime.now()})
        ''', live, client=client, user_ids=[JANE], datetime=dt.datetime)


# -- Examples --------------------------------------------------------------------------------


def test_multi_tenant_application(live: Live) -> None:
    # The snippet has no imports: PermissionMongo and PermissionDeniedError come from the
    # earlier sections.
    names = run('''
        class UserService:
            def __init__(self, api_key):
                self.client = PermissionMongo(
                    url="http://localhost:8080",
                    api_key=api_key
                )

            def create_user(self, data):
                """Create a new user with automatic tenant isolation"""
                return self.client.insert("users", data)

            def get_team_members(self, team_id):
                """Get all members of a team"""
                return self.client.find("users", {
                    "team_id": team_id,
                    "status": "active"
                })

            def update_user_role(self, user_id, new_role):
                """Update user role with permission checks"""
                try:
                    return self.client.update("users", user_id, {
                        "role": new_role
                    })
                except PermissionDeniedError:
                    raise ValueError("You don't have permission to change user roles")
    ''', live, PermissionMongo=PermissionMongo, PermissionDeniedError=PermissionDeniedError)
    UserService = names["UserService"]
    acme, globex = UserService(live.keys["app"]), UserService(live.keys["globex"])

    tess = acme.create_user({"name": "Tess", "email": "tess@acme.test", "team_id": "t1", "status": "active"})
    assert stored(live, tess["_id"])["tenant_id"] == "acme"
    # Team t1 exists in both tenants; each service sees its own members only.
    assert [user["name"] for user in acme.get_team_members("t1")] == ["Tess"]
    assert sorted(user["name"] for user in globex.get_team_members("t1")) == [f"Globex {n}" for n in range(5)]

    assert acme.update_user_role(tess["_id"], "lead")["role"] == "lead"
    # A member may edit people of the tenant but not their role (deny_write): the service's
    # ValueError. Another tenant's service does not even find Tess.
    member = UserService(live.keys["member"])
    with pytest.raises(ValueError, match="permission to change user roles"):
        member.update_user_role(tess["_id"], "admin")
    assert member.client.update("users", tess["_id"], {"status": "inactive"})["status"] == "inactive"
    with pytest.raises(NotFoundError):
        globex.update_user_role(tess["_id"], "admin")
    assert stored(live, tess["_id"])["role"] == "lead"


EXPORT_AND_IMPORT = '''
    import csv

    def export_users_to_csv(filename):
        """Export all accessible users to CSV"""
        with open(filename, 'w', newline='') as csvfile:
            writer = csv.DictWriter(
                csvfile,
                fieldnames=['id', 'name', 'email', 'department']
            )
            writer.writeheader()

            cursor = None
            while True:
                result = client.find(
                    "users",
                    {"status": "active"},
                    limit=1000,
                    cursor=cursor,
                    fields=["name", "email", "department"]
                )

                for user in result['data']:
                    writer.writerow({
                        'id': user['_id'],
                        'name': user['name'],
                        'email': user['email'],
                        'department': user.get('department', 'N/A')
                    })

                if not result['pagination']['has_more']:
                    break

                cursor = result['pagination']['cursor']
'''

BULK_IMPORT = '''
    def import_users_from_csv(filename):
        """Import users from CSV with batch operations"""
        batch = []
        batch_size = 100

        with open(filename, 'r') as csvfile:
            reader = csv.DictReader(csvfile)

            for row in reader:
                batch.append({
                    'name': row['name'],
                    'email': row['email'],
                    'department': row['department'],
                    'status': 'active'
                })

                if len(batch) >= batch_size:
                    result = client.batch_create("users", batch)
                    print(f"Imported {len(result['created'])} users")

                    if result['failed']:
                        print(f"Failed: {len(result['failed'])} users")

                    batch = []

            # Import remaining users
            if batch:
                result = client.batch_create("users", batch)
                print(f"Imported {len(result['created'])} users")
'''


def test_data_export(live: Live, client: PermissionMongo, tmp_path: Path) -> None:
    export_users_to_csv = run(EXPORT_AND_IMPORT, live, client=client)["export_users_to_csv"]
    exported = tmp_path / "users.csv"
    export_users_to_csv(exported)
    with exported.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == ACTIVE
    assert {row["id"] for row in rows} == {
        str(user["_id"]) for user in live.stored
        if user["tenant_id"] == "acme" and user["status"] == "active"
    }
    assert rows[0] == {"id": JANE, "name": "Jane Smith", "email": "jane.smith@acme.test",
                       "department": "engineering"}


def test_bulk_import(
    live: Live, client: PermissionMongo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "people.csv"
    with source.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["name", "email", "department"])
        writer.writeheader()
        writer.writerows(
            {"name": f"Imported {n:03}", "email": f"i{n}@acme.test", "department": "support"}
            for n in range(150)
        )
    # The snippet uses csv, imported by the Data Export snippet before it.
    import_users_from_csv = run(BULK_IMPORT, live, client=client, csv=csv)["import_users_from_csv"]
    import_users_from_csv(source)
    assert printed(capsys) == ["Imported 100 users", "Imported 50 users"]
    assert client.count("users", {"department": "support", "status": "active"}) == 150


def test_export_then_import_round_trip(
    live: Live, client: PermissionMongo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The two examples together: what one tenant exports, the import brings back as new users.
    names = run(EXPORT_AND_IMPORT, live, client=client)
    names.update(run(BULK_IMPORT, live, client=client, csv=csv))
    exported = tmp_path / "users.csv"
    names["export_users_to_csv"](exported)
    names["import_users_from_csv"](exported)
    assert printed(capsys) == [f"Imported {ACTIVE} users"]
    assert client.count("users", {"status": "active"}) == 2 * ACTIVE


# -- Migration Guide, Troubleshooting --------------------------------------------------------


def test_migration_from_pymongo(live: Live, mongo_uri: str) -> None:
    before = run('''
        # Before: PyMongo
        from pymongo import MongoClient

        mongo = MongoClient("mongodb://localhost:27017")
        db = mongo['mydb']
        users = db.users.find({"status": "active"})
    ''', live, replace={"mongodb://localhost:27017": mongo_uri})
    with before["mongo"]:
        assert list(before["users"]) == []  # the test server has no "mydb" users

    after = run('''
        # After: Permission Mongo SDK
        from permission_mongo import PermissionMongo

        client = PermissionMongo(
            url="http://localhost:8080",
            api_key="your-api-key"
        )
        users = client.find("users", {"status": "active"})
    ''', live)
    assert [user["name"] for user in after["users"]] == first_page_of_active_users()


def test_troubleshooting_invalid_api_key(live: Live) -> None:
    # "Problem: AuthenticationError: Invalid API key"
    with PermissionMongo(url=live.url, api_key=new_admin_key()) as client:
        with pytest.raises(AuthenticationError, match="(?i)invalid API key"):
            client.find("users", {"status": "active"})


@contextlib.contextmanager
def root_logger_of_a_fresh_script() -> Iterator[None]:
    """The root logger without handlers, as a script starts with it, so that the example's
    ``logging.basicConfig`` takes effect as it does for a user; restored afterwards (pytest's
    own capture handlers included)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers.clear()
    try:
        yield
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)


def test_debug_mode(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    with root_logger_of_a_fresh_script():
        names = run('''
            import logging

            logging.basicConfig(level=logging.DEBUG)

            client = PermissionMongo(
                url="http://localhost:8080",
                api_key="your-api-key"
            )

            # Now all requests and responses will be logged
        ''', live, PermissionMongo=PermissionMongo)  # imported by the earlier snippets
        assert logging.getLogger().handlers[0].stream is sys.stderr  # basicConfig took effect
        names["client"].get("users", JANE, headers={"X-Request-ID": "debug-1"})
    logged = capsys.readouterr().err
    assert f"DEBUG:permission_mongo:GET /v1/data/users/{JANE} -> 200 in " in logged
    assert "request_id=debug-1" in logged
    assert live.keys["app"] not in logged
