"""Provider-neutral chat messages, tools, tool calls, usage and stream events.

Every adapter (LangChain, LlamaIndex, MCP) and every provider converts to and from these types at its
edge, and only there. Internal values are frozen dataclasses; `ToolSpec` is a pydantic model because
users write tool schemas by hand and deserve a validation error that names the field.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._argument_texts import ArgumentTexts
from ._errors import InvalidRequestError
from ._surrogates import has_lone_surrogate, lone_surrogate
from ._text_tokens import estimate_tokens

__all__ = [
    "REASONING_EFFORTS",
    "SAMPLING_SETTINGS",
    "ChatRequest",
    "ChatResponse",
    "ContentPart",
    "ImagePart",
    "Message",
    "RequestLike",
    "Role",
    "StreamDone",
    "StreamEvent",
    "TextDelta",
    "TextPart",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
    "ToolSpec",
    "Usage",
    "as_request",
]

SAMPLING_SETTINGS = ("top_p", "seed", "frequency_penalty", "presence_penalty", "top_k")
"""The `ChatRequest` fields that tune sampling, which not every provider's API takes (a provider names
those it leaves out in `unsent_settings`): the adapters and the proxy read exactly these."""

REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
"""The values OpenAI's `reasoning_effort` takes (each reasoning model takes a subset of them: gpt-5
`minimal` to `high`, gpt-5.1 `none` to `high`, o-series `low` to `high`)."""

Role = Literal["system", "user", "assistant", "tool"]
"""Who speaks a message: `system`, `user`, `assistant`, or `tool` (a tool result)."""
ToolChoice = Literal["auto", "none", "required"] | str
"""`auto`, `none`, `required`, or the name of the one tool the model must call."""


@dataclass(frozen=True, slots=True)
class TextPart:
    """A piece of text inside a multi-part message."""

    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image inside a message: a URL (`https:` or `data:`) or base64 data with its media type."""

    url: str | None = None
    data: str | None = None
    media_type: str = "image/png"


ContentPart = TextPart | ImagePart

