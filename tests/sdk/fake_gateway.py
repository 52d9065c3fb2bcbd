"""A stand-in for the gateway's data plane, served over real HTTP, that fails when told to.

It speaks the gateway's wire format (Extended JSON, the error envelope, ``X-Request-ID``),
keeps documents in memory, records every request it sees, and dedupes writes by their
``Idempotency-Key`` the way the gateway does: the first answer to a key is stored and replayed
to any later request with the same key. Errors worth retrying (429, 5xx) are not stored, so a
retry after one of them is served afresh.

Faults are queued with :meth:`FakeGateway.fail_next`; each incoming request takes the next one:

- ``Fault.error(503, retry_after="2")``: answer that error, touching nothing;
- ``Fault.hang()``: serve the request (the write happens) but hold the answer back until the
  test ends, so the client times out: a lost answer to a write that was applied;
- ``Fault.drop()``: close the connection without answering.

It understands only what the SDK tests need: equality and comparison filters, sort, fields,
cursor paging, and ``$match``/``$group``/``$sort`` pipelines.
"""

from __future__ import annotations

import datetime
import http.server
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from bson import ObjectId, json_util

_JSON = json_util.JSONOptions(json_mode=json_util.JSONMode.RELAXED, tz_aware=False)
_PREFIX = "/v1/data/"
_USER_ID = "user_test"


@dataclass(frozen=True)
class Fault:
    status: int | None = None
    code: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    hang: bool = False
    drop: bool = False

    @classmethod
    def error(
        cls, status: int, code: str | None = None, *, retry_after: str | None = None
    ) -> Fault:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls(status=status, code=code or f"HTTP_{status}", headers=headers)

    @classmethod
    def hang_after_serving(cls) -> Fault:
        return cls(hang=True)

    @classmethod
    def drop_connection(cls) -> Fault:
        return cls(drop=True)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any


class _GatewayError(Exception):
    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


