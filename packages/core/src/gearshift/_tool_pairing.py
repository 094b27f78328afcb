"""Tool-call ids and tool-result pairing that every provider accepts, whichever one answered before.

An agent's history mixes turns answered by different providers once the router moves a step to
another model. Each provider checks the tool turns of the whole conversation, not only its own:
Anthropic wants ids of `[a-zA-Z0-9_-]` that are unique in the conversation and a result for every
call in the very next turn; OpenAI caps ids at 40 characters and refuses an assistant turn whose calls
are not all answered, or a tool message that answers no call. Frameworks also produce histories that
break those rules: ids from a third provider (`toolu_...`, Gemini's), the same `call_0` in every turn
(small local servers), calls without ids, a trimmed history that kept a result but not its call.

`pair_tool_results` rewrites a provider-neutral history so that all of it holds. It is pure and
deterministic: the same history always gets the same ids, so nothing needs to be remembered between
steps, and an id that is already valid is never changed. Every edge that takes a history from a
framework or a client (the LangChain and LlamaIndex adapters, the proxy) passes it through here, so
a step may move to another provider mid tool-loop.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import replace

from ._messages import Message, ToolCall

__all__ = ["MISSING_RESULT", "is_portable_id", "pair_tool_results", "portable_id"]

_PORTABLE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
MISSING_RESULT = "(no result was recorded for this tool call)"
"""The text of the tool result put in for a call the history never answered."""


def is_portable_id(value: str) -> bool:
    """Whether every provider accepts `value` as a tool-call id as it is."""
    return bool(_PORTABLE.match(value))


def portable_id(value: str, *, salt: str = "") -> str:
    """`value` if every provider accepts it, else a stable id derived from it (and `salt`)."""
    if not salt and is_portable_id(value):
        return value
    digest = hashlib.sha256(f"{value}\x00{salt}".encode()).hexdigest()[:24]
    return f"call_{digest}"


def pair_tool_results(messages: Sequence[Message]) -> tuple[Message, ...]:
    """The history with portable, unique tool-call ids and exactly one result right after each call.

    - An id no provider would take, or one already used by an earlier call, is replaced by a stable
      derived id, in the call and in its result alike.
    - A call without an id gets one; a result without a usable id answers the first call of its turn
      that is still unanswered.
    - A call nobody answered gets a result saying so; the model then knows the call came to nothing.
    - A tool result that answers no call of the turn before it becomes a user message quoting it, so
      what the tool said is kept without breaking the provider's pairing rules.
    """
    if _paired(messages):
        return tuple(messages)  # the common case, checked without rebuilding a message
    out: list[Message] = []
    seen: set[str] = set()
    index = 0
    turn = 0
    while index < len(messages):
        message = messages[index]
        index += 1
        if message.role == "tool":
            out.append(_orphan(message))
            continue
        if message.role != "assistant" or not message.tool_calls:
            out.append(message)
            continue
        turn += 1
        results: list[Message] = []
        while index < len(messages) and messages[index].role == "tool":
            results.append(messages[index])
            index += 1
        calls, paired, orphans = _pair_turn(message.tool_calls, results, seen, turn)
        out.append(replace(message, tool_calls=calls))
        out.extend(paired)
        out.extend(_orphan(result) for result in orphans)
    return tuple(out)


def _paired(messages: Sequence[Message]) -> bool:
    """Whether the history already holds: portable unique ids, and each call's named result right after
    its turn, in call order, with no other tool message anywhere."""
    seen: set[str] = set()
    index, size = 0, len(messages)
    while index < size:
        message = messages[index]
        index += 1
        if message.role == "tool":
            return False
        if message.role != "assistant" or not message.tool_calls:
            continue
        for call in message.tool_calls:
            if call.id in seen or not _PORTABLE.match(call.id):
                return False
            seen.add(call.id)
            result = messages[index] if index < size else None
            if result is None or result.role != "tool" or result.tool_call_id != call.id or not result.name:
                return False
            index += 1
    return True


def _pair_turn(
    calls: Sequence[ToolCall], results: Sequence[Message], seen: set[str], turn: int
) -> tuple[tuple[ToolCall, ...], list[Message], list[Message]]:
    """One assistant turn: its calls with new ids, one result per call in call order, the leftovers.

    Results are matched to calls by id first; the results left then answer the calls left, in order.
    """
    remaining = list(results)
    matched: dict[int, Message] = {}
    for position, call in enumerate(calls):
        if call.id:
            result = next((r for r in remaining if r.tool_call_id == call.id), None)
            if result is not None:
                matched[position] = result
                remaining.remove(result)
    for position in range(len(calls)):
        if position not in matched and remaining:
            matched[position] = remaining.pop(0)
    new_calls: list[ToolCall] = []
    paired: list[Message] = []
    for position, call in enumerate(calls):
        new_id = _unique_id(call.id or "", seen, f"{turn}:{position}")
        new_calls.append(replace(call, id=new_id))
        result = matched.get(position)
        if result is None:
            paired.append(Message.tool(new_id, MISSING_RESULT, name=call.name))
        else:
            paired.append(replace(result, tool_call_id=new_id, name=result.name or call.name))
    return tuple(new_calls), paired, remaining


def _unique_id(original: str, seen: set[str], salt: str) -> str:
    candidate = portable_id(original) if original else portable_id("", salt=salt)
    if candidate in seen:
        candidate = portable_id(original, salt=salt)
    seen.add(candidate)
    return candidate


def _orphan(result: Message) -> Message:
    tool = f" '{result.name}'" if result.name else ""
    status = " (it reported an error)" if result.is_error else ""
    return Message.user(f"[Result of an earlier call to tool{tool}{status}]\n{result.text}")
