"""Agent runs: the whole conversation one model had on one task, step by step.

An agent outcome table is an outcome table whose outcomes also carry the run (`Outcome.run`): every
message after the opening prompt, in order. Assistant turns may record their `usage` and `cost_usd`;
tool results name the call they answer (`tool_call_id`) and may say `is_error`. In JSONL:

```json
{"role": "assistant", "content": null,
 "tool_calls": [{"id": "call_1", "name": "find_user", "arguments": "{\"zip\": \"19122\"}"}],
 "usage": {"input_tokens": 1200, "output_tokens": 40}, "cost_usd": 0.0002}
{"role": "tool", "tool_call_id": "call_1", "name": "find_user", "content": "Error: not found",
 "is_error": true}
{"role": "user", "content": "a later user turn"}
```

`parse_run` reads that list and `run_json` writes it back; both keep every field. A tool result that
does not say `is_error` is read from its content, as the signals read a live tool result. A tool call
may also be written the OpenAI way, `{"id", "type": "function", "function": {"name", "arguments"}}`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from .._errors import GearshiftError
from .._messages import Message, Role, ToolCall, Usage
from ..signals._signals import is_error_result

__all__ = ["AgentRun", "RunMessage", "parse_run", "run_json"]

RUN_ROLES: tuple[Role, ...] = ("assistant", "tool", "user", "system")
_FIELDS: dict[str, tuple[str, ...]] = {
    "assistant": ("role", "content", "tool_calls", "usage", "cost_usd"),
    "tool": ("role", "content", "tool_call_id", "name", "is_error"),
    "user": ("role", "content"),
    "system": ("role", "content"),
}


class RunFieldError(GearshiftError, ValueError):
    """A malformed field of a run; the table loader adds the file, the line and the model."""


@dataclass(frozen=True, slots=True)
class RunMessage:
    """One message of an agent run; an assistant turn may carry its `usage` and `cost_usd`."""

    message: Message
    usage: Usage | None = None
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class AgentRun:
    """A model's whole run on one task after the opening prompt: its messages, in order.

    Every tool result answers a tool call made earlier in the run (checked when built).
    """

    messages: tuple[RunMessage, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "messages", tuple(self.messages))
        calls: set[str] = set()
        for index, item in enumerate(self.messages):
            if not isinstance(item, RunMessage):
                raise RunFieldError(f"messages[{index}] must be a RunMessage, got {type(item).__name__}")
            message = item.message
            if message.role == "assistant":
                calls.update(call.id for call in message.tool_calls)
            elif item.usage is not None or item.cost_usd is not None:
                raise RunFieldError(f"messages[{index}]: only assistant turns carry usage and cost_usd")
            if message.role == "tool" and message.tool_call_id not in calls:
                raise RunFieldError(
                    f"messages[{index}].tool_call_id {message.tool_call_id!r} answers no earlier tool call "
                    "of this run"
                )

    @property
    def chat(self) -> tuple[Message, ...]:
        """The run's messages as gearshift messages."""
        return tuple(item.message for item in self.messages)

    @property
    def steps(self) -> tuple[int, ...]:
        """The index in `messages` of every assistant turn (every model call), in order."""
        return tuple(i for i, item in enumerate(self.messages) if item.message.role == "assistant")


