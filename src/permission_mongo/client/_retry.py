"""When to try a request again and how long to wait first.

Pure functions: the clock and the random draw come in as arguments, so every decision can be
checked in a table without sleeping or patching time.
"""

from __future__ import annotations

import datetime
import email.utils
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from ._constants import (
    DEFAULT_BACKOFF_FACTOR,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_STATUSES,
    MAX_RETRY_DELAY,
    RETRY_AFTER_HEADER,
    RETRY_JITTER,
)

__all__ = ["RetryConfig", "retry_after_seconds", "retry_delay", "should_retry"]


@dataclass(frozen=True)
class RetryConfig:
    """How a client retries failed requests.

    Args:
        max_retries: attempts after the first one; 0 turns retries off.
        backoff_factor: the first wait, in seconds; each retry doubles it (with the default 0.5:
            0.5, 1, 2, 4...; with 2: 2, 4, 8, 16), minus up to 25% at random.
        retry_on_status: answers worth another attempt. Connection errors and timeouts are
            always retried; writes are safe to retry because every attempt of one call carries
            the same ``Idempotency-Key``.
        max_delay: cap on one wait. A ``Retry-After`` longer than this is not waited for: the
            error is raised at once and its ``retry_after`` tells how long the gateway asked.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_factor: float = DEFAULT_BACKOFF_FACTOR
    retry_on_status: Collection[int] = field(default=DEFAULT_RETRY_STATUSES)
    max_delay: float = MAX_RETRY_DELAY

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, not {self.max_retries}")
        if self.backoff_factor < 0:
            raise ValueError(f"backoff_factor must be 0 or more, not {self.backoff_factor}")
        if self.max_delay < 0:
            raise ValueError(f"max_delay must be 0 or more, not {self.max_delay}")
        # Users pass lists (as the documentation shows); keep an immutable set for lookups.
        object.__setattr__(self, "retry_on_status", frozenset(self.retry_on_status))


def retry_after_seconds(headers: Mapping[str, str] | None, *, now: float) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds, or None when absent or unreadable.

    The header holds either seconds (``"2"``, ``"0.5"``) or an HTTP date, which is compared with
    ``now`` (seconds since the epoch). A date in the past gives 0.
    """
    if not headers:
        return None
    value = _get_header(headers, RETRY_AFTER_HEADER)
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000" means "zone unknown"; HTTP dates are GMT anyway
            when = when.replace(tzinfo=datetime.UTC)
        return max(0.0, when.timestamp() - now)
    if math.isnan(seconds) or seconds < 0:  # not a wait anybody meant
        return None
    return seconds


def should_retry(
    status_code: int,
    headers: Mapping[str, str] | None,
    *,
    config: RetryConfig,
    now: float,
) -> bool:
    """Whether an answer with this status deserves another attempt (attempts left aside)."""
    if status_code not in config.retry_on_status:
        return False
    asked = retry_after_seconds(headers, now=now)
    # Waiting less than the gateway asked would only earn the same answer again.
    return asked is None or asked <= config.max_delay


def retry_delay(
    attempt: int,
    headers: Mapping[str, str] | None,
    *,
    config: RetryConfig,
    now: float,
    rand: float,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (0 for the first attempt).

    A positive ``Retry-After`` within ``config.max_delay`` is obeyed as given. Otherwise the
    wait is ``backoff_factor * 2 ** attempt``, capped at ``max_delay``, shortened by up to
    ``RETRY_JITTER`` according to ``rand`` (a draw in [0, 1)).
    """
    asked = retry_after_seconds(headers, now=now)
    if asked is not None and 0 < asked <= config.max_delay:
        return asked
    # Bound the exponent: past 2**30 the cap has long won, and huge powers overflow floats.
    backoff = min(config.backoff_factor * 2.0 ** min(attempt, 30), config.max_delay)
    return backoff * (1 - RETRY_JITTER * rand)


def _get_header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    # A plain dict is case-sensitive; httpx.Headers is not. Accept both.
    lowered = name.lower()
    for key, found in headers.items():
        if key.lower() == lowered:
            return found
    return None
