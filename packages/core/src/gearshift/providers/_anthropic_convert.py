"""gearshift requests in Anthropic Messages API form (pure functions; see `_anthropic` for the rules)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import InvalidRequestError
from .._messages import ChatRequest, ContentPart, ImagePart, Message, ToolSpec
from .._models import ModelSpec
from ._answer_schema import answer_schema, unwrapped_answer
from ._image_types import ANTHROPIC_IMAGE_TYPES, declared_media_type, sniffed_media_type

__all__ = ["TEMPERATURE_CAP", "AnswerTool", "request_params", "tool_call_id"]

TEMPERATURE_CAP = 1.0
"""The highest `temperature` the Messages API takes; OpenAI's goes to 2."""

_VALID_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
_INVALID_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_DATA_URL = re.compile(r"^data:(?P<media>[^;,]+);base64,(?P<data>.*)$", re.DOTALL)
_MAX_BREAKPOINTS = 4  # the most `cache_control` marks one request may carry
_ANSWER_NAME = "json_response"
_ANSWER_DESCRIPTION = (
    "Give your final answer by calling this tool. Its input is the answer itself and must match "
    "the schema exactly."
)


def tool_call_id(raw: str) -> str:
    """An id Anthropic accepts (`^[a-zA-Z0-9_-]+$`) for a tool call id from any provider.

    Valid ids pass unchanged. Others keep their legal characters and gain a hash of the original, so
    the rewrite is deterministic (a call and its result still match) and two different ids never
    collapse into one.
    """
    if _VALID_ID.match(raw):
        return raw
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]
    cleaned = _INVALID_ID_CHARS.sub("_", raw)[:48]
    return f"{cleaned}_{digest}" if cleaned else f"toolu_{digest}"


@dataclass(frozen=True, slots=True)
class AnswerTool:
    """The forced tool that carries a `response_schema` answer; `wrapped` for non-object schemas."""

    name: str
    schema: Mapping[str, Any]
    wrapped: bool
    strict: bool | None = None  # the request's `response_strict`, sent as the tool's `strict`

    @classmethod
    def for_schema(
        cls, schema: Mapping[str, Any], taken: Sequence[str], strict: bool | None = None
    ) -> AnswerTool:
        """The answer tool for `schema`, named so as not to clash with the request's own tools."""
        name, n = _ANSWER_NAME, 1
        while name in taken:
            n += 1
            name = f"{_ANSWER_NAME}_{n}"
        sent, wrapped = answer_schema(schema)
        return cls(name, sent, wrapped=wrapped, strict=strict)

    def param(self) -> dict[str, Any]:
        """The tool definition sent to the API."""
        param: dict[str, Any] = {
            "name": self.name,
            "description": _ANSWER_DESCRIPTION,
            "input_schema": dict(self.schema),
        }
        if self.strict is not None:
            param["strict"] = self.strict
        return param

    def text(self, tool_input: object) -> str:
        """The answer's JSON text from the tool's input."""
        if self.wrapped:
            return unwrapped_answer(tool_input)
        return json.dumps(tool_input, ensure_ascii=False)


