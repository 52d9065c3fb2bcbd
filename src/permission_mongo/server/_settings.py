"""Server settings: ``server.yml`` in the config directory, then ``PM_*`` environment
variables, then command-line options, each overriding the one before.

Every mistake is a ``ConfigError`` naming where it was made: the file, line and column, or the
environment variable. Unknown keys are mistakes too (a misspelt key would otherwise be a
setting silently left at its default).

    mongodb:
      uri: mongodb://db.internal:27017/?replicaSet=rs0
      database: app
      timeout: 5               # seconds to find the server before answering 503
      operation_timeout: 5     # seconds any one database operation may take (then 503)
      write_concern:           # what a write reaches before it is acknowledged
        w: majority            # or a number of members; a standalone counts as a majority
        j: true                # journaled: on disk, so a crash does not lose it
    auth:
      jwt:
        algorithm: RS256       # or a list of one family: [RS256, RS512]
        public_key_file: jwt.pem   # or public_key: | PEM, or secret: for HS*
        issuer: https://login.example.com/
        audience: permission-mongo
        leeway: 30
        builtin_roles_issuers: [https://login.example.com/]   # may grant pm:admin, pm:pdp
      api_keys:
        cache_seconds: 5
    limits:
      max_body_bytes: 16777216
      default_page_size: 20
      max_page_size: 10000
      max_batch_size: 1000     # documents per batch create or update, ids per batch
      max_document_depth: 100  # levels of documents and arrays a written document may nest (MongoDB's)
      query_max_time_ms: 5000  # each database operation of a request (find, count, writes...);
      aggregate_max_time_ms: 5000   # at most mongodb.operation_timeout
      max_response_bytes: 16777216   # documents of one find page or pipeline answer
    idempotency:
      ttl_seconds: 86400       # how long the answer to a write with an Idempotency-Key is kept
      lease_seconds: 60        # how long a repeat waits (503) for the first attempt to finish
    cursor:
      secret: ${ENV.PM_CURSOR_SECRET}
    server:
      max_concurrent_requests: 128   # in flight at once; more answer 503 OVERLOADED (not /health, /ready)
      header_timeout: 10       # seconds a connection may take to send a request's headers
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import secrets
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..auth import JwtSettings, JwtSettingsError, JwtVerifier, is_well_formed_api_key
from ..policy import ConfigError
from ..policy._yaml import Mark, YamlList, YamlMap, load_yaml
from ..store import SizeLimit, TimeLimit

__all__ = [
    "AuthSettings",
    "HttpServerSettings",
    "IdempotencySettings",
    "LimitSettings",
    "MongoSettings",
    "ServerSettings",
    "SETTINGS_FILE",
    "load_settings",
]

SETTINGS_FILE = "server.yml"
DEFAULT_DATABASE = "permission_mongo"
_INVALID_DATABASE_CHARS = re.compile(r'[/\\. "$\x00]')


@dataclass(frozen=True)
class MongoSettings:
    uri: str | None = None  # None: start the embedded database
    database: str = DEFAULT_DATABASE
    timeout: float = 5.0  # server selection and connecting
    operation_timeout: float = 5.0  # any one operation, end to end (the driver's timeoutMS)
    # pymongo's write concern options the gateway sets: journaled, on a majority, unless
    # server.yml or the URI says otherwise.
    write_concern: Mapping[str, Any] = field(default_factory=lambda: {"w": "majority", "journal": True})


@dataclass(frozen=True)
class AuthSettings:
    jwt: JwtSettings | None = None
    admin_key: str | None = field(default=None, repr=False)
    api_key_cache_seconds: float = 5.0


@dataclass(frozen=True)
class LimitSettings:
    max_body_bytes: int = 16 * 1024 * 1024
    default_page_size: int = 20
    max_page_size: int = 10_000
    max_pipeline_stages: int = 20  # a caller's stages, nested ones included
    max_aggregate_results: int = 10_000
    aggregate_max_time_ms: int = 5_000
    max_batch_size: int = 1_000  # documents one batch create, update (or list of ids) may hold
    # Levels of documents and arrays a document the gateway writes may nest ({"a": 1} is 1):
    # at most MongoDB's own 100, so every command the gateway builds around one stays within
    # the database's limits.
    max_document_depth: int = 100
    query_max_time_ms: int = 5_000  # each database operation but aggregations
    max_response_bytes: int = 16 * 1024 * 1024  # a find page's or a pipeline's documents

    # The bounds as the store applies them, each naming its setting for the error past it.
    def query_time(self) -> TimeLimit:
        return TimeLimit(self.query_max_time_ms, "limits.query_max_time_ms")

    def aggregate_time(self) -> TimeLimit:
        return TimeLimit(self.aggregate_max_time_ms, "limits.aggregate_max_time_ms")

    def response_size(self) -> SizeLimit:
        return SizeLimit(self.max_response_bytes, "limits.max_response_bytes")


@dataclass(frozen=True)
class IdempotencySettings:
    ttl_seconds: float = 24 * 3600
    lease_seconds: float = 60.0


@dataclass(frozen=True)
class HttpServerSettings:
    # A little above pymongo's pool of 100 connections: past that, a request would mostly wait
    # for a connection inside the driver, so it is answered 503 at once instead; the margin keeps
    # the pool busy with requests that are between operations or need none.
    max_concurrent_requests: int = 128
    # Seconds from a connection's opening (or a request's first byte) to the end of its headers.
    # nginx allows 60; a real client sends its headers at once, and 10 s frees a connection held
    # by a slow or idle one six times sooner.
    header_timeout: float = 10.0


@dataclass(frozen=True)
class ServerSettings:
    config_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    mongodb: MongoSettings = field(default_factory=MongoSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    idempotency: IdempotencySettings = field(default_factory=IdempotencySettings)
    cursor_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    server: HttpServerSettings = field(default_factory=HttpServerSettings)


# Where a value came from: a position in server.yml, or "environment variable NAME" or
# "option --NAME".
_Origin = Mark | str


def _error(origin: _Origin, message: str, suggestion: str | None = None) -> ConfigError:
    if isinstance(origin, Mark):
        return ConfigError(message, file=origin.file, line=origin.line, column=origin.column, suggestion=suggestion)
    return ConfigError(message, file=origin, suggestion=suggestion)


class _Section:
    """One mapping of server.yml, read with its dotted path for messages."""

    def __init__(self, mapping: YamlMap, path: str, keys: tuple[str, ...]) -> None:
        self.mapping = mapping
        self.path = path
        for key in mapping:
            if key not in keys:
                close = difflib.get_close_matches(str(key), keys, n=1)
                where = f"in {path}" if path else "at the top level"
                raise _error(
                    mapping.key_mark(key),
                    f"unknown key {key!r} {where}; expected one of: {', '.join(keys)}",
                    f"did you mean {close[0]!r}?" if close else None,
                )

    @classmethod
    def empty(cls, mark: Mark, path: str) -> _Section:
        return cls(YamlMap(mark), path, ())

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def origin(self, key: str) -> Mark:
        return self.mapping.value_mark(key)

    def section(self, key: str, keys: tuple[str, ...]) -> _Section:
        value = self.mapping.get(key)
        if value is None:
            return _Section.empty(self.mapping.key_mark(key), self.name(key))
        if not isinstance(value, YamlMap):
            raise _error(self.origin(key), f"{self.name(key)} must be a mapping")
        return _Section(value, self.name(key), keys)

    def string(self, key: str) -> str | None:
        value = self.mapping.get(key)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise _error(self.origin(key), f"{self.name(key)} must be a string")

    def strings(self, key: str) -> tuple[str, ...] | None:
        """A string or a list of strings."""
        value = self.mapping.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            return (value,)
        if isinstance(value, YamlList) and value and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise _error(self.origin(key), f"{self.name(key)} must be a string or a non-empty list of strings")

    def number(self, key: str, *, minimum: float, maximum: float | None = None, integer: bool = False) -> float | None:
        value = self.mapping.get(key)
        if value is None:
            return None
        return _number(value, self.origin(key), self.name(key), minimum=minimum, maximum=maximum, integer=integer)


def _number(
    value: Any, origin: _Origin, name: str, *, minimum: float, maximum: float | None = None, integer: bool
) -> float:
    kind = "an integer" if integer else "a number"
    if isinstance(value, str):
        try:
            value = int(value) if integer else float(value)
        except ValueError:
            raise _error(origin, f"{name} must be {kind}, not {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise _error(origin, f"{name} must be {kind}")
    if value != value or value < minimum:  # NaN, or too small
        raise _error(origin, f"{name} must be at least {minimum:g}")
    if maximum is not None and value > maximum:
        raise _error(origin, f"{name} must be at most {maximum:g}")
    return value


def load_settings(
    config_dir: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    host: str | None = None,
    port: int | None = None,
    mongodb_uri: str | None = None,
    database: str | None = None,
) -> ServerSettings:
    """Read ``server.yml`` (optional) and the environment; keyword arguments win over both."""
    environ = os.environ if environ is None else environ
    directory = Path(config_dir)
    path = directory / SETTINGS_FILE
    document: Any = None
    if path.is_file():
        document = load_yaml(path.read_text(encoding="utf-8"), str(path), environ=environ)
    top_mark = Mark(str(path), 1, 1)
    if document is None:
        document = YamlMap(top_mark)
    if not isinstance(document, YamlMap):
        raise _error(top_mark, f"{SETTINGS_FILE} must be a mapping of settings")
    top = _Section(document, "", ("mongodb", "auth", "limits", "idempotency", "cursor", "server"))
    env = _Environment(environ)
    cursor_secret = _cursor_secret(top.section("cursor", ("secret",)), env)
    mongodb = _mongo_settings(top.section("mongodb", _MONGODB_KEYS), env, mongodb_uri, database)
    return ServerSettings(
        config_dir=directory,
        host=host or env.get("PM_HOST")[0] or "127.0.0.1",
        port=_port(port, env),
        mongodb=mongodb,
        auth=_auth_settings(top.section("auth", ("jwt", "api_keys")), env, directory),
        limits=_limit_settings(top.section("limits", _LIMIT_KEYS), mongodb),
        idempotency=_idempotency_settings(top.section("idempotency", ("ttl_seconds", "lease_seconds"))),
        **({"cursor_secret": cursor_secret} if cursor_secret else {}),
        server=_http_server_settings(top.section("server", ("max_concurrent_requests", "header_timeout"))),
    )


def _port(option: int | None, env: _Environment) -> int:
    if option is not None:
        return option
    value, origin = env.get("PM_PORT")
    if value is None or origin is None:
        return ServerSettings.port
    port = int(_number(value, origin, "the port", minimum=0, integer=True))
    if port > 65535:
        raise _error(origin, "the port must be at most 65535")
    return port


def _mongo_settings(section: _Section, env: _Environment, uri_option: str | None, database_option: str | None) -> MongoSettings:
    uri, uri_origin = _first(
        (uri_option, "option --mongodb-uri"), env.get("PM_MONGODB_URI"), (section.string("uri"), section.origin("uri"))
    )
    if uri is not None and not uri.startswith(("mongodb://", "mongodb+srv://")):
        # Never echo the URI: it may hold a password.
        raise _error(uri_origin, "the MongoDB URI must start with mongodb:// or mongodb+srv://")
    database, origin = _first(
        (database_option, "option --database"), env.get("PM_DATABASE"), (section.string("database"), section.origin("database"))
    )
    database = database or _database_in_uri(uri) or DEFAULT_DATABASE
    if len(database) > 63 or _INVALID_DATABASE_CHARS.search(database):
        raise _error(
            origin or section.mapping.mark,
            f"invalid database name {database!r}: at most 63 characters, none of / \\ . \" $ or space",
        )
    timeout = section.number("timeout", minimum=0.01)
    operation_timeout = section.number("operation_timeout", minimum=0.1)
    return MongoSettings(
        uri=uri,
        database=database,
        timeout=MongoSettings.timeout if timeout is None else timeout,
        operation_timeout=MongoSettings.operation_timeout if operation_timeout is None else operation_timeout,
        write_concern=_write_concern(section.section("write_concern", ("w", "j")), uri),
    )


_MONGODB_KEYS = ("uri", "database", "timeout", "operation_timeout", "write_concern")
# The URI's own write concern options (case-insensitive, as MongoDB reads them).
_URI_WRITE_CONCERN = {"w": "w", "journal": "journal"}


def _write_concern(section: _Section, uri: str | None) -> dict[str, Any]:
    """pymongo's write concern options: server.yml's, else the URI's (left to pymongo), else
    journaled on a majority."""
    given = {name.lower() for name, _ in urllib.parse.parse_qsl(urllib.parse.urlsplit(uri or "").query)}
    concern: dict[str, Any] = {}
    w = section.mapping.get("w")
    if w is not None:
        if isinstance(w, bool) or not (w == "majority" or (isinstance(w, int) and w >= 1)):
            raise _error(
                section.origin("w"),
                f"{section.name('w')} must be majority or a number of members from 1: the gateway answers "
                "only once it knows whether a write was applied (w: 0 is not accepted)",
            )
        concern["w"] = w
    elif "w" not in given:
        concern["w"] = "majority"
    j = section.mapping.get("j")
    if j is not None:
        if not isinstance(j, bool):
            raise _error(section.origin("j"), f"{section.name('j')} must be true or false")
        concern["journal"] = j
    elif "journal" not in given:
        concern["journal"] = True
    return concern


def _auth_settings(section: _Section, env: _Environment, directory: Path) -> AuthSettings:
    cache_seconds = section.section("api_keys", ("cache_seconds",)).number("cache_seconds", minimum=0)
    admin_key, origin = env.get("PM_ADMIN_KEY")
    if admin_key is not None and not is_well_formed_api_key(admin_key):
        raise _error(
            origin or "PM_ADMIN_KEY",
            "the admin key must be pm_ followed by at least 32 characters of A-Z a-z 0-9 _ -",
            """generate one with: python -c "import secrets; print('pm_' + secrets.token_urlsafe(32))\"""",
        )
    return AuthSettings(
        jwt=_jwt_settings(section.section("jwt", _JWT_KEYS), env, directory),
        admin_key=admin_key,
        api_key_cache_seconds=AuthSettings.api_key_cache_seconds if cache_seconds is None else cache_seconds,
    )


