"""The `StepContext` of one model call, read from LangGraph's metadata and the message history.

Nothing here asks the user for extra code. LangGraph puts `thread_id`, `langgraph_node` and
`langgraph_step` into every call's metadata, next to whatever the caller put in the run config's
`metadata`; the history says the rest: a `ToolMessage` last means the model is reading a tool
result, `status="error"` marks a failed tool, and the `AIMessage`s list every tool call so far. The
history is read together with its gearshift conversion (one converted message per message), so that
what the conversion already read (roles, failed results) is not read from LangChain's messages again.

A caller may steer a call through the run config's metadata (`config={"metadata": {...}}`):

| key             | meaning                                                        |
|-----------------|----------------------------------------------------------------|
| `agent_id`      | whose budget the call counts against (`agent:<id>`); default:  |
|                 | the model's `agent_id`, then the `create_agent` agent's `name` |
| `run_id`        | the run (`run:<id>`); default: LangGraph's `thread_id`         |
| `step_type`     | plan, act, observe, reflect, respond, summarize, other, or     |
|                 | recover (the step after a failing tool), taken as reflect      |
| `budget_keys`   | more ledger keys the spend counts against (`["team:search"]`)  |
| `expected_steps`| how many model calls the run is expected to take               |
| `min_tier`, `max_tier`, `max_cost_usd` | bounds on the decision                  |

Pure: no I/O, no clock.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from gearshift import (
    CallerHints,
    InvalidRequestError,
    Message,
    StepContext,
    StepType,
    ToolRecord,
)

from ._call_records import CallRecords, call_records
from ._convert import message_kind
from ._output import GEARSHIFT_KEY

if TYPE_CHECKING:
    from ._history import KeptHistory

__all__ = ["CallRecords", "StepDefaults", "call_records", "loop_model", "step_context"]

# A hand-written graph names its nodes after what they do: a word of a node's name that starts with
# one of these says which step it is ("planner", "final_answer", "summarize_findings"). The prebuilt
# agent's node is called "model" and says nothing: the history decides.
_NODE_WORDS: tuple[tuple[tuple[str, ...], StepType], ...] = (
    (("plan",), StepType.PLAN),
    (("reflect", "critic", "critique", "review", "verify"), StepType.REFLECT),
    (("summar",), StepType.SUMMARIZE),
    (("respond", "answer", "final", "report", "write"), StepType.RESPOND),
    (("observe",), StepType.OBSERVE),
    (("act", "tool", "execut"), StepType.ACT),
)
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_TIER_KEYS = ("min_tier", "max_tier")


@dataclass(frozen=True, slots=True)
class StepDefaults:
    """What the chat model's own settings contribute; per-call metadata overrides each of them."""

    agent_id: str | None = None
    budget_keys: tuple[str, ...] = ()
    expected_steps: int | None = None
    step_type: StepType | None = None
    hints: CallerHints = field(default_factory=CallerHints)


def step_context(
    metadata: Mapping[str, Any],
    history: Sequence[BaseMessage],
    converted: Sequence[Message],
    defaults: StepDefaults,
    *,
    has_tools: bool,
    force_model: str | None = None,
    kept: KeptHistory | None = None,
) -> StepContext:
    """The context of a call with this run metadata and this history.

    `converted` is `convert_messages(history)`: one gearshift message per message, in order; when
    `kept` converted it, the tool records it keeps for the assistant messages it returned are reused.
    `has_tools` is whether the request offers tools (a user turn then means the agent is acting);
    `force_model` pins the call to one registry id (LangChain's per-call `model=` override).
    """
    if len(converted) != len(history):
        raise ValueError(f"{len(converted)} converted messages for {len(history)} LangChain messages")
    # LangChain names the `create_agent(name=...)` agent calling the model: agents sharing one model
    # in a supervisor graph are each charged for their own calls unless the caller or model names one.
    speaker = _text(metadata, "lc_agent_name")
    agent_id = _text(metadata, "agent_id") or defaults.agent_id or speaker
    run_id = _text(metadata, "run_id") or _text(metadata, "thread_id")
    step_type = _step_type(metadata, history, converted, defaults, has_tools=has_tools, speaker=speaker)
    keys = _keys(metadata)
    budget_keys = (
        defaults.budget_keys + tuple(key for key in keys if key not in defaults.budget_keys)
        if keys
        else defaults.budget_keys
    )
    expected_steps = _positive(metadata, "expected_steps") or defaults.expected_steps
    extra: dict[str, Any] = {"framework": "langchain"}
    for key in ("langgraph_node", "langgraph_step"):
        if key in metadata:
            extra[key] = metadata[key]
    step_index, records, turn_start, turn_steps = _steps_and_tools(history, converted, kept, speaker)
    return StepContext(
        agent_id=agent_id,
        run_id=run_id,
        step_type=step_type,
        step_index=step_index,
        tool_history=records,
        hints=_hints(metadata, defaults.hints, force_model),
        metadata=extra,
        budget_keys=budget_keys,
        expected_steps=expected_steps,
        turn_start=turn_start,
        turn_step_index=turn_steps,
    )


