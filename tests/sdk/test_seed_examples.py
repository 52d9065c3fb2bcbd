"""The SDK documentation's examples (``shared/seeds/000_*``), run as written.

Each snippet is the documentation's text; only the gateway's URL and the API key are swapped
for the fake gateway's. They run against the fake gateway over real HTTP.
"""

from __future__ import annotations

import csv
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from permission_mongo import PermissionMongo

from .conftest import API_KEY
from .fake_gateway import FakeGateway

SEED_URL = "http://localhost:8080"
JANE = ObjectId("507f1f77bcf86cd799439011")
JOHN = ObjectId("507f1f77bcf86cd799439012")


def run(source: str, gateway: FakeGateway, **names: Any) -> dict[str, Any]:
    """Execute a documentation snippet; returns its globals."""
    code = (
        textwrap.dedent(source)
        .replace(SEED_URL, gateway.url)
        .replace('api_key="your-api-key"', f"api_key={API_KEY!r}")
        .replace('api_key="key"', f"api_key={API_KEY!r}")
    )
    namespace: dict[str, Any] = {"__name__": "seed_example", **names}
    exec(compile(code, "<seed example>", "exec"), namespace)
    return namespace


@pytest.fixture(autouse=True)
def close_clients_the_examples_leave_open(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Several examples make a client and never close it (fine in a script that ends there).
    opened: list[PermissionMongo] = []
    make = PermissionMongo.__init__

    def recording_init(self: PermissionMongo, *args: Any, **kwargs: Any) -> None:
        make(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(PermissionMongo, "__init__", recording_init)
    yield
    for client in opened:
        client.close()


@pytest.fixture
def client(gateway: FakeGateway) -> Iterator[PermissionMongo]:
    with PermissionMongo(url=gateway.url, api_key=API_KEY) as client:
        yield client


@pytest.fixture
def users(gateway: FakeGateway) -> FakeGateway:
    """The users the examples refer to: the two ids they quote, and 45 active engineers."""
    gateway.seed(
        "users",
        {"_id": JANE, "name": "Jane Smith", "email": "jane@example.com",
         "department": "engineering", "status": "active", "salary": 100},
        {"_id": JOHN, "name": "John Doe", "email": "john@example.com",
         "department": "sales", "status": "pending", "salary": 80},
        *[{"name": f"Engineer {n:02}", "email": f"e{n}@example.com",
           "department": "engineering", "status": "active", "salary": 90 + n} for n in range(45)],
    )
    return gateway


def test_quick_start(users: FakeGateway, capsys: pytest.CaptureFixture[str]) -> None:
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
    ''', users)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Created user: ") and ObjectId.is_valid(lines[0].split(": ")[1])
    assert lines[1:] and "Jane Smith" in lines[1:]


def test_client_initialization(gateway: FakeGateway) -> None:
    names = run('''
        from permission_mongo import PermissionMongo

        client = PermissionMongo(
            url="http://localhost:8080",
            api_key="your-api-key"
        )

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
    ''', gateway)
    assert names["client"].retry_config.max_retries == 3
    assert names["client"].count("users") == 0
    assert gateway.requests[-1].headers["x-custom-header"] == "value"


def test_document_operations(
    users: FakeGateway, client: PermissionMongo, capsys: pytest.CaptureFixture[str]
) -> None:
    run('''
        # Create a new user
        user = client.insert("users", {
            "name": "Jane Smith",
            "email": "[email protected]",
            "department": "engineering",
            "status": "active"
        })

        print(f"Created user ID: {user['_id']}")

        # Get user by ID
        user = client.get("users", "507f1f77bcf86cd799439011")

        if user:
            print(f"User: {user['name']}")
        else:
            print("User not found or no permission")

        # Update user status
        updated_user = client.update("users", "507f1f77bcf86cd799439011", {
            "status": "inactive",
            "last_active": "2024-03-04T10:00:00Z"
        })

        print(f"Updated user: {updated_user['_id']}")

        # Delete a user
        result = client.delete("users", "507f1f77bcf86cd799439011")

        if result["deleted"]:
            print(f"Deleted user: {result['id']}")
    ''', users, client=client)
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == [
        "User: Jane Smith",
        f"Updated user: {JANE}",
        f"Deleted user: {JANE}",
    ]
    assert JANE not in [d["_id"] for d in users.documents("users")]


def test_query_operations(
    users: FakeGateway, client: PermissionMongo, capsys: pytest.CaptureFixture[str]
) -> None:
    names = run('''
        # Find active users
        users = client.find("users", {
            "status": "active",
            "department": "engineering"
        })

        for user in users:
            print(f"{user['name']} - {user['email']}")

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

        # Count active users
        count = client.count("users", {"status": "active"})
        print(f"Active users: {count}")

        # Count all users in department
        dept_count = client.count("users", {
            "department": "engineering",
            "status": {"$in": ["active", "pending"]}
        })

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
    ''', users, client=client)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 20 + 3  # one page of 20, then the three summaries
    assert out[20:] == ["Found 20 users", "Active users: 46", "engineering: 46 users"]
    assert len(names["next_result"]) == 20
    assert names["dept_count"] == 46


def test_batch_operations(
    users: FakeGateway, client: PermissionMongo, capsys: pytest.CaptureFixture[str]
) -> None:
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
    ''', users, client=client)
    assert capsys.readouterr().out.splitlines() == [
        "Created: 3 users",
        "Matched: 2, Modified: 2",
        "Deleted 2 documents",
    ]


def test_error_handling(
    users: FakeGateway, client: PermissionMongo, capsys: pytest.CaptureFixture[str]
) -> None:
    run('''
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

        try:
            client.insert("users", {"name": ""})
        except ValidationError as e:
            print(f"Status: {e.status_code}")
            print(f"Code: {e.error_code}")
            print(f"Message: {e.message}")
            print(f"Details: {e.details}")
    ''', users, client=client)
    # The gateway refuses an id that is not an ObjectId (400, a ValidationError), which the
    # example's last clause catches; a well-formed id of no document would give None.
    assert capsys.readouterr().out.splitlines() == [
        "Error: 'invalid-id' is not a valid id",
        "Status: 422",
        "Code: VALIDATION_ERROR",
        "Message: name must not be empty",
        "Details: {'field': 'name'}",
    ]


def test_context_manager(users: FakeGateway) -> None:
    names = run('''
        with PermissionMongo(url="http://localhost:8080", api_key="key") as client:
            users = client.find("users", {"status": "active"})
            # Client automatically closes when exiting the context
    ''', users, PermissionMongo=PermissionMongo)
    assert len(names["users"]) == 20
    assert names["client"]._http.is_closed


def test_async_support(users: FakeGateway, capsys: pytest.CaptureFixture[str]) -> None:
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
    ''', users)
    assert len(capsys.readouterr().out.splitlines()) == 20
    assert "Async User" in [d["name"] for d in users.documents("users")]


def test_custom_headers_and_retry_configuration(
    users: FakeGateway, client: PermissionMongo
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
    ''', users, client=client, PermissionMongo=PermissionMongo)
    assert names["user"]["name"] == "Jane Smith"
    assert users.requests[0].headers["x-request-id"] == "abc-123"
    client.count("users")
    assert users.requests[-1].headers["x-tenant-id"] == "tenant-123"
    assert users.requests[-1].headers["x-user-id"] == "user-456"
    retrying = names["client"]
    assert retrying.retry_config.max_retries == 5 and retrying.retry_config.backoff_factor == 2