def request_params(
    model: ModelSpec, request: ChatRequest, *, default_max_tokens: int
) -> tuple[dict[str, Any], AnswerTool | None]:
    """The keyword arguments of `messages.create`, and the answer tool if the request wants JSON.

    Raises `InvalidRequestError`, naming the message, when an assistant tool call's arguments are not a
    JSON object, an image is of a type (or a data: URL of a form) Anthropic does not take, or no
    message has any content.
    """
    system, messages = convert_messages(request.messages)
    if not messages:  # the API's own answer would be "messages: at least one message is required"
        raise InvalidRequestError(
            "every user and assistant message is empty or whitespace; Anthropic needs one with content"
        )
    max_tokens = request.max_tokens or default_max_tokens
    if model.max_output_tokens:
        max_tokens = min(max_tokens, model.max_output_tokens)
    params: dict[str, Any] = {"model": model.model, "max_tokens": max_tokens, "messages": messages}
    if system:
        params["system"] = system
    # The API refuses a stop sequence of whitespace alone ("each stop sequence must contain
    # non-whitespace", BerriAI/litellm#3286): left out, as Anthropic's own OpenAI layer leaves it.
    stops = [stop for stop in request.stop if stop.strip()]
    if stops:
        params["stop_sequences"] = stops
    # Dropped from the SDK's typed signature, these still reach the API through `extra_body`;
    # Anthropic takes no seed or penalties (`unsent_settings` names them in the decision's reasons).
    # Claude Sonnet and Haiku 4.5 and Opus 4.1 on answer `temperature` with `top_p` by a 400 ("cannot
    # both be specified"): `temperature` is kept, as Anthropic advises altering one, not both.
    top_p = request.top_p if request.temperature is None else None
    # The API takes temperature from 0 to 1 (a 400 above); OpenAI's go to 2. Capped at 1, as
    # Anthropic's own OpenAI compatibility layer caps them.
    temperature = None if request.temperature is None else min(request.temperature, TEMPERATURE_CAP)
    sampling = {
        name: value
        for name, value in (
            ("temperature", temperature),
            ("top_p", top_p),
            ("top_k", request.top_k),
        )
        if value is not None
    }
    if sampling:
        params["extra_body"] = sampling
    answer = None
    if request.response_schema is not None:
        answer = AnswerTool.for_schema(
            request.response_schema, [t.name for t in request.tools], request.response_strict
        )
    tools = [_tool(tool) for tool in request.tools]
    if answer is not None:
        tools.append(answer.param())
    if tools:
        params["tools"] = tools
        choice = _tool_choice(request, answer)
        if choice is not None:
            params["tool_choice"] = choice
    return params, answer


def _tool(tool: ToolSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name, "input_schema": dict(tool.parameters)}
    if tool.description:
        out["description"] = tool.description
    if tool.strict is not None:
        out["strict"] = tool.strict
    return out


def _tool_choice(request: ChatRequest, answer: AnswerTool | None) -> dict[str, Any] | None:
    """Map auto/none/required/<name> to Anthropic's auto/none/any/tool.

    With an answer tool the model must call some tool: one of the caller's (unless the caller said
    `none`), or the answer tool, which ends the turn with JSON instead of free text.
    """
    choice = request.tool_choice
    named = choice not in (None, "auto", "none", "required")
    result: dict[str, Any] | None
    if answer is not None:
        if named:
            result = {"type": "tool", "name": choice}
        elif not request.tools or choice == "none":
            result = {"type": "tool", "name": answer.name}
        else:
            result = {"type": "any"}
    elif choice is None:
        result = None
    elif named:
        result = {"type": "tool", "name": choice}
    else:
        result = {"type": {"auto": "auto", "none": "none", "required": "any"}[str(choice)]}
    if request.parallel_tool_calls is False and (result is None or result["type"] != "none"):
        result = {"type": "auto"} if result is None else result
        result["disable_parallel_tool_use"] = True
    return result


def convert_messages(messages: Sequence[Message]) -> tuple[str | list[dict[str, Any]], list[dict[str, Any]]]:
    """The system prompt and the alternating user/assistant messages Anthropic expects.

    The system prompt is one text, or, when a system message carries `cache_control`, a list of text
    blocks (one per system message) so the breakpoint can sit on its block. A message's
    `cache_control` goes on its last block, where Anthropic ends the cached prefix.
    """
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if message.role == "system":
            if _has_text(message.text):  # the API refuses a text block of whitespace alone
                system.append(_cached([{"type": "text", "text": message.text}], message)[0])
            continue
        role = "assistant" if message.role == "assistant" else "user"
        try:
            blocks = _cached(_blocks(message), message)
        except InvalidRequestError as exc:
            raise InvalidRequestError(f"messages[{index}] ({message.role}): {exc}") from None
        if not blocks:
            continue  # the API refuses empty content
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    for turn in out:
        # The API wants a user turn's tool results before anything else in it.
        turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    if out and out[-1]["role"] == "assistant":
        _trim_final_assistant(out)
    _keep_last_breakpoints([system, *(turn["content"] for turn in out)])
    if any("cache_control" in block for block in system):
        return system, out
    return "\n\n".join(block["text"] for block in system), out


