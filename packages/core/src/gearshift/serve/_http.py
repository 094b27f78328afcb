"""The HTTP/1.1 protocol uvicorn runs the proxy with: httptools, with Nagle's algorithm off.

asyncio turns TCP_NODELAY on for the connections of a socket it created, but not for those of a
socket it inherited: with `--workers N` uvicorn hands each worker the listening socket, whose
`proto` reads 0 there, so small answers waited for the client's delayed ACK (about 40 ms each).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["NoDelayHTTPProtocol"]


class NoDelayHTTPProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with TCP_NODELAY set on every connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
