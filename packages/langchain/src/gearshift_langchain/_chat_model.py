"""`RoutedChatModel`: a LangChain chat model whose every call gearshift routes.

One async implementation does the work (`_acomplete`, `_achunks`); the sync methods run it through
gearshift's single sync bridge, so LangChain's sync `invoke`, `stream` and `batch` share the event
loop, the SDK clients and the code path of the async ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar, cast, overload

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, RunnableSerializable, ensure_config
from langchain_core.runnables.utils import AnyConfigurableField
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, PrivateAttr, field_validator

from gearshift import (
    SAMPLING_SETTINGS,
    BudgetExceeded,
    CallerHints,
    ChatRequest,
    InvalidRequestError,
    Message,
    RoutedResponse,
    Router,
    RoutingError,
    StepContext,
    StepType,
    TextDelta,
    ToolCallDelta,
    did_you_mean,
    estimate_request_tokens,
    estimate_tokens,
    iterate_sync,
    keep_tool_loop_model,
    load_config,
    pair_tool_results,
    request_id_of,
    run_sync,
)

# asyncio.wait_for raises asyncio's own TimeoutError before Python 3.11; `within` raises the builtin one.
from gearshift.providers import within

from ._batch import cascade_batch
from ._configurable import RouterKeepingFields, router_being_kept
from ._context import StepDefaults, loop_model, step_context
from ._convert import (
    ToolSpecCache,
    as_tool_dicts,
    convert_messages,
    to_response_schema,
    to_response_strict,
    to_tool_choice,
)
from ._history import KeptHistory
from ._output import chat_result, combined_llm_output, delta_chunk, final_chunk
from ._profile import routed_profile
from ._run_metadata import KeptMetadata, astreamed_with, config_metadata, run_metadata, streamed_with
from ._structured import StructuredMethod, structured_output

__all__ = ["RoutedChatModel"]

_Model = TypeVar("_Model", bound="RoutedChatModel")
_Schema = TypeVar("_Schema", bound=BaseModel)

ROUTED_MODEL_NAME = "gearshift-router"
"""What tracers see as the model name before the router has chosen one (`ls_model_name`)."""

# The sampling settings a `ChatRequest` carries, each a setting and a call option of the same name.
# Per-call options `_generate` understands, besides `stop` and `n=1`; anything else is refused by name
# rather than silently dropped (a `logit_bias` that does nothing would mislead).
_CALL_OPTIONS = frozenset(
    {"tools", "tool_choice", "parallel_tool_calls", "response_format", "model", "temperature", "max_tokens"}
    | {"stream_usage", "reasoning_effort", *SAMPLING_SETTINGS}
)

# LangChain's standard constructor arguments that have no meaning here (see the class docstring): taken
# and dropped, as the standard suites pass them to every chat model. Any other unknown one is refused.
_IGNORED_STANDARD_SETTINGS = ("api_key", "max_retries")


@dataclass(frozen=True, slots=True)
class _Step:
    """One model call, ready to route."""

    request: ChatRequest
    context: StepContext
    stream_usage: bool = True


class RoutedChatModel(BaseChatModel):
    """A chat model that routes every call to the cheapest model that will do the job.

    Use it wherever LangChain takes a chat model (`create_agent(model=RoutedChatModel(...))`, a
    LangGraph graph, a chain). Pass a `Router`, or a gearshift.toml path in `config` (default:
    `$GEARSHIFT_CONFIG`, then `./gearshift.toml`, then the built-in model ladder). Tools, tool choice,
    structured output, streaming (tool-call chunks included) and usage work whichever model answers;
    `response_metadata["model_name"]` names it and `response_metadata["gearshift"]` tells how it was
    chosen (reasons, tier, cost, attempts, escalations).

    Each call's `StepContext` comes from LangGraph's metadata (`thread_id` is the run, the node's
    name hints at the step type), the history (a `ToolMessage` last: reading a tool result; failed
    tools and repeated identical calls are counted, and move the step up a tier) and the run config's
    `metadata`, where a caller may set `agent_id`, `run_id`, `step_type`, `budget_keys`,
    `expected_steps`, `min_tier`, `max_tier` and `max_cost_usd` per call; with no `agent_id` there
    nor on the model, a `create_agent(..., name=...)` agent's calls count against its name. A
    per-call `model="<id>"` (`invoke(..., model=...)` or `bind(model=...)`) sends the call to that
    registry model.
    LangChain's standard `api_key` and `max_retries` are not settings here: keys belong to the
    providers of the config, and gearshift falls back along the decision's chain instead of retrying
    (both are taken and dropped; any other unknown setting is refused by name).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, use_attribute_docstrings=True, extra="forbid")

    config: str | Path | None = None
    """The gearshift.toml to build the router from, kept as the absolute path of the file read: the
    one given, or the one `$GEARSHIFT_CONFIG` / `./gearshift.toml` named at construction (None: a
    router passed in, or the built-in ladder). A copy rebuilt from the settings reads this same file."""
    model: str | None = None
    """A registry model id to send every call to, bypassing the routing decision (None: route)."""
    agent_id: str | None = None
    """The agent these calls belong to: spend counts against `agent:<agent_id>` (None: the name of the
    `create_agent` agent calling, if it has one)."""
    budget_keys: tuple[str, ...] = ()
    """More ledger keys every call's spend counts against (`team:search`, `customer:42`)."""
    expected_steps: int | None = None
    """How many model calls a run of this agent is expected to take (budget pacing)."""
    step_type: StepType | None = None
    """The step type of every call, when this model serves one kind of step (None: inferred)."""
    min_tier: int | None = None
    """The weakest tier any call may go to."""
    max_tier: int | None = None
    """The strongest tier any call may go to."""
    max_cost_usd: float | None = None
    """The most one call may be expected to cost, in US dollars."""
    self_escalation: bool = True
    """Offer models below the top tier an `escalate` tool; the agent still sees one ordinary answer."""
    sticky_tool_loops: bool = False
    """Keep the model that made a tool call for reading its results, unless escalation moves it up."""
    temperature: float | None = None
    """Sampling temperature sent to whichever model answers."""
    top_p: float | None = None
    """Nucleus sampling, 0 to 1, sent to whichever model answers."""
    seed: int | None = None
    """Sampling seed, sent to OpenAI-compatible models (Anthropic's API has none: left out, and the
    decision's reasons say so)."""
    frequency_penalty: float | None = None
    """-2 to 2, sent to OpenAI-compatible models (left out for Anthropic's, as `seed`)."""
    presence_penalty: float | None = None
    """-2 to 2, sent to OpenAI-compatible models (left out for Anthropic's, as `seed`)."""
    top_k: int | None = None
    """Sample from the k likeliest tokens, sent to Anthropic models (OpenAI's API has none)."""
    reasoning_effort: str | None = None
    """OpenAI's `reasoning_effort` (`gearshift.REASONING_EFFORTS`: `minimal`, `low`...), as ChatOpenAI's,
    sent to reasoning models (`ModelSpec.reasoning`; left out for others, as `seed`)."""
    max_tokens: int | None = None
    """Cap on output tokens."""
    stop: list[str] | None = None
    """Stop sequences."""
    timeout: float | None = None
    """Seconds one call may take, fallbacks and escalation included (None: the providers' own timeouts)."""
    streaming: bool = False
    """Stream from the provider even when called with `invoke` (LangChain's standard flag)."""
    stream_usage: bool = True
    """Put the call's usage on the last chunk of a stream (as ChatOpenAI's flag; also a call option)."""
    batch_cascade: bool = False
    """Send `batch`/`abatch` through the router's batched cascade: the cheapest tier answers every
    input, the cascade gate checks each answer and only rejected ones go to the top tier."""

    _router: Router = PrivateAttr()
    _tool_specs: ToolSpecCache = PrivateAttr(default_factory=ToolSpecCache)
    _history: KeptHistory = PrivateAttr(default_factory=KeptHistory)
    _step_defaults: tuple[tuple[Any, ...], StepDefaults] | None = PrivateAttr(default=None)

    @field_validator("step_type", mode="before")
    @classmethod
    def _read_step_type(cls, value: Any) -> Any:
        # The words every entry point takes (`recover` too), where pydantic's enum check knows only
        # the values.
        return StepType.parse(value, where="step_type") if isinstance(value, str) else value

    def __init__(self, *, router: Router | None = None, **data: Any) -> None:
        kept = router_being_kept()
        if kept is not None:  # LangChain is building a configured copy: it keeps the model's router
            router = kept
        elif router is not None and data.get("config") is not None:
            raise InvalidRequestError("RoutedChatModel takes a router or a config path, not both")
        _refuse_unknown_settings(data, type(self).model_fields.keys())
        loaded = None
        if router is None:
            # Kept as the absolute path of the file read: one kept as given ("gearshift.toml"), or
            # none for a file found by the search, made a copy rebuilt in another folder read that
            # folder's file.
            loaded = load_config(data.get("config"))  # the file given, or the one the search finds
            data["config"] = None if loaded.file is None else str(loaded.file)
        super().__init__(**data)
        self._router = router if router is not None else Router.from_config(loaded)
        if self.profile is None:
            self.profile = routed_profile(self._router.registry)

    @property
    def router(self) -> Router:
        """The router every call goes through."""
        return self._router

    def model_copy(self: _Model, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> _Model:
        """pydantic's copy, sharing the router; an `update` naming no setting is refused as the
        constructor refuses it (pydantic would keep it, unused)."""
        if update:
            update = dict(update)
            _refuse_unknown_settings(update, type(self).model_fields.keys())
            if deep:  # pydantic then deep-copies field by field, past `__deepcopy__`: the router too
                return super().model_copy(deep=True).model_copy(update=update)
        return super().model_copy(update=update, deep=deep)

    def __deepcopy__(self: _Model, memo: dict[int, Any] | None = None) -> _Model:
        """A deep copy of the settings that shares the router (`copy.deepcopy`, `model_copy(deep=True)`).

        A router is a live resource shared like an HTTP client (SDK clients, a budget ledger, a
        decision log): copying it would copy its clients' locks, which cannot be copied.
        """
        memo = {} if memo is None else memo
        memo[id(self._router)] = self._router
        return super().__deepcopy__(memo)

    def configurable_fields(
        self, **kwargs: AnyConfigurableField
    ) -> RunnableSerializable[LanguageModelInput, AIMessage]:
        """LangChain's `configurable_fields` (a name that is no setting is refused); the model built
        with the configured settings goes through this model's router (`_configurable`)."""
        super().configurable_fields(**kwargs)
        return RouterKeepingFields(default=self, fields=kwargs)

    def feedback(
        self, answer: BaseMessage | str, score: float, *, source: str = "user", comment: str | None = None
    ) -> None:
        """Record a score in [0, 1] for an answer of this model: the `AIMessage` (its routing record's
        request id is read from `response_metadata["gearshift"]`) or the request id itself.

        The score goes to the router's decision log as a `feedback` record (see `Router.feedback`).
        """
        request_id = answer if isinstance(answer, str) else request_id_of(answer.response_metadata)
        if request_id is None:
            raise InvalidRequestError(
                "this message carries no gearshift request id in response_metadata['gearshift']: "
                "give feedback on a message this model returned, or pass the request id"
            )
        self._router.feedback(request_id, score, source=source, comment=comment)

    # -- what LangChain asks of every chat model ---------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "gearshift-routed"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        # LangChain's cache keys answers on these: every setting that can change an answer (a tier
        # bound, a sampling setting) must be among them, or a cached answer of another setting is served.
        params: dict[str, Any] = {
            "models": list(self._router.registry.ids),
            "policy": self._router.policy.name,
        }
        params.update((name, getattr(self, name)) for name in _ROUTING_SETTINGS)
        return params

    def _combine_llm_outputs(self, llm_outputs: list[dict[str, Any] | None]) -> dict[str, Any]:
        # LangChain's default gives `generate` an empty `llm_output`; ChatOpenAI's sums token usage.
        return combined_llm_output(llm_outputs)

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        model = kwargs.get("model") or self.model
        params = LangSmithParams(
            ls_provider="gearshift",
            ls_model_name=model if isinstance(model, str) else ROUTED_MODEL_NAME,
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        stop = stop or self.stop
        if stop:
            params["ls_stop"] = list(stop)
        return params

    def bind_tools(
        self,
        tools: Sequence[Mapping[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | bool | Mapping[str, Any] | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer these tools to whichever model the router picks.

        `tool_choice`: `"auto"`, `"none"`, `"any"`/`"required"`/`True` (some tool must be called), or a
        tool's name, each also as OpenAI's or Anthropic's dict of it. `strict` asks providers that
        support it to keep to the argument schemas.
        """
        formatted = [convert_to_openai_tool(tool, strict=strict) for tool in tools]
        specs = self._tool_specs.specs(formatted)  # malformed tools fail here, at bind time, not mid-run
        choice = to_tool_choice(tool_choice, specs)
        if choice not in (None, "auto", "none", "required") and choice not in {t.name for t in specs}:
            raise InvalidRequestError(
                f"tool_choice names tool {choice!r}, which is not among the tools "
                f"({', '.join(t.name for t in specs) or 'none'})"
            )
        options: dict[str, Any] = {"tools": formatted}
        if choice is not None:
            options["tool_choice"] = choice
        if parallel_tool_calls is not None:
            options["parallel_tool_calls"] = parallel_tool_calls
        return super().bind(**options, **kwargs)

    # The overloads give a caller the type it asked for: `with_structured_output(Answer).invoke(...)` is an
    # `Answer` to a type checker, as it is at run time, not LangChain's `dict | BaseModel`.
    @overload
    def with_structured_output(
        self,
        schema: type[_Schema],
        *,
        include_raw: Literal[False] = False,
        method: StructuredMethod = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, _Schema]: ...

    @overload
    def with_structured_output(
        self,
        schema: dict[str, Any],
        *,
        include_raw: Literal[False] = False,
        method: StructuredMethod = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any]]: ...

    @overload
    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: Literal[True],
        method: StructuredMethod = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any]]: ...

    @overload
    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: StructuredMethod = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]: ...

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: StructuredMethod = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Answers parsed into `schema` (a pydantic model, a TypedDict, or a JSON schema).

        `method`: `function_calling` (a forced tool call; the default, since every tool-calling model
        can), `json_schema` (an answer matching the schema), or `json_mode` (any JSON object, parsed
        with the schema). With `include_raw`, the result is `{"raw", "parsed", "parsing_error"}`.
        """
        if kwargs:
            raise InvalidRequestError(f"with_structured_output got unknown arguments: {', '.join(kwargs)}")
        return structured_output(self, schema, method=method, include_raw=include_raw, strict=strict)

    def get_num_tokens(self, text: str) -> int:
        """gearshift's estimate of the tokens in `text`, the one the router prices calls with.

        LangChain's default counts with GPT-2's tokenizer from `transformers`, which is downloaded on
        first use; a routed call may go to any model, so no one model's tokenizer is the right one.
        A `custom_get_token_ids` still takes precedence.
        """
        if self.custom_get_token_ids is not None:
            return super().get_num_tokens(text)
        return estimate_tokens(text)

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """gearshift's estimate of the input tokens of `messages` and `tools`, as the router counts a
        request (each message's text, images and tool calls, the chat template's overhead, and the
        tool schemas): what `trim_messages(token_counter=model)` and context checks should measure.
        """
        if self.custom_get_token_ids is not None:
            return super().get_num_tokens_from_messages(messages, tools)
        specs = self._tool_specs.specs([convert_to_openai_tool(tool) for tool in tools]) if tools else ()
        # A request needs a user message, and a trimmed history may have none: an empty one is added,
        # and its own estimate (the template's overhead alone) taken off again.
        anchor = Message.user("")
        request = ChatRequest((*convert_messages(messages), anchor), specs)
        return estimate_request_tokens(request) - estimate_request_tokens(ChatRequest((anchor,)))

    # -- the calls ---------------------------------------------------------------------------------

    def batch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any | None,
    ) -> list[AIMessage]:
        """LangChain's `batch`; with `batch_cascade`, one cascaded `Router.abatch` run (`_batch`)."""
        if not self.batch_cascade:
            return super().batch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        return run_sync(self.abatch(inputs, config, return_exceptions=return_exceptions, **kwargs))

    async def abatch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any | None,
    ) -> list[AIMessage]:
        """LangChain's `abatch`; with `batch_cascade`, one cascaded `Router.abatch` run (`_batch`)."""
        if not self.batch_cascade:
            return await super().abatch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        stop = kwargs.pop("stop", None)
        # What `with_structured_output` shows tracers: LangChain's own calls take it off before
        # `_generate`, and this path runs no LangChain callbacks to show it to.
        kwargs.pop("ls_structured_output_format", None)

        def step(value: LanguageModelInput, metadata: dict[str, Any]) -> tuple[ChatRequest, StepContext]:
            messages = self._convert_input(value).to_messages()
            call = self._step(messages, stop, metadata, dict(kwargs))
            return call.request, call.context

        answers = await cascade_batch(self.router, inputs, config, step, return_exceptions=return_exceptions)
        return cast("list[AIMessage]", answers)  # LangChain's own batch types its exceptions so too

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        """LangChain's `stream`; each step is routed with the run's metadata (`_run_metadata`)."""
        config = ensure_config(config)
        metadata = config_metadata(config, self.metadata)
        return streamed_with(metadata, super().stream(input, config, stop=stop, **kwargs))

    def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        """LangChain's `astream`; each step is routed with the run's metadata (`_run_metadata`)."""
        config = ensure_config(config)
        metadata = config_metadata(config, self.metadata)
        return astreamed_with(metadata, super().astream(input, config, stop=stop, **kwargs))

    def _generate_with_cache(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # LangChain calls `_stream` from here without the run manager when the call streams.
        with KeptMetadata(run_manager.metadata if run_manager else None):
            return super()._generate_with_cache(messages, stop, run_manager, **kwargs)

    async def _agenerate_with_cache(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with KeptMetadata(run_manager.metadata if run_manager else None):
            return await super()._agenerate_with_cache(messages, stop, run_manager, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        step = self._step(messages, stop, run_manager.metadata if run_manager else {}, kwargs)
        return run_sync(self._acomplete(step))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        step = self._step(messages, stop, run_manager.metadata if run_manager else {}, kwargs)
        return await self._acomplete(step)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        step = self._step(messages, stop, run_metadata(run_manager), kwargs)
        for chunk in iterate_sync(self._achunks(step)):
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        step = self._step(messages, stop, run_metadata(run_manager), kwargs)
        async for chunk in self._achunks(step):
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _acomplete(self, step: _Step) -> ChatResult:
        call = self._router.acomplete(step.request, step.context, self_escalation=self.self_escalation)
        try:
            routed = await (within(self.timeout, call) if self.timeout is not None else call)
        except BudgetExceeded as exc:
            raise _for_agent(exc, step.context) from None
        return chat_result(routed, self._tier(routed))

    async def _achunks(self, step: _Step) -> AsyncIterator[ChatGenerationChunk]:
        stream = self._router.astream(step.request, step.context, self_escalation=self.self_escalation)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout if self.timeout is not None else None
        started: set[int] = set()  # the tool calls whose first piece went out
        try:
            while True:
                pending = stream.__anext__()
                try:
                    if deadline is None:
                        event = await pending
                    else:
                        event = await within(max(deadline - loop.time(), 0.0), pending)
                except StopAsyncIteration:
                    break
                except BudgetExceeded as exc:
                    raise _for_agent(exc, step.context) from None
                if isinstance(event, ToolCallDelta) and event.index not in started:
                    started.add(event.index)
                    if not event.id:
                        # Some OpenAI-compatible servers send calls without ids: the agent answers a
                        # call by its id, so the first piece carries the one the router's assembled
                        # answer gives it (LangChain keeps the first id of a call's pieces).
                        event = replace(event, id=f"call_{event.index}")
                if isinstance(event, (TextDelta, ToolCallDelta)):
                    yield delta_chunk(event)
        finally:
            await stream.aclose()
        if stream.result is None:  # pragma: no cover - the router always ends a stream with its result
            raise RoutingError("the routed stream ended without its result")
        yield final_chunk(stream.result, self._tier(stream.result), usage=step.stream_usage)

    # -- building one step -------------------------------------------------------------------------

    def _step(
        self,
        messages: list[BaseMessage],
        stop: Sequence[str] | str | None,
        metadata: Mapping[str, Any],
        options: dict[str, Any],
    ) -> _Step:
        if not options.keys() <= _CALL_OPTIONS:  # the usual case, all known, costs one subset test
            unknown = sorted(
                k
                for k in options.keys() - _CALL_OPTIONS
                if options[k] is not None and not _one_answer(k, options[k])
            )
            if unknown:
                raise InvalidRequestError(
                    f"RoutedChatModel does not accept the call option(s) {', '.join(map(repr, unknown))}; "
                    f"it accepts stop, {', '.join(sorted(_CALL_OPTIONS))}"
                )
        # Pydantic finds a private attribute in `__getattr__`, after the usual lookup failed, which
        # costs microseconds per read: a step reads its stores from pydantic's dict of them.
        private = cast("dict[str, Any]", self.__pydantic_private__)
        history: KeptHistory = private["_history"]
        offered = options.get("tools")
        tools = private["_tool_specs"].specs(as_tool_dicts(offered)) if offered else ()
        converted = history.convert(messages)  # the step context reads them as they are, before pairing
        request = ChatRequest(
            messages=pair_tool_results(converted),
            tools=tools,
            tool_choice=to_tool_choice(options.get("tool_choice"), tools) if tools else None,
            max_tokens=_first(options.get("max_tokens"), self.max_tokens),
            temperature=_first(options.get("temperature"), self.temperature),
            # One string is one sequence, as the OpenAI API and ChatOpenAI read it (not its characters).
            stop=(stop,) if isinstance(stop, str) else tuple(stop if stop is not None else self.stop or ()),
            response_schema=to_response_schema(options.get("response_format")),
            parallel_tool_calls=options.get("parallel_tool_calls") if tools else None,
            response_strict=to_response_strict(options.get("response_format")),
            **{name: _first(options.get(name), getattr(self, name)) for name in SAMPLING_SETTINGS},
            reasoning_effort=_first(options.get("reasoning_effort"), self.reasoning_effort),
        )
        force = options.get("model")
        context = step_context(
            metadata,
            messages,
            converted,
            self._defaults(private),
            has_tools=bool(tools) and request.tool_choice != "none",
            force_model=force if isinstance(force, str) else None,
            kept=history,
        )
        if self.sticky_tool_loops:
            context = keep_tool_loop_model(private["_router"], request, context, loop_model(messages))
        stream_usage = options.get("stream_usage")
        return _Step(request, context, self.stream_usage if stream_usage is None else bool(stream_usage))

    def _defaults(self, private: dict[str, Any]) -> StepDefaults:
        """What this model's settings give every call's context, built again only when one changed:
        an agent's steps all read the same, and building it cost microseconds per step."""
        settings: tuple[Any, ...] = (
            self.agent_id,
            tuple(self.budget_keys),
            self.expected_steps,
            self.step_type,
            self.model,
            self.min_tier,
            self.max_tier,
            self.max_cost_usd,
        )
        # Types too: settings assigned after construction are not validated, and 1 == 1.0 == True.
        settings += tuple(map(type, settings))
        kept: tuple[tuple[Any, ...], StepDefaults] | None = private["_step_defaults"]
        if kept is not None and kept[0] == settings:
            return kept[1]
        defaults = StepDefaults(
            agent_id=self.agent_id,
            budget_keys=settings[1],
            expected_steps=self.expected_steps,
            step_type=self.step_type,
            hints=CallerHints(
                force_model=self.model,
                min_tier=self.min_tier,
                max_tier=self.max_tier,
                max_cost_usd=self.max_cost_usd,
            ),
        )
        private["_step_defaults"] = (settings, defaults)
        return defaults

    def _tier(self, routed: RoutedResponse) -> int | None:
        registry = self._router.registry
        return registry[routed.model_id].tier if routed.model_id in registry else None


# The settings `RoutedChatModel` adds to a chat model's, but the config file's path (the router is
# named by its models and policy instead), the streaming switches and the timeout, which leave the
# answer as it is.
_ROUTING_SETTINGS = tuple(
    name
    for name in RoutedChatModel.model_fields
    if name not in BaseChatModel.model_fields
    and name not in ("config", "stream_usage", "streaming", "timeout")
)


def _one_answer(option: str, value: Any) -> bool:
    """Whether a call option is `n=1`: it asks for the one answer every call gets, so it asks for nothing."""
    return option == "n" and type(value) is int and value == 1


def _refuse_unknown_settings(data: dict[str, Any], settings: Collection[str]) -> None:
    """Pydantic drops unknown keywords: a misspelled `max_token=50` would leave answers uncapped.
    LangChain's standard settings that are none here are taken out of `data` (see the class)."""
    for standard in _IGNORED_STANDARD_SETTINGS:
        data.pop(standard, None)
    if _one_answer("n", data.get("n")):  # ChatOpenAI's `n=1`
        del data["n"]
    for name in sorted(data.keys() - settings):
        hint = did_you_mean(name, settings)
        raise InvalidRequestError(f"RoutedChatModel has no setting {name!r}" + (f" ({hint})" if hint else ""))


def _for_agent(exc: BudgetExceeded, context: StepContext) -> BudgetExceeded:
    """The ledger's refusal, prefixed with which agent's call, in which thread, step and LangGraph node,
    it stopped (the same exception, so `except BudgetExceeded` still catches it)."""
    return exc.at_step(context.describe(node=context.metadata.get("langgraph_node")))


def _first(value: Any, default: Any) -> Any:
    """`value` unless it is None, then `default` (a call's option over the model's setting)."""
    return default if value is None else value
