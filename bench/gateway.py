"""Gateway benchmark: what the gateway adds to a request, against the driver in the same run.

    python bench/gateway.py [--requests N] [--documents N] [--mongodb-uri URI]

Starts ``permission-mongo serve`` on the examples' policy (on the embedded database, or on
``--mongodb-uri`` / ``MONGO_URI``), fills a collection, then times the same operations through
the gateway (httpx, one keep-alive connection, an API key) and directly with pymongo's
``AsyncMongoClient`` on the same database:

- health: ``GET /health``, no database; the floor of the HTTP stack (no direct counterpart);
- get by id;
- find: a filter, a sort, 20 documents;
- create (both arms journaled on a majority, the gateway's default write concern).

Prints p50 and p99 of each, the gateway's added latency (gateway minus direct, per percentile),
the gateway process's CPU time per request (utime + stime from ``/proc/<pid>/stat`` before
and after, divided by the number of requests) and the database round trips per request of
each arm (``serverStatus`` ``network.numRequests``; monitoring heartbeats add a little), so a
gateway doing more round trips than the direct call shows. The collection is small (200
documents by default) so that the embedded database's own time, which both arms pay, does not
drown what the gateway adds. Targets: added p50 under 1 ms; gateway CPU under 300 µs for the
find.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pymongo
from bson import ObjectId
from pymongo import AsyncMongoClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.server.harness import Gateway, clean_environment, new_admin_key, serve_command, write_config  # noqa: E402

TENANT = "bench"
DOCUMENTS = 200
WARM_UP = 50
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def round_trips(mongo: AsyncMongoClient[dict[str, Any]]) -> int:
    """Requests the database has received so far (this one included)."""
    status = await mongo.admin.command("serverStatus")
    return int(status["network"]["numRequests"])


def gateway_environment(output: str) -> str:
    """What the gateway printed about its server: ``uvicorn ..., loop ..., http ...``."""
    match = re.search(r"server:\s+(.+)", output)
    return match.group(1).strip() if match else "(the gateway did not say)"


async def timed(operation: Callable[[int], Awaitable[Any]], n: int) -> list[float]:
    for i in range(min(WARM_UP, n)):  # warm up: connections, caches, the plan
        await operation(i)
    samples = []
    for i in range(n):
        start = time.perf_counter()
        await operation(i)
        samples.append(time.perf_counter() - start)
    return samples


async def run(uri: str, database: str, requests: int, documents: int) -> None:
    admin_key = new_admin_key()
    config = write_config(Path(tempfile.mkdtemp(prefix="pm-bench-")), "auth:\n  api_keys:\n    cache_seconds: 600\n")
    command = serve_command(config, "--port", "0", "--mongodb-uri", uri, "--database", database)
    if os.environ.get("PM_BENCH_PROFILE"):  # python -m cProfile -o FILE in front of the gateway
        command[1:1] = ["-m", "cProfile", "-o", os.environ["PM_BENCH_PROFILE"]]
    gateway = Gateway(
        command,
        env=clean_environment({"PM_ADMIN_KEY": admin_key}),
    ).start()
    assert gateway.process is not None
    # The gateway's default write concern, so that creates compare like for like.
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True, w="majority", journal=True)
    collection = mongo[database]["expenses"]
    try:
        await collection.delete_many({"tenant_id": TENANT})
        await collection.insert_many([
            {"tenant_id": TENANT, "owner_id": "ann", "title": f"expense {i}", "amount": i % 500,
             "status": ["draft", "submitted", "approved"][i % 3], "currency": "EUR",
             "submitter_email": "ann@example.com", "internal_notes": "n", "tags": ["a", "b"]}
            for i in range(documents)
        ])
        await collection.create_index([("tenant_id", 1), ("amount", -1)])
        async with httpx.AsyncClient(base_url=gateway.url, headers={"Authorization": f"Bearer {admin_key}"}) as admin:
            made = await admin.post("/v1/admin/api-keys", json={"identity": {"id": "ann", "tenant_id": TENANT, "roles": ["admin"]}})
            key = made.json()["key"]
        ids = [doc["_id"] async for doc in collection.find({"tenant_id": TENANT}, {"_id": 1}).limit(200)]
        # A third of the documents are approved and four fifths of those have amount >= 100:
        # the find sorts about a quarter of the collection and returns the top 20.
        find_filter = {"status": "approved", "amount": {"$gte": 100}}
        sort = [("amount", -1), ("_id", 1)]
        plan_filter = {"tenant_id": {"$not": {"$type": "array"}, "$eq": TENANT}}  # what the admin's plan adds

        async with httpx.AsyncClient(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}) as http:

            async def gw_health(i: int) -> None:
                response = await http.get("/health")
                assert response.status_code == 200, response.text

            async def gw_get(i: int) -> None:
                response = await http.get(f"/v1/data/expenses/{ids[i % len(ids)]}")
                assert response.status_code == 200, response.text

            async def db_get(i: int) -> None:
                assert await collection.find_one({"$and": [{"_id": ids[i % len(ids)]}, plan_filter]}) is not None

            async def gw_find(i: int) -> None:
                response = await http.post("/v1/data/expenses/find", json={"filter": find_filter, "sort": ["-amount"], "limit": 20})
                assert response.status_code == 200 and len(response.json()["data"]) == 20, response.text

            async def db_find(i: int) -> None:
                docs = await collection.find({"$and": [find_filter, plan_filter]}, sort=sort, limit=21).to_list(None)
                assert len(docs) == 21

            async def gw_create(i: int) -> None:
                response = await http.post("/v1/data/expenses", json={"title": "bench", "amount": 5, "status": "draft"})
                assert response.status_code == 201, response.text

            async def db_create(i: int) -> None:
                await collection.insert_one({"title": "bench", "amount": 5, "status": "draft", "tenant_id": TENANT})

            print(f"{requests} requests each, {documents} documents, gateway {gateway.url}, database {database!r}")
            print(f"gateway: {gateway_environment(gateway.output)}")
            print(f"bench:   Python {platform.python_version()}, pymongo {pymongo.version}, httpx {httpx.__version__}, "
                  f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
            print(f"{'operation':<10} {'direct p50':>11} {'direct p99':>11} {'gateway p50':>12} {'gateway p99':>12} "
                  f"{'added p50':>10} {'added p99':>10} {'gw CPU/req':>11} {'driver CPU/req':>15} {'DB trips d/gw':>14}")
            operations: list[tuple[str, Callable[[int], Awaitable[Any]], Callable[[int], Awaitable[Any]] | None]] = [
                ("health", gw_health, None), ("get", gw_get, db_get), ("find", gw_find, db_find), ("create", gw_create, db_create),
            ]
            total = requests + min(WARM_UP, requests)
            for name, through, direct in operations:
                direct_samples: list[float] = []
                driver_cpu = direct_trips = 0.0
                if direct is not None:
                    trips_before = await round_trips(mongo)
                    driver_before = time.process_time()
                    direct_samples = await timed(direct, requests)
                    driver_cpu = (time.process_time() - driver_before) / total
                    direct_trips = (await round_trips(mongo) - trips_before - 1) / total
                trips_before = await round_trips(mongo)
                before = cpu_seconds(gateway.process.pid)
                gateway_samples = await timed(through, requests)
                cpu = (cpu_seconds(gateway.process.pid) - before) / total
                gateway_trips = (await round_trips(mongo) - trips_before - 1) / total
                g50, g99 = percentile(gateway_samples, 0.5), percentile(gateway_samples, 0.99)
                if direct_samples:
                    d50, d99 = percentile(direct_samples, 0.5), percentile(direct_samples, 0.99)
                    print(f"{name:<10} {d50 * 1e3:>9.3f}ms {d99 * 1e3:>9.3f}ms {g50 * 1e3:>10.3f}ms {g99 * 1e3:>10.3f}ms "
                          f"{(g50 - d50) * 1e3:>8.3f}ms {(g99 - d99) * 1e3:>8.3f}ms {cpu * 1e6:>9.0f}µs "
                          f"{driver_cpu * 1e6:>13.0f}µs {direct_trips:>6.2f}/{gateway_trips:<6.2f}")
                else:
                    print(f"{name:<10} {'-':>11} {'-':>11} {g50 * 1e3:>10.3f}ms {g99 * 1e3:>10.3f}ms "
                          f"{g50 * 1e3:>8.3f}ms {g99 * 1e3:>8.3f}ms {cpu * 1e6:>9.0f}µs {'-':>15} {'-':>6}/{gateway_trips:<6.2f}")
            print("\ngw CPU/req: the gateway process (uvicorn, FastAPI, auth, policy, pymongo); driver CPU/req:")
            print("this process doing the same database call directly with AsyncMongoClient (the floor).")
            print("DB trips d/gw: database requests per operation, direct / through the gateway (heartbeats included).")
            print("targets: added p50 < 1 ms; gateway CPU < 300 µs per request for the find")
    finally:
        await collection.delete_many({"tenant_id": TENANT})
        await mongo.close()
        gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--documents", type=int, default=DOCUMENTS, help=f"documents in the collection (default {DOCUMENTS})")
    parser.add_argument("--mongodb-uri", default=os.environ.get("MONGO_URI"))
    parser.add_argument("--database", default=f"pm_bench_{ObjectId()}")
    args = parser.parse_args()
    if args.mongodb_uri:
        asyncio.run(run(args.mongodb_uri, args.database, args.requests, args.documents))
        return
    from permission_mongo.embedded import EmbeddedDatabase

    with EmbeddedDatabase(durable=False) as database:
        print(f"embedded database (SecantusDB) at {database.uri}")
        asyncio.run(run(database.uri, args.database, args.requests, args.documents))


if __name__ == "__main__":
    main()
