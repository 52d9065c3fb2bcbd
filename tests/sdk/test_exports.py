"""The public surface: what ``permission_mongo`` exports, and what importing it costs."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest

import permission_mongo
import permission_mongo.client
from permission_mongo import _version
from permission_mongo.client import _exceptions

PUBLIC = {
    "PermissionMongo",
    "AsyncPermissionMongo",
    "RetryConfig",
    "Page",
    "AsyncPage",
    "PermissionMongoError",
    "APIConnectionError",
    "APITimeoutError",
    "UnexpectedResponseError",
    "APIStatusError",
    "ValidationError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "RateLimitError",
    "ServerError",
    "Document",
    "DocumentId",
    "DeleteResult",
    "BatchCreateResult",
    "BatchUpdateResult",
    "BatchDeleteResult",
    "__version__",
}


def test_all_lists_exactly_the_public_names() -> None:
    assert set(permission_mongo.__all__) == PUBLIC
    assert len(permission_mongo.__all__) == len(PUBLIC)
    assert sorted(dir(permission_mongo)) == sorted(PUBLIC)


def test_every_public_name_is_the_sdk_object() -> None:
    # The root re-exports the SDK package: the same objects, not copies or wrappers.
    assert set(permission_mongo.client.__all__) == PUBLIC - {"__version__"}
    for name in PUBLIC - {"__version__"}:
        assert getattr(permission_mongo, name) is getattr(permission_mongo.client, name), name
    assert permission_mongo.__version__ is _version.__version__


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="'permission_mongo' has no attribute 'Nope'"):
        permission_mongo.Nope  # noqa: B018
    assert not hasattr(permission_mongo, "_client")


def test_every_exception_class_is_exported() -> None:
    defined = {
        value.__name__
        for value in vars(_exceptions).values()
        if isinstance(value, type) and issubclass(value, permission_mongo.PermissionMongoError)
    }
    assert defined <= set(permission_mongo.__all__)


def test_version_matches_the_distribution() -> None:
    assert permission_mongo.__version__ == version("permission-mongo")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, permission_mongo.ValidationError),
        (401, permission_mongo.AuthenticationError),
        (403, permission_mongo.PermissionDeniedError),
        (404, permission_mongo.NotFoundError),
        (409, permission_mongo.ConflictError),
        (422, permission_mongo.ValidationError),
        (429, permission_mongo.RateLimitError),
        (500, permission_mongo.ServerError),
        (502, permission_mongo.ServerError),
        (503, permission_mongo.ServerError),
        (599, permission_mongo.ServerError),
        (405, permission_mongo.APIStatusError),
        (418, permission_mongo.APIStatusError),
        (302, permission_mongo.APIStatusError),
    ],
)
def test_status_table(status: int, expected: type) -> None:
    assert _exceptions.error_class_for(status) is expected


def test_status_table_holds_only_status_errors() -> None:
    for status, cls in _exceptions._BY_STATUS.items():
        assert issubclass(cls, permission_mongo.APIStatusError), status
        assert 400 <= status < 500, "5xx is ServerError by range, not by entry"


def test_timeouts_are_connection_errors_and_all_errors_share_a_base() -> None:
    assert issubclass(permission_mongo.APITimeoutError, permission_mongo.APIConnectionError)
    for name in permission_mongo.__all__:
        value = getattr(permission_mongo, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, permission_mongo.PermissionMongoError), name


def test_importing_the_sdk_loads_no_server_code() -> None:
    forbidden = [
        "permission_mongo.policy",
        "permission_mongo.server",
        "permission_mongo.store",
        "permission_mongo.auth",
        "permission_mongo.cli",
        "permission_mongo.embedded",
        "fastapi",
        "starlette",
        "uvicorn",
        "lark",
        "yaml",
        "jwt",
        "redis",
        "orjson",
    ]
    code = (
        "import sys, permission_mongo\n"
        "from permission_mongo import PermissionMongo, AsyncPermissionMongo\n"
        f"loaded = [m for m in {forbidden!r} if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
