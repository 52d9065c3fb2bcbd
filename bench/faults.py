"""Fault benchmark: what survives the database being killed under write load.

    python bench/faults.py [--seconds S] [--clients N] [--kills K] [--down SECONDS] [--raw]

Starts SecantusDB on a fixed port without ``--sync-on-commit`` (a kill loses what it confirmed
only in memory, so a write concern that is not journaled shows) and ``permission-mongo serve``
on it, with the examples' policy. ``--clients`` threads (16) create documents one by one through
the gateway with the SDK (``PermissionMongo``: retries spanning about 9 s, one
``Idempotency-Key`` per create) for ``--seconds`` (30), while the database is killed with
SIGKILL ``--kills`` times (5), evenly spread, and restarted ``--down`` seconds (1) later on the
same port and storage. The gateway is never restarted. Each document carries a marker
(client, sequence); afterwards the stored documents are counted by marker with pymongo:

- acknowledged: creates that returned an ``_id``; stored: documents of the run in the database;
- lost: acknowledged but not stored; duplicates: markers stored more than once;
- failed: creates that raised after the SDK's retries (outcome unknown to the caller);
- 503 +RA / -RA: HTTP attempts answered 503 with and without ``Retry-After``; other: any
  other answer that is not a success (500s, transport errors).

``--raw`` runs the same load and kill schedule on the same database with raw pymongo
(``insert_one``, one attempt, default write concern; then with ``journal=True``), printed in
the same table as the baseline: the gateway should lose no more than journaled pymongo (none)
and store nothing twice. Loopback only; bounded by ``--seconds`` per arm (at most 600).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pymongo
from bson import ObjectId

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.faults.harness import FaultyDatabase  # noqa: E402
from tests.faults.load import CreateLoad, LoadReport, SdkWriter, Traffic, Writer  # noqa: E402
from tests.server.harness import Gateway, clean_environment, new_admin_key, serve_command, write_config  # noqa: E402

COLLECTION = "customers"  # the examples' collection without versioning: one write per create
TENANT = "bench"
SERVER_YML = """\
mongodb:
  timeout: 2
auth:
  api_keys:
    cache_seconds: 600
