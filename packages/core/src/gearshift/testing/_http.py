"""The HTTP plumbing the local servers share: a real server on 127.0.0.1, scripts, request log.

A stdlib `ThreadingHTTPServer` runs in a daemon thread on an ephemeral port. It speaks HTTP/1.1 with
keep-alive, so the SDKs' connection pools behave as they do against the real APIs; streams use
chunked transfer encoding, which is also what lets `CutStream` break a stream the way a dropped
connection does (the client sees an incomplete chunked body, not a clean end).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import socket
import sys
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar

from ._actions import Action, CutStream, Delay, Drip, Fail, RecordedRequest, Reply

__all__ = ["Exchange", "LocalServer"]

log = logging.getLogger("gearshift.testing")

S = TypeVar("S", bound="LocalServer")

_CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "api-key"})


class Exchange:
    """One request and the means to answer it: JSON, an event stream, or a dropped connection."""

    def __init__(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        self._handler = handler
        self.method = handler.command
        self.path = handler.path.split("?", 1)[0]
        self.headers = {name.lower(): value for name, value in handler.headers.items()}
        self.body = body
        self._drip: tuple[float, Callable[[float], bool]] | None = None

    def drip(self, interval: float, sleep: Callable[[float], bool]) -> None:
        """From now on write the body one byte at a time, `sleep(interval)` after each (False: stop)."""
        self._drip = (interval, sleep)

    def send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        """A complete JSON response (a string payload is sent as is)."""
        data = (payload if isinstance(payload, str) else json.dumps(payload)).encode("utf-8")
        self._handler.send_response(status)
        self._handler.send_header("Content-Type", "application/json")
        self._handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self._handler.send_header(name, value)
        self._handler.end_headers()
        self._write(data)

    def start_stream(self, headers: Mapping[str, str] | None = None) -> None:
        """Begin a server-sent event stream."""
        self._handler.send_response(200)
        self._handler.send_header("Content-Type", "text/event-stream")
        self._handler.send_header("Cache-Control", "no-cache")
        self._handler.send_header("Transfer-Encoding", "chunked")
        for name, value in (headers or {}).items():
            self._handler.send_header(name, value)
        self._handler.end_headers()

    def send_event(self, text: str) -> None:
        """One piece of the stream, sent at once as its own HTTP chunk."""
        data = text.encode("utf-8")
        self._write(b"%x\r\n%s\r\n" % (len(data), data))
        self._handler.wfile.flush()

    def end_stream(self) -> None:
        """The terminating chunk: a clean end of the stream."""
        self._handler.wfile.write(b"0\r\n\r\n")
        self._handler.wfile.flush()

    def _write(self, data: bytes) -> None:
        if self._drip is None:
            self._handler.wfile.write(data)
            return
        interval, sleep = self._drip
        for index in range(len(data)):
            self._handler.wfile.write(data[index : index + 1])
            self._handler.wfile.flush()
            if not sleep(interval):
                raise ConnectionAbortedError("the server closed while dripping an answer")

    def drop(self) -> None:
        """Close the connection now, mid-response or before any: what a network failure looks like."""
        self._handler.close_connection = True
        with contextlib.suppress(OSError):  # already gone
            self._handler.connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Events are small writes; without this, Nagle's algorithm holds each one for the client's ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.app._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.app._track(self.connection, add=False)

    def do_GET(self) -> None:
        self.server.app._dispatch(self)

    def do_POST(self) -> None:
        self.server.app._dispatch(self)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver listens with a backlog of 5: parallel calls beyond it waited for a SYN retry (1 s,
    # then 3 s) and, under a short client timeout, failed to connect as no real API would make them.
    request_queue_size = 128
    block_on_close = False  # close() shuts connections down itself; never wait on a delayed answer

    def __init__(self, app: LocalServer) -> None:
        self.app = app
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that resets a kept-alive connection between requests is a client closing its pool,
        not a server fault: logged at DEBUG. Anything else is logged with its traceback, as before
        (socketserver's own handler prints every case to stderr)."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            log.debug("client %s went away: %r", client_address, error)
        else:
            log.exception("local server failed on a connection from %s", client_address)


class LocalServer(ABC):
    """Base of the local API servers: start on construction, stop with `close()` or `with`.

    Subclasses implement `_handle` (routing and the wire format) and `_error_payload` (the API's
    error JSON shape).
    """

    def __init__(self, models: Iterable[str], api_key: str | None = None) -> None:
        self.models = tuple(models)
        self._api_key = api_key
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Action]] = {}
        self._requests: list[RecordedRequest] = []
        self._hangups: list[RecordedRequest] = []
        self._connections: set[socket.socket] = set()
        self._ids = itertools.count(1)
        self._closed = threading.Event()
        self._httpd = _HTTPServer(self)
        # The poll interval is also how long close() waits for the serving loop to notice.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, models={list(self.models)})"

    @property
    def api_key(self) -> str | None:
        """The key requests must carry, if any."""
        return self._api_key

    @property
    def port(self) -> int:
        """The ephemeral port the server listens on."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`, without any API prefix."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The URL to give the SDK as its base URL."""
        return self.url

    @property
    def open_connections(self) -> int:
        """How many client connections are open now: a client that closed its pool leaves none."""
        with self._lock:
            return len(self._connections)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def hangups(self) -> list[RecordedRequest]:
        """The requests whose client went away before their answer was written out, oldest first: a
        cancelled or timed-out call, as the server saw it on the wire."""
        with self._lock:
            return list(self._hangups)

    def script(self, model: str, *actions: Action) -> None:
        """Queue actions for `model`; each request for it consumes one, in order."""
        with self._lock:
            self._scripts.setdefault(model, deque()).extend(actions)

    def pending(self, model: str) -> int:
        """How many scripted actions for `model` are still queued."""
        with self._lock:
            return len(self._scripts.get(model, ()))

    def close(self) -> None:
        """Stop serving and drop every open connection."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self: S) -> S:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- for subclasses -------------------------------------------------------------------------

    @abstractmethod
    def _handle(self, exchange: Exchange) -> None:
        """Route one authorized request and answer it in the API's wire format."""

    @abstractmethod
    def _error_payload(self, status: int, message: str) -> Any:
        """The API's error body for `status`."""

    def _send_error(self, exchange: Exchange, status: int, message: str) -> None:
        exchange.send_json(status, self._error_payload(status, message))

    def _next_action(self, model: str) -> Action | None:
        with self._lock:
            queue = self._scripts.get(model)
            return queue.popleft() if queue else None

    def _scripted(
        self, exchange: Exchange, model: str, *, stream: bool
    ) -> tuple[bool, Reply | CutStream | None]:
        """Consume `model`'s next action: `(True, _)` when that already answered the request."""
        action = self._next_action(model)
        if isinstance(action, Delay):
            if not self._sleep(action.seconds):
                exchange.drop()
                return True, None
            action = action.then
        if isinstance(action, Drip):
            exchange.drip(action.interval, self._sleep)
            action = None
        if isinstance(action, Fail):
            headers = {"retry-after": f"{action.retry_after:g}"} if action.retry_after is not None else {}
            body = (
                action.body
                if action.body is not None
                else self._error_payload(action.status, "scripted failure")
            )
            exchange.send_json(action.status, body, headers)
            return True, None
        if isinstance(action, CutStream) and not stream:
            exchange.drop()
            return True, None
        return False, action

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def _sleep(self, seconds: float) -> bool:
        """Wait, unless the server closes first (then False)."""
        return not self._closed.wait(seconds)

    # -- plumbing -------------------------------------------------------------------------------

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        recorded: RecordedRequest | None = None
        try:
            length = int(handler.headers.get("Content-Length") or 0)
            raw = handler.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            exchange = Exchange(handler, body)
            recorded = self._record(exchange)
            if isinstance(body, str):
                self._send_error(exchange, 400, "the request body is not valid JSON")
            elif not self._authorized(exchange.headers):
                self._send_error(exchange, 401, "invalid or missing API key")
            else:
                self._handle(exchange)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            handler.close_connection = True  # the client went away (e.g. it timed out first)
            if recorded is not None and not self._closed.is_set():
                with self._lock:
                    self._hangups.append(recorded)
        except Exception:
            log.exception("local server failed while answering %s %s", handler.command, handler.path)
            handler.close_connection = True

    def _record(self, exchange: Exchange) -> RecordedRequest:
        body = exchange.body
        model = body.get("model") if isinstance(body, dict) else None
        headers = {k: v for k, v in exchange.headers.items() if k not in _CREDENTIAL_HEADERS}
        request = RecordedRequest(exchange.method, exchange.path, model, body, headers)
        with self._lock:
            self._requests.append(request)
        return request

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        if self._api_key is None:
            return True
        bearer = headers.get("authorization", "")
        return bearer == f"Bearer {self._api_key}" or headers.get("x-api-key") == self._api_key
