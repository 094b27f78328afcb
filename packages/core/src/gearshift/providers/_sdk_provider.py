"""`SDKProvider`: one provider over an official async SDK, less the SDK's own request and response forms.

It owns what every SDK adapter does the same way: connection settings, the key (resolved on the first
call of each event loop and kept out of reprs and error messages), one client per event loop, and the
error handling of a call. `timeout` is a deadline: a non-streamed call must end within it (connect,
headers and the whole body), a stream must open within it and each event must follow the previous
one within it; a server that trickles its answer byte by byte fails the call with kind `timeout`
(`stream` once deltas were produced), so the router moves on. A non-streamed call fails with the
SDK's exception translated; a response that cannot be read is a `server` error. A stream that fails
before its first delta raises from the first `__anext__` with the failure's own kind; after it, with
kind `stream`. A stream that ends without its terminal event is a `connection` error before the
first delta and a `stream` error after.

A subclass names its SDK (`_SDK`, `_CLIENT`) and supplies the conversions: `_prepare` (request to
call arguments), `_send` and `_read` (one call), `_open_stream` and `_stream_state` (one stream).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import asdict
from types import ModuleType
from typing import ClassVar, Generic, Protocol, TypeVar

from .._errors import ConfigError, GearshiftError, ProviderError, ProviderErrorKind
from .._messages import ChatRequest, ChatResponse, StreamDone, StreamEvent, TextDelta, ToolCallDelta, Usage
from .._models import ModelSpec
from .._url_secrets import ENCODE_HINT, mask_url, unencoded_userinfo, url_secrets
from ._connection_hint import connection_message, hung_up, missing_path_hint
from ._sdk import (
    HttpClient,
    LoopClients,
    ReportedError,
    Secret,
    aiohttp_kind,
    check_http_client,
    check_timeout,
    close_quietly,
    error_text,
    import_sdk,
    load_sdk,
    malformed_response,
    mask_sdk_logs,
    parse_retry_after,
    resolve_api_key,
    secret_header_values,
    status_kind,
    transport_kind,
    within,
)

__all__ = ["SDKProvider", "SDKStream", "StreamState"]

ClientT = TypeVar("ClientT", bound="_Client")
CallT = TypeVar("CallT")
ResponseT = TypeVar("ResponseT")
EventT = TypeVar("EventT")
EventT_contra = TypeVar("EventT_contra", contravariant=True)
EventT_co = TypeVar("EventT_co", covariant=True)


class _Client(Protocol):
    async def close(self) -> None: ...


class SDKStream(Protocol[EventT_co]):
    """A streamed response as the SDKs return it: its events, and a way to release the connection."""

    def __aiter__(self) -> AsyncIterator[EventT_co]: ...

    async def close(self) -> None: ...


class StreamState(Protocol[EventT_contra]):
    """What one stream has produced so far, fed its SDK events one at a time."""

    @property
    def started(self) -> bool:
        """Whether a delta has been produced: from then on a failure is a `stream` error."""
        ...

    @property
    def finished(self) -> bool:
        """Whether the event that ends a complete stream has arrived."""
        ...

    def feed(self, event: EventT_contra) -> list[TextDelta | ToolCallDelta]:
        """The deltas one event carries, in order."""
        ...

    def response(self) -> ChatResponse:
        """The final response, once the stream is finished."""
        ...

    def reported_usage(self) -> Usage | None:
        """The usage the provider reported so far, if it reports any before the stream's end."""
        ...


