"""/health, /ready, /docs; readiness when the database is unreachable; clean shutdown."""

from __future__ import annotations

import socket
from collections.abc import Callable

import httpx

from .harness import Gateway, assert_error, new_admin_key


def test_health_says_the_process_is_up(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_ready_when_the_database_answers(client: httpx.Client) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_docs_and_openapi_are_served(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/v1/admin/api-keys" in spec["paths"]
    body = spec["paths"]["/v1/admin/api-keys"]["post"]["requestBody"]["content"]["application/json"]
    assert "identity" in body["schema"]["properties"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_database_means_not_ready_and_503(start_gateway: Callable[..., Gateway]) -> None:
    admin_key = new_admin_key()
    server = start_gateway(
        "mongodb:\n  timeout: 0.3\n",
        "--mongodb-uri", f"mongodb://127.0.0.1:{_closed_port()}/?retryWrites=false",
        env={"PM_ADMIN_KEY": admin_key},
    )
    with server.client(admin_key) as http:
        assert http.get("/health").status_code == 200
        error = assert_error(http.get("/ready"), 503, "SERVICE_UNAVAILABLE")
        assert "database" in error["message"]
        # The admin key needs no database; creating a key does.
        created = http.post("/v1/admin/api-keys", json={"identity": {"id": "bob"}})
        assert_error(created, 503, "SERVICE_UNAVAILABLE")
    with server.client(new_admin_key()) as stranger:
        assert_error(stranger.get("/v1/whoami"), 503, "SERVICE_UNAVAILABLE")
    assert "Traceback" not in server.output


def test_sigterm_stops_the_gateway_cleanly(start_gateway: Callable[..., Gateway], mongo_uri: str) -> None:
    server = start_gateway(None, "--mongodb-uri", mongo_uri)
    assert server.stop() == 0
    assert "Traceback" not in server.output


def test_every_reference_in_the_openapi_document_resolves(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()

    def references(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [ref for value in node.values() for ref in references(value)]
        if isinstance(node, list):
            return [ref for item in node for ref in references(item)]
        return []

    for reference in references(document):
        target: object = document
        for part in reference.removeprefix("#/").split("/"):
            assert isinstance(target, dict) and part in target, f"{reference} points at nothing"
            target = target[part]