class FakeGateway:
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.crashes: list[BaseException] = []
        self._collections: dict[str, dict[Any, dict[str, Any]]] = {}
        self._faults: deque[Fault] = deque()
        self._answers_by_key: dict[str, tuple[int, bytes]] = {}
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._server.gateway = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> FakeGateway:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._release.set()  # let hung answers go
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # -- what tests use ----------------------------------------------------------------------

    def fail_next(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def documents(self, collection: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._collections.get(collection, {}).values())

    def seed(self, collection: str, *documents: dict[str, Any]) -> None:
        with self._lock:
            stored = self._collections.setdefault(collection, {})
            for document in documents:
                document = {"_id": ObjectId(), **document}
                stored[document["_id"]] = document

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    # -- serving -----------------------------------------------------------------------------

    def handle(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        method, path = handler.command, urlsplit(handler.path).path
        headers = {name.lower(): value for name, value in handler.headers.items()}
        body = json_util.loads(raw, json_options=_JSON) if raw else None
        request_id = headers.get("x-request-id") or f"req-{len(self.requests) + 1}"
        with self._lock:
            self.requests.append(Recorded(method, path, headers, body))
            fault = self._faults.popleft() if self._faults else Fault()

        if fault.drop:
            handler.close_connection = True
            return
        if fault.status is not None:
            status, payload = (
                fault.status,
                _envelope(fault.code or "", "injected fault", {}, request_id),
            )
            self._write(handler, status, _dumps(payload), request_id, fault.headers)
            return

        key = headers.get("idempotency-key")
        with self._lock:
            if key and _is_write(method, path) and key in self._answers_by_key:
                status, content = self._answers_by_key[key]
            else:
                status, content = self._serve(method, path, headers, body, request_id)
                if key and _is_write(method, path) and status != 429 and status < 500:
                    self._answers_by_key[key] = (status, content)

        if fault.hang:
            self._release.wait(timeout=10)
            handler.close_connection = True
            return
        self._write(handler, status, content, request_id, {})

    def _write(
        self,
        handler: _Handler,
        status: int,
        content: bytes,
        request_id: str,
        headers: Mapping[str, str],
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(content)))
        handler.send_header("X-Request-ID", request_id)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(content)

    def _serve(
        self, method: str, path: str, headers: dict[str, str], body: Any, request_id: str
    ) -> tuple[int, bytes]:
        try:
            if headers.get("authorization") != f"Bearer {self.api_key}":
                raise _GatewayError(401, "INVALID_TOKEN", "Invalid API key")
            status, payload = self._route(method, path, body)
        except _GatewayError as exc:
            status, payload = exc.status, _envelope(exc.code, exc.message, exc.details, request_id)
        except Exception as exc:  # a bug in this fake: fail the test that hit it
            self.crashes.append(exc)
            status, payload = 500, _envelope("INTERNAL_ERROR", repr(exc), {}, request_id)
        return status, _dumps(payload)

    def _route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if not path.startswith(_PREFIX):
            raise _GatewayError(404, "NOT_FOUND", f"no route {path}")
        collection, *rest = [unquote(part) for part in path[len(_PREFIX) :].split("/")]
        if collection.startswith("unknown"):
            raise _GatewayError(404, "COLLECTION_NOT_FOUND", f"no collection {collection!r}")
        docs = self._collections.setdefault(collection, {})
        action = (method, rest[0] if rest else None)
        if action == ("POST", None):
            return 201, self._insert(docs, body)
        if action == ("POST", "batch"):
            return 200, self._batch_create(docs, body)
        if action == ("PATCH", "batch"):
            return 200, self._batch_update(docs, body)
        if action == ("DELETE", "batch"):
            return 200, {"deleted": len([docs.pop(d["_id"]) for d in self._select(docs, body)])}
        if action == ("POST", "find"):
            return 200, self._find(docs, body)
        if action == ("POST", "count"):
            return 200, {"count": sum(1 for d in docs.values() if _matches(d, body["filter"]))}
        if action == ("POST", "aggregate"):
            return 200, {"data": _aggregate(list(docs.values()), body["pipeline"])}
        if len(rest) == 1 and method in ("GET", "PATCH", "DELETE"):
            document = docs.get(_parse_id(rest[0]))
            if document is None:
                raise _GatewayError(404, "NOT_FOUND", "Document not found")
            if method == "GET":
                return 200, document
            if method == "PATCH":
                _apply_update(document, body)
                return 200, document
            del docs[document["_id"]]
            return 200, {"deleted": True, "id": document["_id"]}
        raise _GatewayError(405, "BAD_REQUEST", f"{method} {path} is not an operation")

    def _insert(self, docs: dict[Any, dict[str, Any]], body: Any) -> dict[str, Any]:
        _validate(body)
        now = _now()
        document = {
            "_id": ObjectId(),
            **body,
            "created_by": _USER_ID,
            "created_at": now,
            "updated_at": now,
        }
        docs[document["_id"]] = document
        return document

    def _batch_create(self, docs: dict[Any, dict[str, Any]], body: Any) -> dict[str, Any]:
        created, failed = [], []
        for index, document in enumerate(body["documents"]):
            try:
                created.append(self._insert(docs, document)["_id"])
            except _GatewayError as exc:
                failed.append({"index": index, "error": {"code": exc.code, "message": exc.message}})
        return {"created": created, "failed": failed}

    def _batch_update(self, docs: dict[Any, dict[str, Any]], body: Any) -> dict[str, Any]:
        selected = self._select(docs, body)
        modified = 0
        for document in selected:
            before = dict(document)
            _apply_update(document, body["update"])
            modified += {k: v for k, v in document.items() if k != "updated_at"} != {
                k: v for k, v in before.items() if k != "updated_at"
            }
        return {"matched": len(selected), "modified": modified, "refused": []}

    def _select(self, docs: dict[Any, dict[str, Any]], body: Any) -> list[dict[str, Any]]:
        if "ids" in body:
            wanted = [_parse_id(i) if isinstance(i, str) else i for i in body["ids"]]
            return [docs[i] for i in wanted if i in docs]
        return [d for d in docs.values() if _matches(d, body["filter"])]

    def _find(self, docs: dict[Any, dict[str, Any]], body: Any) -> dict[str, Any]:
        found = [d for d in docs.values() if _matches(d, body.get("filter", {}))]
        for key in reversed(body.get("sort", [])):
            name = key.lstrip("-")
            found.sort(key=lambda d: _sort_key(d, name), reverse=key.startswith("-"))
        limit = body.get("limit", 20)
        if not 1 <= limit <= 10_000:
            raise _GatewayError(400, "BAD_REQUEST", "limit must be between 1 and 10000")
        start = int(body["cursor"].removeprefix("opaque-")) if body.get("cursor") else 0
        page = found[start : start + limit]
        if "fields" in body:
            page = [{k: v for k, v in d.items() if k == "_id" or k in body["fields"]} for d in page]
        has_more = start + limit < len(found)
        return {
            "data": page,
            "pagination": {
                "has_more": has_more,
                "cursor": f"opaque-{start + limit}" if has_more else None,
            },
        }


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: don't delay the second
    server: http.server.ThreadingHTTPServer

    def _dispatch(self) -> None:
        self.server.gateway.handle(self)  # type: ignore[attr-defined]

    do_GET = do_POST = do_PATCH = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


def _is_write(method: str, path: str) -> bool:
    return method != "GET" and not path.endswith(("/find", "/count", "/aggregate"))


def _envelope(code: str, message: str, details: dict[str, Any], request_id: str) -> dict[str, Any]:
    return {
        "error": {"code": code, "message": message, "details": details},
        "meta": {"request_id": request_id},
    }


def _dumps(payload: Any) -> bytes:
    return json_util.dumps(payload, json_options=_JSON).encode()


def _now() -> datetime.datetime:
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)  # BSON keeps milliseconds


