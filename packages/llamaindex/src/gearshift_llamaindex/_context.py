"""Where a LlamaIndex agent stands in its run, read from the chat history it sends.

LlamaIndex agents keep no step counter the LLM can see, so the `StepContext` is read from the
messages: the run starts at the last message the user wrote; every assistant message after it was
one model call (`step_index`); tool calls and their results make the `tool_history`. Both agent
styles are read:

- function calling (`FunctionAgent`, `AgentWorkflow`): `ToolCallBlock`s on assistant messages, answered
  by `tool` messages that name the call in `additional_kwargs["tool_call_id"]`;
- ReAct (`ReActAgent`): assistant text with `Action:` and `Action Input:` lines, answered by a user
  message that starts with `Observation:`.

In an `AgentWorkflow` the agents share one memory: the agent an agent hands over to (through the
workflow's `handoff` tool) reads the whole run so far. Its own turn starts after the results of the
assistant message that called `handoff` (`StepContext.turn_start`, `turn_step_index`), as on a user's
turn: the failed tools of the agent before it are not its error streak, and its first step acts.

LlamaIndex keeps no error flag on a tool's result: an agent puts the text of the tool's exception
where its output would be. A result counts as failed when `additional_kwargs["is_error"]` is true,
when it is in one of LlamaIndex's own error formats, or when it reads like an error to gearshift's
signals (it starts with "Error", "failed", "timed out", a traceback...). Pure: no I/O.

The history is read from the LlamaIndex messages together with their gearshift conversion (one
converted message per message, before pairing): roles, texts and tool results are read from the
converted messages, so the blocks are walked once per call, not again here; only the tool-call blocks
of assistant messages are read from LlamaIndex's side, for their ids and argument dicts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole

from gearshift import (
    CallerHints,
    Message,
    StepContext,
    StepType,
    ToolRecord,
    hash_arguments,
    is_error_result,
)

from ._call_records import CallRecords, call_records
from ._convert import ROUTING_KEY

if TYPE_CHECKING:
    from ._history import KeptHistory

__all__ = ["CallRecords", "call_records", "failed", "loop_model", "step_context"]

# The conversion maps exactly these LlamaIndex roles to gearshift's "assistant" and "tool", and only
# `MessageRole.USER` to "user": the converted role says which kind a message is.
_ASSISTANT = (MessageRole.ASSISTANT, MessageRole.CHATBOT, MessageRole.MODEL)
_TOOL = (MessageRole.TOOL, MessageRole.FUNCTION)
# What a ReAct agent sends back as a user message; the run goes on through them.
_OBSERVATION = "Observation:"
_REACT_RETRIES = ("FAILURE: Your previous response was empty", "Error while parsing the output")
_REACT_ACTION = re.compile(
    r"^Action:[ \t]*(?P<name>[^\n]+?)[ \t]*\nAction Input:[ \t]*(?P<args>.*)", re.M | re.S
)
# Errors LlamaIndex itself writes into a tool's result (tools/calling.py, agent/workflow/base_agent.py).
_LLAMAINDEX_ERRORS = re.compile(r"^(?:Encountered error: |Tool \S+ not found\. Please select a tool)")
# The tool an `AgentWorkflow` gives its agents to hand the task to another (multi_agent_workflow.py).
_HANDOFF = "handoff"
_NO_HINTS = CallerHints()  # frozen: every call without hints shares it
_FAILED_TEXTS: dict[str, bool] = {}
"""Whether a tool result's text reads as a failure, per text. Bounded: texts of up to
`_MAX_KEPT_CHARACTERS` only, and past `_MAX_KEPT` of them it starts over (16 MB at the very most)."""
_MAX_KEPT = 1024
_MAX_KEPT_CHARACTERS = 4096


def step_context(
    messages: Sequence[ChatMessage],
    converted: Sequence[Message],
    *,
    has_tools: bool,
    agent_id: str | None = None,
    run_id: str | None = None,
    budget_keys: Sequence[str] = (),
    expected_steps: int | None = None,
    step_type: StepType | str | None = None,
    hints: CallerHints | None = None,
    kept: KeptHistory | None = None,
) -> StepContext:
    """The `StepContext` of a call that sends `messages` (see the module docstring for how it is read).

    `converted` is `convert_messages(messages)`: one gearshift message per message, in order; when
    `kept` converted them, the tool records it keeps of the messages it returned are reused. The step
    type is `observe` when the last message is a tool result, `reflect` when it is a ReAct agent's
    request to fix a malformed answer, `act` when the model may call tools (or follows the ReAct
    format), and `respond` otherwise; `step_type` overrides it.
    """
    if len(converted) != len(messages):
        raise ValueError(f"{len(converted)} converted messages for {len(messages)} LlamaIndex messages")
    start = _run_start(converted)
    run, converted_run = messages[start + 1 :], converted[start + 1 :]
    react = _is_react(messages, converted)
    history, steps, turn_start, turn_steps = (
        _react_history(run, converted_run) if react else _function_history(run, converted_run, kept)
    )
    handed_over = turn_steps == 0 and steps > 0
    return StepContext(
        agent_id=agent_id,
        run_id=run_id,
        step_type=(
            StepType.parse(step_type)
            if step_type is not None
            else StepType.ACT
            if handed_over and (has_tools or react)
            else _step_type(converted_run, has_tools or react)
        ),
        step_index=steps,
        tool_history=history,
        hints=hints or _NO_HINTS,
        budget_keys=tuple(budget_keys),
        expected_steps=expected_steps,
        metadata={"framework": "llama_index"},
        turn_start=turn_start,
        turn_step_index=turn_steps if turn_steps < steps else None,  # None: no agent handed over
    )


def loop_model(history: Sequence[ChatMessage]) -> str | None:
    """The registry id of the model whose tool calls the history ends with the results of, if gearshift
    routed that call (its message carries `additional_kwargs["gearshift"]["model_id"]`); else None."""
    if not history or history[-1].role not in _TOOL:
        return None
    for message in reversed(history):
        if message.role in _ASSISTANT:
            record = message.additional_kwargs.get(ROUTING_KEY)
            model_id = record.get("model_id") if isinstance(record, Mapping) else None
            return model_id if isinstance(model_id, str) else None
        if message.role not in _TOOL:
            return None
    return None


def _is_agent_feedback(message: Message) -> bool:
    """A user-role message a ReAct agent wrote (an observation or a retry request), not the user."""
    text = message.text
    return text.startswith(_OBSERVATION) or text.startswith(_REACT_RETRIES)


def _run_start(converted: Sequence[Message]) -> int:
    """Index of the last message the user wrote; -1 when there is none."""
    for index in range(len(converted) - 1, -1, -1):
        message = converted[index]
        if message.role == "user" and not _is_agent_feedback(message):
            return index
    return -1


def _is_react(messages: Sequence[ChatMessage], converted: Sequence[Message]) -> bool:
    # ReAct agents state their output format in the system prompt they open every call with (a system
    # message as LlamaIndex says it: a developer message converts to "system" too, and is not one).
    return bool(messages) and messages[0].role == MessageRole.SYSTEM and "Action Input:" in converted[0].text


def _step_type(run: Sequence[Message], acting: bool) -> StepType:
    if run:
        last = run[-1]
        if last.role == "tool":
            return StepType.OBSERVE
        if last.role == "user":
            text = last.text
            if text.startswith(_OBSERVATION):
                return StepType.OBSERVE
            if text.startswith(_REACT_RETRIES):
                return StepType.REFLECT
    return StepType.ACT if acting else StepType.RESPOND


def failed(text: str, extra: Mapping[str, Any] | None = None) -> bool:
    """Whether a tool's result reports a failure (see the module docstring)."""
    return _result_failed(Message.tool("", text), extra)


