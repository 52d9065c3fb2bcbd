"""Fixtures of the fault tests: per module, a database of its own that the tests kill or freeze,
and a real gateway process on it.

A module sets what the gateway runs with by overriding ``server_yml``. The gateway is never
restarted by a test: recovering on its own is part of what is tested.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pymongo
import pytest

from ..server.harness import Gateway, clean_environment, new_admin_key, serve_command, write_config
from .harness import FaultyDatabase

COLLECTION = "customers"  # the examples' collection without versioning: one write per create
TENANT = "faults"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultyDatabase]:
    with FaultyDatabase(tmp_path_factory.mktemp("faulty-db")) as faulty:
        yield faulty


@pytest.fixture(scope="module")
def server_yml() -> str:
    return """\
mongodb:
  timeout: 2
auth:
  api_keys:
    cache_seconds: 30
"""


@pytest.fixture(scope="module")
def database_name() -> str:
    return f"pmtest_faults_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def admin_key() -> str:
    return new_admin_key()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    database: FaultyDatabase,
    database_name: str,
    server_yml: str,
    admin_key: str,
) -> Iterator[Gateway]:
    config_dir = write_config(tmp_path_factory.mktemp("faults-config"), server_yml)
    command = serve_command(config_dir, "--port", "0", "--mongodb-uri", database.uri, "--database", database_name)
    server = Gateway(command, env=clean_environment({"PM_ADMIN_KEY": admin_key})).start()
    yield server
    database.thaw()  # a frozen database would hold the gateway's shutdown
    server.stop()


@pytest.fixture(scope="module")
def api_key(gateway: Gateway, admin_key: str) -> str:
    """An API key of the tenant's admin role (create and read on ``customers``)."""
    with gateway.client(admin_key) as admin:
        made = admin.post(
            "/v1/admin/api-keys", json={"identity": {"id": "writer", "tenant_id": TENANT, "roles": ["admin"]}}
        )
    assert made.status_code == 201, made.text
    return str(made.json()["key"])


@pytest.fixture(scope="module")
def client(gateway: Gateway, api_key: str) -> Iterator[httpx.Client]:
    with gateway.client(api_key) as http:
        yield http


@pytest.fixture(scope="module")
def stored(database: FaultyDatabase, database_name: str) -> Iterator[pymongo.collection.Collection[Any]]:
    """The collection as the database holds it, read directly (it outlives kills)."""
    mongo: pymongo.MongoClient[Any] = pymongo.MongoClient(database.uri, serverSelectionTimeoutMS=20_000)
    yield mongo[database_name][COLLECTION]
    mongo.close()
