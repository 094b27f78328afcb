"""Token estimates without a tokenizer download.

tiktoken needs to fetch its encodings, which gearshift must not do at run time. For routing and budget
reservations an estimate is enough: English prose runs about 4 characters per token with BPE
tokenizers, code and numbers denser. We count word pieces and punctuation, which tracks cl100k within
roughly 15% on prose and code, and never returns 0 for non-empty text.

ASCII text is counted with byte translations that run in C. Texts over 4,096 characters are sampled:
the pieces in four evenly spaced windows give a pieces-per-character rate for the whole text, so
counting stays O(1) per message at an error of a few percent that no routing decision notices.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from ._messages import ChatRequest, ImagePart, Message, ToolSpec

__all__ = [
    "estimate_request_tokens",
    "estimate_tokens",
    "message_tokens",
    "tool_spec_tokens",
    "tool_tokens",
]

_PIECES = re.compile(r"[A-Za-z]{1,8}|\d{1,3}|[^\sA-Za-z\d]")
_MESSAGE_OVERHEAD = 4  # role and separators, as chat templates add them
_IMAGE_TOKENS = 765  # OpenAI's estimate for a 1024x1024 image at high detail


_SAMPLE_WINDOWS = 4
_WINDOW_CHARS = 1024
_EXACT_UP_TO = _SAMPLE_WINDOWS * _WINDOW_CHARS

# ASCII fast path: the same count as `_PIECES`, from bytes.translate/count/split, which run in C.
_LETTERS = bytes(range(65, 91)) + bytes(range(97, 123))
_NOT_SYMBOLS = _LETTERS + b"0123456789" + b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"  # \s in ASCII
_LETTER_RUNS = bytes(97 if b in _LETTERS else 32 for b in range(256))
_DIGIT_RUNS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_SHORT = 48  # below this, one regex pass is cheaper than three translations


def _run_pieces(runs: bytes, mark: bytes, size: int) -> int:
    """Pieces of at most `size` in the runs of `mark` (runs are separated by spaces)."""
    count = runs.count(b" " + mark)
    if mark * (size + 1) in runs:  # rare long runs split into (n - 1) // size more pieces
        count += sum((n - 1) // size for n in map(len, runs.split()) if n > size)
    return count


def _count(text: str) -> int:
    if len(text) >= _SHORT and text.isascii():
        data = text.encode("ascii")
        symbols = len(data.translate(None, _NOT_SYMBOLS))
        letters = _run_pieces(b" " + data.translate(_LETTER_RUNS), b"a", 8)
        digits = _run_pieces(b" " + data.translate(_DIGIT_RUNS), b"0", 3)
        return symbols + letters + digits
    return len(_PIECES.findall(text))


def estimate_tokens(text: str) -> int:
    """Estimated BPE tokens in `text`: words split every 8 letters, digits in threes, each symbol one."""
    if not text:
        return 0
    size = len(text)
    if size <= _EXACT_UP_TO:
        return max(1, _count(text))
    stride = (size - _WINDOW_CHARS) // (_SAMPLE_WINDOWS - 1)
    sampled = sum(
        _count(text[start : start + _WINDOW_CHARS]) for start in range(0, stride * _SAMPLE_WINDOWS, stride)
    )
    return max(1, round(sampled * size / (_WINDOW_CHARS * _SAMPLE_WINDOWS)))


def message_tokens(message: Message) -> int:
    """Estimated tokens of one message: its text, images and tool calls, plus the chat template's overhead."""
    tokens = _MESSAGE_OVERHEAD + estimate_tokens(message.text)
    if not isinstance(message.content, str):
        tokens += _IMAGE_TOKENS * sum(isinstance(part, ImagePart) for part in message.content)
    for call in message.tool_calls:
        tokens += estimate_tokens(call.name) + estimate_tokens(call.arguments) + _MESSAGE_OVERHEAD
    return tokens


def tool_tokens(tools: Iterable[ToolSpec]) -> int:
    """Estimated tokens the tool definitions add to a request."""
    return sum(tool.token_estimate for tool in tools)


def tool_spec_tokens(tool: ToolSpec) -> int:
    """Estimated tokens of one tool definition (name, description and JSON schema)."""
    return (
        estimate_tokens(tool.name)
        + estimate_tokens(tool.description)
        + estimate_tokens(json.dumps(tool.parameters, separators=(",", ":")))
    )


def estimate_request_tokens(request: ChatRequest) -> int:
    """Estimated input tokens of a whole request: messages and the tool schemas sent with it."""
    return sum(message_tokens(m) for m in request.messages) + tool_tokens(request.tools)