def _sort_key(document: dict[str, Any], name: str) -> tuple[bool, Any]:
    return (document.get(name) is not None, document.get(name))  # missing values sort first


def _parse_id(text: str) -> ObjectId:
    # The gateway's rule: ids are ObjectIds, given as 24 hex digits in paths and id lists.
    if not ObjectId.is_valid(text):
        raise _GatewayError(400, "BAD_REQUEST", f"{text!r} is not a valid id", {"id": text})
    return ObjectId(text)


def _validate(document: Any) -> None:
    if not isinstance(document, dict):
        raise _GatewayError(400, "BAD_REQUEST", "a document must be an object")
    if document.get("name") == "":
        raise _GatewayError(422, "VALIDATION_ERROR", "name must not be empty", {"field": "name"})


def _apply_update(document: dict[str, Any], update: dict[str, Any]) -> None:
    if any(key.startswith("$") for key in update):
        document.update(update.get("$set", {}))
        for name, step in update.get("$inc", {}).items():
            document[name] = document.get(name, 0) + step
        for name in update.get("$unset", {}):
            document.pop(name, None)
    else:
        document.update(update)
    document["updated_at"] = _now()


_COMPARISONS = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$in": lambda a, b: a in b,
    "$nin": lambda a, b: a not in b,
    "$lt": lambda a, b: a is not None and a < b,
    "$lte": lambda a, b: a is not None and a <= b,
    "$gt": lambda a, b: a is not None and a > b,
    "$gte": lambda a, b: a is not None and a >= b,
}


def _matches(document: dict[str, Any], filter: dict[str, Any]) -> bool:
    for name, condition in filter.items():
        value = document.get(name)
        if isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition):
            try:
                if not all(_COMPARISONS[op](value, operand) for op, operand in condition.items()):
                    return False
            except TypeError:  # e.g. a date compared with a string: no match, as in MongoDB
                return False
        elif value != condition:
            return False
    return True


def _aggregate(
    documents: list[dict[str, Any]], pipeline: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    for stage in pipeline:
        ((name, spec),) = stage.items()
        if name == "$match":
            documents = [d for d in documents if _matches(d, spec)]
        elif name == "$group":
            documents = _group(documents, spec)
        elif name == "$sort":
            for key, direction in reversed(list(spec.items())):
                documents.sort(key=lambda d: _sort_key(d, key), reverse=direction == -1)
        else:
            raise _GatewayError(400, "BAD_REQUEST", f"stage {name} is not allowed")
    return documents


def _group(documents: list[dict[str, Any]], spec: dict[str, Any]) -> list[dict[str, Any]]:
    def value(document: dict[str, Any], expression: Any) -> Any:
        return document.get(expression[1:]) if isinstance(expression, str) else expression

    groups: dict[Any, list[dict[str, Any]]] = {}
    for document in documents:
        groups.setdefault(value(document, spec["_id"]), []).append(document)
    results = []
    for key, members in groups.items():
        result: dict[str, Any] = {"_id": key}
        for name, accumulator in spec.items():
            if name == "_id":
                continue
            ((op, expression),) = accumulator.items()
            numbers = [
                v for v in (value(m, expression) for m in members) if isinstance(v, (int, float))
            ]
            result[name] = (
                sum(numbers) if op == "$sum" else (sum(numbers) / len(numbers) if numbers else None)
            )
        results.append(result)
    return results
