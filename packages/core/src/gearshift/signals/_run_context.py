"""The `StepContext` of a call, read from the conversation it sends: one reading for every caller.

An agent's history says where its run stands: every assistant turn was one model call (the step
index), every tool call and the result that answers it is one `ToolRecord` (failed when the result
is marked `is_error` or reads like an error to the signals), and the last message says what the
model is about to do (read a tool result: `observe`; act on a user turn with tools at hand: `act`).
The agent-run replay (`gearshift.evaluation`) reads logged prefixes through this function, so the
step-aware logic replayed offline is the one a live call gets. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from .._context import CallerHints, StepContext, StepType, ToolRecord, hash_arguments
from .._messages import Message
from ._signals import is_error_result

__all__ = ["context_from_messages"]


def context_from_messages(
    messages: Sequence[Message],
    *,
    has_tools: bool,
    agent_id: str | None = None,
    run_id: str | None = None,
    step_type: StepType | str | None = None,
    hints: CallerHints | None = None,
    budget_keys: Sequence[str] = (),
    expected_steps: int | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> StepContext:
    """The context of a model call that sends `messages` (the whole conversation so far).

    `step_index` counts the assistant turns, and `turn_step_index` those since the user's latest turn
    (what budget pacing counts); `tool_history` lists every tool call of the assistant
    turns in order, failed when the `tool` message answering it is an error (a call not answered yet
    counts as succeeded), and `turn_start` counts the calls made before the user's latest turn: a
    conversation of several user turns reads a tool error streak or a repeated call from there on. The
    step type is `step_type` when given, else `observe` after a tool result,
    `act` after a user turn when the call offers tools (`has_tools`), and `other` otherwise.
    """
    history, turn_start, steps, turn_steps = _tool_history(messages)
    if step_type is None:
        last = messages[-1].role if messages else None
        kind = (
            StepType.OBSERVE
            if last == "tool"
            else StepType.ACT
            if last == "user" and has_tools
            else StepType.OTHER
        )
    else:
        kind = StepType.parse(step_type)
    return StepContext(
        agent_id=agent_id,
        run_id=run_id,
        step_type=kind,
        step_index=steps,
        tool_history=history,
        turn_start=turn_start,
        turn_step_index=turn_steps,
        hints=hints or CallerHints(),
        metadata=dict(metadata or {}),
        budget_keys=tuple(budget_keys),
        expected_steps=expected_steps,
    )


def _tool_history(messages: Sequence[Message]) -> tuple[tuple[ToolRecord, ...], int, int, int]:
    """Every tool call of the assistant turns in order, how many of them came before the last user
    message (`StepContext.turn_start`), and the assistant turns in all and since that message
    (`step_index`, `turn_step_index`): read in one walk.

    A `tool` message answers the first unanswered call with its id in the latest assistant turn
    before it: ids are paired by position, not over the whole history, since a server or client that
    numbers its calls (`call_0`, `call_1`...) starts over on every step, and one failed `call_0` must
    not mark every earlier `call_0` as failed too.

    A user message right after tool results is no new turn: it is what a client sends beside them
    (the text blocks of an Anthropic user message that holds `tool_result`s, such as an agent's
    reminders, or a tool result's images, which go in a user message after the results).
    """
    records: list[ToolRecord] = []
    open_calls: dict[str | None, list[int]] = {}  # the latest assistant turn's unanswered calls, per id
    turn_start = steps = turn_steps = 0
    previous = None
    for message in messages:
        role = message.role
        if role == "assistant":
            steps += 1
            turn_steps += 1
            open_calls = {}
            for call in message.tool_calls:
                open_calls.setdefault(call.id, []).append(len(records))
                records.append(ToolRecord(call.name, True, hash_arguments(call.arguments)))
        elif role == "tool":
            waiting = open_calls.get(message.tool_call_id)
            if waiting:
                index = waiting.pop(0)
                if message.is_error or is_error_result(message):
                    records[index] = replace(records[index], ok=False)
        elif role == "user" and previous != "tool":
            turn_start, turn_steps = len(records), 0
        previous = role
    return tuple(records), turn_start, steps, turn_steps
