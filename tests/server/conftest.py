"""Fixtures: the real gateway process over real HTTP, on the test database.

``gateway`` is one server for the session (HS256 JWTs with issuer and audience, a bootstrap
admin key, the examples' policy); ``start_gateway`` starts more with other settings.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import pymongo
import pytest

from .harness import (
    JWT_AUDIENCE,
    JWT_ISSUER,
    JWT_SECRET,
    Gateway,
    clean_environment,
    new_admin_key,
    serve_command,
    write_config,
)


@pytest.fixture(scope="session")
def admin_key() -> str:
    return new_admin_key()


@pytest.fixture(scope="session")
def gateway_database(mongo_client: pymongo.MongoClient) -> Iterator[str]:
    name = f"pmtest_gw_{uuid.uuid4().hex[:12]}"
    yield name
    mongo_client.drop_database(name)


@pytest.fixture(scope="session")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, mongo_uri: str, gateway_database: str, admin_key: str
) -> Iterator[Gateway]:
    config_dir = write_config(
        tmp_path_factory.mktemp("gateway-config"),
        f"""\
mongodb:
  timeout: 5
auth:
  jwt:
    algorithm: HS256
    secret: {JWT_SECRET}
    issuer: {JWT_ISSUER}
    audience: {JWT_AUDIENCE}
  api_keys:
    cache_seconds: 30
limits:
  max_body_bytes: 65536
""",
    )
    command = serve_command(config_dir, "--port", "0", "--mongodb-uri", mongo_uri, "--database", gateway_database)
    server = Gateway(command, env=clean_environment({"PM_ADMIN_KEY": admin_key})).start()
    yield server
    server.stop()


@pytest.fixture
def client(gateway: Gateway) -> Iterator[httpx.Client]:
    with gateway.client() as http:
        yield http


@pytest.fixture
def admin(gateway: Gateway, admin_key: str) -> Iterator[httpx.Client]:
    """A client authenticated with the bootstrap admin key."""
    with gateway.client(admin_key) as http:
        yield http


@pytest.fixture
def start_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Gateway]]:
    """Start a gateway of the test's own: ``start_gateway(server_yml, *serve_args, env=..., cwd=...)``."""
    started: list[Gateway] = []

    def start(server_yml: str | None, *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Gateway:
        config_dir = write_config(tmp_path_factory.mktemp("config"), server_yml)
        server = Gateway(serve_command(config_dir, "--port", "0", *args), env=clean_environment(env), cwd=cwd)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()



# --- the data plane --------------------------------------------------------------------------

NOTES_POLICY = Path(__file__).resolve().parent / "notes"
_GATEWAY_YML = f"""\
mongodb:
  timeout: 5
auth:
  jwt:
    algorithm: HS256
    secret: {JWT_SECRET}
    issuer: {JWT_ISSUER}
    audience: {JWT_AUDIENCE}
limits:
  max_body_bytes: 65536
  max_page_size: 500
"""


@pytest.fixture(scope="session")
def gateway_db(mongo_client: pymongo.MongoClient, gateway_database: str) -> pymongo.database.Database:
    """The session gateway's database, for inserting and inspecting documents directly."""
    return mongo_client[gateway_database]


@pytest.fixture(scope="session")
def notes_database(mongo_client: pymongo.MongoClient) -> Iterator[pymongo.database.Database]:
    name = f"pmtest_notes_{uuid.uuid4().hex[:12]}"
    yield mongo_client[name]
    mongo_client.drop_database(name)


@pytest.fixture(scope="session")
def notes_gateway(tmp_path_factory: pytest.TempPathFactory, mongo_uri: str, notes_database: pymongo.database.Database) -> Iterator[Gateway]:
    """A gateway on ``tests/server/notes/`` (conditions on arrays and numbers, every kind of field rule)."""
    config_dir = tmp_path_factory.mktemp("notes-config")
    for name in ("policy.yml", "schema.yml"):
        (config_dir / name).write_text((NOTES_POLICY / name).read_text())
    (config_dir / "server.yml").write_text(_GATEWAY_YML)
    command = serve_command(config_dir, "--port", "0", "--mongodb-uri", mongo_uri, "--database", notes_database.name)
    server = Gateway(command, env=clean_environment()).start()
    yield server
    server.stop()


@pytest.fixture
def tenant() -> str:
    """A tenant of the test's own, so tests sharing a database never see each other's data."""
    return f"t-{uuid.uuid4().hex[:10]}"