def _text(value: object, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RunFieldError(f"{where} must be a string or null, got {type(value).__name__}")
    return value


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RunFieldError(f"{where} must be a non-negative integer, got {value!r}")
    return value


def _usage(value: object, where: str) -> Usage | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RunFieldError(f"{where} must be an object with input_tokens and output_tokens")
    unknown = sorted(set(value) - {"input_tokens", "output_tokens"})
    if unknown:
        raise RunFieldError(
            f"{where} has unknown field '{unknown[0]}' (usage has input_tokens, output_tokens)"
        )
    for key in ("input_tokens", "output_tokens"):
        if key not in value:
            raise RunFieldError(f"{where}.{key} is missing")
    return Usage(
        _count(value["input_tokens"], f"{where}.input_tokens"),
        _count(value["output_tokens"], f"{where}.output_tokens"),
    )


def _cost(value: object, where: str) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise RunFieldError(f"{where} must be a non-negative number of dollars or null, got {value!r}")
    return float(value)


def _tool_calls(value: object, where: str) -> tuple[ToolCall, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RunFieldError(f"{where} must be a list of {{id, name, arguments}}, got {type(value).__name__}")
    calls = []
    for index, raw in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(raw, dict):
            raise RunFieldError(f"{at} must be an object with id, name and arguments")
        if isinstance(raw.get("function"), dict) and "name" not in raw:
            # The OpenAI spelling: {"id", "type": "function", "function": {"name", "arguments"}}.
            raw = (
                {"id": raw.get("id"), **raw["function"]} if raw.get("type", "function") == "function" else raw
            )
        unknown = sorted(set(raw) - {"id", "name", "arguments"})
        if unknown:
            raise RunFieldError(
                f"{at} has unknown field '{unknown[0]}' (a tool call has id, name, arguments)"
            )
        call_id, name, arguments = raw.get("id"), raw.get("name"), raw.get("arguments", "{}")
        if not isinstance(call_id, str) or not call_id:
            raise RunFieldError(f"{at}.id must be a non-empty string, got {call_id!r}")
        if not isinstance(name, str) or not name:
            raise RunFieldError(f"{at}.name must be a non-empty string, got {name!r}")
        if isinstance(arguments, dict):
            arguments = json.dumps(arguments, ensure_ascii=False)
        if not isinstance(arguments, str):
            raise RunFieldError(f"{at}.arguments must be a JSON string or an object")
        calls.append(ToolCall(call_id, name, arguments))
    return tuple(calls)


def _message(raw: object, where: str) -> RunMessage:
    if not isinstance(raw, dict):
        raise RunFieldError(f"{where} must be an object with a role")
    role = raw.get("role")
    if role not in RUN_ROLES:
        raise RunFieldError(f"{where}.role must be one of {', '.join(RUN_ROLES)}, got {role!r}")
    unknown = sorted(set(raw) - set(_FIELDS[role]))
    if unknown:
        raise RunFieldError(
            f"{where} has unknown field '{unknown[0]}' (a {role} message has {', '.join(_FIELDS[role])})"
        )
    content = _text(raw.get("content"), f"{where}.content")
    if role == "assistant":
        message = Message.assistant(content, _tool_calls(raw.get("tool_calls"), f"{where}.tool_calls"))
        return RunMessage(
            message,
            _usage(raw.get("usage"), f"{where}.usage"),
            _cost(raw.get("cost_usd"), f"{where}.cost_usd"),
        )
    if role == "tool":
        call_id = raw.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise RunFieldError(
                f"{where}.tool_call_id must be the id of an earlier tool call, got {call_id!r}"
            )
        name = raw.get("name")
        if name is not None and not isinstance(name, str):
            raise RunFieldError(f"{where}.name must be a string, got {name!r}")
        flag = raw.get("is_error")
        if flag is not None and not isinstance(flag, bool):
            raise RunFieldError(f"{where}.is_error must be true, false or absent, got {flag!r}")
        message = Message.tool(call_id, content, name=name)
        is_error = is_error_result(message) if flag is None else flag
        return RunMessage(Message.tool(call_id, content, name=name, is_error=is_error))
    return RunMessage(Message(role, content))


def parse_run(value: object, where: str = "messages") -> AgentRun:
    """The run a JSON list of messages describes; `RunFieldError` names the field that is wrong."""
    if not isinstance(value, list):
        raise RunFieldError(f"{where} must be a list of messages, got {type(value).__name__}")
    items = [_message(raw, f"{where}[{index}]") for index, raw in enumerate(value)]
    try:
        return AgentRun(tuple(items))
    except RunFieldError as exc:
        raise RunFieldError(f"{where}{str(exc).removeprefix('messages')}") from None


def _message_json(item: RunMessage) -> dict[str, Any]:
    message = item.message
    data: dict[str, Any] = {"role": message.role, "content": message.text or None}
    if message.role == "assistant":
        if message.tool_calls:
            data["tool_calls"] = [
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls
            ]
        if item.usage is not None:
            data["usage"] = {
                "input_tokens": item.usage.input_tokens,
                "output_tokens": item.usage.output_tokens,
            }
        if item.cost_usd is not None:
            data["cost_usd"] = item.cost_usd
    elif message.role == "tool":
        data["tool_call_id"] = message.tool_call_id
        if message.name is not None:
            data["name"] = message.name
        data["content"] = message.text
        data["is_error"] = message.is_error
    return data


def run_json(run: AgentRun) -> list[dict[str, Any]]:
    """The run as the JSON list `parse_run` reads back."""
    return [_message_json(item) for item in run.messages]
