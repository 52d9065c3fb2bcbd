"""The database killed (SIGKILL) twice under write load through the SDK.

Writers create marked documents with ``PermissionMongo`` (retries, one ``Idempotency-Key`` per
call) while the database is killed and restarted, the gateway left running. Then, counting the
stored documents directly: every create the SDK acknowledged is stored (the gateway's write
concern is journaled, on a database that loses unjournaled writes to a kill), none is stored
twice (a retried create is applied once), no create gave up while the retries outlasted the
outage, and creates are acknowledged again after the last restart (the gateway recovered
without being restarted).
"""

from __future__ import annotations

import time
from typing import Any

import pymongo

from ..server.harness import Gateway
from .conftest import COLLECTION
from .harness import FaultyDatabase
from .load import CreateLoad, SdkWriter, Traffic

KILLS = 2
DOWN_SECONDS = 1.0  # between the kill and the restart
PROGRESS_TIMEOUT = 10.0  # for the load to move on between faults (and after the last one)


def kill_during(load: CreateLoad, database: FaultyDatabase, progress: int) -> list[str]:
    """Kill the database ``KILLS`` times, each once ``progress`` more creates were acknowledged
    (so every kill lands in the middle of the load); what went wrong, if anything."""
    problems = []
    for kill in range(1, KILLS + 1):
        if not load.wait_for_acknowledged(load.acknowledged + progress, PROGRESS_TIMEOUT):
            problems.append(f"before kill {kill}: not {progress} more creates acknowledged within {PROGRESS_TIMEOUT:g} s")
        database.kill()
        time.sleep(DOWN_SECONDS)
        database.restart()
    if not load.wait_for_acknowledged(load.acknowledged + progress, PROGRESS_TIMEOUT):
        problems.append(
            f"the gateway did not recover: not {progress} more creates acknowledged within "
            f"{PROGRESS_TIMEOUT:g} s of the database's last restart"
        )
    return problems


def check_ledger(load: CreateLoad, stored: pymongo.collection.Collection[Any], traffic: Traffic, problems: list[str]) -> None:
    report = load.report(stored, traffic)
    if report.lost:
        problems.append(f"{len(report.lost)} acknowledged creates are not stored (lost to the kill)")
    if report.duplicates:
        problems.append(f"{len(report.duplicates)} creates are stored more than once (a retry applied again)")
    if report.failed:
        problems.append(f"{len(report.failed)} creates failed after the SDK's retries, which outlast the outage")
    assert not problems, "\n".join([*problems, "", report.summary()])
    assert report.acknowledged  # the load ran


def test_single_creates_survive_kills(
    gateway: Gateway, api_key: str, database: FaultyDatabase, stored: pymongo.collection.Collection[Any]
) -> None:
    traffic = Traffic()
    with CreateLoad(lambda _: SdkWriter(gateway.url, api_key, COLLECTION, traffic=traffic), writers=6) as load:
        problems = kill_during(load, database, progress=20)
    check_ledger(load, stored, traffic, problems)


def test_batch_creates_survive_kills(
    gateway: Gateway, api_key: str, database: FaultyDatabase, stored: pymongo.collection.Collection[Any]
) -> None:
    traffic = Traffic()
    make_writer = lambda _: SdkWriter(gateway.url, api_key, COLLECTION, batch=True, traffic=traffic)  # noqa: E731
    with CreateLoad(make_writer, writers=4, batch_size=25) as load:
        problems = kill_during(load, database, progress=50)
    check_ledger(load, stored, traffic, problems)