def _steps_and_tools(
    history: Sequence[BaseMessage],
    converted: Sequence[Message],
    kept: KeptHistory | None,
    speaker: str | None = None,
) -> tuple[int, tuple[ToolRecord, ...], int, int]:
    """The number of `AIMessage`s in the history, every tool call of it in order, failed where its
    `ToolMessage` says `status="error"`, how many of those calls came before the last user message
    (`StepContext.turn_start`), and how many `AIMessage`s came after it (`turn_step_index`): read in
    one walk.

    A LangGraph thread keeps every turn of a conversation: a tool that failed, or a call made, in an
    earlier turn counts in the run's history, but is no error streak nor loop of this turn; and its
    budget is paced over this turn's steps, not the thread's.

    A `ToolMessage` answers the first unanswered call with its id in the assistant message just before
    it, not every call of that id in the history: ids the router assigns when a server sends none
    (`call_0`, `call_1`...) start over on every step, and one failed `call_0` must not mark every
    earlier `call_0` as failed too.

    In a graph of several agents (a supervisor's), the answer of another agent than `speaker` (the
    `create_agent` agent calling, which names its `AIMessage`s) hands this agent its task as a user
    message would: the other agent's tool errors and steps are no streak nor step of this turn.

    A user message right after `ToolMessage`s is no new turn (the core's `context_from_messages` reads
    turns alike): an agent that sends a reminder or a tool's images beside its results is still on
    the same turn.

    Only a `ToolMessage` converts to a `tool` message, flagged `is_error` when its status is "error"
    and keeping its `tool_call_id`; an assistant message may also come from a `ChatMessage`, so its
    class is still looked up. The calls' arguments are hashed from LangChain's dicts, or their records
    taken from `kept` for the messages it converted.
    """
    steps = turn_steps = 0
    tools: list[ToolRecord] = []
    failed_records: list[ToolRecord] = []  # per call, its record if its result fails
    open_calls: dict[Any, list[int]] = {}  # the latest assistant message's unanswered calls, per id
    turn_start = 0
    previous = None
    for message, gearshift_message in zip(history, converted, strict=True):
        role = gearshift_message.role
        if role == "user":
            if previous != "tool":  # a message sent beside tool results is no new turn
                turn_start, turn_steps = len(tools), 0
        elif role == "assistant":
            open_calls = {}
            # Only an `AIMessage`'s records are kept: a message they were kept for needs no class look-up.
            records = kept.call_records(gearshift_message) if kept is not None else None
            if records is None and message_kind(message) is AIMessage:
                records = call_records(cast("AIMessage", message))
            if records is not None:
                steps += 1
                turn_steps += 1
                for call_id, when_ok, when_failed in records:
                    open_calls.setdefault(call_id, []).append(len(tools))
                    tools.append(when_ok)
                    failed_records.append(when_failed)
            if speaker is not None and _handed_over(gearshift_message, speaker):
                turn_start, turn_steps = len(tools), 0
        elif role == "tool":
            waiting = open_calls.get(gearshift_message.tool_call_id)
            if waiting:
                index = waiting.pop(0)
                if gearshift_message.is_error:
                    tools[index] = failed_records[index]
        previous = role
    return steps, tuple(tools), turn_start, turn_steps


