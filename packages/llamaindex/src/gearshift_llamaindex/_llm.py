"""`RoutedLLM`: a LlamaIndex function-calling LLM whose every call is routed by gearshift.

Pass it wherever LlamaIndex takes an LLM (`FunctionAgent`, `ReActAgent`, `AgentWorkflow`, query and
chat engines, `Settings.llm`). Each call becomes a `ChatRequest` and a `StepContext` read from the
agent's history; the core `Router` picks the model, falls back, escalates and keeps the budget. The
async methods are the real ones; the sync ones run them through gearshift's one sync bridge.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Collection, Generator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.types import PydanticProgramMode

from gearshift import (
    BudgetExceeded,
    ConfigError,
    GearshiftConfig,
    InvalidRequestError,
    Router,
    StepContext,
    did_you_mean,
    iterate_sync,
    keep_tool_loop_model,
    load_config,
    request_id_of,
    run_sync,
)

from ._callbacks import chat_callback, completion_callback
from ._calls import PlannedCall, ToolSpecCache, plan_call
from ._context import loop_model
from ._convert import chat_chunks, chat_response, completion, completion_chunks, tool_selections
from ._history import KeptHistory
from ._structured_answers import parsed_answer, partial_objects

if TYPE_CHECKING:
    from llama_index.core.agent.workflow import AgentOutput
    from llama_index.core.prompts import PromptTemplate
    from llama_index.core.tools.types import BaseTool
    from llama_index.core.types import Model

__all__ = ["RoutedLLM"]

_Chunk = TypeVar("_Chunk")
_LLM = TypeVar("_LLM", bound="RoutedLLM")


class _Core:
    """What a `RoutedLLM` holds besides its fields: the router and what is worked out from it once."""

    __slots__ = ("history", "payload", "rebuildable", "router", "smallest_window", "tools")

    def __init__(self, router: Router, class_name: str, *, rebuildable: bool) -> None:
        self.router = router
        # Whether the LLM's `config` field builds this router again (a file, or the search for one).
        self.rebuildable = rebuildable
        self.tools = ToolSpecCache()
        self.history = KeptHistory()
        self.smallest_window = min((m.context_window for m in router.registry), default=128_000)
        # Tuples inside: callers get a shallow copy, and nothing in it can be changed under us.
        self.payload: dict[str, Any] = {"class_name": class_name, "models": tuple(router.registry.ids)}


class RoutedLLM(FunctionCallingLLM):
    """A LlamaIndex LLM that routes every call to the cheapest model that will do the job.

    Build it from a gearshift.toml (`RoutedLLM(config="gearshift.toml")`; no config: `$GEARSHIFT_CONFIG`,
    then `./gearshift.toml`, then the built-in model ladder) or around a `Router` built in Python
    (`RoutedLLM(router)`). Each response carries the routing record (model, decision, attempts,
    escalations, cost) in `additional_kwargs["gearshift"]` and in `raw`, and its token counts under
    `prompt_tokens` and `completion_tokens` in `additional_kwargs`.

    Every call may also take, as keyword arguments: `agent_id`, `run_id` and `budget_keys` (who pays;
    see also `run_scope`), `step_type` (a `StepType` or its name, instead of the one read from the
    history), `hints` (a `CallerHints`: force a model, bound the tier or the cost), `self_escalation`,
    `max_tokens`, `temperature`, `top_p`, `seed`, `frequency_penalty`, `presence_penalty`, `top_k`,
    `reasoning_effort`, `stop`, and `response_format` (a pydantic class or a JSON schema).
    """

    model_config = ConfigDict(use_attribute_docstrings=True)

    config: str | None = None
    """The absolute path of the gearshift.toml the router was built from: the one given, or the one
    `$GEARSHIFT_CONFIG` / `./gearshift.toml` named at construction (None: a router passed in, a config
    built in Python, or the built-in ladder). A copy (pickle, `from_dict`) reads this same file."""
    agent_id: str | None = None
    """The agent these calls belong to: spend is charged to `agent:<agent_id>`."""
    run_id: str | None = None
    """The run (task, thread) these calls belong to: spend is charged to `run:<run_id>`."""
    budget_keys: tuple[str, ...] = ()
    """More ledger keys every call's spend counts against, such as `team:search`."""
    expected_steps: int | None = Field(default=None, gt=0)
    """How many model calls a run is expected to take; budget pacing spreads the run's budget over them."""
    self_escalation: bool = True
    """Let models below the top tier hand a step to a stronger one through an `escalate` tool the agent
    never sees."""
    sticky_tool_loops: bool = False
    """Keep the model that made a tool call for reading its results, unless routing moves the step up
    (`gearshift.keep_tool_loop_model`)."""
    max_tokens: int | None = Field(default=None, gt=0)
    """Cap on output tokens per call (None: each model's default)."""
    temperature: float | None = Field(default=None, ge=0)
    """Sampling temperature sent with every call (None: each model's default)."""
    top_p: float | None = Field(default=None, ge=0, le=1)
    """Nucleus sampling sent with every call (None: each model's default)."""
    seed: int | None = None
    """Sampling seed, sent to OpenAI-compatible models (Anthropic's API has none: left out, and the
    decision's reasons say so)."""
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    """Sent to OpenAI-compatible models (left out for Anthropic's, as `seed`)."""
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    """Sent to OpenAI-compatible models (left out for Anthropic's, as `seed`)."""
    top_k: int | None = Field(default=None, gt=0)
    """Sample from the k likeliest tokens, sent to Anthropic models (OpenAI's API has none)."""
    reasoning_effort: str | None = None
    """OpenAI's `reasoning_effort` (`gearshift.REASONING_EFFORTS`), sent to the models marked
    `reasoning` (`ModelSpec.reasoning`; left out for others, as `seed`)."""
    context_window: int | None = Field(default=None, gt=0)
    """Context window reported to LlamaIndex; None: the smallest in the registry. LlamaIndex sizes its
    memory and packs retrieved text up to this window, so the smallest keeps every step small enough for
    every model, the cheapest included; raise it to let long contexts go to the models that fit them."""

    # One private attribute, read once per call: pydantic serves private attributes through a slow
    # __getattr__, and this path runs before every model call.
    _core: _Core = PrivateAttr()

    def __init__(
        self,
        router: Router | None = None,
        *,
        config: GearshiftConfig | str | Path | None = None,
        **fields: Any,
    ) -> None:
        if router is not None and config is not None:
            raise ConfigError("pass either a Router or a config, not both", key="config")
        _refuse_unknown_settings(fields, type(self).model_fields.keys())
        searched = router is None and config is None
        if router is None and not isinstance(config, GearshiftConfig):
            config = load_config(config)  # the file given, or the one the search finds
        # Kept as the absolute path of the file read: a relative one, or none for a file found by
        # the search, made a pickle or `from_dict` in another folder read that folder's file.
        read = config.file if isinstance(config, GearshiftConfig) else None
        file = None if read is None else str(read)
        super().__init__(config=file, **fields)
        # Rebuildable from the file, or, when the search found none, as the built-in ladder again.
        rebuildable = router is None and (file is not None or searched)
        built = router if router is not None else Router.from_config(config)
        self._core = _Core(built, self.class_name(), rebuildable=rebuildable)

    @classmethod
    def class_name(cls) -> str:
        """LlamaIndex's name for this class."""
        return "gearshift_routed_llm"

    @property
    def router(self) -> Router:
        """The gearshift router every call goes through."""
        return self._core.router

    def model_copy(self: _LLM, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> _LLM:
        """pydantic's copy, sharing the router; an `update` naming no setting is refused as the
        constructor refuses it (pydantic would keep it, unused)."""
        if update:
            _refuse_unknown_settings(update, type(self).model_fields.keys())
            if deep:  # pydantic then deep-copies field by field, past `__deepcopy__`: the router too
                return super().model_copy(deep=True).model_copy(update=update)
        return super().model_copy(update=update, deep=deep)

    def __deepcopy__(self: _LLM, memo: dict[int, Any] | None = None) -> _LLM:
        """A deep copy of the settings that shares the router (`copy.deepcopy`, `model_copy(deep=True)`).

        A router is a live resource shared like an HTTP client (SDK clients, a budget ledger, a
        decision log): copying it would copy its clients' locks, which cannot be copied.
        """
        memo = {} if memo is None else memo
        memo[id(self._core.router)] = self._core.router
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[str, Any]:
        """The settings, for pickle; unpickling builds the router again from `config`.

        A router is a live resource (SDK clients, a ledger, a decision log) and does not pickle; one
        built in Python cannot be built again elsewhere, so such an LLM is refused, not unpickled
        around another router.
        """
        _refuse_unless_rebuildable(self, "pickle")
        bare = super().model_copy()
        bare.__pydantic_private__ = {}  # LlamaIndex would log that it dropped the router, unpicklable
        state: dict[str, Any] = super(RoutedLLM, bare).__getstate__()
        return state

    def to_dict(self, **kwargs: Any) -> dict[str, Any]:
        """LlamaIndex's serialisation (`to_json` too): the settings, `config` among them, from which
        `from_dict` builds the router again. Refused, as pickling is, for a router built in Python:
        `from_dict` would build the LLM around another router (no config: the built-in ladder)."""
        _refuse_unless_rebuildable(self, "serialise")
        return super().to_dict(**kwargs)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle through the constructor, which builds the router from `config`; a config that no
        longer loads raises its `ConfigError` here (LlamaIndex would leave an LLM without a router)."""
        RoutedLLM.__init__(self, **state["__dict__"])

    def feedback(
        self,
        answer: ChatResponse | CompletionResponse | AgentOutput | str,
        score: float,
        *,
        source: str = "user",
        comment: str | None = None,
    ) -> None:
        """Record a score in [0, 1] for an answer of this LLM: the `ChatResponse` or
        `CompletionResponse` (its request id is read from `additional_kwargs["gearshift"]`), an agent's
        `AgentOutput` (from the routing record in its `raw`), or the request id itself. The score goes
        to the router's decision log (see `Router.feedback`).
        """
        request_id = answer if isinstance(answer, str) else _answer_request_id(answer)
        if request_id is None:
            raise InvalidRequestError(
                "this answer carries no gearshift request id (in additional_kwargs['gearshift'] or its "
                "raw routing record): give feedback on an answer this LLM or an agent on it returned, "
                "or pass the request id"
            )
        self._core.router.feedback(request_id, score, source=source, comment=comment)

    @property
    def metadata(self) -> LLMMetadata:
        """A function-calling chat model; its context window is `context_window`'s.

        `num_output` is the room the router keeps for the answer when it checks that a prompt fits a
        model (`max_tokens`, else `Router.default_output_tokens`): LlamaIndex packs prompts up to the
        window less this, so a full prompt still fits the models that report that window.
        """
        core = _core_of(self)
        return LLMMetadata(
            context_window=self.context_window or core.smallest_window,
            num_output=self.max_tokens or core.router.default_output_tokens,
            is_chat_model=True,
            is_function_calling_model=True,
            model_name="gearshift",
        )

    def to_payload(self) -> dict[str, Any]:
        """What LlamaIndex's callbacks and instrumentation record about this LLM (no secrets)."""
        return dict(self._core.payload)

    # -- chat -------------------------------------------------------------------------------------

    @chat_callback
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Route one chat call (sync, through the bridge)."""
        return run_sync(self._achat(messages, kwargs))

    @chat_callback
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Route one chat call."""
        return await self._achat(messages, kwargs)

    @chat_callback
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """Route one chat call and stream the answer (sync, through the bridge)."""
        return _blocking(run_sync(self._astream_chat(messages, kwargs)))

    @chat_callback
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        """Route one chat call and stream the answer: one response per delta, then one with the usage."""
        return await self._astream_chat(messages, kwargs)

    # -- complete ---------------------------------------------------------------------------------

    @completion_callback
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Route one completion: the prompt is sent as a user message (sync, through the bridge)."""
        return run_sync(self._acomplete(prompt, kwargs))

    @completion_callback
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Route one completion: the prompt is sent as a user message."""
        return await self._acomplete(prompt, kwargs)

    @completion_callback
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        """Route one completion and stream it (sync, through the bridge)."""
        return _blocking(run_sync(self._astream_complete(prompt, kwargs)))

    @completion_callback
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        """Route one completion and stream it."""
        return await self._astream_complete(prompt, kwargs)

    # -- tools ------------------------------------------------------------------------------------

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: str | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The `chat` arguments of a call with tools (LlamaIndex's hook behind `chat_with_tools`)."""
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            messages.append(ChatMessage(role=MessageRole.USER, content=user_msg))
        elif user_msg is not None:
            messages.append(user_msg)
        return {
            "messages": messages,
            "tools": tools,
            "tool_choice": tool_choice,
            "tool_required": tool_required,
            "parallel_tool_calls": allow_parallel_tool_calls,
            **kwargs,
        }

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        """Keep only the first tool call when parallel calls were not allowed (as LlamaIndex expects)."""
        if not allow_parallel_tool_calls:
            seen = False
            kept = []
            for block in response.message.blocks:
                if isinstance(block, ToolCallBlock):
                    if seen:
                        continue
                    seen = True
                kept.append(block)
            response.message.blocks = kept
            # The calls are listed again where other integrations read them: drop the same ones there.
            listed = response.message.additional_kwargs.get("tool_calls")
            if isinstance(listed, list) and len(listed) > 1:
                response.message.additional_kwargs["tool_calls"] = listed[:1]
        return response

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        """The tool calls of a response (also of a partial streamed one)."""
        selections = tool_selections(response)
        if not selections and error_on_no_tool_call:
            # LlamaIndex's callers expect a ValueError here (predict_and_call, structured programs).
            raise ValueError("the model answered without calling a tool")
        return selections

    # -- structured prediction --------------------------------------------------------------------

    def structured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """An instance of `output_cls`, asked for as JSON matching its schema (sync, through the bridge).

        With `pydantic_program_mode` other than the default, LlamaIndex's program of that mode is used.
        """
        if self.pydantic_program_mode != PydanticProgramMode.DEFAULT:
            result: Model = super().structured_predict(output_cls, prompt, llm_kwargs, **prompt_args)
            return result
        return run_sync(self._astructured(output_cls, prompt, llm_kwargs, prompt_args))

    async def astructured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """An instance of `output_cls`, asked for as JSON matching its schema.

        The request carries the schema, so only models that support JSON output are routed to.
        """
        if self.pydantic_program_mode != PydanticProgramMode.DEFAULT:
            result: Model = await super().astructured_predict(output_cls, prompt, llm_kwargs, **prompt_args)
            return result
        return await self._astructured(output_cls, prompt, llm_kwargs, prompt_args)

    async def _astructured(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None,
        prompt_args: dict[str, Any],
    ) -> Model:
        messages = self._extend_messages(prompt.format_messages(llm=self, **prompt_args))
        response = await self.achat(messages, **{**(llm_kwargs or {}), "response_format": output_cls})
        return parsed_answer(response, output_cls)

    def _structured_stream_call(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Generator[Any, None, None]:
        """Partial objects as the JSON streams in (behind `stream_structured_predict`; sync, bridged)."""
        if self.pydantic_program_mode != PydanticProgramMode.DEFAULT:
            partials: Generator[Any, None, None] = super()._structured_stream_call(
                output_cls, prompt, llm_kwargs, **prompt_args
            )
            return partials
        return _blocking(run_sync(self._astructured_stream(output_cls, prompt, llm_kwargs, prompt_args)))

    async def _structured_astream_call(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> AsyncGenerator[Any, None]:
        """Partial objects as the JSON streams in (behind `astream_structured_predict`)."""
        if self.pydantic_program_mode != PydanticProgramMode.DEFAULT:
            partials: AsyncGenerator[Any, None] = await super()._structured_astream_call(
                output_cls, prompt, llm_kwargs, **prompt_args
            )
            return partials
        return await self._astructured_stream(output_cls, prompt, llm_kwargs, prompt_args)

    async def _astructured_stream(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None,
        prompt_args: dict[str, Any],
    ) -> AsyncGenerator[Any, None]:
        messages = self._extend_messages(prompt.format_messages(llm=self, **prompt_args))
        chunks = await self.astream_chat(messages, **{**(llm_kwargs or {}), "response_format": output_cls})
        return partial_objects(chunks, output_cls)

    # -- the one code path ------------------------------------------------------------------------

    async def _plan(
        self, messages: Sequence[ChatMessage], options: dict[str, Any], core: _Core | None = None
    ) -> PlannedCall:
        if core is None:
            core = _core_of(self)
        call = await plan_call(messages, options, self, core.tools, core.history)
        if not self.sticky_tool_loops:
            return call
        context = keep_tool_loop_model(core.router, call.request, call.context, loop_model(messages))
        return replace(call, context=context)

    async def _achat(self, messages: Sequence[ChatMessage], options: dict[str, Any]) -> ChatResponse:
        core = _core_of(self)
        call = await self._plan(messages, options, core)
        try:
            result = await core.router.acomplete(
                call.request, call.context, self_escalation=call.self_escalation
            )
        except BudgetExceeded as exc:
            raise exc.at_step(call.context.describe()) from None
        return chat_response(result, core.router.registry)

    async def _astream_chat(
        self, messages: Sequence[ChatMessage], options: dict[str, Any]
    ) -> ChatResponseAsyncGen:
        core = _core_of(self)
        call = await self._plan(messages, options, core)
        stream = core.router.astream(call.request, call.context, self_escalation=call.self_escalation)
        return _stops_at_step(chat_chunks(stream, core.router.registry), call.context)

    async def _acomplete(self, prompt: str, options: dict[str, Any]) -> CompletionResponse:
        response = await self._achat([ChatMessage(role=MessageRole.USER, content=prompt)], options)
        return completion(response)

    async def _astream_complete(self, prompt: str, options: dict[str, Any]) -> CompletionResponseAsyncGen:
        chunks = await self._astream_chat([ChatMessage(role=MessageRole.USER, content=prompt)], options)
        return completion_chunks(chunks)


async def _stops_at_step(
    chunks: AsyncGenerator[ChatResponse, None], context: StepContext
) -> AsyncGenerator[ChatResponse, None]:
    """`chunks`, with a budget's refusal saying which agent, thread and step it stopped, as `achat` does."""
    try:
        async for chunk in chunks:
            yield chunk
    except BudgetExceeded as exc:
        raise exc.at_step(context.describe()) from None
    finally:
        await chunks.aclose()


def _answer_request_id(answer: object) -> str | None:
    """The request id of a response (`additional_kwargs`) or of an agent's output, whose `raw` is the
    routing record of the response it was made from (`AgentOutput` keeps no `additional_kwargs`)."""
    found = request_id_of(getattr(answer, "additional_kwargs", None))
    if found is not None:
        return found
    raw = getattr(answer, "raw", None)
    request_id = raw.get("request_id") if isinstance(raw, Mapping) else None
    return request_id if isinstance(request_id, str) else None


def _core_of(llm: RoutedLLM) -> _Core:
    """`llm._core`, read from pydantic's dict of private attributes: pydantic serves `llm._core` through
    `BaseModel.__getattr__`, after the usual lookup failed, which costs microseconds on every call."""
    private = cast("dict[str, Any]", llm.__pydantic_private__)
    return cast("_Core", private["_core"])


def _refuse_unless_rebuildable(llm: RoutedLLM, action: str) -> None:
    """A `TypeError` when `llm`'s `config` would not build its router again, so its copy cannot route."""
    if not _core_of(llm).rebuildable:
        raise TypeError(
            f"cannot {action} a RoutedLLM whose router was built in Python (a Router or a "
            "GearshiftConfig passed in): its copy could not route through the same models; build "
            f"it with RoutedLLM(config='gearshift.toml') to {action} it, and the copy reads that file"
        )


def _refuse_unknown_settings(fields: Mapping[str, Any], settings: Collection[str]) -> None:
    """Pydantic drops unknown keywords: a misspelled `max_token=50` would leave answers uncapped."""
    for name in sorted(fields.keys() - settings):
        hint = did_you_mean(name, settings)
        raise ConfigError(f"RoutedLLM has no setting {name!r}" + (f" ({hint})" if hint else ""), key=name)


def _blocking(chunks: AsyncIterator[_Chunk]) -> Generator[_Chunk, None, None]:
    """Iterate streamed responses from sync code, through the bridge (a generator, as LlamaIndex expects)."""
    yield from iterate_sync(chunks)