_LIMIT_KEYS = (
    "max_body_bytes", "default_page_size", "max_page_size",
    "max_pipeline_stages", "max_aggregate_results", "aggregate_max_time_ms", "max_batch_size",
    "max_document_depth",
    "query_max_time_ms", "max_response_bytes",
)
_LIMIT_MAXIMUMS = {"max_document_depth": 100}  # MongoDB stores no deeper
_OPERATION_TIME_LIMITS = ("query_max_time_ms", "aggregate_max_time_ms")


def _limit_settings(section: _Section, mongodb: MongoSettings) -> LimitSettings:
    minimums = {"max_body_bytes": 1024, "max_response_bytes": 1024}
    given = {
        key: section.number(key, minimum=minimums.get(key, 1), maximum=_LIMIT_MAXIMUMS.get(key), integer=True)
        for key in _LIMIT_KEYS
    }
    limits = LimitSettings(**{key: int(value) for key, value in given.items() if value is not None})
    if limits.default_page_size > limits.max_page_size:
        raise _error(section.origin("default_page_size"), "limits.default_page_size must not exceed limits.max_page_size")
    bound = int(mongodb.operation_timeout * 1000)
    for key in _OPERATION_TIME_LIMITS:
        if given[key] is None:
            # Unset: the default, within the bound of every operation.
            limits = dataclasses.replace(limits, **{key: min(getattr(limits, key), bound)})
        elif getattr(limits, key) > bound:
            # The operation would be cut off before the database gives up on it.
            raise _error(
                section.origin(key),
                f"limits.{key} ({getattr(limits, key)} ms) must not exceed mongodb.operation_timeout "
                f"({mongodb.operation_timeout:g} s), the most any database operation may take",
                f"raise mongodb.operation_timeout to at least {getattr(limits, key) / 1000:g}, or lower limits.{key}",
            )
    return limits


