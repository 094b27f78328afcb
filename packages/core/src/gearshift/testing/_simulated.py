"""The simulated model behind the local servers: deterministic, honest about being a simulation.

Both servers translate their wire format into a `Prompt` and render the `Reply` this module decides.
The rules, in order:

1. Tools offered and `tool_choice` is not `none`: a named `tool_choice` calls that tool; `required`
   calls the first tool not called yet in the conversation (else the first), since a forced model
   that keeps calling the same tool would never finish; otherwise, when the last message is the
   user's, the first tool is called. Arguments come from the tool's JSON schema. The simulation
   never volunteers to call gearshift's injected `escalate` tool: a test that wants a model to
   escalate scripts it (`Reply(tool_calls=[("escalate", {"reason": ...})])`).
2. JSON output asked for: with a schema that names properties, a JSON answer generated from that
   schema; in JSON mode (`json_object`, or a schema allowing any object), a JSON object as a model
   reading the prompt would write it: one string per key the last user message quotes when it asks
   for JSON keys or fields ("a JSON with 'setup' and 'punchline' keys"), else `{"answer": ...}`.
3. The last message is a tool result: a text answer summarizing the tool results.
4. Otherwise: a text answer that names the model and quotes the start of the last user message.

Token counts use gearshift's `estimate_tokens`, so usage and cost look like a real model's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..signals._tokens import estimate_tokens
from ._actions import Reply
from ._schema_values import example_from_schema

__all__ = [
    "Prompt",
    "Turn",
    "input_tokens",
    "limit_text",
    "output_tokens",
    "piece_json",
    "respond",
    "simulate",
    "words",
]

ESCALATE_TOOL_NAME = "escalate"  # the tool gearshift's router offers to models below the top tier
_MESSAGE_OVERHEAD = 4
_QUOTE_CHARS = 80
_RESULT_CHARS = 200
_ASKS_FOR_KEYS = re.compile(r"\bjson\b.*\b(?:keys?|fields?|properties)\b", re.IGNORECASE | re.DOTALL)
_QUOTED_NAME = re.compile(r"""['"`]([A-Za-z_][A-Za-z0-9_]*)['"`]""")


@dataclass(frozen=True, slots=True)
class Turn:
    """One message, reduced to what the simulation looks at."""

    role: str  # system, user, assistant or tool
    text: str = ""
    tool_calls: tuple[str, ...] = ()  # names of the tools an assistant turn called
    tool_name: str = ""  # for a tool result: the tool that produced it


@dataclass(frozen=True, slots=True)
class Prompt:
    """A chat request, reduced to what the simulation looks at."""

    model: str
    turns: tuple[Turn, ...]
    tools: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    tool_choice: str | None = None  # auto, none, required, or a tool name
    response_schema: Mapping[str, Any] | None = None
    json_object: bool = False  # JSON requested without a schema


def simulate(prompt: Prompt) -> Reply:
    """The simulated model's answer to `prompt` (see the module docstring for the rules)."""
    names = [name for name, _ in prompt.tools if name != ESCALATE_TOOL_NAME]
    last = prompt.turns[-1] if prompt.turns else Turn("user")
    choice = prompt.tool_choice
    if names and choice != "none":
        if choice in names:
            return _call(prompt, str(choice))
        if choice == "required":
            called = {name for turn in prompt.turns for name in turn.tool_calls}
            return _call(prompt, next((n for n in names if n not in called), names[0]))
        if last.role == "user":
            return _call(prompt, names[0])
    if prompt.response_schema is not None and not _any_object(prompt.response_schema):
        return Reply(text=json.dumps(example_from_schema(prompt.response_schema)))
    if prompt.json_object or prompt.response_schema is not None:
        return Reply(text=json.dumps(_json_object(prompt)))
    if last.role == "tool":
        return Reply(text=_summary(prompt))
    return Reply(text=_echo(prompt))


def _call(prompt: Prompt, name: str) -> Reply:
    schema = dict(prompt.tools)[name]
    arguments = example_from_schema(schema) if schema else {}
    return Reply(tool_calls=[(name, arguments if isinstance(arguments, dict) else {})])


def _any_object(schema: Mapping[str, Any]) -> bool:
    """Whether a response schema is JSON mode in schema form: an object with no properties named."""
    return (
        schema.get("type") == "object"
        and not schema.get("properties")
        and not schema.get("required")
        and schema.get("additionalProperties", True) is not False
    )


