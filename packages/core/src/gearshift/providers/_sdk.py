"""What `SDKProvider` is built from: lazy SDK import, keys, per-loop clients, error kinds.

Nothing here imports an SDK at module level: `import gearshift` must stay cheap, and a missing SDK
is reported on the first call with the pip command that installs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import importlib
import importlib.util
import inspect
import logging
import math
import os
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import ModuleType
from typing import Generic, Literal, Protocol, TypeVar, cast, get_args

from .._bridge import Releasable, release_at_exit, release_soon
from .._errors import ConfigError, ProviderError, ProviderErrorKind, redact
from .._url_secrets import mask_text

__all__ = [
    "HttpClient",
    "LoopClients",
    "ReportedError",
    "Secret",
    "aiohttp_kind",
    "check_http_client",
    "check_timeout",
    "close_quietly",
    "error_text",
    "import_sdk",
    "load_sdk",
    "malformed_response",
    "mask_sdk_logs",
    "parse_retry_after",
    "resolve_api_key",
    "secret_header_values",
    "status_kind",
    "transport_kind",
    "within",
]

C = TypeVar("C")
T = TypeVar("T")

_LOADED: dict[str, ModuleType] = {}
# The loggers that write request URLs: the SDKs' clients at DEBUG, httpx at INFO for each response.
_URL_LOGGERS = ("openai._base_client", "anthropic._base_client", "httpx", "httpx2")
_BODY_SHOWN = 300  # the most characters of an error's bare-string body an error message repeats
_SECRET_HEADER_HINTS = ("authorization", "key", "token", "secret", "cookie")

HttpClient = Literal["httpx", "aiohttp"]
"""The HTTP client of an SDK's plain calls: its default (httpx), or aiohttp (`DirectPost`, or the SDK's
`DefaultAioHttpClient` for a call the SDK traces). Streams always run on httpx (`SDKProvider`)."""


class _Closable(Protocol):
    async def close(self) -> None: ...


class Secret:
    """A credential that never shows itself in `repr`, `str`, f-strings or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        """The real value, for the one place that must send it: the SDK client."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"


def import_sdk(module: str, *, extra: str, model_id: str) -> ModuleType:
    """Import an optional SDK, or raise `ProviderError` naming the pip command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ProviderError(
            f"the '{module}' package is not installed; install it with: pip install 'gearshift[{extra}]'",
            model_id=model_id,
            kind="other",
        ) from None


async def load_sdk(module: str, *, extra: str, model_id: str) -> ModuleType:
    """`import_sdk` without blocking the event loop.

    The SDKs take seconds to import (anthropic builds thousands of pydantic models), so the first
    import runs in a worker thread; later calls find the module already loaded.
    """
    loaded = _LOADED.get(module)
    if loaded is None:
        # Not sys.modules: it holds a module while another thread is still importing it. Concurrent
        # imports in threads wait on the import lock and get the complete module.
        loaded = await asyncio.to_thread(import_sdk, module, extra=extra, model_id=model_id)
        _LOADED[module] = loaded
    return loaded