def _idempotency_settings(section: _Section) -> IdempotencySettings:
    ttl = section.number("ttl_seconds", minimum=1)
    lease = section.number("lease_seconds", minimum=0.1)
    return IdempotencySettings(
        ttl_seconds=IdempotencySettings.ttl_seconds if ttl is None else ttl,
        lease_seconds=IdempotencySettings.lease_seconds if lease is None else lease,
    )


def _http_server_settings(section: _Section) -> HttpServerSettings:
    concurrency = section.number("max_concurrent_requests", minimum=1, integer=True)
    header_timeout = section.number("header_timeout", minimum=0.1)
    return HttpServerSettings(
        max_concurrent_requests=HttpServerSettings.max_concurrent_requests if concurrency is None else int(concurrency),
        header_timeout=HttpServerSettings.header_timeout if header_timeout is None else header_timeout,
    )


def _cursor_secret(section: _Section, env: _Environment) -> bytes | None:
    secret, origin = _first(env.get("PM_CURSOR_SECRET"), (section.string("secret"), section.origin("secret")))
    if secret is None:
        return None  # a random one per process: cursors do not survive a restart
    if len(secret.encode()) < 32:
        raise _error(origin, "the cursor secret must be at least 32 bytes long")
    return secret.encode()


class _Environment:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def get(self, name: str) -> tuple[str | None, _Origin | None]:
        value = self.environ.get(name)
        return (value, f"environment variable {name}") if value else (None, None)