def _json_object(prompt: Prompt) -> dict[str, Any]:
    said = _last_user_text(prompt)
    keys = _QUOTED_NAME.findall(said) if _ASKS_FOR_KEYS.search(said) else []
    if not keys:
        return {"answer": _echo(prompt)}
    return {key: f"{key} from model '{prompt.model}' (gearshift.testing)" for key in dict.fromkeys(keys)}


def _last_user_text(prompt: Prompt) -> str:
    return next((t.text for t in reversed(prompt.turns) if t.role == "user" and t.text), "")


def _echo(prompt: Prompt) -> str:
    return (
        f"Simulated answer from model '{prompt.model}' (gearshift.testing). "
        f'Your last message began: "{_clip(_last_user_text(prompt), _QUOTE_CHARS)}"'
    )


def _summary(prompt: Prompt) -> str:
    trailing: list[Turn] = []
    for turn in reversed(prompt.turns):
        if turn.role != "tool":
            break
        trailing.insert(0, turn)
    results = "; ".join(
        f'{t.tool_name or "a tool"} returned "{_clip(t.text, _RESULT_CHARS)}"' for t in trailing
    )
    return (
        f"Simulated answer from model '{prompt.model}' (gearshift.testing), from the tool results: {results}"
    )


def _clip(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def input_tokens(prompt: Prompt) -> int:
    """Estimated input tokens: every message and every tool schema."""
    messages = sum(
        _MESSAGE_OVERHEAD + estimate_tokens(t.text) + sum(estimate_tokens(n) for n in t.tool_calls)
        for t in prompt.turns
    )
    tools = sum(estimate_tokens(name) + estimate_tokens(json.dumps(schema)) for name, schema in prompt.tools)
    return messages + tools


def output_tokens(reply: Reply) -> int:
    """Estimated output tokens of a reply; never 0, as with real models."""
    calls = sum(estimate_tokens(name) + estimate_tokens(json.dumps(args)) for name, args in reply.tool_calls)
    return max(1, estimate_tokens(reply.text) + calls)


def limit_text(text: str, max_tokens: int | None, stop: Sequence[str]) -> tuple[str, str | None, str | None]:
    """Apply stop sequences and the token limit: `(text, "stop" | "length" | None, matched stop)`."""
    reason: str | None = None
    matched: str | None = None
    hits = [(text.find(s), s) for s in stop if s and s in text]
    if hits:
        position, matched = min(hits)
        text, reason = text[:position], "stop"
    if max_tokens is not None and estimate_tokens(text) > max_tokens:
        kept = ""
        for piece in words(text):
            if estimate_tokens(kept + piece) > max_tokens:
                break
            kept += piece
        text, reason, matched = kept, "length", None
    return text, reason, matched


def words(text: str) -> list[str]:
    """Text cut into streaming pieces: each word with the whitespace before it."""
    pieces: list[str] = re.findall(r"\s*\S+", text)
    rest = text[sum(len(p) for p in pieces) :]
    if rest:  # trailing whitespace rides with the last word, so the pieces join back to `text`
        pieces[-1:] = [(pieces[-1] if pieces else "") + rest]
    return pieces


def piece_json(text: str, pieces: int = 3) -> list[str]:
    """JSON text cut into a few pieces, as models stream tool arguments."""
    size = max(1, -(-len(text) // pieces))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _capped(reply: Reply, max_tokens: int | None) -> tuple[Reply, str | None, str | None]:
    if max_tokens is None or output_tokens(reply) <= max_tokens:
        return reply, None, None
    text, _, _ = limit_text(reply.text, max_tokens, ())
    return Reply(text), "length", None


def respond(
    prompt: Prompt, scripted: Reply | None, *, max_tokens: int | None, stop: Sequence[str]
) -> tuple[Reply, str | None, str | None]:
    """The reply to send: a scripted one, else the simulated one, within the request's limits.

    A scripted reply is cut to `max_tokens` as the real APIs cut a model's output (its stop sequences
    are the test's own business); a tool call that no longer fits is dropped with the rest of the
    output. Returns `(reply, "stop" | "length" | None, matched stop sequence)`.
    """
    if scripted is not None:
        return _capped(scripted, max_tokens)
    reply = simulate(prompt)
    if not reply.text:
        return reply, None, None
    text, reason, matched = limit_text(reply.text, max_tokens, stop)
    return Reply(text, reply.tool_calls), reason, matched