def test_best_practices(
    users: FakeGateway, client: PermissionMongo, capsys: pytest.CaptureFixture[str]
) -> None:
    user_ids = [str(d["_id"]) for d in users.documents("users")] * 3
    names = run('''
        # Good: Reuse client
        client = PermissionMongo(url="http://localhost:8080", api_key="key")

        for i in range(100):
            user = client.get("users", user_ids[i])

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

        from datetime import datetime
        # Good: Batch update
        client.batch_update(
            "users",
            ids=user_ids,
            update={"last_notification": datetime.now()}
        )
    ''', users, PermissionMongo=PermissionMongo, user_ids=user_ids[:100])
    assert len(names["fetch_all_users"]()) == 46
    assert names["safe_get_user"](str(JANE))["name"] == "Jane Smith"
    assert names["safe_get_user"]("507f191e810c19729de860ea") is None
    assert all("last_notification" in d for d in users.documents("users"))


def test_the_bad_individual_update_example_is_wrong_as_written(
    users: FakeGateway, client: PermissionMongo
) -> None:
    # The documentation's "Bad: Individual updates" calls update() without a collection.
    with pytest.raises(TypeError):
        run('''
            from datetime import datetime
            for user_id in user_ids:
                client.update(user_id, {"last_notification": datetime.now()})
        ''', users, client=client, user_ids=[str(JANE)])


def test_multi_tenant_service(users: FakeGateway) -> None:
    names = run('''
        from permission_mongo import PermissionMongo, PermissionDeniedError

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
    ''', users)
    service = names["UserService"](API_KEY)
    created = service.create_user({"name": "Tess", "team_id": "t1", "status": "active"})
    assert [u["name"] for u in service.get_team_members("t1")] == ["Tess"]
    assert service.update_user_role(created["_id"], "lead")["role"] == "lead"


def test_data_export_and_bulk_import(
    users: FakeGateway, client: PermissionMongo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = run('''
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
    ''', users, client=client)
    exported = tmp_path / "users.csv"
    names["export_users_to_csv"](exported)
    with exported.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 46 and all(ObjectId.is_valid(row["id"]) for row in rows)

    names["import_users_from_csv"](exported)
    assert capsys.readouterr().out.splitlines() == ["Imported 46 users"]
    assert client.count("users", {"status": "active"}) == 92


def test_migration_and_debug_mode(users: FakeGateway) -> None:
    names = run('''
        # After: Permission Mongo SDK
        from permission_mongo import PermissionMongo

        client = PermissionMongo(
            url="http://localhost:8080",
            api_key="your-api-key"
        )
        users = client.find("users", {"status": "active"})

        import logging

        logging.basicConfig(level=logging.DEBUG)

        client = PermissionMongo(
            url="http://localhost:8080",
            api_key="your-api-key"
        )

        # Now all requests and responses will be logged
    ''', users)
    assert len(names["users"]) == 20
