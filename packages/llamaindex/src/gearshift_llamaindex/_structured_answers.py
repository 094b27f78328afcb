"""Structured output read from a model's answer: the object, or ever more complete partial objects.

A request for structured output carries the JSON schema, but not every OpenAI-compatible server
enforces it (older Ollama and llama.cpp builds, some hosted open models): the object may come back
inside a code fence or after a sentence. It is read out of such an answer as LlamaIndex's own output
parser reads it (from the first `{` to the last `}`), streamed or not.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole

if TYPE_CHECKING:
    from llama_index.core.base.llms.types import ChatResponseAsyncGen
    from llama_index.core.types import Model

__all__ = ["parsed_answer", "partial_objects"]

# A code fence closing (or still closing) after the object, as it streams in.
_CLOSING_FENCE = re.compile(r"\s*`{1,3}\s*$")
_DECODER = json.JSONDecoder()


def parsed_answer(response: ChatResponse, output_cls: type[Model]) -> Model:
    """The `output_cls` object a whole answer holds; an answer with none says which model gave it."""
    from llama_index.core.output_parsers.utils import extract_json_str

    text = response.message.content or ""
    try:
        return output_cls.model_validate_json(extract_json_str(text))
    except ValueError as exc:  # pydantic's ValidationError is a ValueError too
        model = (response.raw or {}).get("model_id", "?")
        raise ValueError(f"model {model!r} answered no valid {output_cls.__name__} object: {exc}") from exc


async def partial_objects(chunks: ChatResponseAsyncGen, output_cls: type[Model]) -> AsyncGenerator[Any, None]:
    """Ever more complete `output_cls` objects (LlamaIndex's flexible partials) from streamed JSON.

    Each chunk is read from its first `{` on, without a closing fence, so a fenced or prefaced answer
    streams its fields as a bare one does, and the whole object, once read, stays whole while a sentence
    after it streams in (LlamaIndex's partial parser falls back to an empty object on such text).
    """
    from llama_index.core.program.streaming_utils import process_streaming_content_incremental

    current = None
    try:
        async for chunk in chunks:
            current = process_streaming_content_incremental(_object_part(chunk), output_cls, current)
            yield current
    finally:
        await chunks.aclose()


def _object_part(chunk: ChatResponse) -> ChatResponse:
    """`chunk` with only the JSON object (so far) as its content: from its first `{`, to the end of the
    object once it is whole (a sentence may follow it), else without a closing fence."""
    text = chunk.message.content or ""
    start = text.find("{")
    if start < 0:
        part = ""
    else:
        try:
            end = _DECODER.raw_decode(text, start)[1]
        except ValueError:  # not whole yet
            part = _CLOSING_FENCE.sub("", text[start:])
        else:
            part = text[start:end]
    if part == text:
        return chunk
    return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=part))
