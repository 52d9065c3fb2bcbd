"""The ``server`` section of server.yml: defaults, values, and mistakes named by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from permission_mongo.policy import ConfigError
from permission_mongo.server import load_settings

from .harness import EXAMPLES


def settings_from(tmp_path: Path, server_yml: str):  # type: ignore[no-untyped-def]
    (tmp_path / "server.yml").write_text(server_yml)
    return load_settings(tmp_path, environ={})


def test_defaults(tmp_path: Path) -> None:
    server = load_settings(tmp_path, environ={}).server
    assert (server.max_concurrent_requests, server.header_timeout) == (128, 10.0)


def test_values(tmp_path: Path) -> None:
    server = settings_from(tmp_path, "server:\n  max_concurrent_requests: 2\n  header_timeout: 0.5\n").server
    assert (server.max_concurrent_requests, server.header_timeout) == (2, 0.5)


def test_the_example_lists_the_keys() -> None:
    example = (EXAMPLES / "server.yml").read_text()
    assert "max_concurrent_requests:" in example and "header_timeout:" in example


@pytest.mark.parametrize(
    ("server_yml", "expected"),
    [
        ("server:\n  max_concurrent_requests: 0\n", ["server.yml:2:28", "server.max_concurrent_requests must be at least 1"]),
        ("server:\n  max_concurrent_requests: 1.5\n", ["server.yml:2:28", "server.max_concurrent_requests must be an integer"]),
        ("server:\n  header_timeout: soon\n", ["server.yml:2:19", "server.header_timeout must be a number"]),
        ("server:\n  header_timeout: 0\n", ["server.yml:2:19", "server.header_timeout must be at least 0.1"]),
        ("server:\n  header_timout: 5\n", ["server.yml:2:3", "unknown key 'header_timout'", "did you mean 'header_timeout'"]),
        ("server: 5\n", ["server.yml:1:9", "server must be a mapping"]),
    ],
)
def test_a_bad_value_names_its_place(tmp_path: Path, server_yml: str, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_from(tmp_path, server_yml)
    for part in expected:
        assert part in str(raised.value)