# The arguments of a tool call as `json.dumps(arguments)` writes them, and with `ensure_ascii=False`;
# an agent's earlier calls come back on every step, so flat arguments are written once.
_ARGUMENTS_JSON = ArgumentTexts(json.JSONEncoder().encode)
_ARGUMENTS_UNICODE_JSON = ArgumentTexts(json.JSONEncoder(ensure_ascii=False).encode)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A model's request to call one tool. `arguments` is the raw JSON text the model produced."""

    id: str
    name: str
    arguments: str = "{}"

    @classmethod
    def with_arguments(
        cls, id: str, name: str, arguments: Mapping[str, Any], *, ensure_ascii: bool = True
    ) -> ToolCall:
        """A call whose `arguments` are `json.dumps(arguments, ensure_ascii=ensure_ascii)`: the text a
        framework's parsed arguments are sent as (without building an encoder for every call)."""
        return cls(id, name, (_ARGUMENTS_JSON if ensure_ascii else _ARGUMENTS_UNICODE_JSON)(arguments))

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a dict; raises `InvalidRequestError` naming the tool if not a JSON object."""
        try:
            value = json.loads(self.arguments or "{}")
        except json.JSONDecodeError as exc:
            raise InvalidRequestError(
                f"tool call '{self.name}' ({self.id}): arguments are not valid JSON: {exc.msg} "
                f"at position {exc.pos}"
            ) from None
        if not isinstance(value, dict):
            raise InvalidRequestError(
                f"tool call '{self.name}' ({self.id}): arguments must be a JSON object, "
                f"got {type(value).__name__}"
            )
        return value


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message.

    `content` is plain text or a tuple of parts (text and images). An assistant message may carry
    `tool_calls`; a `tool` message answers one call and names it in `tool_call_id`. `is_error` marks a
    tool result that reports a failure (adapters set it from the framework's status field).
    `cache_control` (Anthropic's, e.g. `{"type": "ephemeral"}`) marks a prompt-cache breakpoint after
    this message: the prompt up to here is cached and read back at the cached price by later calls.
    Providers that cache on their own (OpenAI) ignore it.
    """

    role: Role
    content: str | tuple[ContentPart, ...] = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False
    cache_control: Mapping[str, Any] | None = field(default=None, hash=False)

    @property
    def text(self) -> str:
        """The message's text, parts joined with newlines; images are left out."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content if isinstance(part, TextPart))

    @property
    def has_images(self) -> bool:
        """Whether any part of the content is an image."""
        return not isinstance(self.content, str) and any(isinstance(part, ImagePart) for part in self.content)

    @classmethod
    def system(cls, text: str) -> Message:
        """A system message."""
        return cls("system", text)

    @classmethod
    def user(cls, content: str | Sequence[ContentPart]) -> Message:
        """A user message."""
        return cls("user", content if isinstance(content, str) else tuple(content))

    @classmethod
    def assistant(cls, text: str = "", tool_calls: Sequence[ToolCall] = ()) -> Message:
        """An assistant message, optionally with tool calls."""
        return cls("assistant", text, tuple(tool_calls))

    @classmethod
    def tool(
        cls, tool_call_id: str, content: str, *, name: str | None = None, is_error: bool = False
    ) -> Message:
        """The result of one tool call."""
        return cls("tool", content, tool_call_id=tool_call_id, name=name, is_error=is_error)


_SURROGATE_PROBLEM = (
    "holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is no text; "
    "decode the text it came from as UTF-8, or pair or drop the surrogate"
)
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class ToolSpec(BaseModel):
    """A tool the model may call: a name, what it does, and a JSON schema of its arguments."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Letters, digits, '_' or '-', at most 64 characters.")
    description: str = Field(default="", description="What the tool does, for the model.")
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON schema of the arguments; its top level must be an object schema.",
    )
    strict: bool | None = Field(default=None, description="Ask the provider for strict schema adherence.")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _TOOL_NAME.match(value):
            raise ValueError(
                f"tool name {value!r} must be 1-64 letters, digits, '_' or '-' (providers refuse others)"
            )
        return value

    @field_validator("description")
    @classmethod
    def _check_description(cls, value: str) -> str:
        if has_lone_surrogate(value):
            raise ValueError(_SURROGATE_PROBLEM)
        return value

    @field_validator("parameters")
    @classmethod
    def _check_parameters(cls, value: dict[str, Any]) -> dict[str, Any]:
        where = lone_surrogate(value)
        if where is not None:
            raise ValueError(f"{where}: {_SURROGATE_PROBLEM}")
        if value.get("type") != "object":
            raise ValueError(
                f'the top level of a tool\'s parameters must be a JSON schema with "type": "object", '
                f"got type {value.get('type')!r}"
            )
        properties = value.get("properties", {})
        if not isinstance(properties, Mapping):
            raise ValueError("'properties' must be an object mapping argument names to schemas")
        for prop, schema in properties.items():
            if not isinstance(schema, Mapping):
                raise ValueError(f"the schema of argument {prop!r} must be an object, got {schema!r}")
        required = value.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise ValueError("'required' must be a list of argument names")
        missing = [name for name in required if name not in properties]
        if missing:
            raise ValueError(f"'required' names arguments that are not in 'properties': {missing}")
        return value

    @functools.cached_property
    def token_estimate(self) -> int:
        """Estimated tokens this definition adds to a request (computed once: agents resend tools)."""
        return (
            estimate_tokens(self.name)
            + estimate_tokens(self.description)
            + estimate_tokens(json.dumps(self.parameters, separators=(",", ":")))
        )

    @classmethod
    def parse(cls, raw: Mapping[str, Any], *, where: str = "tool") -> ToolSpec:
        """Validate a tool definition from user data; errors name `where` and the bad field.

        Accepts both the plain form (`name`, `description`, `parameters`) and OpenAI's
        `{"type": "function", "function": {...}}` wrapper.
        """
        if not isinstance(raw, Mapping):
            raise InvalidRequestError(
                f"{where} must be an object with a name, a description and parameters, "
                f"got {type(raw).__name__}"
            )
        data = dict(raw)
        if data.get("type") == "function" and isinstance(data.get("function"), Mapping):
            data = dict(data["function"])
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'tool'}: "
                + err["msg"].removeprefix("Value error, ")
                for err in exc.errors()
            )
            name = data.get("name", "?")
            raise InvalidRequestError(f"{where} '{name}' is malformed: {problems}") from None


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one call consumed, as the provider reported them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    # Of `cache_write_tokens`, those written to Anthropic's 1-hour cache (`"ttl": "1h"`), billed at
    # 2x input rather than the 5-minute cache's 1.25x.
    cache_write_1h_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.cache_write_1h_tokens + other.cache_write_1h_tokens,
        )


