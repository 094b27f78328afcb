"""`LocalAnthropicServer`: Anthropic's Messages API on 127.0.0.1, answered by the simulated model.

It speaks `POST /v1/messages`, plain and streamed with the real event sequence (message_start, ping,
content_block_start / content_block_delta with text_delta and input_json_delta / content_block_stop,
message_delta with stop_reason and usage, message_stop), and `GET /v1/models`, with errors in
Anthropic's JSON shape; a request the real API refuses (see `_anthropic_rules`) is refused alike.
Prompt caching is simulated: a prefix ending at a `cache_control` breakpoint is written on its first
request and read on later ones, and usage reports both (the writes to the 1-hour cache, `"ttl": "1h"`,
apart in `cache_creation`). A request with tools is billed the tool-use system prompt the real API
adds (counted in `input_tokens`, see `providers._anthropic_tool_prompt`). Point the `anthropic` SDK,
or gearshift's `AnthropicProvider`, at `base_url`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..providers._anthropic_tool_prompt import system_prompt_tokens
from ..signals._tokens import estimate_tokens
from ._actions import CutStream, Reply
from ._anthropic_rules import request_refusal
from ._http import Exchange, LocalServer
from ._simulated import Prompt, Turn, input_tokens, output_tokens, piece_json, respond, words

__all__ = ["LocalAnthropicServer"]

_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_STOP_REASONS = {"stop": "stop_sequence", "length": "max_tokens"}
_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


class LocalAnthropicServer(LocalServer):
    """A local Anthropic-compatible server for tests and examples (the model is a deterministic simulation).

    With `api_key` set, requests must carry it as `x-api-key` or `Authorization: Bearer` (anthropic
    2.x sends the latter). Script failures, delays, cut streams and canned replies per model with
    `script()`; inspect what arrived with `requests`.
    """

    def __init__(
        self, models: Iterable[str] = ("claude-small", "claude-large"), api_key: str | None = None
    ) -> None:
        super().__init__(models, api_key)
        self._cached_prefixes: set[tuple[str, str]] = set()

    def _prompt_cache(self, model: str, body: Mapping[str, Any], total: int) -> tuple[int, int, int]:
        """(tokens read from the cache, tokens written to it, of those the ones written to the 1-hour
        cache) for a request, as Anthropic bills them.

        The prompt up to its last `cache_control` breakpoint (tools, then system, then messages) is
        the cached prefix, per model: the first request with a given prefix writes it, later ones
        read it. The part up to the last breakpoint with `"ttl": "1h"` goes to the 1-hour cache.
        There is no minimum length and no expiry: the cache lives as long as the server.
        """
        prefix: list[Any] = []
        cut: list[Any] | None = None
        hour: list[Any] = []
        parts = [*(body.get("tools") or ()), *_system_blocks(body.get("system"))]
        parts += [block for message in body["messages"] for block in _message_blocks(message)]
        for part in parts:
            prefix.append(part)
            mark = part.get("cache_control") if isinstance(part, Mapping) else None
            if mark:
                cut = list(prefix)
                if isinstance(mark, Mapping) and mark.get("ttl") == "1h":
                    hour = list(prefix)
        if cut is None:
            return 0, 0, 0
        text = json.dumps(cut, sort_keys=True)
        tokens = min(total, _tokens_in(cut))
        key = (model, hashlib.sha256(text.encode()).hexdigest())
        with self._lock:
            if key in self._cached_prefixes:
                return tokens, 0, 0
            self._cached_prefixes.add(key)
        return 0, tokens, min(tokens, _tokens_in(hour))

    def _error_payload(self, status: int, message: str) -> Any:
        kind = _ERRORS.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_local"}

    def _handle(self, exchange: Exchange) -> None:
        if exchange.method == "GET" and exchange.path == "/v1/models":
            cards = [_model_card(m) for m in self.models]
            first, last = (cards[0]["id"], cards[-1]["id"]) if cards else (None, None)
            exchange.send_json(200, {"data": cards, "has_more": False, "first_id": first, "last_id": last})
        elif exchange.method == "POST" and exchange.path == "/v1/messages":
            self._messages(exchange)
        else:
            self._send_error(exchange, 404, f"Not found: {exchange.method} {exchange.path}")

    def _messages(self, exchange: Exchange) -> None:
        body = exchange.body
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            self._send_error(exchange, 400, "messages: at least one message is required")
            return
        if not isinstance(body.get("max_tokens"), int):
            self._send_error(exchange, 400, "max_tokens: Field required")
            return
        model = body.get("model")
        if not isinstance(model, str) or model not in self.models:
            self._send_error(exchange, 404, f"model: {model}")
            return
        refusal = request_refusal(body)
        if refusal is not None:
            self._send_error(exchange, 400, refusal)
            return
        stream = bool(body.get("stream"))
        answered, action = self._scripted(exchange, model, stream=stream)
        if answered:
            return
        prompt = _prompt(model, body)
        reply, reason, matched = respond(
            prompt,
            action if isinstance(action, Reply) else None,
            max_tokens=body["max_tokens"],
            stop=list(body.get("stop_sequences") or ()),
        )
        n = self._next_id()
        blocks: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
        blocks.extend(
            {"type": "tool_use", "id": f"toolu_{n:06d}_{i}", "name": name, "input": args}
            for i, (name, args) in enumerate(reply.tool_calls)
        )
        stop_reason = "tool_use" if reply.tool_calls else _STOP_REASONS.get(reason or "", "end_turn")
        total = input_tokens(prompt) + _tool_prompt_tokens(model, body)
        read, write, write_1h = self._prompt_cache(model, body, total)
        usage = {
            "input_tokens": total - read - write,
            "output_tokens": output_tokens(reply),
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": write - write_1h,
                "ephemeral_1h_input_tokens": write_1h,
            },
        }
        message = {
            "id": f"msg_{n:06d}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": matched,
            "usage": usage,
        }
        if stream:
            self._stream(exchange, message, action.after_chunks if isinstance(action, CutStream) else None)
        else:
            exchange.send_json(200, message, {"request-id": f"req_{n:06d}"})

    def _stream(self, exchange: Exchange, message: Mapping[str, Any], cut: int | None) -> None:
        def event(payload: Mapping[str, Any]) -> str:
            return f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n"

        usage = message["usage"]
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1},
        }
        exchange.start_stream({"request-id": f"req_{message['id']}"})
        exchange.send_event(event({"type": "message_start", "message": start}))
        exchange.send_event(event({"type": "ping"}))
        sent = 0
        for index, block in enumerate(message["content"]):
            if block["type"] == "text":
                opening: dict[str, Any] = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": piece} for piece in words(block["text"])]
            else:
                opening = {**block, "input": {}}
                pieces = piece_json(json.dumps(block["input"]))
                deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in pieces]
            exchange.send_event(
                event({"type": "content_block_start", "index": index, "content_block": opening})
            )
            for delta in deltas:
                if cut is not None and sent >= cut:
                    exchange.drop()
                    return
                exchange.send_event(event({"type": "content_block_delta", "index": index, "delta": delta}))
                sent += 1
            exchange.send_event(event({"type": "content_block_stop", "index": index}))
        if cut is not None:
            exchange.drop()  # fewer chunks than the cut point: still no clean end
            return
        delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
        exchange.send_event(event({"type": "message_delta", "delta": delta, "usage": usage}))
        exchange.send_event(event({"type": "message_stop"}))
        exchange.end_stream()


def _tokens_in(parts: list[Any]) -> int:
    return sum(estimate_tokens(_block_text(part)) for part in parts)


def _system_blocks(system: Any) -> list[Any]:
    if isinstance(system, str):
        return [{"type": "text", "text": system}] if system else []
    return list(system) if isinstance(system, list) else []


def _message_blocks(message: Any) -> list[Any]:
    content = message.get("content") if isinstance(message, Mapping) else None
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content) if isinstance(content, list) else []


def _block_text(block: Any) -> str:
    """What a prompt block weighs in tokens: its text, or its JSON for tools and tool calls."""
    if isinstance(block, Mapping) and isinstance(block.get("text"), str):
        return str(block["text"])
    if isinstance(block, Mapping) and isinstance(block.get("content"), str):
        return str(block["content"])
    return json.dumps(block)


def _model_card(model: str) -> dict[str, Any]:
    return {"type": "model", "id": model, "display_name": model, "created_at": "2024-01-01T00:00:00Z"}


def _prompt(model: str, body: Mapping[str, Any]) -> Prompt:
    turns: list[Turn] = []
    system = body.get("system")
    if system:
        turns.append(Turn("system", _text(system)))
    names_by_id: dict[str, str] = {}
    for message in body["messages"]:
        if not isinstance(message, Mapping):
            continue
        content = message.get("content")
        blocks = [b for b in content if isinstance(b, Mapping)] if isinstance(content, list) else []
        if message.get("role") == "assistant":
            uses = [b for b in blocks if b.get("type") == "tool_use"]
            for use in uses:
                names_by_id[str(use.get("id"))] = str(use.get("name", ""))
            turns.append(Turn("assistant", _text(content), tuple(str(u.get("name", "")) for u in uses)))
            continue
        for result in (b for b in blocks if b.get("type") == "tool_result"):
            name = names_by_id.get(str(result.get("tool_use_id")), "")
            turns.append(Turn("tool", _text(result.get("content")), tool_name=name))
        text = _text(content)
        if text or not any(b.get("type") == "tool_result" for b in blocks):
            turns.append(Turn("user", text))
    tools = tuple(
        (str(t["name"]), t.get("input_schema") or {})
        for t in body.get("tools") or ()
        if isinstance(t, Mapping) and "name" in t
    )
    choice = body.get("tool_choice") or {}
    kind = choice.get("type") if isinstance(choice, Mapping) else None
    tool_choice = str(choice.get("name")) if kind == "tool" else _CHOICES.get(str(kind))
    output_format = (body.get("output_config") or {}).get("format") or {}
    schema = output_format.get("schema") if output_format.get("type") == "json_schema" else None
    return Prompt(
        model=model, turns=tuple(turns), tools=tools, tool_choice=tool_choice, response_schema=schema
    )


def _tool_prompt_tokens(model: str, body: Mapping[str, Any]) -> int:
    """The tool-use system prompt the real API adds to a request with tools, at the docs' count."""
    if not body.get("tools"):
        return 0
    choice = body.get("tool_choice")
    forced = isinstance(choice, Mapping) and choice.get("type") in ("any", "tool")
    return system_prompt_tokens(model, forced=forced)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(b.get("text", "")) for b in content if isinstance(b, Mapping) and b.get("type") == "text"
        )
    return ""
