"""The lines of a `gearshift batch` input file, each read into one `BatchItem`. Pure: no calls.

A line is one of three shapes:

- gearshift's own: `{"id": "q1", "prompt": "text, or a list of {role, content} messages",
  "max_tokens": 256, "agent_id": "bot"}` (all but `prompt` optional);
- a Chat Completions body with an id: `{"id": "q1", "messages": [...], "tools": [...], ...}`, read
  field by field as `gearshift serve` reads a request (`model` optional, `auto` when absent);
- a line of OpenAI's Batch API: `{"custom_id": "q1", "method": "POST", "url": "/v1/chat/completions",
  "body": {...}}`, whose body is read the same way.

A body's `model` is read as the proxy reads it: `auto` routes, `tier-N` caps the tier, a model id of
the config forces that model; its `metadata.agent_id` (or `user`) names the agent. An id defaults to
the line number. Every error names the file, the line and the field.

Each line also gets a digest of what it asks (its JSON, key order and spacing aside): OUT records it
with every answer, so a resumed batch can tell an answer to the same request from one to a request
whose line has changed since under the same id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .._context import StepContext
from .._errors import UnknownModelError
from .._messages import ChatRequest, Message
from .._models import ModelRegistry
from ..datasets._outcome_files import _FieldError, _parse_prompt, keyed_lines
from ..datasets._outcomes import OutcomeTableError
from ..routing._batch import BatchItem
from ..serve._openai_wire import parse_chat
from ..serve._step import AUTO, step_context

__all__ = ["BatchLine", "read_batch"]

_FIELDS = ("id", "prompt", "max_tokens", "agent_id")
_BATCH_API_FIELDS = ("custom_id", "method", "url", "body")
_CHAT_URL = "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class BatchLine:
    """One request of a batch file: its item, its line number and the digest of what it asks."""

    item: BatchItem
    number: int
    digest: str


def read_batch(path: Path, registry: ModelRegistry) -> Iterator[BatchLine]:
    """The requests of a batch file; raises `OutcomeTableError` naming the file, line and field."""
    try:
        path.open("rb").close()
    except OSError as exc:
        raise OutcomeTableError(f"cannot read the file: {exc.strerror}", path=path) from None

    def line(data: object, number: int) -> BatchLine:
        return BatchLine(_parse_item(data, number, registry), number, _digest(data))

    for _, batch_line in keyed_lines(path, line, lambda read: read.item.id):
        yield batch_line


def _digest(data: object) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _parse_item(data: object, number: int, registry: ModelRegistry) -> BatchItem:
    if not isinstance(data, dict):
        raise _FieldError("each line must be a JSON object with a prompt")
    if "body" in data:
        return _batch_api_line(data, number, registry)
    if "messages" in data:
        body = {name: value for name, value in data.items() if name not in ("id", "agent_id")}
        return _chat_item(_id(data, "id", number), {"model": AUTO, **body}, data.get("agent_id"), registry)
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise _FieldError(
            f"unknown field '{unknown[0]}' (a line has {', '.join(_FIELDS)}; or 'messages' and the "
            "other fields of a Chat Completions body; or custom_id and body, as OpenAI's Batch API has)"
        )
    if "prompt" not in data:
        raise _FieldError("missing field 'prompt' (or 'messages', or 'body')")
    prompt = _parse_prompt(data["prompt"])
    messages = (Message.user(prompt),) if isinstance(prompt, str) else prompt
    max_tokens = data.get("max_tokens")
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
    ):
        raise _FieldError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    request = ChatRequest(messages, max_tokens=max_tokens)
    return BatchItem(_id(data, "id", number), request, StepContext(agent_id=_agent(data.get("agent_id"))))


def _batch_api_line(data: dict[str, Any], number: int, registry: ModelRegistry) -> BatchItem:
    """A line of OpenAI's Batch API input: its body must be a Chat Completions request."""
    unknown = sorted(set(data) - set(_BATCH_API_FIELDS))
    if unknown:
        fields = ", ".join(_BATCH_API_FIELDS)
        raise _FieldError(f"unknown field '{unknown[0]}' (a Batch API line has {fields})")
    method, url = data.get("method", "POST"), data.get("url", _CHAT_URL)
    if method != "POST" or url != _CHAT_URL:
        raise _FieldError(
            f"only POST {_CHAT_URL} lines can be routed, got {method} {url}"
            if isinstance(method, str) and isinstance(url, str)
            else "method and url must be strings"
        )
    body = data["body"]
    if not isinstance(body, dict):
        raise _FieldError("body must be a JSON object (a Chat Completions request)")
    return _chat_item(_id(data, "custom_id", number), body, None, registry)


def _chat_item(item_id: str, body: dict[str, Any], agent: object, registry: ModelRegistry) -> BatchItem:
    chat = parse_chat(body)
    try:
        context = step_context(
            chat.request, model=chat.model, registry=registry, headers={}, caller=chat.caller
        )
    except UnknownModelError:  # a file written for OpenAI names OpenAI's models: say how to route it
        raise _FieldError(
            f"model {chat.model!r} is not a model of the config: give {AUTO!r} to route the request, "
            f"'tier-N' to hold it to tier N or below, or one of {', '.join(registry.ids)}"
        ) from None
    if agent is not None:  # the line's own agent_id, over one its metadata names
        context = replace(context, agent_id=_agent(agent))
    return BatchItem(item_id, chat.request, context)


def _id(data: dict[str, Any], name: str, number: int) -> str:
    raw_id = data.get(name, str(number))
    if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool):
        raise _FieldError(f"{name} must be a string or a number, got {raw_id!r}")
    return str(raw_id)


def _agent(agent: object) -> str | None:
    if agent is not None and not isinstance(agent, str):
        raise _FieldError(f"agent_id must be a string, got {agent!r}")
    return agent