_UNSET = (None, None, None, None, None)


def _number_in(name: str, value: Any, low: float, high: float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidRequestError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")


def _check_sampling(request: ChatRequest) -> None:
    """Refuse a sampling setting out of its range, naming it (OpenAI's ranges; `top_k` at least 1)."""
    _number_in("top_p", request.top_p, 0, 1)
    _number_in("frequency_penalty", request.frequency_penalty, -2, 2)
    _number_in("presence_penalty", request.presence_penalty, -2, 2)
    for name, value, least in (("seed", request.seed, None), ("top_k", request.top_k, 1)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidRequestError(f"{name} must be an integer, got {value!r}")
        if least is not None and value < least:
            raise InvalidRequestError(f"{name} must be at least {least}, got {value}")


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What the caller asks of a model, before gearshift has chosen one.

    `response_schema`, when set, asks for JSON output matching that JSON schema; `response_strict`
    asks providers that can to keep to it exactly (OpenAI's `strict`; None: the provider's default).

    The sampling settings after it (None: the provider's default) go to the models whose API takes
    them: `top_p` (0 to 1) to every provider; `seed` (an integer) and `frequency_penalty` and
    `presence_penalty` (-2 to 2) to OpenAI-compatible ones; `top_k` (a positive integer) to
    Anthropic. A model whose API does not take one (Anthropic has no seed or penalties, OpenAI no
    top_k) is sent the request without it, and the decision's reasons say which were left out.

    `reasoning_effort` (one of `REASONING_EFFORTS`) goes to OpenAI's reasoning models (gpt-5 and
    o-series: `ModelSpec.reasoning`), which in turn are never sent `temperature`, `top_p` or the
    penalties they refuse; the others are sent the request without it. The decision's reasons say
    what was left out.
    """

    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    stop: tuple[str, ...] = ()
    response_schema: Mapping[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_strict: bool | None = None
    top_p: float | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    top_k: int | None = None
    reasoning_effort: str | None = None

    def __post_init__(self) -> None:
        if not self.messages:
            raise InvalidRequestError("the request has no messages; send at least one user message")
        if all(m.role == "system" for m in self.messages):
            raise InvalidRequestError("the request has only system messages; add a user message")
        tokens = self.max_tokens
        if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or tokens <= 0):
            raise InvalidRequestError(f"max_tokens must be a positive integer, got {tokens!r}")
        if (self.top_p, self.seed, self.frequency_penalty, self.presence_penalty, self.top_k) != _UNSET:
            _check_sampling(self)
        if self.temperature is not None:
            _number_in("temperature", self.temperature, 0, 2)
        if self.reasoning_effort is not None and self.reasoning_effort not in REASONING_EFFORTS:
            allowed, got = ", ".join(REASONING_EFFORTS), self.reasoning_effort
            raise InvalidRequestError(f"reasoning_effort must be one of {allowed}, got {got!r}")
        names = [tool.name for tool in self.tools]
        if len(set(names)) != len(names):  # the repeats are looked for only when there are some
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise InvalidRequestError(f"tool names must be unique; repeated: {', '.join(dupes)}")
        choice = self.tool_choice
        if choice not in (None, "auto", "none", "required") and choice not in names:
            raise InvalidRequestError(
                f"tool_choice names tool {choice!r}, which is not among the request's tools "
                f"({', '.join(names) or 'none'})"
            )
        where = _lone_surrogate_field(self)
        if where is not None:
            raise InvalidRequestError(f"{where}: {_SURROGATE_PROBLEM}")


@dataclass(frozen=True, slots=True)
class ChatResponse:
    """One model's answer.

    `model_id` is the gearshift registry id, `provider_model` the name the provider reported.
    `metadata` carries provider extras (the replay provider puts the recorded `score` there).
    """

    message: Message
    model_id: str
    provider_model: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    cost_usd: float = 0.0
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The answer's text."""
        return self.message.text

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The tool calls the model made."""
        return self.message.tool_calls


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of streamed text."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call; `index` ties the pieces of one call together."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class StreamDone:
    """The last event of every stream: the assembled response, with usage and cost."""

    response: ChatResponse


StreamEvent = TextDelta | ToolCallDelta | StreamDone


def _lone_surrogate_field(request: ChatRequest) -> str | None:
    """Where the first text of `request` that holds a lone UTF-16 surrogate is (`messages[2].content`),
    or None: a string can hold one (json.loads lets `"\\ud800"` through), but no model can be sent it.

    An agent sends its whole history on every step: ASCII text, the common case, costs one flag read."""
    for i, message in enumerate(request.messages):
        content = message.content
        if isinstance(content, str):
            if not content.isascii() and has_lone_surrogate(content):
                return f"messages[{i}].content"
        else:
            for j, part in enumerate(content):
                text, name = (part.text, "text") if isinstance(part, TextPart) else (part.url or "", "url")
                if has_lone_surrogate(text):
                    return f"messages[{i}].content[{j}].{name}"
        for j, call in enumerate(message.tool_calls):
            if not (call.arguments.isascii() and call.id.isascii() and call.name.isascii()):
                for name, text in (("id", call.id), ("name", call.name), ("arguments", call.arguments)):
                    if has_lone_surrogate(text):
                        return f"messages[{i}].tool_calls[{j}].{name}"
        # (`isascii` first: a tool result names its call and tool on every step of an agent's run.)
        call_id, tool_name = message.tool_call_id, message.name
        if call_id is not None and not call_id.isascii() and has_lone_surrogate(call_id):
            return f"messages[{i}].tool_call_id"
        if tool_name is not None and not tool_name.isascii() and has_lone_surrogate(tool_name):
            return f"messages[{i}].name"
    for i, stop in enumerate(request.stop):
        if has_lone_surrogate(stop):
            return f"stop[{i}]"
    if request.response_schema is not None:  # (a tool's texts were checked when it was made)
        return lone_surrogate(dict(request.response_schema), "response_schema")
    return None


RequestLike = ChatRequest | str | Sequence[Message]
"""What the router accepts as a request: a `ChatRequest`, a prompt string, or a list of messages."""


def as_request(request: RequestLike) -> ChatRequest:
    """A `ChatRequest` from a request, a prompt string, or a list of messages."""
    if isinstance(request, ChatRequest):
        return request
    if isinstance(request, str):
        return ChatRequest(messages=(Message.user(request),))
    if isinstance(request, (list, tuple)) and all(isinstance(m, Message) for m in request):
        return ChatRequest(messages=tuple(request))
    raise InvalidRequestError(
        f"cannot route a {type(request).__name__}: pass a ChatRequest, a prompt string or a list of Message"
    )
