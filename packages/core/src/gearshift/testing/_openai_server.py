"""`LocalOpenAIServer`: OpenAI's Chat Completions API on 127.0.0.1, answered by the simulated model.

It speaks `POST /v1/chat/completions` (plain JSON, and SSE streaming ending with the usage chunk
when `stream_options.include_usage` is set, then `data: [DONE]`) and `GET /v1/models`, with errors in
OpenAI's JSON shape; a request the real API refuses (see `_openai_rules`) is refused alike. Point
the `openai` SDK, or gearshift's `OpenAIProvider`, at `base_url`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ._actions import CutStream, Reply
from ._http import Exchange, LocalServer
from ._openai_rules import request_refusal
from ._simulated import Prompt, Turn, input_tokens, output_tokens, piece_json, respond, words

__all__ = ["LocalOpenAIServer"]

_ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


class LocalOpenAIServer(LocalServer):
    """A local OpenAI-compatible server for tests and examples (the model is a deterministic simulation).

    `base_url` ends in `/v1`. With `api_key` set, requests must carry `Authorization: Bearer <key>`.
    Script failures, delays, cut streams and canned replies per model with `script()`; inspect what
    arrived with `requests`.
    """

    def __init__(self, models: Iterable[str] = ("small", "large"), api_key: str | None = None) -> None:
        super().__init__(models, api_key)

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>/v1`."""
        return f"{self.url}/v1"

    def _error_payload(self, status: int, message: str) -> Any:
        kind, code = _ERRORS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    def _handle(self, exchange: Exchange) -> None:
        if exchange.method == "GET" and exchange.path == "/v1/models":
            exchange.send_json(200, {"object": "list", "data": [_model_card(m) for m in self.models]})
        elif exchange.method == "GET" and exchange.path.startswith("/v1/models/"):
            model = exchange.path.removeprefix("/v1/models/")
            if model in self.models:
                exchange.send_json(200, _model_card(model))
            else:
                self._send_error(exchange, 404, f"The model `{model}` does not exist")
        elif exchange.method == "POST" and exchange.path == "/v1/chat/completions":
            self._chat(exchange)
        else:
            self._send_error(exchange, 404, f"Unknown request URL: {exchange.method} {exchange.path}")

    def _chat(self, exchange: Exchange) -> None:
        body = exchange.body
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            self._send_error(exchange, 400, "'messages' must be a non-empty array")
            return
        model = body.get("model")
        if not isinstance(model, str) or model not in self.models:
            self._send_error(
                exchange, 404, f"The model `{model}` does not exist or you do not have access to it."
            )
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
        stop = body.get("stop") or []
        reply, reason, _ = respond(
            prompt,
            action if isinstance(action, Reply) else None,
            max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
            stop=[stop] if isinstance(stop, str) else list(stop),
        )
        n = self._next_id()
        finish = "tool_calls" if reply.tool_calls else (reason or "stop")
        prompt_tokens, completion_tokens = input_tokens(prompt), output_tokens(reply)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        head = {"id": f"chatcmpl-{n:06d}", "created": int(time.time()), "model": model}
        calls = [
            (f"call_{n:06d}_{i}", name, json.dumps(args)) for i, (name, args) in enumerate(reply.tool_calls)
        ]
        if not stream:
            exchange.send_json(200, _completion(head, reply.text, calls, finish, usage))
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        cut = action.after_chunks if isinstance(action, CutStream) else None
        self._stream(exchange, head, reply.text, calls, finish, usage if include_usage else None, cut)

    def _stream(
        self,
        exchange: Exchange,
        head: Mapping[str, Any],
        text: str,
        calls: list[tuple[str, str, str]],
        finish: str,
        usage: Mapping[str, Any] | None,
        cut: int | None,
    ) -> None:
        base = {**head, "object": "chat.completion.chunk", "system_fingerprint": None}
        if usage is not None:
            base["usage"] = None  # OpenAI sends null usage on every chunk but the last

        def chunk(delta: Mapping[str, Any], finish_reason: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return f"data: {json.dumps({**base, 'choices': [choice]})}\n\n"

        deltas: list[dict[str, Any]] = [{"content": piece} for piece in words(text)]
        for index, (call_id, name, arguments) in enumerate(calls):
            function = {"name": name, "arguments": ""}
            deltas.append(
                {"tool_calls": [{"index": index, "id": call_id, "type": "function", "function": function}]}
            )
            deltas.extend(
                {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                for piece in piece_json(arguments)
            )
        exchange.start_stream({"x-request-id": f"req_{head['id']}"})
        exchange.send_event(chunk({"role": "assistant", "content": "", "refusal": None}))
        for sent, delta in enumerate(deltas):
            if cut is not None and sent >= cut:
                exchange.drop()
                return
            exchange.send_event(chunk(delta))
        if cut is not None:
            exchange.drop()  # fewer chunks than the cut point: still no clean end
            return
        exchange.send_event(chunk({}, finish))
        if usage is not None:
            exchange.send_event(f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n")
        exchange.send_event("data: [DONE]\n\n")
        exchange.end_stream()


def _model_card(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 0, "owned_by": "gearshift-testing"}


def _completion(
    head: Mapping[str, Any],
    text: str,
    calls: list[tuple[str, str, str]],
    finish: str,
    usage: Mapping[str, Any],
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
    if calls:
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            for call_id, name, arguments in calls
        ]
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
    return {
        **head,
        "object": "chat.completion",
        "choices": [choice],
        "usage": usage,
        "system_fingerprint": None,
    }


def _prompt(model: str, body: Mapping[str, Any]) -> Prompt:
    turns: list[Turn] = []
    names_by_id: dict[str, str] = {}
    for message in body["messages"]:
        if not isinstance(message, Mapping):
            continue
        role = str(message.get("role", "user"))
        text = _text(message.get("content"))
        if role == "assistant":
            calls = [c for c in message.get("tool_calls") or () if isinstance(c, Mapping)]
            for call in calls:
                names_by_id[str(call.get("id"))] = str((call.get("function") or {}).get("name", ""))
            turns.append(Turn("assistant", text, tuple(names_by_id[str(c.get("id"))] for c in calls)))
        elif role == "tool":
            turns.append(Turn("tool", text, tool_name=names_by_id.get(str(message.get("tool_call_id")), "")))
        else:
            turns.append(Turn("system" if role in ("system", "developer") else "user", text))
    tools = tuple(
        (str(t["function"]["name"]), t["function"].get("parameters") or {})
        for t in body.get("tools") or ()
        if isinstance(t, Mapping) and isinstance(t.get("function"), Mapping)
    )
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping):
        choice = (choice.get("function") or {}).get("name")
    response_format = body.get("response_format") or {}
    schema = (response_format.get("json_schema") or {}).get("schema")
    return Prompt(
        model=model,
        turns=tuple(turns),
        tools=tools,
        tool_choice=str(choice) if choice else None,
        response_schema=schema if response_format.get("type") == "json_schema" else None,
        json_object=response_format.get("type") == "json_object",
    )


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", "")) for p in content if isinstance(p, Mapping) and p.get("type") == "text"
        )
    return ""
