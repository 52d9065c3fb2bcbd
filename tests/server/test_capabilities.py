"""Capabilities the gateway's enforcement relies on (``$graphLookup``'s restrictSearchWithMatch):
probed in isolation, before serving, and only a proven answer kept.

SecantusDB ignores restrictSearchWithMatch (a known gap), so on it the correct answer is "not
enforced" and the stage is refused. That the probe answers True where enforcement works can
only be shown on a real MongoDB: ``MONGO_URI=... pytest`` runs these same tests there, and
every assertion compares with what the database itself does (``engine.test_pipeline``'s
sequential probe).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pymongo
import pytest
from pymongo import AsyncMongoClient

from permission_mongo.store._capabilities import PROBE_PREFIX, ProvenOnce, graph_lookup_enforced

from ..engine.test_pipeline import graph_lookup_enforced as database_applies_restriction
from .harness import JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET, Gateway, assert_error, make_token

ON_SECANTUS = not os.environ.get("MONGO_URI")
GRAPH_LOOKUP = [{"$graphLookup": {"from": "customers", "startWith": "$customer", "connectFromField": "n",
                                  "connectToField": "n", "as": "g"}}]


@pytest.fixture
def truth(db: pymongo.database.Database) -> bool:
    """What this database does, found by the test's own probe with nothing else running."""
    applies = database_applies_restriction(db)
    if ON_SECANTUS:
        assert applies is False  # the known gap: the only correct answer here is "not enforced"
    return applies


def probe_collections(database: pymongo.database.Database) -> list[str]:
    return [name for name in database.list_collection_names() if name.startswith("_pm_probe")]


# --- the probe -------------------------------------------------------------------------------

def test_probes_running_at_once_on_one_database_give_the_true_answer(mongo_uri: str, db: Any, truth: bool) -> None:
    async def run() -> list[Any]:
        # Two clients: two gateway processes sharing the database, four probes each.
        clients = [AsyncMongoClient(mongo_uri) for _ in range(2)]
        try:
            probes = [graph_lookup_enforced(client[db.name]) for client in clients for _ in range(4)]
            return await asyncio.gather(*probes, return_exceptions=True)
        finally:
            for client in clients:
                await client.close()

    assert asyncio.run(run()) == [truth] * 8  # no exception, no wrong "enforced"
    assert probe_collections(db) == []


def test_a_probe_collection_shared_between_probes_answers_enforced_wrongly(db: Any, truth: bool) -> None:
    # The naive probe (one `_pm_probe` for everyone), with another probe's steps falling between
    # its own as concurrency allows: B empties the collection and has inserted its first
    # document when A runs its search. A sees no hidden document and concludes "enforced".
    shared = db["_pm_probe"]
    shared.delete_many({})                                                          # A
    shared.insert_many([{"_id": 1, "to": 2}, {"_id": 2, "to": None, "hidden": True}])  # A
    shared.delete_many({})                                                          # B
    shared.insert_one({"_id": 1, "to": 2})                                          # B, first of two
    found = list(shared.aggregate([{"$match": {"_id": 1}}, {"$graphLookup": {       # A
        "from": "_pm_probe", "startWith": "$to", "connectFromField": "to", "connectToField": "_id",
        "as": "found", "restrictSearchWithMatch": {"hidden": {"$ne": True}}}}]))
    naive_answer = bool(found) and found[0]["found"] == []
    assert naive_answer is True
    if ON_SECANTUS:
        assert truth is False  # ...so there the naive answer would let $graphLookup leak
    # The gateway's probe works in `_pm_probe_<random>` (internal: callers cannot name it), so
    # no other probe can do this to it (the test above runs eight at once).
    assert PROBE_PREFIX.startswith("_pm_probe_")


def test_only_a_proven_answer_is_kept_and_concurrent_callers_share_one_probe(mongo_uri: str, db: Any, truth: bool) -> None:
    async def run() -> None:
        unreachable = AsyncMongoClient(f"mongodb://127.0.0.1:{closed_port()}/", serverSelectionTimeoutMS=200)
        reachable = AsyncMongoClient(mongo_uri)
        databases = [unreachable[db.name], reachable[db.name]]
        probes: list[str] = []

        async def probe() -> bool:  # the real probe, on the database of the moment, counted
            probes.append("probe")
            return await graph_lookup_enforced(databases[0])

        capability = ProvenOnce("graphLookup", probe)
        try:
            assert await asyncio.gather(*[capability.answer() for _ in range(5)]) == [None] * 5
            assert probes == ["probe"] and capability.known is None  # a failure is not an answer
            databases.pop(0)  # the database is back
            assert await asyncio.gather(*[capability.answer() for _ in range(5)]) == [truth] * 5
            assert await capability.answer() is truth and capability.known is truth
            assert probes == ["probe", "probe"]  # one probe per round, none once proven
        finally:
            await unreachable.close()
            await reachable.close()

    asyncio.run(run())


