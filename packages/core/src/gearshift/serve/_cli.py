"""`gearshift serve`: run the routing proxy under uvicorn, one or several worker processes.

Everything is checked before uvicorn starts (the config, the proxy keys, a bind beyond loopback
without keys, the address), so a mistake is one line on stderr, not a traceback from a worker; the
"serving at" line comes once the port listens (one process: uvicorn then serves that socket).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import sys
from pathlib import Path
from typing import Any

from .._errors import ConfigError
from ..config._config_file import CONFIG_HELP
from ._access import ProxyKeys
from ._binding import bind_address, is_loopback
from ._early_signals import held_for_uvicorn, sent_to
from ._settings import DEFAULT_MAX_BODY_BYTES, ServeSettings

__all__ = ["add_serve_parser", "run_serve"]

WORKER_START_SECONDS = 60
"""How long a worker of `--workers N` that SIGHUP started may take to serve before uvicorn gives up."""

DEFAULT_SHUTDOWN_GRACE_SECONDS = 5.0
"""uvicorn's own default: what a stream still open after SIGTERM gets to end before it is cut."""


def add_serve_parser(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add `serve` to the `gearshift` parser's sub-commands."""
    from ..cli._numbers import number_in, whole_number

    serve = subcommands.add_parser(
        "serve", help="an OpenAI- and Anthropic-compatible proxy that routes every call"
    )
    serve.add_argument("--config", type=Path, help=CONFIG_HELP)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument(
        "--port", type=whole_number(1, 65535), default=4000, help="port to bind (default: 4000)"
    )
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    serve.add_argument(
        "--keys", type=Path, help="a TOML file of proxy keys (hashed); required beyond loopback"
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help=f"largest request body accepted, else 413 (default: {DEFAULT_MAX_BODY_BYTES})",
    )
    serve.add_argument("--access-log", action="store_true", help="log one JSON line per request (no prompts)")
    serve.add_argument(
        "--shutdown-grace",
        type=number_in(0),
        default=DEFAULT_SHUTDOWN_GRACE_SECONDS,
        metavar="SECONDS",
        help="on SIGTERM, how long open answers may run on before they are ended "
        f"(default: {DEFAULT_SHUTDOWN_GRACE_SECONDS:g})",
    )
    return serve


def run_serve(args: argparse.Namespace) -> int:
    """Check the settings, then serve until interrupted; returns the exit code."""
    try:
        import prometheus_client  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn
    except ModuleNotFoundError as missing:
        raise ConfigError(
            f"gearshift serve needs the '{missing.name}' package: pip install 'gearshift[serve]'", key="serve"
        ) from None

    from ..config._config import load_config
    from ..routing._router import Router

    if args.workers < 1:
        raise ConfigError(f"must be 1 or more, got {args.workers}", key="--workers")
    settings = ServeSettings(
        config=args.config.resolve() if args.config else None,
        keys_file=args.keys.resolve() if args.keys else None,
        max_body_bytes=args.max_body_bytes,
        require_keys=not is_loopback(args.host),
        access_log=args.access_log,
    )
    keys = ProxyKeys.load(settings.keys_file)
    if settings.require_keys and not keys:
        raise ConfigError(
            f"refusing to serve on {args.host} without proxy keys: anyone who can reach it could spend "
            "your provider keys. Pass --keys FILE or set GEARSHIFT_PROXY_KEY_<NAME>, or bind 127.0.0.1",
            key="--host",
        )
    Router.from_config(load_config(settings.config)).close()  # a bad config fails here, once
    # Bound before anything is set or said, so an address it cannot listen on is one line, and
    # nothing of this run is left in the environment of a process calling `main` again.
    sock = bind_address(args.host, args.port)
    if args.workers > 1:
        # uvicorn's supervisor binds the port itself (its API for handing it a socket changed across
        # the versions this takes), a moment after this check.
        sock.close()
    os.environ.update(settings.to_environ())
    app = "gearshift.serve._app:app_from_environment"
    options: dict[str, Any] = {
        "factory": True,
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        # uvloop where installed: under the stdlib loop, clients that hang up mid-stream by the hundred
        # wedged the proxy (tests/benchmarks/proxy_overhead.py's time-to-first-token loop).
        "loop": "auto",
        "http": "gearshift.serve._http:NoDelayHTTPProtocol",
        "access_log": False,
        "log_level": "warning",
        "timeout_graceful_shutdown": args.shutdown_grace,
    }
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:
        # SIGHUP's new worker must be serving within it, or uvicorn keeps the old one and reloads
        # nothing: its default of 5 s was shorter than a worker's start (imports, the SDKs) here.
        options["timeout_worker_healthcheck"] = WORKER_START_SECONDS
    # SIGTERM or Ctrl-C once the line is out stops the server with exit code 0, as uvicorn's own
    # handlers do, however soon it comes: one that came before uvicorn took the signals reached the
    # CLI's handler, which raises (see `_early_signals`).
    if args.workers > 1:
        with held_for_uvicorn():
            _announce(args.host, args.port, args.workers)
            uvicorn.run(app, **options)
        return 0
    # One process: the port listens before the line says so, and uvicorn serves that very socket. It
    # said so, then built the app, then bound: a client reading the line was refused, and a port
    # taken meanwhile ended in uvicorn's own error and exit code 3.
    config = uvicorn.Config(app, **options)
    server = uvicorn.Server(config)
    with sock, sent_to(server.handle_exit):  # a signal before uvicorn's handlers stops it at once
        sock.listen(config.backlog)
        _announce(args.host, args.port, 1)
        # SIGTERM and Ctrl-C end the server gracefully, then come back raised: taken as uvicorn.run does.
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
    return 0 if server.started or server.should_exit else 3


def _announce(host: str, port: int, workers: int) -> None:
    bare = host.strip("[]")
    shown = f"[{bare}]" if ":" in bare else bare
    count = f"{workers} worker" + ("s" if workers != 1 else "")
    print(f"gearshift serve: serving at http://{shown}:{port}/v1 ({count})", file=sys.stderr, flush=True)
