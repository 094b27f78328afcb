"""The proxy's ASGI app: authenticate, read the body, hand the request to the core `Router`, answer
in the API's own format. No routing logic lives here: every decision, fallback, escalation and budget
check is the router's; this module only translates at the edge and counts what happened.

Every answer carries `x-gearshift-model`, `-tier`, `-decision-id` (also as the API's own request id
header, `x-request-id` or Anthropic's `request-id`, which the SDKs read as `_request_id`) and, when
the whole call is known before the answer leaves (a plain answer), `-cost-usd` and `-escalated`. A
stream's first event is awaited before its headers are sent, so a refused or failing call still gets
its proper status; its final figures (the same five) ride in its closing event as an extra
`gearshift` object, once the router has recorded and charged the call. An error answer of a call
the router had planned (a budget refusal, every model failing) carries its decision id in the same
two headers, so the SDK error's request id finds the call's records.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._errors import BudgetExceeded, ConfigError, GearshiftError, InvalidRequestError, UnknownModelError
from .._messages import ChatRequest, StreamDone, StreamEvent
from ..config._config import GearshiftConfig, load_config
from ..routing._routed import RoutedResponse, RoutedStream
from ..routing._router import Router
from ..routing._tracing import incoming_trace_context
from ..signals._tokens import estimate_request_tokens
from . import _anthropic_wire, _openai_wire
from ._access import ProxyKey, ProxyKeys
from ._anthropic_wire import AnthropicChat, AnthropicStream, message_body, parse_messages
from ._anthropic_wire import error_body as anthropic_error
from ._failures import Failure, failure_from
from ._hang_up import unless_hung_up
from ._in_flight import InFlight, InFlightMiddleware
from ._local_callers import foreign_caller
from ._metrics import CONTENT_TYPE_LATEST, ProxyMetrics
from ._openai_wire import OpenAIChat, OpenAIStream, completion_body, parse_chat
from ._openai_wire import error_body as openai_error
from ._relay import RelayResponse, StreamRenderer, settle
from ._responses_wire import ResponsesStream, parse_responses, request_echo, response_body
from ._settings import ServeSettings
from ._step import gearshift_headers, model_aliases, step_context
from ._transport import on_proxy_http_client
from ._wire_fields import field_error, lone_surrogate

__all__ = ["ProxyApp", "app_from_environment", "create_app"]

access_log = logging.getLogger("gearshift.serve.access")

# The header each API names its answers by, which the SDKs read as `_request_id`: the decision id.
_REQUEST_ID_HEADER = {"openai": "x-request-id", "responses": "x-request-id", "anthropic": "request-id"}


def _id_headers(api: str, request_id: str) -> dict[str, str]:
    """The headers naming a call by its decision id: gearshift's own and the API's request id."""
    return {"x-gearshift-decision-id": request_id, _REQUEST_ID_HEADER[api]: request_id}


_SHUTDOWN = Failure(
    503, "server", "the proxy is shutting down: this stream was stopped before its end; retry"
)

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # also in every escaped emoji's pair


def _no_constant(name: str) -> Any:
    raise InvalidRequestError(f"the request body is not valid JSON: {name} is not a JSON number")


class _Refused(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass
class _Call:
    """What the access log and the metrics learn about one request as it is served."""

    api: str
    key: ProxyKey | None = None
    agent: str | None = None
    model: str | None = None
    tier: int | None = None
    cost_usd: float | None = None
    request_id: str | None = None


class ProxyApp:
    """The routing proxy over one `Router`; `app` is the Starlette application to serve."""

    def __init__(
        self,
        router: Router,
        *,
        keys: ProxyKeys | None = None,
        settings: ServeSettings | None = None,
        config: GearshiftConfig | None = None,
    ) -> None:
        self.router = router
        self.keys = keys or ProxyKeys()
        self.settings = settings or ServeSettings()
        if self.settings.require_keys and not self.keys:
            raise ConfigError(
                "serving beyond loopback needs proxy keys: pass --keys FILE or set "
                "GEARSHIFT_PROXY_KEY_<NAME>, or bind 127.0.0.1",
                key="--host",
            )
        self.config = config
        if self.settings.access_log:
            access_log.setLevel(logging.INFO)
        self.metrics = ProxyMetrics()
        self.aliases = model_aliases(router.registry)
        self.tiers = {spec.id: spec.tier for spec in router.registry}
        self.timezone = router.budgets.timezone if router.budgets is not None else "UTC"
        self.in_flight = InFlight()
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._openai_chat, methods=["POST"]),
                Route("/v1/responses", self._openai_responses, methods=["POST"]),
                Route("/v1/messages", self._anthropic_messages, methods=["POST"]),
                Route("/v1/messages/count_tokens", self._anthropic_count, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/models/{model_id:path}", self._model, methods=["GET"]),
                Route("/health", self._health, methods=["GET"]),
                Route("/ready", self._ready, methods=["GET"]),
                Route("/metrics", self._metrics, methods=["GET"]),
            ],
            lifespan=self._lifespan,
            middleware=[Middleware(InFlightMiddleware, in_flight=self.in_flight)],
            exception_handlers={404: self._no_route, 405: self._no_route},
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self._load_sdks()
        try:
            yield
        finally:
            # The requests a shutting-down server cancelled record and settle their calls first.
            await self.in_flight.drained(timeout=5.0)
            await self.router.aclose()

    async def _load_sdks(self) -> None:
        """Import the SDKs the registry's providers use before serving: an SDK takes seconds to import,
        which the first request would otherwise wait for."""
        from ..providers._sdk import load_sdk
        from ..providers._sdk_provider import SDKProvider

        used = {spec.provider: spec.id for spec in self.router.registry}
        for name, model_id in used.items():
            provider = self.router.providers.get(name)
            if isinstance(provider, SDKProvider):
                with contextlib.suppress(GearshiftError):  # a missing SDK fails its calls, clearly
                    await load_sdk(provider._SDK, extra=provider._SDK, model_id=model_id)

    # -- plumbing ---------------------------------------------------------------------------------

    def _web_page(self, request: Request) -> Failure | None:
        """The 403 a keyless proxy answers a web page with, on every endpoint, or None. Without keys,
        health, readiness and metrics need none, but a DNS-rebound page must not read them either: the
        metrics name the models and what each agent spent, readiness the missing keys' variables."""
        foreign = None if self.keys else foreign_caller(request.headers)
        if foreign is None:
            return None
        return Failure(
            403,
            "permission",
            f"this proxy has no keys, so it serves this machine's processes only, and {foreign}; "
            "start it with proxy keys (--keys) to serve browsers",
        )

    def _authorize(self, request: Request) -> ProxyKey | None:
        if not self.keys:
            refused = self._web_page(request)
            if refused is not None:
                raise _Refused(refused)
            return None
        presented = _presented_key(request)
        key = self.keys.match(presented)
        if key is None:
            why = "no proxy key was sent" if not presented else "the proxy key is not valid"
            raise _Refused(Failure(401, "authentication", f"{why}: send 'Authorization: Bearer <proxy key>'"))
        return key

    async def _json_body(self, request: Request) -> Any:
        limit = self.settings.max_body_bytes
        too_large = _Refused(
            Failure(413, "too_large", f"the request body is larger than this proxy's limit of {limit} bytes")
        )
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large
        # Straight from ASGI `receive`, as Starlette's `Request.stream()` reads it, without its generator.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect
            chunk = message.get("body", b"")
            more = message.get("more_body", False)
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            body = json.loads(raw, parse_constant=_no_constant)
        except UnicodeDecodeError:
            raise InvalidRequestError("the request body is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise InvalidRequestError(
                f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        if _SURROGATE_ESCAPE.search(raw):
            where = lone_surrogate(body)
            if where is not None:
                raise field_error(
                    where, "holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), which is no text"
                )
        return body

    async def _serve(
        self,
        request: Request,
        api: str,
        error_body: Callable[[Failure], dict[str, Any]],
        handle: Callable[[_Call, Any], Awaitable[Response]],
    ) -> Response:
        started = time.perf_counter()
        call = _Call(api)
        try:
            call.key = self._authorize(request)
            body = await self._json_body(request)
            with incoming_trace_context(request.headers):  # the caller's trace, if it sent one
                response = await unless_hung_up(handle(call, body), request.receive)
        except _Refused as refused:
            response = self._error(call, refused.failure, error_body)
        except GearshiftError as error:
            failure = failure_from(error, timezone=self.timezone)
            call.request_id = error.request_id  # a planned call's records are logged under it
            response = self._error(call, failure, error_body, budget=isinstance(error, BudgetExceeded))
        except ClientDisconnect:
            response = Response(status_code=499)
        self._log(request, call, response.status_code, started)
        return response

    def _error(
        self,
        call: _Call,
        failure: Failure,
        body: Callable[[Failure], dict[str, Any]],
        *,
        budget: bool = False,
    ) -> Response:
        self.metrics.failed(call.api, failure.status, budget=budget)
        headers = dict(failure.headers)
        if call.request_id is not None:
            headers |= _id_headers(call.api, call.request_id)
        return JSONResponse(body(failure), status_code=failure.status, headers=headers)

    def _log(self, request: Request, call: _Call, status: int, started: float) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        record = {
            "method": request.method,
            "path": request.url.path,
            "status": status,
            "ms": round((time.perf_counter() - started) * 1000, 2),
            "api": call.api,
            "key": call.key.name if call.key else None,
            "agent": call.agent,
            "model": call.model,
            "tier": call.tier,
            "cost_usd": call.cost_usd,
            "request_id": call.request_id,
        }
        access_log.info(json.dumps(record, separators=(",", ":")))

    def _figures(self, result: RoutedResponse) -> dict[str, Any]:
        """The call's final figures: the headers of a plain answer, the `gearshift` object of a stream."""
        return {
            "model": result.model_id,
            "tier": self.tiers[result.model_id],
            "cost_usd": round(result.cost_usd, 8),
            "decision_id": result.request_id,
            "escalated": result.escalated,
        }

    def _headers(self, call: _Call, result: RoutedResponse) -> dict[str, str]:
        figures = self._figures(result)
        figures["cost_usd"] = f"{result.cost_usd:.8f}"
        figures["escalated"] = "true" if result.escalated else "false"
        headers = {f"x-gearshift-{name.replace('_', '-')}": str(value) for name, value in figures.items()}
        headers[_REQUEST_ID_HEADER[call.api]] = result.request_id
        return headers

    async def _complete(self, call: _Call, request: ChatRequest, context: Any) -> RoutedResponse:
        started = time.perf_counter()
        result = await self.router.acomplete(request, context)
        self.metrics.answered(
            call.api, result, time.perf_counter() - started, streamed=False, tiers=self.tiers
        )
        call.model, call.tier = result.model_id, self.router.registry[result.model_id].tier
        call.cost_usd, call.request_id = result.cost_usd, result.request_id
        return result

    async def _stream(
        self,
        call: _Call,
        request: ChatRequest,
        context: Any,
        renderer: Callable[[str, str], StreamRenderer],
    ) -> Response:
        started = time.perf_counter()
        stream = self.router.astream(request, context)
        try:
            first = await stream.__anext__()
        except BaseException:
            await stream.aclose()
            raise
        decision = stream.decision
        assert decision is not None  # known once the first event has arrived
        request_id = stream.request_id or ""
        call.model, call.tier, call.request_id = decision.model, decision.tier, request_id
        out = renderer(request_id, decision.model)
        headers = {
            "x-gearshift-model": decision.model,
            "x-gearshift-tier": str(decision.tier),
            **_id_headers(call.api, request_id),
            "cache-control": "no-cache",
        }
        return RelayResponse(
            self._relay(call, stream, first, out, started), headers, lambda: out.error(_SHUTDOWN)
        )

    async def _relay(
        self, call: _Call, stream: RoutedStream, first: StreamEvent, out: StreamRenderer, started: float
    ) -> AsyncGenerator[str, None]:
        try:
            event: StreamEvent | None = first
            while event is not None:
                figures = None
                if isinstance(event, StreamDone):
                    result = await settle(stream)
                    figures = self._figures(result) if result is not None else None
                chunk = "".join(out.events(event, figures))  # one write per core event
                if chunk or event is first:  # an empty text delta has no event of its own
                    yield chunk
                event = None if isinstance(event, StreamDone) else await anext(stream, None)
        except GearshiftError as error:  # after the first event: the status line is already sent
            yield out.error(failure_from(error, timezone=self.timezone))
        finally:
            await stream.aclose()  # records and charges an attempt the client hung up on
            if stream.result is not None:
                self.metrics.answered(
                    call.api, stream.result, time.perf_counter() - started, streamed=True, tiers=self.tiers
                )

    # -- routes -----------------------------------------------------------------------------------

    async def _answer(
        self,
        call: _Call,
        request: Request,
        chat: OpenAIChat | AnthropicChat,
        renderer: Callable[[str, str], StreamRenderer],
        body_of: Callable[[RoutedResponse], dict[str, Any]],
    ) -> Response:
        """Route one parsed request: stream it through `renderer`, or answer with `body_of(result)`."""
        context = step_context(
            chat.request,
            model=chat.model,
            registry=self.router.registry,
            headers=gearshift_headers(request.scope["headers"]),
            key=call.key,
            caller=chat.caller,
        )
        call.agent = context.agent_id
        if chat.stream:
            return await self._stream(call, chat.request, context, renderer)
        result = await self._complete(call, chat.request, context)
        return JSONResponse(body_of(result), headers=self._headers(call, result))

    async def _openai_chat(self, request: Request) -> Response:
        async def handle(call: _Call, body: Any) -> Response:
            chat = parse_chat(body)
            return await self._answer(
                call,
                request,
                chat,
                lambda request_id, model: OpenAIStream(request_id, model, chat.include_usage),
                lambda result: completion_body(result.response, result.request_id, result.usage),
            )

        return await self._serve(request, "openai", openai_error, handle)

    async def _openai_responses(self, request: Request) -> Response:
        async def handle(call: _Call, body: Any) -> Response:
            chat = parse_responses(body)
            echo = request_echo(body)
            return await self._answer(
                call,
                request,
                chat,
                lambda request_id, model: ResponsesStream(request_id, model, echo),
                lambda result: response_body(
                    result.request_id, result.model_id, result.response, result.usage, echo=echo
                ),
            )

        return await self._serve(request, "responses", openai_error, handle)

    async def _anthropic_messages(self, request: Request) -> Response:
        async def handle(call: _Call, body: Any) -> Response:
            chat = parse_messages(body)
            return await self._answer(
                call,
                request,
                chat,
                lambda request_id, model: AnthropicStream(
                    request_id, model, estimate_request_tokens(chat.request)
                ),
                lambda result: message_body(result.response, result.request_id, result.usage),
            )

        return await self._serve(request, "anthropic", anthropic_error, handle)

    async def _anthropic_count(self, request: Request) -> Response:
        async def handle(call: _Call, body: Any) -> Response:
            chat = parse_messages(body, count_only=True)
            if chat.model not in self.aliases:  # counted anyway before, as if it could be sent
                raise UnknownModelError(chat.model, self.aliases)
            return JSONResponse({"input_tokens": estimate_request_tokens(chat.request)})

        return await self._serve(request, "anthropic", anthropic_error, handle)

    async def _models(self, request: Request) -> Response:
        return self._catalogue(request, None)

    async def _model(self, request: Request) -> Response:
        return self._catalogue(request, request.path_params["model_id"])

    def _catalogue(self, request: Request, model_id: str | None) -> Response:
        """The models a request may name (`model_id`: one of them, for the SDKs' `models.retrieve`,
        or a 404 listing them), in the asking SDK's shape: the Anthropic SDK sends `anthropic-version`,
        and read OpenAI's list without names or dates before."""
        wire = _wire_of(request)
        try:
            self._authorize(request)
            if model_id is not None and model_id not in self.aliases:
                raise UnknownModelError(model_id, self.aliases)
        except _Refused as refused:
            return JSONResponse(wire.error_body(refused.failure), status_code=refused.failure.status)
        except UnknownModelError as error:
            return JSONResponse(wire.error_body(failure_from(error)), status_code=404)
        return JSONResponse(wire.models_body(self.aliases) if model_id is None else wire.model_body(model_id))

    async def _no_route(self, request: Request, exc: Exception) -> Response:
        """A path or method the proxy does not serve, in the asking SDK's error shape (it was plain
        text), saying which base URL each SDK needs when the path is one off by `/v1`."""
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        path, method = request.url.path, request.method
        message = f"{method} {path} is not served by this proxy"
        if status == 405:
            message = f"{path} does not take {method}"
        else:
            fixed = path[3:] if path.startswith("/v1/v1/") else "/v1" + path
            if any(
                r.matches({"type": "http", "path": fixed, "method": method})[0].value for r in self.app.routes
            ):
                message += (
                    f"; did you mean {fixed}? The OpenAI SDK's base_url ends in /v1 "
                    "(http://HOST:PORT/v1), the Anthropic SDK's does not (http://HOST:PORT)"
                )
        wire = _wire_of(request)
        kind = "not_found" if status == 404 else "invalid_request"
        headers = exc.headers if isinstance(exc, HTTPException) else None  # 405: Allow
        return JSONResponse(
            wire.error_body(Failure(status, kind, message)), status_code=status, headers=headers
        )

    def _operation(self, request: Request, *, key_required: bool = False) -> Response | None:
        """The refusal of a request to /health, /ready or /metrics, or None to answer it. With proxy
        keys, `/metrics` (`key_required`) needs one, as Prometheus can send it; /health and /ready
        stay open to an orchestrator's probe, which usually cannot."""
        try:
            if key_required:
                self._authorize(request)
            else:
                refused = self._web_page(request)
                if refused is not None:
                    raise _Refused(refused)
        except _Refused as refused:
            failure = refused.failure
            return JSONResponse(_wire_of(request).error_body(failure), status_code=failure.status)
        return None

    async def _health(self, request: Request) -> Response:
        return self._operation(request) or JSONResponse({"status": "ok"})

    async def _ready(self, request: Request) -> Response:
        """Ready or not ready to any probe; what is missing (the provider keys' variables, the
        budget store) only to a caller that is this machine's (no keys) or sends a proxy key."""
        refused = self._operation(request)
        if refused is not None:
            return refused
        problems: list[str] = []
        if self.config is not None:
            from ..providers._factory import missing_keys

            problems += [
                f"provider '{p}' has no key: set {env}" for p, env in missing_keys(self.config).items()
            ]
        ledger = self.router.budgets
        if ledger is not None:
            try:
                await ledger.usage((f"agent:{ledger.default_agent}",))
            except GearshiftError as exc:
                problems.append(str(exc))
        if not problems:
            return JSONResponse({"status": "ready"})
        body: dict[str, Any] = {"status": "not ready"}
        if not self.keys or self.keys.match(_presented_key(request)) is not None:
            body["problems"] = problems
        return JSONResponse(body, status_code=503)

    async def _metrics(self, request: Request) -> Response:
        refused = self._operation(request, key_required=True)
        return refused or Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _presented_key(request: Request) -> str | None:
    """The proxy key a request sends: `Authorization: Bearer` (OpenAI's SDK) or `x-api-key` (Anthropic's)."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def _wire_of(request: Request) -> ModuleType:
    """The module of the API whose error shape a request with no API of its own is answered in: the
    Anthropic SDK sends `anthropic-version`."""
    return _anthropic_wire if "anthropic-version" in request.headers else _openai_wire


def create_app(settings: ServeSettings | None = None) -> Starlette:
    """The proxy's ASGI app, built from `settings` (config file, proxy keys, body limit)."""
    settings = settings or ServeSettings()
    config = on_proxy_http_client(load_config(settings.config))
    router = Router.from_config(config)
    keys = ProxyKeys.load(settings.keys_file)
    return ProxyApp(router, keys=keys, settings=settings, config=config).app


def app_from_environment() -> Starlette:
    """`create_app` with settings from the environment: what each uvicorn worker process calls. A
    worker of `--workers N` is a new interpreter, with none of the CLI's logging: the access log's
    lines reach stderr through the handler set here (with several workers they went nowhere)."""
    settings = ServeSettings.from_environ()
    if settings.access_log:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    return create_app(settings)