class _URLCredentialFilter(logging.Filter):
    """Masks the credentials of URLs in a log record (a `base_url` may carry `user:password@`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


_URL_FILTER = _URLCredentialFilter()


def mask_sdk_logs() -> None:
    """Keep URL passwords out of what the SDKs and httpx log about each request (idempotent)."""
    for name in _URL_LOGGERS:
        logger = logging.getLogger(name)
        if _URL_FILTER not in logger.filters:
            logger.addFilter(_URL_FILTER)


def resolve_api_key(
    api_key: Secret | None,
    api_key_env: str | None,
    *,
    provider: str,
    model_id: str,
    required: bool,
) -> Secret | None:
    """The key given to the provider, else the one in the environment variable it names.

    Read at call time rather than construction so that a key exported after the config was loaded
    still counts. A missing required key raises `ProviderError(kind="auth")` naming the variable.
    """
    if api_key is not None:
        return api_key
    value = os.environ.get(api_key_env) if api_key_env else None
    if value:
        return Secret(value)
    if not required:
        return None
    where = (
        f"set the environment variable {api_key_env}"
        if api_key_env
        else "pass api_key= (no environment variable is configured)"
    )
    raise ProviderError(f"no API key for provider '{provider}': {where}", model_id=model_id, kind="auth")


def secret_header_values(headers: Mapping[str, str]) -> tuple[str, ...]:
    """Values of headers that look like credentials, so that errors can redact them too."""
    return tuple(
        value for name, value in headers.items() if any(hint in name.lower() for hint in _SECRET_HEADER_HINTS)
    )


class LoopClients(Generic[C]):
    """One SDK client per running event loop.

    An async client owns a connection pool bound to the loop that first used it; sharing it with
    another loop (the sync bridge runs its own loop in a thread) fails in obscure ways. Entries are
    weakly keyed, so a closed and collected loop takes its client with it.

    Clients that have a `close()` are closed on their loops when this goes (its provider was dropped
    without `aclose()`, as a sync caller does: the bridge's loop never ends), and the bridge's at
    interpreter exit; otherwise aiohttp warns of every unclosed session and the connections stay open.
    """

    def __init__(self) -> None:
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, C] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        weakref.finalize(self, _release_clients, self._clients).atexit = False  # the bridge's at exit

    def get(self, factory: Callable[[], C]) -> C:
        """The running loop's client, created by `factory` on first use."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.get(loop)
            if client is None:
                client = factory()
                self._clients[loop] = client
                if _releasable(client):
                    release_at_exit(loop, cast(Releasable, client))
            return client

    def pop_current(self) -> C | None:
        """Forget and return the running loop's client, if it has one."""
        loop = asyncio.get_running_loop()
        with self._lock:
            return self._clients.pop(loop, None)

    def __len__(self) -> int:
        return len(self._clients)


def _releasable(client: object) -> bool:
    return inspect.iscoroutinefunction(getattr(client, "close", None))


def _release_clients(clients: Mapping[asyncio.AbstractEventLoop, object]) -> None:
    for loop, client in list(clients.items()):
        if _releasable(client):
            release_soon(loop, cast(Releasable, client))


def check_timeout(timeout: object, *, provider: str) -> float:
    """`timeout` as seconds, or `ConfigError` naming the provider's key when it is not a positive,
    finite number: an infinite timeout would let a server that trickles its answer hold a call forever."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        problem = f"must be a number of seconds, got {type(timeout).__name__}"
    elif not math.isfinite(timeout) or timeout <= 0:
        problem = f"must be a positive, finite number of seconds, got {timeout!r}"
    else:
        return float(timeout)
    raise ConfigError(problem, key=f"providers.{provider}.timeout")


async def within(seconds: float, call: Awaitable[T]) -> T:
    """`call`'s result, or `TimeoutError` once `seconds` have passed (`call` is then cancelled)."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await call
    try:  # pragma: no cover - Python 3.10 only, where asyncio's TimeoutError is not the builtin one
        return await asyncio.wait_for(call, seconds)
    except asyncio.TimeoutError:  # pragma: no cover
        raise TimeoutError from None


def check_http_client(http_client: object, *, provider: str) -> HttpClient:
    """`http_client` if it names a client the SDKs support, else `ConfigError` naming the provider's key;
    aiohttp must also be installed, checked here so a missing one fails at startup, not on a call."""
    choices = get_args(HttpClient)
    if http_client not in choices:
        raise ConfigError(
            f"must be one of {', '.join(map(repr, choices))}, got {http_client!r}",
            key=f"providers.{provider}.http_client",
        )
    if http_client == "aiohttp" and importlib.util.find_spec("aiohttp") is None:
        raise ConfigError(
            "the 'aiohttp' package is not installed; install it with: pip install 'gearshift[serve]', "
            "or use the SDK's default client (http_client = 'httpx')",
            key=f"providers.{provider}.http_client",
        )
    return http_client  # type: ignore[return-value]


def parse_retry_after(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds to wait, from `retry-after-ms`, or `retry-after` as seconds or as an HTTP date."""
    if not headers:
        return None
    lowered = {name.lower(): value for name, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass  # fall through to the standard header
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


def status_kind(status: int) -> ProviderErrorKind:
    """The kind of failure an HTTP status means for the router.

    404 is `other`, not `bad_request`: it means this provider does not know the model (not pulled on
    Ollama, a typo in one model's config), which says nothing about the next model of the chain.
    """
    if status == 429:
        return "rate_limit"
    if status in (401, 402, 403):
        return "auth"
    if status == 408:
        return "timeout"
    if status == 404:
        return "other"
    if status >= 500:
        return "server"
    if 400 <= status < 500:
        return "bad_request"
    return "other"


def transport_kind(exc: BaseException) -> ProviderErrorKind | None:
    """`timeout` or `connection` for an httpx / httpx2 transport error, else None.

    The SDKs wrap most of these, but some escape unwrapped while a stream is read. Matching on the
    class names of the exception's ancestry covers both httpx generations without importing either.
    """
    names = {cls.__name__ for cls in type(exc).__mro__ if cls.__module__.split(".")[0].startswith("httpx")}
    if "TimeoutException" in names:
        return "timeout"
    if names & {"TransportError", "NetworkError", "ProtocolError", "RequestError", "StreamError"}:
        return "connection"
    return None


def aiohttp_kind(exc: BaseException) -> ProviderErrorKind | None:
    """`timeout` or `connection` for a failure aiohttp reported under the SDK's error, else None.

    The SDKs' aiohttp adapters translate aiohttp's errors into httpx ones and chain the original as
    the cause. openai's maps every `ClientConnectionError` (a refused connection, a reset, a server that
    hung up) to `ConnectTimeout`, which the SDK raises as `APITimeoutError`: the cause says what it
    was. aiohttp's own timeouts are `TimeoutError`s (`asyncio.TimeoutError` before Python 3.11).
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if type(cause).__module__.split(".")[0] == "aiohttp":
            return "timeout" if isinstance(cause, (TimeoutError, asyncio.TimeoutError)) else "connection"
        cause = cause.__cause__
    return None


class ReportedError(Exception):
    """An error a server reported inside a successful (200) answer, and the HTTP status it names if any.

    OpenRouter commits its 200 before the upstream model runs and reports a failure in the body; some
    vLLM deployments answer a 200 with their error object. The provider raises this while reading.
    """

    def __init__(self, message: str, status: int | None, *, midway: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status = status if status is not None and 400 <= status <= 599 else None
        self.midway = midway  # the model failed while answering (billed), not before it ran


def malformed_response(exc: Exception, model_id: str, secrets: Iterable[str | None]) -> ProviderError:
    """The error for a response that could not be read (a compatible server that strays from the API),
    or that reported an error of its own (`ReportedError`), read as the status it names would be.

    The server took the call either way; a response it made (unreadable, or an answer it broke off) is
    `accepted`, so the router charges its input. An error reported instead of any answer is not.
    """
    if isinstance(exc, ReportedError):
        return ProviderError(
            f"the server answered 200 with an error: {mask_text(redact(exc.message, secrets))}",
            model_id=model_id,
            kind=status_kind(exc.status) if exc.status else "server",
            status_code=exc.status,
            accepted=exc.midway,
        )
    return ProviderError(
        f"could not read the response: {error_text(exc, secrets)}",
        model_id=model_id,
        kind="server",
        accepted=True,
    )


async def close_quietly(stream: _Closable) -> None:
    """Release a streamed response; a failure to close must not hide the call's own outcome."""
    with contextlib.suppress(Exception):
        await stream.close()


def error_text(exc: BaseException, secrets: Iterable[str | None]) -> str:
    """An exception's class and message, with every secret and URL password replaced by `***`.

    An SDK error whose body is a bare string adds it: the SDKs put only the `message` of an OpenAI-style
    `{"error": {"message": ...}}` in their text, so Ollama's `{"error": "model ... not found, try pulling
    it first"}`, a plain-text body or a stream's `{"error": "..."}` event read "Error code: 404" alone.
    """
    message = getattr(exc, "message", None) or str(exc) or "no details"
    body = getattr(exc, "body", None)
    detail = " ".join(body.split()) if isinstance(body, str) else ""
    if detail and detail not in message:
        cut = detail[:_BODY_SHOWN] + ("…" if len(detail) > _BODY_SHOWN else "")
        message = f"{message} - {cut}"
    return mask_text(redact(f"{type(exc).__name__}: {message}", secrets))
