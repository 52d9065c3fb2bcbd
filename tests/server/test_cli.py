"""``permission-mongo serve``: configuration errors stop the start with file, line and what is
wrong; without a MongoDB URI the embedded database is started and stopped with the gateway."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
import pytest

from .harness import Gateway, clean_environment, serve_command, write_config


def serve_fails(config_dir: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Run serve, expect it to refuse to start; return what it printed on stderr."""
    result = subprocess.run(
        serve_command(config_dir, *args),
        env=clean_environment(env), cwd=config_dir.parent, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert "listening on" not in result.stdout
    return result.stderr


@pytest.mark.parametrize(
    ("server_yml", "expected"),
    [
        pytest.param("limits:\n  max_body_bytes: 1000000\n  max_pagesize: 50\n", ["server.yml:3:3", "unknown key 'max_pagesize'", "did you mean 'max_page_size'"], id="unknown-key"),
        pytest.param("mongodb:\n  timeout: soon\n", ["server.yml:2:12", "mongodb.timeout must be a number"], id="wrong-type"),
        pytest.param("limits:\n  query_max_time_ms: 0\n", ["server.yml:2:22", "limits.query_max_time_ms must be at least 1"], id="no-time-limit"),
        pytest.param("limits:\n  max_response_bytes: 100\n", ["server.yml:2:23", "limits.max_response_bytes must be at least 1024"], id="tiny-response"),
        pytest.param("auth:\n  jwt:\n    secret: short\n", ["server.yml:3:13", "at least 32 bytes"], id="short-secret"),
        pytest.param("auth:\n  jwt:\n    algorithm: RS256\n", ["server.yml", "needs a public key"], id="no-public-key"),
        pytest.param("auth:\n  jwt:\n    algorithm: [HS256, RS256]\n    secret: " + "s" * 40 + "\n", ["server.yml:3:16", "cannot be mixed"], id="mixed-families"),
        pytest.param("auth:\n  jwt:\n    algorithm: none\n    secret: " + "s" * 40 + "\n", ["server.yml:3:16", "unsupported algorithm 'none'"], id="alg-none"),
        pytest.param("auth:\n  jwt:\n    algorithm: RS256\n    public_key: not a key\n", ["server.yml:4:17", "public key"], id="bad-public-key"),
        pytest.param("cursor:\n  secret: ${ENV.NOT_SET_ANYWHERE}\n", ["server.yml:2:11", "'NOT_SET_ANYWHERE' is not set"], id="unset-env"),
        pytest.param("limits:\n  max_document_depth: 101\n", ["server.yml:2:23", "limits.max_document_depth must be at most 100"], id="deeper-than-mongodb"),
        pytest.param("limits: [1, 2\n", ["server.yml:2", "invalid YAML"], id="yaml-syntax"),
        pytest.param("- a list\n", ["server.yml:1", "must be a mapping"], id="not-a-mapping"),
    ],
)
def test_a_bad_server_yml_stops_the_start(tmp_path: Path, mongo_uri: str, server_yml: str, expected: list[str]) -> None:
    stderr = serve_fails(write_config(tmp_path / "config", server_yml), "--port", "0", "--mongodb-uri", mongo_uri)
    for text in expected:
        assert text in stderr


def test_a_bad_policy_stops_the_start(tmp_path: Path, mongo_uri: str) -> None:
    config_dir = write_config(tmp_path / "config")
    (config_dir / "policy.yml").write_text("roles:\n  viewer: {}\npolicies:\n  notes:\n    viewer:\n      actions: [read, fly]\n")
    stderr = serve_fails(config_dir, "--port", "0", "--mongodb-uri", mongo_uri)
    assert "policy.yml:6" in stderr and "fly" in stderr


def test_a_missing_policy_stops_the_start(tmp_path: Path, mongo_uri: str) -> None:
    config_dir = write_config(tmp_path / "config")
    (config_dir / "policy.yml").unlink()
    assert "policy.yml" in serve_fails(config_dir, "--port", "0", "--mongodb-uri", mongo_uri)


def test_a_missing_config_directory_stops_the_start(tmp_path: Path) -> None:
    assert "not a directory" in serve_fails(tmp_path / "nowhere", "--port", "0")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PM_PORT": "eighty"}, "environment variable PM_PORT"),
        ({"PM_ADMIN_KEY": "letmein"}, "environment variable PM_ADMIN_KEY"),
        ({"PM_MONGODB_URI": "postgres://localhost/x"}, "environment variable PM_MONGODB_URI"),
        ({"PM_JWT_SECRET": "short"}, "environment variable PM_JWT_SECRET"),
    ],
)
def test_a_bad_environment_variable_stops_the_start(tmp_path: Path, mongo_uri: str, env: dict[str, str], expected: str) -> None:
    env = {"PM_MONGODB_URI": mongo_uri, **env}
    stderr = serve_fails(write_config(tmp_path / "config"), env=env)
    assert expected in stderr
    assert "letmein" not in stderr  # a wrong secret is not echoed either


def test_options_override_the_environment(tmp_path: Path, mongo_uri: str, start_gateway: Callable[..., Gateway]) -> None:
    # PM_MONGODB_URI is unusable, --mongodb-uri wins; PM_PORT is taken, --port 0 wins.
    server = start_gateway(None, "--mongodb-uri", mongo_uri, env={"PM_MONGODB_URI": "mongodb://127.0.0.1:1/", "PM_PORT": "1"})
    assert httpx.get(f"{server.url}/ready").status_code == 200


def test_without_a_uri_the_embedded_database_runs_with_the_gateway(tmp_path: Path, start_gateway: Callable[..., Gateway]) -> None:
    server = start_gateway(None, cwd=tmp_path)
    assert httpx.get(f"{server.url}/ready", timeout=30).status_code == 200
    assert "embedded database" in server.output
    data_dir = tmp_path / ".permission-mongo"
    assert str(data_dir) in server.output
    assert data_dir.is_dir() and any(data_dir.iterdir())
    assert server.stop() == 0
    assert "embedded database stopped" in server.output
