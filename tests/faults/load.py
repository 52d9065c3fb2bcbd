"""Write load with a ledger: who was told a document was created, and what is stored.

``CreateLoad`` runs writer threads that create documents one by one (or in batches) until
stopped. Every document carries a marker, ``(writer, seq)``, and the run's id; each writer
records which of its creates were acknowledged and which raised after the client's retries.
``CreateLoad.report`` then counts the stored documents by marker, directly with pymongo:
an acknowledged marker not stored is *lost*, a marker stored more than once is a *duplicate*.

Writers are callables ``create(documents) -> indexes acknowledged`` that raise when the outcome
is unknown: :class:`SdkWriter` goes through the gateway with ``PermissionMongo`` (its retries and
``Idempotency-Key``), ``bench/faults.py`` adds raw pymongo as the baseline. ``Traffic`` counts
every HTTP attempt the SDK makes by its answer, so 503s with and without ``Retry-After`` show.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pymongo

from permission_mongo import PermissionMongo, PermissionMongoError, RetryConfig

__all__ = ["FAULT_RETRIES", "CreateLoad", "LoadReport", "SdkWriter", "Traffic", "Writer"]

Marker = tuple[int, int]  # (writer, seq)
Writer = Callable[[list[dict[str, Any]]], Sequence[int]]

# Retries spanning a few seconds of outage (a kill, a second down, a restart): about 9 s in all.
FAULT_RETRIES = RetryConfig(max_retries=8, backoff_factor=0.2, max_delay=1.5)


class Traffic(httpx.BaseTransport):
    """An httpx transport that counts every attempt by its answer (threads share one)."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self._lock = threading.Lock()
        self.answers: Counter[str] = Counter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = self._inner.handle_request(request)
        except httpx.TransportError as exc:
            self._count(type(exc).__name__)
            raise
        status = response.status_code
        if status == 503:
            self._count("503 with Retry-After" if "retry-after" in response.headers else "503 without Retry-After")
        else:
            self._count(str(status))
        return response

    def _count(self, key: str) -> None:
        with self._lock:
            self.answers[key] += 1

    def close(self) -> None:
        self._inner.close()


class SdkWriter:
    """Creates through the gateway with the SDK: ``insert`` per document, or ``batch_create``."""

    def __init__(
        self,
        url: str,
        api_key: str,
        collection: str,
        *,
        batch: bool = False,
        traffic: Traffic | None = None,
        retry_config: RetryConfig = FAULT_RETRIES,
    ) -> None:
        self.collection = collection
        self.batch = batch
        self.client = PermissionMongo(
            url=url, api_key=api_key, timeout=10, retry_config=retry_config,
            transport=traffic or httpx.HTTPTransport(),
        )

    def __call__(self, documents: list[dict[str, Any]]) -> Sequence[int]:
        if not self.batch:
            assert len(documents) == 1
            created = self.client.insert(self.collection, documents[0])
            return [0] if created.get("_id") is not None else []
        result = self.client.batch_create(self.collection, documents)
        refused = {failure["index"] for failure in result["failed"]}
        acknowledged = [i for i in range(len(documents)) if i not in refused]
        assert len(acknowledged) == len(result["created"]), result
        return acknowledged

    def close(self) -> None:
        self.client.close()


@dataclass
class LoadReport:
    """What the writers were told, against what the database holds."""

    acknowledged: set[Marker]
    failed: set[Marker]  # the create raised after its retries: outcome unknown to the caller
    errors: Counter[str]  # the errors those creates raised, by kind
    stored: Counter[Marker]  # documents of the run by marker
    answers: Counter[str] = field(default_factory=Counter)  # HTTP attempts by answer (SDK)

    @property
    def lost(self) -> list[Marker]:
        return sorted(m for m in self.acknowledged if not self.stored[m])

    @property
    def duplicates(self) -> dict[Marker, int]:
        return {m: n for m, n in sorted(self.stored.items()) if n > 1}

    @property
    def stored_documents(self) -> int:
        return sum(self.stored.values())

    def summary(self) -> str:
        lost, duplicates = self.lost, self.duplicates
        lines = [
            f"{len(self.acknowledged)} creates acknowledged, {self.stored_documents} documents stored, "
            f"{len(lost)} acknowledged but lost, {len(duplicates)} stored more than once, "
            f"{len(self.failed)} failed after retries",
        ]
        if lost:
            lines.append(f"lost (writer, seq): {lost[:20]}{' ...' if len(lost) > 20 else ''}")
        if duplicates:
            shown = dict(list(duplicates.items())[:20])
            lines.append(f"duplicates {{(writer, seq): copies}}: {shown}{' ...' if len(duplicates) > 20 else ''}")
        if self.errors:
            lines.append(f"errors of failed creates: {dict(self.errors)}")
        if self.answers:
            lines.append(f"HTTP answers: {dict(sorted(self.answers.items()))}")
        return "\n".join(lines)