# --- through the gateway ----------------------------------------------------------------------

SERVER_YML = f"""\
mongodb:
  timeout: {{timeout}}
auth:
  jwt:
    algorithm: HS256
    secret: {JWT_SECRET}
    issuer: {JWT_ISSUER}
    audience: {JWT_AUDIENCE}
"""


def aggregate(gateway: Gateway, tenant: str, pipeline: list[dict[str, Any]]) -> httpx.Response:
    with gateway.client(make_token(sub="ann", tenant_id=tenant, roles=["admin"])) as http:
        return http.post("/v1/data/expenses/aggregate", json={"pipeline": pipeline})


def assert_graph_lookup_answer(response: httpx.Response, enforced: bool, tenant: str) -> None:
    if enforced:
        assert response.status_code == 200, response.text
        assert {g["tenant_id"] for d in response.json()["data"] for g in d["g"]} <= {tenant}
    else:
        assert "restrictSearchWithMatch" in assert_error(response, 400, "BAD_REQUEST")["message"]


def test_concurrent_first_requests_never_see_a_wrong_answer_or_a_500(
    start_gateway: Callable[..., Gateway], mongo_uri: str, db: Any, truth: bool
) -> None:
    tenant = "t1"
    db.expenses.insert_many([{"tenant_id": tenant, "customer": 1}, {"tenant_id": "t2", "customer": 1}])
    db.customers.insert_many([{"tenant_id": tenant, "n": 1}, {"tenant_id": "t2", "n": 1}])
    gateway = start_gateway(SERVER_YML.format(timeout=5), "--mongodb-uri", mongo_uri, "--database", db.name)
    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda _: aggregate(gateway, tenant, GRAPH_LOOKUP), range(24)))
    for response in responses:
        assert_graph_lookup_answer(response, truth, tenant)
    # Decided before the first request was served, and no probe collection left behind.
    output = gateway.output
    assert output.index(f"restrictSearchWithMatch enforced: {truth}") < output.index("POST /v1/data/expenses/aggregate")
    assert probe_collections(db) == []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TcpForwarder:
    """Listens on ``port`` and pipes each connection to ``target``: the database "coming up"
    at an address the gateway was already using."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", port))
        self.open: list[socket.socket] = [self.server]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        for sock in self.open:
            sock.close()


@pytest.fixture
def late_database(mongo_uri: str) -> Iterator[tuple[str, Callable[[], None]]]:
    """A URI whose database is down until ``come_up()`` is called."""
    parts = urllib.parse.urlsplit(mongo_uri)
    if parts.scheme != "mongodb" or "," in parts.netloc:
        pytest.skip("needs a single-host mongodb:// URI to forward to")
    port = closed_port()
    target = (parts.hostname or "127.0.0.1", parts.port or 27017)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
    query = "&".join(filter(None, [parts.query, "directConnection=true"]))
    forwarders: list[TcpForwarder] = []
    yield urllib.parse.urlunsplit(("mongodb", netloc, parts.path or "/", query, "")), lambda: forwarders.append(TcpForwarder(port, target))
    for forwarder in forwarders:
        forwarder.close()


def test_unproven_at_start_means_refused_then_probed_again(
    start_gateway: Callable[..., Gateway], late_database: tuple[str, Callable[[], None]], db: Any, truth: bool
) -> None:
    uri, come_up = late_database
    gateway = start_gateway(SERVER_YML.format(timeout=2), "--mongodb-uri", uri, "--database", db.name)
    error = assert_error(aggregate(gateway, "t1", GRAPH_LOOKUP), 503, "SERVICE_UNAVAILABLE")
    assert "could not yet determine" in error["message"] and error["details"] == {"stage": "$graphLookup"}

    come_up()
    deadline = time.monotonic() + 30
    while (response := aggregate(gateway, "t1", GRAPH_LOOKUP)).status_code == 503 and time.monotonic() < deadline:
        assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"  # still reconnecting
        time.sleep(0.1)
    assert_graph_lookup_answer(response, truth, "t1")
    assert "Traceback" not in gateway.output
    assert probe_collections(db) == []
    # Kept once proven: the next request does not probe again.
    assert gateway.output.count("restrictSearchWithMatch enforced:") == 1
    assert_graph_lookup_answer(aggregate(gateway, "t1", GRAPH_LOOKUP), truth, "t1")
    assert gateway.output.count("restrictSearchWithMatch enforced:") == 1