def loop_model(history: Sequence[BaseMessage]) -> str | None:
    """The registry id of the model that made the tool calls the history ends with, if gearshift routed it.

    None unless the model is about to read tool results (the history ends with `ToolMessage`s).
    """
    if not history or not isinstance(history[-1], ToolMessage):
        return None
    for message in reversed(history):
        if isinstance(message, AIMessage):
            routed = message.response_metadata.get(GEARSHIFT_KEY)
            model_id = routed.get("model_id") if isinstance(routed, Mapping) else None
            return model_id if isinstance(model_id, str) else None
        if not isinstance(message, ToolMessage):
            return None
    return None


def _step_type(
    metadata: Mapping[str, Any],
    history: Sequence[BaseMessage],
    converted: Sequence[Message],
    defaults: StepDefaults,
    *,
    has_tools: bool,
    speaker: str | None = None,
) -> StepType:
    value = metadata.get("step_type")
    if value is not None:
        if not isinstance(value, (str, StepType)):
            raise InvalidRequestError(f"run metadata 'step_type' must be a string, got {value!r}")
        return StepType.parse(value, where="run metadata 'step_type'")
    if defaults.step_type is not None:
        return defaults.step_type
    node = metadata.get("langgraph_node")
    if isinstance(node, str):
        step = _node_step(node)
        if step is not None:
            return step
    if not converted:
        return StepType.OTHER
    last = converted[-1].role
    if last == "tool":  # only a ToolMessage converts to a tool result
        return StepType.OBSERVE
    if last == "user" and has_tools and message_kind(history[-1]) is HumanMessage:
        return StepType.ACT
    if has_tools and _handed_over(converted[-1], speaker):  # another agent handed this one its task
        return StepType.ACT
    return StepType.OTHER


def _handed_over(message: Message, speaker: str | None) -> bool:
    """Whether `message` is another agent's answer than the `speaker`'s, in a graph of named agents."""
    return (
        speaker is not None
        and message.role == "assistant"
        and message.name is not None
        and message.name != speaker
    )


@functools.lru_cache(maxsize=256)
def _node_step(node: str) -> StepType | None:
    """The step a graph node's name says, if any: a graph has a few nodes, each named on every call."""
    words = [word.lower() for word in _WORD.findall(node)]
    for prefixes, step in _NODE_WORDS:
        if any(word.startswith(prefixes) for word in words):
            return step
    return None


def _hints(metadata: Mapping[str, Any], defaults: CallerHints, force_model: str | None) -> CallerHints:
    get = metadata.get
    asked = get("min_tier") is not None or get("max_tier") is not None or get("max_cost_usd") is not None
    if not force_model and not asked:
        return defaults  # the call asks for nothing of its own: the model's hints, not a copy of them
    tiers = {key: _tier(metadata, key) for key in _TIER_KEYS}
    cost = metadata.get("max_cost_usd")
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, (int, float))):
        raise InvalidRequestError(f"run metadata 'max_cost_usd' must be a number, got {cost!r}")
    return CallerHints(
        force_model=force_model or defaults.force_model,
        min_tier=tiers["min_tier"] if tiers["min_tier"] is not None else defaults.min_tier,
        max_tier=tiers["max_tier"] if tiers["max_tier"] is not None else defaults.max_tier,
        max_cost_usd=float(cost) if cost is not None else defaults.max_cost_usd,
    )


def _text(metadata: Mapping[str, Any], key: str) -> str | None:
    value = metadata.get(key)
    if value is None or value == "":
        return None
    # LangGraph takes any thread id and copies it into the metadata as it is: `uuid4()` is a common one.
    if isinstance(value, (str, int, UUID)) and not isinstance(value, bool):
        return str(value)
    raise InvalidRequestError(f"run metadata '{key}' must be a string, got {value!r}")


def _keys(metadata: Mapping[str, Any]) -> tuple[str, ...]:
    value = metadata.get("budget_keys")
    if value is None:
        return ()
    if isinstance(value, str) or not all(isinstance(key, str) for key in value):
        raise InvalidRequestError(f"run metadata 'budget_keys' must be a list of strings, got {value!r}")
    return tuple(value)


def _tier(metadata: Mapping[str, Any], key: str) -> int | None:
    value = metadata.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequestError(f"run metadata '{key}' must be a tier (an int >= 0), got {value!r}")
    return value


def _positive(metadata: Mapping[str, Any], key: str) -> int | None:
    value = metadata.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidRequestError(f"run metadata '{key}' must be a positive int, got {value!r}")
    return value
