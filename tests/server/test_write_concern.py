"""What a write acknowledgement guarantees (issue 9, item 1), and how database errors are
classified by what they say of a write's outcome (item 4).

By default the gateway asks every write to be journaled on a majority before it answers;
server.yml's ``mongodb.write_concern`` or the URI's ``w`` and ``journal`` choose otherwise, and a
write concern that would not say whether a write was applied (``w: 0``) is refused. The kill
tests (tests/faults) show what that buys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pymongo
import pymongo.errors
import pytest
from pymongo import WriteConcern

from permission_mongo.policy import ConfigError
from permission_mongo.server._error_responses import status_and_code
from permission_mongo.server._settings import load_settings
from permission_mongo.store import DatabaseUnavailableError, Store, StoreError, TimeLimit
from permission_mongo.store._errors import bulk_write_failures, database_errors, store_error

QUERY_TIME = TimeLimit(5_000, "limits.query_max_time_ms")


def settings_from(tmp_path: Path, server_yml: str, uri: str = "mongodb://db.internal:27017/") -> Any:
    (tmp_path / "server.yml").write_text(server_yml)
    return load_settings(tmp_path, environ={}, mongodb_uri=uri)


@pytest.mark.parametrize(
    ("server_yml", "uri", "expected"),
    [
        ("", "mongodb://db/", {"w": "majority", "journal": True}),
        ("mongodb:\n  write_concern: {w: 2, j: false}\n", "mongodb://db/", {"w": 2, "journal": False}),
        ("mongodb:\n  write_concern: {w: 1}\n", "mongodb://db/", {"w": 1, "journal": True}),
        # The URI's own choice is kept where server.yml says nothing (pymongo reads it there).
        ("", "mongodb://db/?w=1&journal=false", {}),
        ("", "mongodb://db/?journal=false", {"w": "majority"}),
        ("mongodb:\n  write_concern: {j: true}\n", "mongodb://db/?journal=false", {"w": "majority", "journal": True}),
    ],
)
def test_the_write_concern_is_durable_unless_told_otherwise(
    tmp_path: Path, server_yml: str, uri: str, expected: dict[str, Any]
) -> None:
    assert dict(settings_from(tmp_path, server_yml, uri).mongodb.write_concern) == expected


@pytest.mark.parametrize(
    ("server_yml", "expected"),
    [
        ("mongodb:\n  write_concern: {w: 0}\n", ["server.yml:2:22", "w: 0 is not accepted"]),
        ("mongodb:\n  write_concern: {w: all}\n", ["server.yml:2:22", "majority or a number"]),
        ("mongodb:\n  write_concern: {w: majority, j: yes please}\n", ["server.yml:2:35", "true or false"]),
        ("mongodb:\n  write_concern: {wtimeout: 5}\n", ["server.yml:2:19", "unknown key 'wtimeout'"]),
        ("mongodb:\n  operation_timeout: 0\n", ["server.yml:2:22", "at least 0.1"]),
        (
            "mongodb:\n  operation_timeout: 2\nlimits:\n  query_max_time_ms: 3000\n",
            ["server.yml:4:22", "must not exceed mongodb.operation_timeout", "raise mongodb.operation_timeout"],
        ),
    ],
)
def test_a_bad_durability_setting_is_refused_where_it_is_written(
    tmp_path: Path, server_yml: str, expected: list[str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from(tmp_path, server_yml)
    for text in expected:
        assert text in str(caught.value)


def test_unset_time_limits_stay_within_the_operation_timeout(tmp_path: Path) -> None:
    limits = settings_from(tmp_path, "mongodb:\n  operation_timeout: 1.5\n").limits
    assert (limits.query_max_time_ms, limits.aggregate_max_time_ms) == (1500, 1500)
    assert settings_from(tmp_path, "").limits.query_max_time_ms == 5000


async def test_the_store_writes_with_the_write_concern_it_is_given(mongo_uri: str) -> None:
    durable = Store(mongo_uri, "write_concern", time_limit=QUERY_TIME, write_concern={"w": "majority", "journal": True})
    try:
        assert durable.database.write_concern == WriteConcern(w="majority", j=True)
        await durable.documents("notes").insert({"_id": "n1", "text": "kept"})  # the database accepts it
        assert await durable.documents("notes").find_one({"_id": "n1"}, collation={"locale": "simple"}) is not None
    finally:
        await durable.client.drop_database("write_concern")
        await durable.close()


# --- classification: what an error says of the write's outcome ------------------------------------------------

UNKNOWN, NOT_APPLIED = True, False


def _failure(code: int, labels: tuple[str, ...] = ()) -> pymongo.errors.OperationFailure:
    return pymongo.errors.OperationFailure("boom", code, {"ok": 0, "code": code, "errorLabels": list(labels)})


def _write_concern_error(code: int) -> pymongo.errors.WriteConcernError:
    return pymongo.errors.WriteConcernError("not confirmed", code, {"code": code, "errmsg": "not confirmed"})


@pytest.mark.parametrize(
    ("raised", "outcome_unknown"),
    [
        # Applied, not confirmed: whatever the code, a retry must settle it first.
        pytest.param(_write_concern_error(91), UNKNOWN, id="wc-ShutdownInProgress"),
        pytest.param(_write_concern_error(64), UNKNOWN, id="wc-WriteConcernFailed"),
        pytest.param(_write_concern_error(11600), UNKNOWN, id="wc-InterruptedAtShutdown"),
        # Shutdown and step-down families: interrupted, maybe after applying.
        pytest.param(_failure(11600), UNKNOWN, id="InterruptedAtShutdown"),
        pytest.param(_failure(91), UNKNOWN, id="ShutdownInProgress"),
        pytest.param(_failure(189), UNKNOWN, id="PrimarySteppedDown"),
        # Refused before running by a server that is not primary.
        pytest.param(_failure(10107), NOT_APPLIED, id="NotWritablePrimary"),
        pytest.param(_failure(13435), NOT_APPLIED, id="NotPrimaryNoSecondaryOk"),
        # A code the table does not know, from 10000, labelled by the driver as the deployment's.
        pytest.param(_failure(50915, ("RetryableWriteError",)), UNKNOWN, id="labelled-retryable"),
        pytest.param(_failure(50916, ("TransientTransactionError",)), UNKNOWN, id="labelled-transient"),
        pytest.param(_failure(11600, ("NoWritesPerformed",)), NOT_APPLIED, id="no-writes-performed"),
        # The connection: lost after sending, or never had.
        pytest.param(pymongo.errors.AutoReconnect("connection reset"), UNKNOWN, id="AutoReconnect"),
        pytest.param(pymongo.errors.NetworkTimeout("timed out"), UNKNOWN, id="NetworkTimeout"),
        pytest.param(pymongo.errors.ServerSelectionTimeoutError("no server"), NOT_APPLIED, id="no-server"),
        pytest.param(pymongo.errors.WaitQueueTimeoutError("pool full"), NOT_APPLIED, id="no-connection"),
        pytest.param(
            pymongo.errors.NotPrimaryError("not primary", {"code": 10107, "errmsg": "not primary"}),
            NOT_APPLIED,
            id="NotPrimaryError",
        ),
    ],
)
def test_unavailability_is_a_503_saying_whether_the_write_may_have_been_applied(
    raised: Exception, outcome_unknown: bool
) -> None:
    error = store_error(raised, QUERY_TIME)
    assert isinstance(error, DatabaseUnavailableError), error
    assert status_and_code(error) == (503, "SERVICE_UNAVAILABLE")
    assert error.outcome_unknown is outcome_unknown


@pytest.mark.parametrize("writes", [True, False])
async def test_a_failure_of_what_writes_nothing_leaves_no_outcome_to_settle(writes: bool) -> None:
    # A lost reply to a read (the document read before an update) wrote nothing: the retry of
    # the update may run, instead of being refused as an unknown outcome.
    with pytest.raises(DatabaseUnavailableError) as caught:
        async with database_errors(QUERY_TIME, writes=writes):
            raise pymongo.errors.AutoReconnect("connection closed")
    assert caught.value.outcome_unknown is writes


def test_a_labelled_error_is_unavailable_even_where_its_code_would_be_the_request_s() -> None:
    # Unlabelled, a code from 10000 is a user assertion: the request's fault.
    plain = store_error(_failure(50915), QUERY_TIME)
    assert isinstance(plain, StoreError) and status_and_code(plain) == (400, "BAD_REQUEST")
    labelled = store_error(_failure(50915, ("RetryableWriteError",)), QUERY_TIME)
    assert isinstance(labelled, StoreError) and status_and_code(labelled) == (503, "SERVICE_UNAVAILABLE")


def test_a_batch_whose_writes_were_not_confirmed_has_an_unknown_outcome() -> None:
    exc = pymongo.errors.BulkWriteError(
        {"writeErrors": [], "writeConcernErrors": [{"code": 91, "errmsg": "shutting down"}], "nInserted": 3}
    )
    with pytest.raises(DatabaseUnavailableError) as caught:
        bulk_write_failures(exc, QUERY_TIME)
    assert caught.value.outcome_unknown
