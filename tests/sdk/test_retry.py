"""Retry decisions and waits, as tables: no clock, no sleeping."""

from __future__ import annotations

import email.utils

import pytest

from permission_mongo import RetryConfig
from permission_mongo.client._retry import retry_after_seconds, retry_delay, should_retry

NOW = 1_700_000_000.0
DEFAULT = RetryConfig()


def http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [
        (0, 0.0, 0.5),
        (1, 0.0, 1.0),
        (2, 0.0, 2.0),
        (3, 0.0, 4.0),
        (0, 1.0, 0.375),  # jitter takes off up to a quarter
        (2, 0.5, 1.75),
        (7, 0.0, 60.0),  # 0.5 * 128 = 64, capped
        (10_000, 0.0, 60.0),  # no overflow
    ],
)
def test_backoff(attempt: int, rand: float, expected: float) -> None:
    assert retry_delay(attempt, None, config=DEFAULT, now=NOW, rand=rand) == pytest.approx(expected)


def test_documented_backoff_factor_gives_2_4_8_16() -> None:
    config = RetryConfig(max_retries=5, backoff_factor=2)
    waits = [retry_delay(n, {}, config=config, now=NOW, rand=0.0) for n in range(4)]
    assert waits == [2, 4, 8, 16]


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        ("2", 2.0),
        ("0.25", 0.25),
        (http_date(NOW + 30), 30.0),
        ("60", 60.0),  # at the cap: obeyed
        ("0", 0.5),  # nothing to obey: back off
        ("-3", 0.5),
        ("soon", 0.5),
        (http_date(NOW - 30), 0.5),
    ],
)
def test_retry_after_is_obeyed_when_sensible(retry_after: str, expected: float) -> None:
    headers = {"Retry-After": retry_after}
    assert retry_delay(0, headers, config=DEFAULT, now=NOW, rand=0.0) == pytest.approx(expected)


def test_retry_after_header_name_is_case_insensitive() -> None:
    assert retry_after_seconds({"retry-after": "7"}, now=NOW) == 7.0
    assert retry_after_seconds({}, now=NOW) is None
    assert retry_after_seconds(None, now=NOW) is None
    assert retry_after_seconds({"Retry-After": http_date(NOW - 5)}, now=NOW) == 0.0


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (408, {}, True),
        (429, {}, True),
        (429, {"Retry-After": "3"}, True),
        (429, {"Retry-After": "61"}, False),  # over the cap: give the caller the error now
        (429, {"Retry-After": http_date(NOW + 3600)}, False),
        (500, {}, True),
        (502, {}, True),
        (503, {"Retry-After": "1"}, True),
        (504, {}, True),
        (501, {}, False),
        (400, {}, False),
        (401, {}, False),
        (403, {}, False),
        (404, {}, False),
        (409, {}, False),
        (422, {}, False),
    ],
)
def test_should_retry(status: int, headers: dict, expected: bool) -> None:
    assert should_retry(status, headers, config=DEFAULT, now=NOW) is expected


def test_retry_on_status_is_configurable() -> None:
    config = RetryConfig(retry_on_status=[409])
    assert should_retry(409, {}, config=config, now=NOW)
    assert not should_retry(503, {}, config=config, now=NOW)
    assert config.retry_on_status == frozenset({409})


@pytest.mark.parametrize("bad", [{"max_retries": -1}, {"backoff_factor": -0.1}, {"max_delay": -1}])
def test_config_refuses_negative_values(bad: dict) -> None:
    with pytest.raises(ValueError):
        RetryConfig(**bad)


@pytest.mark.parametrize(
    ("max_retries", "retry_config", "expected"),
    [
        (None, None, RetryConfig()),
        (5, None, RetryConfig(max_retries=5)),
        (
            None,
            RetryConfig(max_retries=7, backoff_factor=2),
            RetryConfig(max_retries=7, backoff_factor=2),
        ),
        # An explicit max_retries wins over the config's and keeps the rest of it.
        (
            0,
            RetryConfig(max_retries=7, backoff_factor=2),
            RetryConfig(max_retries=0, backoff_factor=2),
        ),
    ],
)
async def test_max_retries_and_retry_config(
    make_client, max_retries: int | None, retry_config: RetryConfig | None, expected: RetryConfig
) -> None:
    client = make_client("http://gateway.test", max_retries=max_retries, retry_config=retry_config)
    assert client.client.retry_config == expected
