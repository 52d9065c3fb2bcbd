"""The ``permission-mongo`` command.

    permission-mongo serve --config DIR [--host H] [--port P] [--mongodb-uri URI] [--database NAME]

Options fall back to ``PM_HOST``, ``PM_PORT``, ``PM_MONGODB_URI`` and ``PM_DATABASE``, then to
``DIR/server.yml``. Without a MongoDB URI the embedded database (SecantusDB) is started with
its data in ``./.permission-mongo/`` and stopped on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import dataclasses
import signal
import socket
import sys
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .server import ServerSettings

__all__ = ["main"]

EMBEDDED_DATA_DIR = ".permission-mongo"
_EXIT_CONFIG_ERROR = 2
_EXIT_FAILURE = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="permission-mongo", description="An authorization gateway for MongoDB.")
    parser.add_argument("--version", action="version", version=f"permission-mongo {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the gateway", description="Run the gateway.")
    serve.add_argument("--config", default=".", metavar="DIR", help="directory holding policy.yml and the optional schema.yml, server.yml (default: .)")
    serve.add_argument("--host", help="address to listen on (env PM_HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port to listen on, 0 for any free port (env PM_PORT; default 8080)")
    serve.add_argument("--mongodb-uri", metavar="URI", help="MongoDB to use (env PM_MONGODB_URI; default: start the embedded database)")
    serve.add_argument("--database", metavar="NAME", help="database name (env PM_DATABASE; default: from the URI, else permission_mongo)")
    return parser


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    raise AssertionError(args.command)  # argparse refuses unknown commands


def _fail(message: str) -> None:
    print(f"permission-mongo: {message}", file=sys.stderr, flush=True)


def _serve(args: argparse.Namespace) -> int:
    # SIGTERM stops the gateway the way Ctrl-C does, so the embedded database is stopped too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return _run_gateway(args)
    except KeyboardInterrupt:
        print("permission-mongo: stopped", flush=True)
        return 0


def _run_gateway(args: argparse.Namespace) -> int:
    # Imported here so that `permission-mongo --help` works without the server extra.
    from .embedded import EmbeddedDatabase, EmbeddedDatabaseError
    from .policy import ConfigError, load_policy
    from .server import create_app, load_settings

    config_dir = Path(args.config).resolve()
    if not config_dir.is_dir():
        _fail(f"configuration error: --config {args.config}: not a directory")
        return _EXIT_CONFIG_ERROR
    try:
        settings = load_settings(
            config_dir, host=args.host, port=args.port, mongodb_uri=args.mongodb_uri, database=args.database
        )
        policy = load_policy(config_dir)
    except ConfigError as exc:
        _fail(f"configuration error: {exc}")
        return _EXIT_CONFIG_ERROR

    try:
        listener = _bind(settings.host, settings.port)
    except OSError as exc:
        _fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")
        return _EXIT_FAILURE

    embedded: EmbeddedDatabase | None = None
    try:
        print(f"Permission Mongo {__version__}", flush=True)
        print(f"  config:   {config_dir}", flush=True)
        if settings.mongodb.uri is None:
            data_dir = Path.cwd() / EMBEDDED_DATA_DIR
            print(f"  database: no MongoDB URI given; starting the embedded database (SecantusDB), data in {data_dir}", flush=True)
            embedded = EmbeddedDatabase(data_dir)
            try:
                uri = embedded.start()
            except EmbeddedDatabaseError as exc:
                _fail(f"cannot start the embedded database: {exc}")
                return _EXIT_FAILURE
            print(f"            embedded database at {uri}, database {settings.mongodb.database!r}", flush=True)
            settings = _with_uri(settings, uri)
        else:
            print(f"  database: {_redacted(settings.mongodb.uri)}, database {settings.mongodb.database!r}", flush=True)
        config = _uvicorn_config(create_app(settings, policy), settings.host, settings.server.header_timeout)
        # uvicorn.run would pick the event loop (uvloop when installed); serving from our own
        # asyncio.run would silently leave it on the default one, so the loop is chosen here.
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            return runner.run(_serve_until_stopped(config, listener, settings.host))
    finally:
        listener.close()
        if embedded is not None:
            embedded.stop()
            print("permission-mongo: embedded database stopped", flush=True)


def _with_uri(settings: ServerSettings, uri: str) -> ServerSettings:
    return dataclasses.replace(settings, mongodb=dataclasses.replace(settings.mongodb, uri=uri))


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket, host: str) -> str:
    bound_host, port = sock.getsockname()[:2]
    # A wildcard address is not one a client can connect to; show the local one.
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(bound_host) or (f"[{bound_host}]" if ":" in bound_host else bound_host)
    return f"http://{shown}:{port}"


def _redacted(uri: str) -> str:
    """The URI without credentials or options, fit to print."""
    parts = urllib.parse.urlsplit(uri)
    hosts = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{hosts}{parts.path}"


def _log_config() -> dict[str, Any]:
    import uvicorn.config

    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["loggers"]["permission_mongo"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def _uvicorn_config(app: object, host: str, header_timeout: float) -> Any:
    import uvicorn

    from .server._header_timeout import protocol_with_header_timeout

    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        loop="auto",  # uvloop if installed (the server extra installs it), else asyncio
        # httptools if installed, else h11; either closes connections slow to send headers.
        http=protocol_with_header_timeout(header_timeout),
        log_config=_log_config(),
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=30,  # then in-flight requests are cut off
    )


def _environment(config: Any) -> str:
    """What serves: uvicorn's version, the event loop and the HTTP parser in use."""
    import uvicorn

    loop = type(asyncio.get_running_loop()).__module__.partition(".")[0]
    protocol = getattr(config, "http_protocol_class", None)
    parsers = {"HttpToolsProtocol": "httptools", "H11Protocol": "h11"}
    # The first of uvicorn's classes it is or derives from (the gateway's add a header timeout).
    http = next((parsers[c.__name__] for c in getattr(protocol, "__mro__", ()) if c.__name__ in parsers), str(protocol))
    return f"uvicorn {uvicorn.__version__}, loop {loop}, http {http}"


async def _serve_until_stopped(config: Any, listener: socket.socket, host: str) -> int:
    import uvicorn

    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started and not serving.done():
        await asyncio.wait([serving], timeout=0.02)
    if server.started:
        url = _url(listener, host)
        print(f"  server:   {_environment(config)}", flush=True)
        print(f"  listening on {url}  (API docs: {url}/docs; stop with Ctrl-C)", flush=True)
    await serving
    return 0 if server.started else _EXIT_FAILURE
