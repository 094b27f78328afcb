"""From one LlamaIndex call (messages and keyword arguments) to the router's request and step context.

The LLM's fields give the defaults (who pays, output cap, self-escalation); a `run_scope` around an
agent's run overrides who pays for every call inside it; a call's own keyword arguments override both.
Tools arrive as LlamaIndex `BaseTool`s (or ready `ToolSpec`s); their specs are worked out once per
tool, since an agent resends the same tools on every step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from gearshift import (
    SAMPLING_SETTINGS,
    ChatRequest,
    InvalidRequestError,
    StepContext,
    ToolSpec,
    pair_tool_results,
)

from ._context import step_context
from ._convert import FilesToRead, convert_messages, to_tool_choice, tool_spec
from ._history import KeptHistory

if TYPE_CHECKING:
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.tools.types import BaseTool

__all__ = ["CALL_OPTIONS", "CallDefaults", "PlannedCall", "ToolSpecCache", "plan_call", "run_scope"]

CALL_OPTIONS = frozenset(
    {
        "agent_id",
        "run_id",
        "budget_keys",
        "step_type",
        "hints",
        "self_escalation",
        "tools",
        "tool_choice",
        "tool_required",
        "parallel_tool_calls",
        "max_tokens",
        "temperature",
        *SAMPLING_SETTINGS,
        "reasoning_effort",
        "stop",
        "response_format",
    }
)
"""Keyword arguments a call may carry, beyond the messages; anything else is refused by name."""

# Passed by LlamaIndex's own callers and meaningless here (prompts arrive formatted either way).
_IGNORED_OPTIONS = frozenset({"formatted", "verbose"})
_ACCEPTED_OPTIONS = CALL_OPTIONS | _IGNORED_OPTIONS
_MAX_CACHED_TOOLS = 256


@dataclass(frozen=True, slots=True)
class _Scope:
    agent_id: str | None
    run_id: str | None
    budget_keys: tuple[str, ...]


_scope: ContextVar[_Scope | None] = ContextVar("gearshift_llamaindex_scope", default=None)
_NO_SCOPE = _Scope(None, None, ())


@contextmanager
def run_scope(
    *, agent_id: str | None = None, run_id: str | None = None, budget_keys: Sequence[str] = ()
) -> Iterator[None]:
    """Attribute every `RoutedLLM` call made inside the block to this agent, run and budget keys.

    LlamaIndex agents do not pass extra arguments to their LLM, so this is how one shared `RoutedLLM`
    tells concurrent runs apart: `with run_scope(run_id="ticket-42"): await agent.run(...)`. The
    scope follows asyncio tasks started inside it. Values given per call win over the scope, and the
    scope wins over the LLM's own fields; budget keys add up.
    """
    token = _scope.set(_Scope(agent_id, run_id, _budget_keys(budget_keys, "run_scope: budget_keys")))
    try:
        yield
    finally:
        _scope.reset(token)


class CallDefaults(Protocol):
    """What a call falls back on when it does not say: the LLM's fields."""

    agent_id: str | None
    run_id: str | None
    budget_keys: tuple[str, ...]
    expected_steps: int | None
    self_escalation: bool
    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    seed: int | None
    frequency_penalty: float | None
    presence_penalty: float | None
    top_k: int | None
    reasoning_effort: str | None


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """One call, ready for the router."""

    request: ChatRequest
    context: StepContext
    self_escalation: bool


class ToolSpecCache:
    """`ToolSpec`s of LlamaIndex tools, kept per tool metadata object and rebuilt when it changes."""

    def __init__(self) -> None:
        self._specs: dict[int, tuple[Any, tuple[Any, ...], ToolSpec]] = {}

    def specs(self, tools: Sequence[BaseTool | ToolSpec]) -> tuple[ToolSpec, ...]:
        """The specs of `tools`, in order; `ToolSpec`s pass through."""
        specs: list[ToolSpec] = []
        cache, spec_classes = self._specs, _SPEC_CLASSES
        tool: Any  # narrowed by `_is_spec`, which mypy does not follow
        for tool in tools:
            # `_is_spec`, without a call for a class already looked up (every class, after a step).
            is_spec = spec_classes.get(type(tool))
            if is_spec is None:
                is_spec = _is_spec(type(tool))
            if is_spec:
                specs.append(tool)
                continue
            metadata = tool.metadata
            state = (metadata.name, metadata.description, metadata.fn_schema)
            # Keyed by id, and checked by identity and content: a reused id or an edited tool rebuilds.
            hit = cache.get(id(metadata))
            if hit is None or hit[0] is not metadata or hit[1] != state:
                if len(cache) >= _MAX_CACHED_TOOLS:
                    cache.clear()
                hit = (metadata, state, tool_spec(tool))
                cache[id(metadata)] = hit
            specs.append(hit[2])
        return tuple(specs)


