"""Binding a server's address before anything says it serves there: a busy port, an unknown host or
an address this machine does not have is one line naming `--port` or `--host`, not a server's own
failure after a "serving at" line."""

from __future__ import annotations

import errno
import ipaddress
import socket

from .._errors import ConfigError

__all__ = ["bind_address", "is_loopback"]


def bind_address(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host:port` (`host` may be an IPv6 address, bracketed or not), or a
    `ConfigError` keyed `--host` when the host is unknown or not this machine's, `--port` otherwise
    (in use, not allowed). The caller listens on it, or closes it and lets its server bind again."""
    bare = host.strip("[]")
    shown = f"[{bare}]" if ":" in bare else bare
    sock = socket.socket(socket.AF_INET6 if ":" in bare else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((bare, port))
    except OSError as exc:
        sock.close()
        wrong_host = isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL
        raise ConfigError(
            f"cannot listen on {shown}:{port}: {exc.strerror or exc}",
            key="--host" if wrong_host else "--port",
        ) from None
    return sock


def is_loopback(host: str) -> bool:
    """Whether binding `host` serves this machine only: a loopback address (127.0.0.0/8, `::1`,
    bracketed or not) or `localhost` in any case. Any other host name may resolve to anything."""
    bare = host.strip("[]")
    if bare.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False