"""


def kill_on_schedule(database: FaultyDatabase, seconds: float, kills: int, down: float) -> list[float]:
    """Kill the database ``kills`` times spread over ``seconds``, restarting each ``down``
    seconds later; returns how long each outage lasted (kill to accepting connections)."""
    started = time.monotonic()
    outages = []
    for kill in range(1, kills + 1):
        time.sleep(max(0.0, started + seconds * kill / (kills + 1) - time.monotonic()))
        went = time.monotonic()
        database.kill()
        time.sleep(down)
        database.restart()
        outages.append(time.monotonic() - went)
    time.sleep(max(0.0, started + seconds - time.monotonic()))
    return outages


def run_arm(
    make_writer: Callable[[int], Writer],
    database: FaultyDatabase,
    stored: pymongo.collection.Collection[Any],
    args: argparse.Namespace,
    traffic: Traffic | None = None,
) -> tuple[LoadReport, list[float], float]:
    load = CreateLoad(make_writer, writers=args.clients)
    started = time.monotonic()
    with load:
        outages = kill_on_schedule(database, args.seconds, args.kills, args.down)
    elapsed = time.monotonic() - started  # the load, and the creates still retrying at its end
    return load.report(stored, traffic), outages, elapsed


def raw_writer(collection: pymongo.collection.Collection[Any]) -> Writer:
    def create(documents: list[dict[str, Any]]) -> list[int]:
        collection.insert_one(documents[0])
        return [0]

    return create


def row(name: str, report: LoadReport, elapsed: float) -> str:
    answers = report.answers
    with_ra, without_ra = answers["503 with Retry-After"], answers["503 without Retry-After"]
    other = sum(n for key, n in answers.items() if not key.startswith(("2", "503")))
    http = (f"{with_ra:>7} {without_ra:>7} {other:>6}" if answers else f"{'-':>7} {'-':>7} {'-':>6}")
    acknowledged = len(report.acknowledged)
    per_thousand = 1000 * len(report.lost) / acknowledged if acknowledged else 0.0
    return (f"{name:<24} {acknowledged:>6} {report.stored_documents:>7} {len(report.lost):>6} "
            f"{per_thousand:>8.2f} {len(report.duplicates):>6} {len(report.failed):>6} {http} "
            f"{acknowledged / elapsed:>9.0f}")


def run(args: argparse.Namespace) -> None:
    storage = tempfile.mkdtemp(prefix="pm-bench-faults-")
    database_name = f"pm_bench_{ObjectId()}"
    with FaultyDatabase(storage) as database:
        admin_key = new_admin_key()
        config = write_config(Path(tempfile.mkdtemp(prefix="pm-bench-")), SERVER_YML)
        command = serve_command(config, "--port", "0", "--mongodb-uri", database.uri, "--database", database_name)
        gateway = Gateway(command, env=clean_environment({"PM_ADMIN_KEY": admin_key})).start()
        mongo: pymongo.MongoClient[Any] = pymongo.MongoClient(database.uri, serverSelectionTimeoutMS=30_000)
        stored = mongo[database_name][COLLECTION]
        try:
            with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {admin_key}"}) as admin:
                made = admin.post("/v1/admin/api-keys", json={"identity": {"id": "bench", "tenant_id": TENANT, "roles": ["admin"]}})
                assert made.status_code == 201, made.text
                key = made.json()["key"]
            print(f"{args.clients} clients, single creates for {args.seconds:g} s per arm, the database killed "
                  f"{args.kills} times (restarted {args.down:g} s later); database {database.uri} (not durable)")
            print(f"bench: Python {platform.python_version()}, pymongo {pymongo.version}, httpx {httpx.__version__}, "
                  f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")

            results: list[tuple[str, LoadReport, list[float], float]] = []
            traffic = Traffic()
            report, outages, elapsed = run_arm(
                lambda _: SdkWriter(gateway.url, key, COLLECTION, traffic=traffic), database, stored, args, traffic
            )
            results.append(("gateway (SDK)", report, outages, elapsed))
            if args.raw:
                for name, options in (("pymongo default", {}), ("pymongo journal=True", {"journal": True})):
                    raw: pymongo.MongoClient[Any] = pymongo.MongoClient(database.uri, serverSelectionTimeoutMS=10_000, **options)
                    try:
                        raw_collection = raw[database_name][COLLECTION]
                        report, outages, elapsed = run_arm(lambda _: raw_writer(raw_collection), database, stored, args)
                    finally:
                        raw.close()
                    results.append((name, report, outages, elapsed))

            print(f"{'arm':<24} {'acked':>6} {'stored':>7} {'lost':>6} {'lost/1k':>8} {'dupes':>6} {'failed':>6} "
                  f"{'503 +RA':>7} {'503 -RA':>7} {'other':>6} {'acked/s':>9}")
            for name, report, _, elapsed in results:
                print(row(name, report, elapsed))
            print()
            for name, report, outages, _ in results:
                errors = f"; errors of failed creates: {dict(report.errors)}" if report.errors else ""
                print(f"{name}: outages {', '.join(f'{o:.1f}' for o in outages)} s{errors}")
            print("\nlost: acknowledged but not stored; lost/1k: per 1,000 acknowledged; dupes: markers stored twice or more;")
            print("failed: creates that raised (the SDK after its retries; pymongo after one attempt, outcome unknown);")
            print("503 +RA/-RA: HTTP attempts answered 503 with/without Retry-After; other: other non-2xx answers, transport errors.")
            print("target: the gateway loses nothing and duplicates nothing, as pymongo with journal=True")
        finally:
            mongo.close()
            gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="load per arm, at most 600 (default 30)")
    parser.add_argument("--clients", type=int, default=16, help="writer threads, at most 64 (default 16)")
    parser.add_argument("--kills", type=int, default=5, help="SIGKILLs per arm (default 5)")
    parser.add_argument("--down", type=float, default=1.0, help="seconds between a kill and the restart (default 1)")
    parser.add_argument("--raw", action="store_true", help="also run the load with raw pymongo, as the baseline")
    args = parser.parse_args()
    if not 0 < args.seconds <= 600 or not 0 < args.clients <= 64 or not 0 <= args.kills <= 50 or not 0 <= args.down <= 30:
        parser.error("out of bounds: 0 < --seconds <= 600, 0 < --clients <= 64, 0 <= --kills <= 50, 0 <= --down <= 30")
    if args.kills and args.seconds / (args.kills + 1) <= args.down + 1:
        parser.error("the kills do not fit: give each more than --down + 1 s (raise --seconds or lower --kills)")
    run(args)


if __name__ == "__main__":
    main()