def _result_failed(result: Message, extra: Mapping[str, Any] | None) -> bool:
    """`failed(result.text, extra)`, read from a converted tool result without building another one.

    Only `extra["is_error"] is True` flags a failure: the conversion sets `is_error` from any true
    value, so a result it flagged otherwise is checked by its text alone. What the text says is kept
    per text (`_FAILED_TEXTS`): every step of a run reads every earlier result again.
    """
    if extra and (extra.get("is_error") is True or extra.get("status") == "error"):
        return True
    text = result.text
    found = _FAILED_TEXTS.get(text)
    if found is None:
        found = bool(_LLAMAINDEX_ERRORS.match(text)) or is_error_result(
            Message("tool", text) if result.is_error else result  # its text alone, not its flag
        )
        if len(text) <= _MAX_KEPT_CHARACTERS:
            if len(_FAILED_TEXTS) >= _MAX_KEPT:
                _FAILED_TEXTS.clear()
            _FAILED_TEXTS[text] = found
    return found


def _function_history(
    run: Sequence[ChatMessage], converted: Sequence[Message], kept: KeptHistory | None
) -> tuple[tuple[ToolRecord, ...], int, int, int]:
    """Tool records from `ToolCallBlock`s and the `tool` messages that answer them, in answer order, the
    number of assistant messages (the run's steps so far), and where the current agent's turn starts:
    the index of its first tool record and its steps so far (all of them when no agent handed over),
    read in one walk."""
    calls: dict[str, tuple[ToolRecord, ToolRecord]] = {}
    records: list[ToolRecord] = []
    steps = turn_start = turn_steps = 0
    handing_over = False
    for message, gearshift_message in zip(run, converted, strict=True):
        role = gearshift_message.role
        if role == "assistant":
            steps += 1
            turn_steps += 1
            handing_over = any(call.name == _HANDOFF for call in gearshift_message.tool_calls)
            # An assistant turn without converted calls has no `ToolCallBlock`: its blocks are not walked.
            if gearshift_message.tool_calls:
                kept_records = kept.call_records(gearshift_message) if kept is not None else None
                calls.update(kept_records if kept_records is not None else call_records(message))
        elif role == "tool":
            extra = message.additional_kwargs
            failed = _result_failed(gearshift_message, extra)
            # The conversion wrote the call's id as `str(extra.get("tool_call_id") or "")`.
            called = calls.get(gearshift_message.tool_call_id or "")
            if called is not None:
                records.append(called[1] if failed else called[0])
            else:
                records.append(ToolRecord(str(extra.get("name") or "unknown"), not failed, ""))
            if handing_over:  # the next agent's turn starts after every result of the handoff's message
                turn_start, turn_steps = len(records), 0
    return tuple(records), steps, turn_start, turn_steps