class SDKProvider(ABC, Generic[ClientT, CallT, ResponseT, EventT]):
    """The shared part of a provider over an async SDK client (`ClientT`).

    `CallT` is what `_prepare` makes of a request (the SDK call's keyword arguments, and anything
    needed to read the answer), `ResponseT` the SDK's non-streamed response and `EventT` one event of
    its stream. SDK retries are off: on failure the router falls back to the next model instead.
    """

    _SDK: ClassVar[str]
    """The SDK's module, which is also the name of the pip extra that installs it."""
    _CLIENT: ClassVar[str]
    """The SDK's async client class."""
    _KEYLESS: ClassVar[str | None] = None
    """What the client is given as its key when there is none (some SDKs refuse to go without)."""
    _UNFINISHED_STREAM: ClassVar[str]
    """The error message for a stream that ended without its terminal event."""
    _API_PATH: ClassVar[str | None] = None
    """The path a `base_url` must name for the SDK's requests to reach the API (None: none)."""

    def __init__(
        self,
        name: str,
        *,
        api_key: str | None,
        api_key_env: str | None,
        base_url: str | None,
        timeout: float,
        default_headers: Mapping[str, str] | None,
        http_client: HttpClient = "httpx",
    ) -> None:
        if base_url is not None and unencoded_userinfo(base_url):
            raise ConfigError(
                f"{mask_url(base_url)!r} does not parse: {ENCODE_HINT}", key=f"providers.{name}.base_url"
            )
        self.name = name
        self.api_key_env = api_key_env
        self.base_url = base_url
        self.timeout = check_timeout(timeout, provider=name)
        self.http_client = check_http_client(http_client, provider=name)
        self._api_key = Secret(api_key) if api_key else None
        self._headers = dict(default_headers or {})
        self._used_key: Secret | None = None
        self._clients: LoopClients[ClientT] = LoopClients()
        # Streams always run on the SDK's httpx client: aiohttp drops the text it has buffered when a
        # stream breaks (its reader raises before handing over what arrived with the break), and that
        # text is output the caller saw and the call must be charged for.
        self._stream_clients: LoopClients[ClientT] = LoopClients()

    @property
    def api(self) -> str:
        """The API this provider speaks (`openai`, `anthropic`), whatever its configuration is named:
        the GenAI semantic conventions' `gen_ai.provider.name` of its calls."""
        return self._SDK

    def __repr__(self) -> str:
        key = "***" if self._api_key else None
        base_url = mask_url(self.base_url) if self.base_url else None
        return (
            f"{type(self).__name__}(name={self.name!r}, base_url={base_url!r}, api_key={key}, "
            f"api_key_env={self.api_key_env!r}, headers={sorted(self._headers)})"
        )

    # -- calls ----------------------------------------------------------------------------------

    async def complete(self, model: ModelSpec, request: ChatRequest) -> ChatResponse:
        """One non-streamed call."""
        client = await self._client(model)
        call = self._prepare(model, request)
        try:
            response = await within(self.timeout, self._send(client, call))
        except TimeoutError:
            raise self._overdue(model, "a complete answer") from None
        except Exception as exc:
            raise self._error(exc, model) from None
        try:
            return self._read(model, request, call, response)
        except Exception as exc:  # a response the SDK accepted but that breaks our reading of it
            raise malformed_response(exc, model.id, self._secrets()) from None

    async def stream(self, model: ModelSpec, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        """A streamed call: deltas as they arrive, then one `StreamDone` with usage."""
        client = await self._client(model, streamed=True)
        call = self._prepare(model, request)
        try:
            events = await within(self.timeout, self._open_stream(client, call))
        except TimeoutError:
            raise self._overdue(model, "the stream's start") from None
        except Exception as exc:
            raise self._error(exc, model) from None
        state = self._stream_state(model, request, call)
        iterator = aiter(events)
        try:
            while True:
                try:
                    event = await within(self.timeout, anext(iterator))
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise self._overdue(
                        model, "the stream's next event", after_output=state.started
                    ) from None
                for delta in state.feed(event):
                    yield delta
            if not state.finished:
                raise ProviderError(self._UNFINISHED_STREAM, model_id=model.id, kind="stream")
            done = StreamDone(state.response())
        except Exception as exc:
            error = self._error(exc, model, after_output=state.started, accepted=True)
            # What the provider said the call costs so far is what it bills for the broken stream.
            reported = state.reported_usage()
            if reported is not None and not error.reported_tokens:
                error.reported_tokens = asdict(reported)
            raise error from None
        finally:
            await close_quietly(events)
        yield done

    async def aclose(self) -> None:
        """Close the running event loop's SDK clients; clients made on other loops go with their loop."""
        for clients in (self._clients, self._stream_clients):
            client = clients.pop_current()
            if client is not None:
                await client.close()

    # -- what a subclass supplies ---------------------------------------------------------------

    @abstractmethod
    def _prepare(self, model: ModelSpec, request: ChatRequest) -> CallT:
        """The SDK call for `request`; raises `ProviderError(kind="bad_request")` for one it cannot send."""

    @abstractmethod
    async def _send(self, client: ClientT, call: CallT) -> ResponseT:
        """Make the non-streamed call."""

    @abstractmethod
    def _read(self, model: ModelSpec, request: ChatRequest, call: CallT, response: ResponseT) -> ChatResponse:
        """The non-streamed response in gearshift's form; any exception means it could not be read."""

    @abstractmethod
    async def _open_stream(self, client: ClientT, call: CallT) -> SDKStream[EventT]:
        """Make the streamed call."""

    @abstractmethod
    def _stream_state(self, model: ModelSpec, request: ChatRequest, call: CallT) -> StreamState[EventT]:
        """A fresh reader for one stream's events."""

    def _resolve_key(self, model: ModelSpec) -> Secret | None:
        """The key for a new client: required, from `api_key` or else the `api_key_env` variable."""
        return resolve_api_key(
            self._api_key, self.api_key_env, provider=self.name, model_id=model.id, required=True
        )

    def _error_event_kind(self, sdk: ModuleType, exc: Exception) -> ProviderErrorKind | None:
        """The kind of `exc` if it reports an error event inside an accepted stream, else None.

        For SDKs that raise such an event as a status error carrying the stream's own (2xx) status;
        the others raise a plain API error, which is a `server` error.
        """
        return None

    # -- plumbing -------------------------------------------------------------------------------

    async def _client(self, model: ModelSpec, *, streamed: bool = False) -> ClientT:
        sdk = await load_sdk(self._SDK, extra=self._SDK, model_id=model.id)
        on_aiohttp = self.http_client == "aiohttp"
        # A stream of an aiohttp provider gets its own httpx client (see `_stream_clients`).
        own_stream_client = on_aiohttp and streamed

        def build() -> ClientT:
            if self.base_url and url_secrets(self.base_url):
                mask_sdk_logs()
            key = self._resolve_key(model)
            self._used_key = key
            # aiohttp's C parser and single write per request cost less CPU per call than httpx; the
            # SDK's adapter misnames some of its failures, which `_error` reads from their cause.
            http = {"http_client": sdk.DefaultAioHttpClient()} if on_aiohttp and not streamed else {}
            client: ClientT = getattr(sdk, self._CLIENT)(
                api_key=key.get_secret_value() if key else self._KEYLESS,
                base_url=self.base_url,
                timeout=self.timeout,
                max_retries=0,
                default_headers=self._headers or None,
                **http,
            )
            return client

        try:
            return (self._stream_clients if own_stream_client else self._clients).get(build)
        except GearshiftError:
            raise
        except Exception as exc:  # the SDK refused its settings (a base URL it cannot parse...)
            message = f"cannot make the SDK client: {error_text(exc, self._secrets())}"
            raise ProviderError(message, model_id=model.id, kind="other") from None

    def _secrets(self) -> tuple[str | None, ...]:
        keys = (self._api_key, self._used_key)
        return (
            *(k.get_secret_value() for k in keys if k),
            *secret_header_values(self._headers),
            *url_secrets(self.base_url),
        )

    def _overdue(self, model: ModelSpec, what: str, *, after_output: bool = False) -> ProviderError:
        """The error for a call that missed its deadline: the server was too slow, maybe trickling."""
        return ProviderError(
            f"{what} did not come within the {self.timeout:g} s timeout",
            model_id=model.id,
            kind="stream" if after_output else "timeout",
        )

    def _error(
        self, exc: Exception, model: ModelSpec, *, after_output: bool = False, accepted: bool = False
    ) -> ProviderError:
        """Translate an SDK or transport exception; secrets never reach the message.

        A stream the provider `accepted` (its 200 came) that then breaks is a `stream` failure, output
        or not: the provider has the request and bills its input, and no connection was refused.
        """
        if isinstance(exc, ProviderError):
            return exc
        sdk = import_sdk(self._SDK, extra=self._SDK, model_id=model.id)
        status: int | None = None
        retry_after: float | None = None
        kind: ProviderErrorKind
        event_kind = self._error_event_kind(sdk, exc)
        # A model that broke off its answer with an error (OpenRouter's finish_reason "error") failed
        # mid-stream, output or not.
        after_output = after_output or (isinstance(exc, ReportedError) and exc.midway)
        if event_kind is not None:
            kind = event_kind
        elif isinstance(exc, sdk.APIStatusError):
            status = exc.status_code
            kind = status_kind(exc.status_code)
            retry_after = parse_retry_after(exc.response.headers)
        elif isinstance(exc, sdk.APIConnectionError) and (cause_kind := aiohttp_kind(exc)) is not None:
            kind = cause_kind
        elif isinstance(exc, sdk.APITimeoutError):
            kind = "timeout"
        elif isinstance(exc, sdk.APIConnectionError):
            kind = "connection"
        elif isinstance(exc, sdk.APIError):
            kind = "server"  # an error event inside a stream: the server gave up mid-answer
        else:
            kind = transport_kind(exc) or aiohttp_kind(exc) or "other"
        if after_output or (accepted and kind == "connection"):
            kind = "stream"
        text = error_text(exc, self._secrets())
        # A server that hung up before any status had the whole request (what is sent is written before
        # the response is read); one that could not be reached has nothing.
        received = kind == "connection" and hung_up(exc)
        if kind == "connection":
            text = connection_message(text, base_url=self.base_url, provider=self.name, hung_up=received)
        elif status == 404 and self._API_PATH:
            text += missing_path_hint(self.base_url, self._API_PATH)
        return ProviderError(
            text,
            model_id=model.id,
            kind=kind,
            status_code=status,
            retry_after=retry_after,
            accepted=accepted,
            received=received,
        )