_SPEC_CLASSES: dict[type, bool] = {}


def _is_spec(kind: type) -> bool:
    """Whether a tool of this class is a `ToolSpec`: looked up per class (a program has a few), since an
    isinstance against a pydantic model class goes through ABCMeta for every tool of every step."""
    found = _SPEC_CLASSES.get(kind)
    if found is None:
        found = _SPEC_CLASSES[kind] = issubclass(kind, ToolSpec)
    return found


async def plan_call(
    messages: Sequence[ChatMessage],
    options: Mapping[str, Any],
    defaults: CallDefaults,
    tools: ToolSpecCache,
    history: KeptHistory | None = None,
) -> PlannedCall:
    """The request and step context of one call; `options` are the call's keyword arguments.

    `history` keeps the conversion of messages earlier steps sent; None converts every message.
    """
    unknown = options.keys() - _ACCEPTED_OPTIONS if not options.keys() <= _ACCEPTED_OPTIONS else None
    if unknown and "n" in unknown and type(options["n"]) is int and options["n"] == 1:
        unknown = unknown - {"n"}  # one answer is what every call gets: it asks for nothing extra
    if unknown:
        raise InvalidRequestError(
            f"RoutedLLM does not take {', '.join(sorted(unknown))}; a call may set: "
            f"{', '.join(sorted(CALL_OPTIONS))}"
        )
    # Image files and streams are read while converting: off the event loop, so a history with one is
    # converted again in a thread. The step context reads the history from the converted messages as
    # they are before pairing (one per LlamaIndex message).
    try:
        if history is None:
            converted = convert_messages(messages, read_files=False)
        else:
            converted = history.convert(messages, read_files=False)
    except FilesToRead:
        converted = await asyncio.to_thread(convert_messages, messages)
    specs = tools.specs(options.get("tools") or ())
    choice = to_tool_choice(
        options.get("tool_choice"), tool_required=bool(options.get("tool_required")), has_tools=bool(specs)
    )
    request = ChatRequest(
        messages=pair_tool_results(converted),
        tools=specs,
        tool_choice=choice,
        max_tokens=options.get("max_tokens", defaults.max_tokens),
        temperature=options.get("temperature", defaults.temperature),
        stop=_stop(options.get("stop")),
        response_schema=_response_schema(options.get("response_format")),
        parallel_tool_calls=options.get("parallel_tool_calls") if specs else None,
        **{name: options.get(name, getattr(defaults, name)) for name in SAMPLING_SETTINGS},
        reasoning_effort=options.get("reasoning_effort", defaults.reasoning_effort),
    )
    scope = _scope.get() or _NO_SCOPE
    context = step_context(
        messages,
        converted,
        has_tools=bool(specs) and choice != "none",
        agent_id=options.get("agent_id") or scope.agent_id or defaults.agent_id,
        run_id=options.get("run_id") or scope.run_id or defaults.run_id,
        budget_keys=(
            *defaults.budget_keys,
            *scope.budget_keys,
            *_budget_keys(options.get("budget_keys", ()), "budget_keys"),
        ),
        expected_steps=defaults.expected_steps,
        step_type=options.get("step_type"),
        hints=options.get("hints"),
        kept=history,
    )
    return PlannedCall(request, context, bool(options.get("self_escalation", defaults.self_escalation)))


def _budget_keys(keys: Any, where: str) -> tuple[str, ...]:
    """`keys` as a tuple; one string is refused, as `StepContext` refuses it: spread into the keys
    of a call, its letters would each become a key the spend is charged to."""
    if isinstance(keys, str) or not all(isinstance(key, str) for key in keys):
        raise InvalidRequestError(f"{where} must be a list of keys such as ['team:search'], got {keys!r}")
    return tuple(keys)


def _stop(stop: str | Sequence[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    return (stop,) if isinstance(stop, str) else tuple(stop)


def _response_schema(response_format: Any) -> Mapping[str, Any] | None:
    """A JSON schema from a pydantic class, a schema dict, or OpenAI's `json_schema` response format."""
    if response_format is None:
        return None
    if isinstance(response_format, type) and issubclass(response_format, BaseModel):
        return response_format.model_json_schema()
    if isinstance(response_format, Mapping):
        wrapped = response_format.get("json_schema")
        if response_format.get("type") == "json_schema" and isinstance(wrapped, Mapping):
            return dict(wrapped.get("schema") or {})
        return response_format
    raise InvalidRequestError(
        "response_format must be a pydantic model class or a JSON schema, "
        f"got {type(response_format).__name__}"
    )