class CreateLoad:
    """Writer threads creating marked documents until :meth:`stop`.

    ``make_writer(index)`` gives each thread its own writer; ``batch_size`` documents per
    create (1: single creates). Use it as a context manager: the threads start on entry and
    are stopped (each finishing the create it is in, retries included) on exit.
    """

    def __init__(self, make_writer: Callable[[int], Writer], *, writers: int, batch_size: int = 1) -> None:
        self.run_id = uuid.uuid4().hex
        self.batch_size = batch_size
        self._writers = [make_writer(i) for i in range(writers)]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._acknowledgement = threading.Condition(self._lock)
        self._acknowledged: set[Marker] = set()
        self._failed: set[Marker] = set()
        self._errors: Counter[str] = Counter()
        self._threads = [
            threading.Thread(target=self._write, args=(i, writer), name=f"writer-{i}", daemon=True)
            for i, writer in enumerate(self._writers)
        ]

    def document(self, writer: int, seq: int) -> dict[str, Any]:
        return {"name": f"fault {writer}/{seq}", "run": self.run_id, "writer": writer, "seq": seq}

    def _write(self, index: int, create: Writer) -> None:
        seq = 0
        while not self._stop.is_set():
            markers = [(index, seq + i) for i in range(self.batch_size)]
            seq += self.batch_size
            try:
                acknowledged = set(create([self.document(*m) for m in markers]))
            except PermissionMongoError as exc:  # the gateway's message says which 503 it was
                self._record_failure(markers, f"{exc.error_code or type(exc).__name__}: {str(exc)[:120]}")
                continue
            except pymongo.errors.PyMongoError as exc:
                self._record_failure(markers, type(exc).__name__)
                continue
            with self._lock:
                for i, marker in enumerate(markers):
                    (self._acknowledged if i in acknowledged else self._failed).add(marker)
                self._acknowledgement.notify_all()

    def _record_failure(self, markers: list[Marker], error: str) -> None:
        with self._lock:
            self._failed.update(markers)
            self._errors[error] += 1

    @property
    def acknowledged(self) -> int:
        with self._lock:
            return len(self._acknowledged)

    def wait_for_acknowledged(self, count: int, timeout: float) -> bool:
        """Whether ``count`` creates are acknowledged within ``timeout`` seconds. Returns at
        the acknowledgement that reaches the count, so a fault injected next lands right
        behind a write the database has just confirmed."""
        with self._acknowledgement:
            return self._acknowledgement.wait_for(lambda: len(self._acknowledged) >= count, timeout)

    def start(self) -> CreateLoad:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError(f"{thread.name} still busy {timeout} s after the load was stopped")
        for writer in self._writers:
            close = getattr(writer, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> CreateLoad:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def report(self, collection: pymongo.collection.Collection[Any], traffic: Traffic | None = None) -> LoadReport:
        """Count the run's documents in ``collection`` (read directly) against the ledger."""
        stored: Counter[Marker] = Counter()
        for group in collection.aggregate([
            {"$match": {"run": self.run_id}},
            {"$group": {"_id": {"writer": "$writer", "seq": "$seq"}, "n": {"$sum": 1}}},
        ]):
            stored[(group["_id"]["writer"], group["_id"]["seq"])] = group["n"]
        with self._lock:
            return LoadReport(
                acknowledged=set(self._acknowledged), failed=set(self._failed), errors=Counter(self._errors),
                stored=stored, answers=Counter(traffic.answers) if traffic else Counter(),
            )