def _react_history(
    run: Sequence[ChatMessage], converted: Sequence[Message]
) -> tuple[tuple[ToolRecord, ...], int, int, int]:
    """Tool records from ReAct `Action:` lines and the `Observation:` messages that follow them, the
    number of assistant messages, and where the current agent's turn starts, as `_function_history`
    says them. The agent that handed over may have called tools either way: a workflow's agents share
    one memory."""
    pending: tuple[str, str] | None = None
    records: list[ToolRecord] = []
    steps = turn_start = turn_steps = 0
    handing_over = False
    for message, gearshift_message in zip(run, converted, strict=True):
        text = gearshift_message.text
        role = gearshift_message.role
        if role == "assistant":
            steps += 1
            turn_steps += 1
            match = _REACT_ACTION.search(text)
            pending = (match["name"], hash_arguments(match["args"].strip())) if match else None
            handing_over = (pending is not None and pending[0] == _HANDOFF) or any(
                call.name == _HANDOFF for call in gearshift_message.tool_calls
            )
            continue
        if pending is not None and text.startswith(_OBSERVATION):
            observation = text[len(_OBSERVATION) :].lstrip()
            records.append(
                ToolRecord(pending[0], not failed(observation, message.additional_kwargs), pending[1])
            )
            pending = None
        if handing_over and (role == "tool" or text.startswith(_OBSERVATION)):
            turn_start, turn_steps = len(records), 0
    return tuple(records), steps, turn_start, turn_steps