def _first(*candidates: tuple[Any, Any]) -> tuple[Any, Any]:
    """The first (value, origin) whose value is set."""
    for value, origin in candidates:
        if value is not None:
            return value, origin
    return None, None


def _database_in_uri(uri: str | None) -> str | None:
    if uri is None:
        return None
    return urllib.parse.unquote(urllib.parse.urlsplit(uri).path.lstrip("/")) or None


_JWT_KEYS = (
    "algorithm", "secret", "public_key", "public_key_file", "issuer", "audience", "leeway", "builtin_roles_issuers",
)
_JWT_ENV = {
    "algorithm": "PM_JWT_ALGORITHM",
    "secret": "PM_JWT_SECRET",
    "public_key": "PM_JWT_PUBLIC_KEY",
    "issuer": "PM_JWT_ISSUER",
    "audience": "PM_JWT_AUDIENCE",
}


def _jwt_settings(section: _Section, env: _Environment, directory: Path) -> JwtSettings | None:
    origins: dict[str, _Origin] = {key: section.origin(key) for key in section.mapping}
    values: dict[str, Any] = {
        "algorithm": section.strings("algorithm"),
        "secret": section.string("secret"),
        "public_key": section.string("public_key"),
        "issuer": section.string("issuer"),
        "audience": section.strings("audience"),
        "builtin_roles_issuers": section.strings("builtin_roles_issuers"),
    }
    key_file = section.string("public_key_file")
    if key_file is not None:
        if values["public_key"] is not None:
            raise _error(section.origin("public_key_file"), "give auth.jwt.public_key or public_key_file, not both")
        key_path = directory / key_file
        try:
            values["public_key"] = key_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise _error(section.origin("public_key_file"), f"cannot read {key_path}: {exc.strerror}") from None
        origins["public_key"] = section.origin("public_key_file")
    for key, variable in _JWT_ENV.items():
        value, origin = env.get(variable)
        if value is not None and origin is not None:
            if key in ("algorithm", "audience"):
                values[key] = tuple(part.strip() for part in value.split(",") if part.strip())
            else:
                values[key] = value
            origins[key] = origin
    if not section.mapping and all(values[key] is None for key in values):
        return None
    if values["algorithm"] is None:
        if values["public_key"] is not None:
            raise _error(
                origins.get("public_key", section.mapping.mark),
                "auth.jwt.algorithm is required with a public key (e.g. RS256 or ES256)",
            )
        values["algorithm"] = ("HS256",)
    leeway = section.number("leeway", minimum=0)
    try:
        settings = JwtSettings(
            algorithms=values["algorithm"],
            secret=values["secret"],
            public_key=values["public_key"],
            issuer=values["issuer"],
            audience=values["audience"] or (),
            leeway=leeway or 0.0,
            builtin_roles_issuers=values["builtin_roles_issuers"] or (),
        )
        JwtVerifier(settings)  # loads the key now, so a bad key stops the start
    except JwtSettingsError as exc:
        raise _error(origins.get(exc.setting, section.mapping.mark), f"auth.jwt.{exc.setting}: {exc.message}") from None
    return settings