def _keep_last_breakpoints(block_lists: list[list[dict[str, Any]]]) -> None:
    """Drop all but the last `_MAX_BREAKPOINTS` `cache_control` marks, in request order.

    The API refuses more ("A maximum of 4 blocks with cache_control may be provided. Found 5."); an
    application that marks every turn would fail from its fifth. The last marks cover the longest
    prefixes, and an earlier prefix is still found by the API's look-back from a later mark.
    """
    marked = [
        (blocks, i) for blocks in block_lists for i, block in enumerate(blocks) if "cache_control" in block
    ]
    for blocks, i in marked[:-_MAX_BREAKPOINTS]:
        blocks[i] = {key: value for key, value in blocks[i].items() if key != "cache_control"}


def _trim_final_assistant(turns: list[dict[str, Any]]) -> None:
    """Strip the whitespace that ends a final assistant turn (a prefill): the API refuses it with
    "final assistant content cannot end with trailing whitespace"."""
    content = turns[-1]["content"]
    last = content[-1]
    if last["type"] != "text":
        return
    text = last["text"].rstrip()
    if text:
        content[-1] = {**last, "text": text}
        return
    content.pop()
    if not content:
        turns.pop()


def _cached(blocks: list[dict[str, Any]], message: Message) -> list[dict[str, Any]]:
    """The message's blocks, its `cache_control` (if any) on the last one."""
    if message.cache_control is not None and blocks:
        blocks[-1] = {**blocks[-1], "cache_control": dict(message.cache_control)}
    return blocks


def _blocks(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        result: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": tool_call_id(message.tool_call_id or ""),
            "content": _content(message.content) if message.has_images else message.text,
        }
        if message.is_error:
            result["is_error"] = True
        return [result]
    blocks = _content(message.content)
    for call in message.tool_calls:
        blocks.append(
            {
                "type": "tool_use",
                "id": tool_call_id(call.id),
                "name": call.name,
                "input": call.parsed_arguments(),
            }
        )
    return blocks


def _content(content: str | tuple[ContentPart, ...]) -> list[dict[str, Any]]:
    # The API refuses a text block that is empty or whitespace alone ("text content blocks must
    # contain non-whitespace text"); models often answer "\n\n" before a tool call.
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if _has_text(content) else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, ImagePart):
            blocks.append({"type": "image", "source": _image_source(part)})
        elif _has_text(part.text):
            blocks.append({"type": "text", "text": part.text})
    return blocks


def _has_text(text: str) -> bool:
    """Whether `text` holds anything but whitespace (read up to its first such character, no copy)."""
    return bool(text) and not text.isspace()


def _image_source(part: ImagePart) -> dict[str, Any]:
    if part.url:
        match = _DATA_URL.match(part.url)
        if match:
            return _base64_source(match["media"], match["data"])
        if part.url.startswith("data:"):
            raise InvalidRequestError(
                f"image URL {part.url[:40]!r}...: Anthropic takes a data: URL only as "
                "'data:<media type>;base64,<data>'"
            )
        return {"type": "url", "url": part.url}
    return _base64_source(part.media_type, part.data or "")


def _base64_source(media_type: str, data: str) -> dict[str, Any]:
    """A base64 image source whose media type is the one the data shows (the API checks it), else
    the declared one; a type the API does not take is refused here, naming it."""
    media = sniffed_media_type(data) or declared_media_type(media_type)
    if media not in ANTHROPIC_IMAGE_TYPES:
        raise InvalidRequestError(
            f"image of media type {media_type!r}: Anthropic takes {', '.join(ANTHROPIC_IMAGE_TYPES)}; "
            "convert the image to one of them"
        )
    return {"type": "base64", "media_type": media, "data": data}
