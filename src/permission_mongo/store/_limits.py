"""Bounds on what one database operation may cost: time, and bytes read."""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import ResultTooLargeError

__all__ = ["SizeLimit", "TimeLimit"]


@dataclass(frozen=True)
class TimeLimit:
    """How long one database operation may run: pymongo's operation timeout, which also sends the
    database ``maxTimeMS`` so the work stops there too.

    ``setting`` is the server setting named in the 400 a caller's request gets when it runs
    past the limit. None for the gateway's own operations (API keys, idempotency records): there
    running out of time says the database is too slow, not that the request asked too much (503).
    """

    milliseconds: int
    setting: str | None = None

    @property
    def seconds(self) -> float:
        return self.milliseconds / 1000


@dataclass(frozen=True)
class SizeLimit:
    """How many bytes of documents one answer may hold; ``setting`` is named when it is passed."""

    bytes: int
    setting: str

    def check(self, size: int) -> None:
        """Raise ``ResultTooLargeError`` if ``size`` bytes pass the limit."""
        if size > self.bytes:
            raise ResultTooLargeError(
                f"the documents of this request are larger than {self.setting} allows ({self.bytes} bytes); "
                "ask for fewer: a smaller limit or a narrower filter (for a pipeline, a $project or a $limit)",
                details={"setting": self.setting, "max_bytes": self.bytes},
            )
