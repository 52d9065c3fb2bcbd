"""Test fixtures shared by every suite: the database.

The session starts SecantusDB as a child process (real wire protocol, real pymongo);
``MONGO_URI`` points the suite at a real MongoDB instead. Each test gets a fresh database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pymongo
import pytest

from permission_mongo.embedded import EmbeddedDatabase


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    uri = os.environ.get("MONGO_URI")
    if uri:
        yield uri
        return
    # Not durable: the suite's data may be lost with the process, and syncing every commit
    # would slow it down (the fault tests start their own database).
    with EmbeddedDatabase(tmp_path_factory.mktemp("secantus"), durable=False) as database:
        yield database.uri


@pytest.fixture(scope="session")
def mongo_client(mongo_uri: str) -> Iterator[pymongo.MongoClient]:
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_uri, tz_aware=False)
    yield client
    client.close()


def _fresh_database(client: pymongo.MongoClient) -> Iterator[pymongo.database.Database]:
    name = f"pmtest_{uuid.uuid4().hex[:12]}"
    yield client[name]
    client.drop_database(name)


@pytest.fixture
def db(mongo_client: pymongo.MongoClient) -> Iterator[pymongo.database.Database]:
    """A database of its own for one test, dropped afterwards."""
    yield from _fresh_database(mongo_client)


@pytest.fixture(scope="module")
def module_db(mongo_client: pymongo.MongoClient) -> Iterator[pymongo.database.Database]:
    """A database shared by the tests of one module (for data that is slow to build)."""
    yield from _fresh_database(mongo_client)
