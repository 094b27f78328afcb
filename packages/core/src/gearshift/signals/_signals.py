"""Signals: pure features of a request that policies route on.

`extract_signals` reads the messages, the request's options and the `StepContext`; the `Signals`
fields are the contract every policy relies on.

Cost stays bounded whatever the conversation's length: token counts walk every message once, but the
content features (code, math, reasoning, task) only read the last user message and the few messages
around it, each clipped to its head and tail. The words and markers those features count, and how
they are found cheaply, are the vocabulary in `_cues`; this module weighs the counts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._context import StepContext, StepType
from .._messages import ChatRequest, ImagePart, Message, ToolCall
from .._text_tokens import kept_tokens
from ._cues import TASK_CUES, cue_counts, marker_counts
from ._tokens import message_tokens, messages_tokens

__all__ = ["MARKER_THRESHOLD", "TASKS", "Signals", "extract_signals", "is_error_result"]

TASKS = (
    "chat",
    "code",
    "math",
    "reasoning",
    "extraction",
    "classification",
    "summarize",
    "translate",
    "creative",
    "tool_use",
)
"""Every value `Signals.task` takes."""

MARKER_THRESHOLD = 0.5
"""Strength at which code, math or reasoning counts as present (task labels, rules' `has_code`)."""


@dataclass(frozen=True, slots=True)
class Signals:
    """Features of one request.

    Token counts cover the conversation's messages only: tool schemas attached to the request are
    left out on purpose, so that an agent that always sends its tools is not pushed to a stronger tier.
    Strengths (`code`, `math`, `reasoning`) are in [0, 1].

    As `extract_signals` fills them: `prompt_tokens` is the estimate for every message (text, images,
    tool calls), `last_user_tokens` the last user message's text alone, `turns` the number of user
    messages. `consecutive_tool_errors` and `repeated_tool_calls` keep the meaning of the
    `StepContext` properties of the same name and take the larger of the context's count and the one
    read from the messages. `run_depth` is how many model calls the current run has made so far.
    `task` is one of `TASKS`.
    """

    prompt_tokens: int
    last_user_tokens: int
    turns: int
    code: float
    math: float
    reasoning: float
    task: str
    step_type: StepType
    consecutive_tool_errors: int
    repeated_tool_calls: int
    run_depth: int
    budget_left_share: float | None
    has_tools: bool
    needs_json: bool
    has_images: bool


# --- Which text the content features read ------------------------------------------------------------
# The instruction is where reasoning and task words live: the head of the last user message, and its
# tail for prompts that end with the question ("... Summarize the above.").
_INSTRUCTION_HEAD, _INSTRUCTION_TAIL = 500, 200
# Code and math structure can sit anywhere in the prompt or in a recent tool result.
_PROMPT_HEAD, _PROMPT_TAIL = 800, 200
_RECENT_MESSAGES = 3
_RECENT_HEAD, _RECENT_TAIL = 200, 100
# Walks back over an agent's history stop here: a longer streak does not change the routing.
_MAX_WALK = 64
_ERROR_HEAD = 200
_BARE_USER = Message("user")
_BARE_USER_TOKENS = message_tokens(_BARE_USER)

_KEPT_INSTRUCTIONS: dict[str, tuple[dict[str, int], float]] = {}
_MAX_KEPT_INSTRUCTIONS = 1024

# --- Structure, read from the recent prompt ------------------------------------------------------------
# Code is dense in these; prose (~2% of its non-blank characters) and JSON tool results are not.
_CODE_SYMBOLS = b"();=<>|&"
_BLANKS = b" \t\r\n"
_INDENT_SPACES, _INDENT_TAB = "\n    ", "\n\t"
# Every branch starts on a digit, so the regex engine skips ahead to digits. Dates ("2024-01-15") and
# paths ("1/2/3") are kept out by asking for spaces around '-' and '/'. The right operand is a
# lookahead so that chained operations ("3x + 4 = 19") count every operator. Powers ("x^2") are only
# looked for when a caret is there.
_ARITHMETIC = re.compile(
    r"\d\s*[+*×÷^=<>≤≥]\s*(?=\(?-?\d)|\d\s+[-/−]\s+(?=\(?\d)|\d[a-z]\s*[-+=^]\s*(?=\(?\d)"
)
_POWER = re.compile(r"[a-z]\^\d")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
# The same patterns for ASCII text, on which they find the same matches in about half the time: `\d`
# and `\s` then look a character up in a table instead of in the Unicode database.
_ARITHMETIC_ASCII = re.compile(_ARITHMETIC.pattern, re.ASCII)
_NUMBER_ASCII = re.compile(_NUMBER.pattern, re.ASCII)
# Line starts are found as "\n" (a literal the engine jumps to), on the text with a newline prepended.
# No item starts on a blank, so `(?![ \t])` changes no match; it only keeps the engine from giving back
# the indentation of every code line one blank at a time to retry the alternatives.
_LIST_ITEM = re.compile(r"\n[ \t]*(?![ \t])(?:\d+[.)]|[-*•]|\(?[a-z]\))[ \t]")
_CHOICE = re.compile(r"\n[ \t]*\(?[A-E][).:][ \t]")

# --- Tool errors -----------------------------------------------------------------------------------------
# Read on the lowercased head of a tool result. The start of the text is matched in place; the
# JSON fields and exit statuses start on a literal, so searching for them stays cheap.
_ERROR_START = re.compile(
    r"[^\w\"']*(?:\w*(?:error|exception)|traceback|fatal|failed|failure|permission denied|"
    r"no such file|not found|invalid|timed? ?out)\b"
)
_ERROR_FIELD = re.compile(
    r'"error"\s*:\s*(?:\{|"[^"]|true)|"status"\s*:\s*"(?:error|fail)|"(?:ok|success)"\s*:\s*false'
)
_ERROR_STATUS = re.compile(r"exit (?:code|status):? *[1-9]|status(?: code)?:? *[45]\d\d\b")


def extract_signals(request: ChatRequest, context: StepContext) -> Signals:
    """The routing features of one request at one step of a run. Pure, and fast on long histories.

    Tool schemas attached to the request never count towards the size. Tool errors and repeated
    identical tool calls are read both from `context.tool_history` and from the messages (tool
    results marked `is_error` or that read like an error; assistant turns repeating the same calls),
    so callers that pass only a history get the same escalation as those that fill the context.
    """
    messages = request.messages
    roles = [m.role for m in messages]
    turns = roles.count("user")
    # Index of the last user message; -1 (no user message: an assistant-led history) reads as "none".
    last_user_index = len(roles) - 1 - roles[::-1].index("user") if turns else -1
    after_user = messages[last_user_index + 1 :]

    if last_user_index >= 0:
        last_user = messages[last_user_index]
        last_user_text = last_user.text
        last_user_tokens = kept_tokens(last_user_text)  # an agent's steps all end on the same request
        prompt_tokens = last_user_tokens + message_tokens_without_text(last_user)
        if last_user_index:
            prompt_tokens += messages_tokens(messages[:last_user_index])
    else:
        last_user_text, last_user_tokens, prompt_tokens = "", 0, 0
    # Tool errors, repeated calls and the run's depth are read from what follows the last user
    # message; a plain chat request ends with that message and skips those walks.
    consecutive_tool_errors, repeated_tool_calls, run_depth = 0, 0, context.step_index
    if after_user:
        prompt_tokens += messages_tokens(after_user)
        # A step that opens its agent's turn (an adapter says so: `turn_step_index` 0) makes no streak of
        # the results before it: in a LlamaIndex AgentWorkflow they are the agent that handed over's.
        if context.turn_step_index != 0:
            consecutive_tool_errors = _trailing_tool_errors(after_user)
            repeated_tool_calls = _repeated_tool_calls(after_user)
        run_depth = max(run_depth, roles[last_user_index + 1 :].count("assistant"))
    if context.tool_history:
        consecutive_tool_errors = max(context.consecutive_tool_errors, consecutive_tool_errors)
        repeated_tool_calls = max(context.repeated_tool_calls, repeated_tool_calls)

    instruction = _clip(last_user_text, _INSTRUCTION_HEAD, _INSTRUCTION_TAIL)
    cues, reasoning = _instruction_reading(instruction)
    prompt = _recent_text(messages, last_user_index, last_user_text)
    structure = marker_counts(prompt)
    code = _code_strength(prompt, structure, cues)
    math = _math_strength(instruction, structure, cues, code)
    task = _task(request, cues, code=code, math=math, reasoning=reasoning)
    budget_left_share = context.budget_left_share
    if budget_left_share is not None:
        budget_left_share = min(max(budget_left_share, 0.0), 1.0)
    has_tools = bool(request.tools) and request.tool_choice != "none"
    needs_json = request.response_schema is not None or "json" in cues or _system_asks_for_json(messages)
    has_images = any(not isinstance(m.content, str) and m.has_images for m in messages)
    # Positional, every local named after its field: fifteen keywords cost more than a microsecond.
    return Signals(
        prompt_tokens,
        last_user_tokens,
        turns,
        code,
        math,
        reasoning,
        task,
        context.step_type,
        consecutive_tool_errors,
        repeated_tool_calls,
        run_depth,
        budget_left_share,
        has_tools,
        needs_json,
        has_images,
    )


def message_tokens_without_text(message: Message) -> int:
    # The same estimate as for any other message, with the text (already counted) taken out.
    if isinstance(message.content, str) and not message.tool_calls:
        return _BARE_USER_TOKENS
    images = () if isinstance(message.content, str) else message.content
    bare = Message(message.role, tuple(p for p in images if isinstance(p, ImagePart)), message.tool_calls)
    return message_tokens(bare)


def _instruction_reading(instruction: str) -> tuple[dict[str, int], float]:
    """The cue counts and the reasoning strength of an instruction, which depend on its text alone.

    Every step of an agent's run ends on the same user request, so they are kept per instruction (at
    most 701 characters) for the next step; past `_MAX_KEPT_INSTRUCTIONS` the store starts over. The
    counts are shared between the calls that read them: nothing may change them.
    """
    reading = _KEPT_INSTRUCTIONS.get(instruction)
    if reading is None:
        cues = cue_counts(instruction)
        reading = cues, _reasoning_strength(instruction, cues)
        if len(_KEPT_INSTRUCTIONS) >= _MAX_KEPT_INSTRUCTIONS:
            _KEPT_INSTRUCTIONS.clear()
        _KEPT_INSTRUCTIONS[instruction] = reading
    return reading


def _clip(text: str, head: int, tail: int) -> str:
    if len(text) <= head + tail:
        return text
    return f"{text[:head]}\n{text[-tail:]}"


def _recent_text(messages: Sequence[Message], last_user_index: int, last_user_text: str) -> str:
    """The last user message and the few latest other messages, each clipped to head and tail."""
    parts = [_clip(last_user_text, _PROMPT_HEAD, _PROMPT_TAIL)]
    for index in range(len(messages) - 1, -1, -1):
        if len(parts) > _RECENT_MESSAGES:
            break
        message = messages[index]
        if index != last_user_index and message.role != "system":
            parts.append(_clip(message.text, _RECENT_HEAD, _RECENT_TAIL))
    return "\n".join(parts)


def _code_strength(prompt: str, structure: dict[str, int], cues: dict[str, int]) -> float:
    # Components that are zero are skipped rather than added: the sums come out the same, and most
    # prompts have no structure markers and few cue words.
    score = 0.0
    if structure:
        score = 0.5 * ("fence" in structure) + 0.4 * ("trace" in structure) + 0.4 * ("diff" in structure)
        score += min(0.21, 0.07 * structure.get("syntax", 0))
    if len(prompt) >= 40:
        data = prompt.encode()
        filled = len(data.translate(None, _BLANKS)) or 1
        density = (len(data) - len(data.translate(None, _CODE_SYMBOLS))) / filled
        if density > 0.04:
            score += min(0.25, (density - 0.04) * 4)
        if prompt.count(_INDENT_SPACES) + prompt.count(_INDENT_TAB) >= 2:
            score += 0.15
    if cues:
        score += min(0.3, 0.1 * cues.get("code", 0))
        if "code_noun" in cues and "code_verb" in cues:
            score += 0.3  # "write a function", "fix this script": asked to produce or change code
    return min(score, 1.0)


def _math_strength(instruction: str, structure: dict[str, int], cues: dict[str, int], code: float) -> float:
    score = 0.4 if "latex" in structure else 0.0
    # Expressions are read from the instruction only, and not from code: tool output and programs are
    # full of digits next to operators ("items[3] * 7") that are not math.
    ascii_only = instruction.isascii()
    if code < MARKER_THRESHOLD:
        expressions = len((_ARITHMETIC_ASCII if ascii_only else _ARITHMETIC).findall(instruction))
        if "^" in instruction:
            expressions += len(_POWER.findall(instruction))
        score += min(0.3, 0.1 * expressions)
    if "math" in cues:
        score += min(0.4, 0.1 * cues["math"])
    if "word_problem" in cues:
        numbers = (_NUMBER_ASCII if ascii_only else _NUMBER).findall(instruction)
        quantities = len(numbers) + cues.get("quantity", 0)
        if quantities >= 2:
            score += 0.4 if quantities == 2 else 0.5
    return min(score, 1.0)


def _reasoning_strength(instruction: str, cues: dict[str, int]) -> float:
    score = 0.0
    if cues:
        score = 0.3 * cues.get("proof", 0) + 0.15 * cues.get("analysis", 0)
        score += min(0.3, 0.08 * cues.get("constraint", 0))
    questions = instruction.count("?")
    if questions >= 2:
        score += min(0.3, 0.1 * (questions - 1))  # multi-part questions
    if "\n" in instruction:  # lists and answer choices need several lines
        lines = "\n" + instruction
        items = len(_LIST_ITEM.findall(lines))
        if items >= 2:
            score += 0.1 if items < 4 else 0.2
        if ("\nB" in lines or "\n(B" in lines) and len(_CHOICE.findall(lines)) >= 3:
            score += 0.15  # multiple choice: pick one answer among several
    return min(score, 1.0)


def _task(request: ChatRequest, cues: dict[str, int], *, code: float, math: float, reasoning: float) -> str:
    if request.messages[-1].role == "tool" or (
        request.tools and request.tool_choice not in (None, "auto", "none")
    ):
        return "tool_use"  # reading a tool result, or made to call a tool
    if code >= MARKER_THRESHOLD:
        return "code"
    # An explicit verb ("summarize", "translate") beats math words a document happens to contain.
    if cues:
        for task in TASK_CUES:
            if task in cues:
                return task
    if math >= MARKER_THRESHOLD:
        return "math"
    if reasoning >= MARKER_THRESHOLD:
        return "reasoning"
    return "chat"


def _system_asks_for_json(messages: Sequence[Message]) -> bool:
    # Agents often ask for JSON once, in the system prompt that opens the conversation.
    if messages[0].role != "system":
        return False
    text = _clip(messages[0].text, _INSTRUCTION_HEAD, _INSTRUCTION_TAIL)
    return "json" in text.lower() and "json" in cue_counts(text)


def is_error_result(message: Message) -> bool:
    """Whether a tool result reports a failure: flagged `is_error`, or its text reads as an error
    (`Error: ...`, a JSON `"error"` field, a non-zero exit status)."""
    if message.is_error:
        return True
    head = message.text[:_ERROR_HEAD].lower()
    return bool(
        _ERROR_START.match(head)
        or ('"' in head and _ERROR_FIELD.search(head))
        or (("exit" in head or "status" in head) and _ERROR_STATUS.search(head))
    )


def _trailing_tool_errors(messages: Sequence[Message]) -> int:
    """Failed tool results at the end of the run, up to the first success (the assistant turns that
    made the calls skipped). An answer without tool calls ends the streak, as a user turn does: the
    loop it read is over, and in a graph of several agents the next one starts on a task of its own.
    """
    count = 0
    for message in reversed(messages[-_MAX_WALK:]):
        if message.role == "tool":
            if not is_error_result(message):
                break
            count += 1
        elif message.role == "assistant" and not message.tool_calls:
            break
    return count


def _repeated_tool_calls(messages: Sequence[Message]) -> int:
    """How many assistant turns in a row before the latest one made exactly its tool calls."""
    latest: tuple[ToolCall, ...] | None = None
    count = 0
    for message in reversed(messages[-_MAX_WALK:]):
        if message.role != "assistant":
            continue
        if latest is None:
            if not message.tool_calls:
                return 0
            latest = message.tool_calls
        elif _same_calls(message.tool_calls, latest):
            count += 1
        else:
            break
    return count


def _same_calls(a: Sequence[ToolCall], b: Sequence[ToolCall]) -> bool:
    if len(a) != len(b):
        return False
    return all(
        x.name == y.name and (x.arguments == y.arguments or _parsed(x.arguments) == _parsed(y.arguments))
        for x, y in zip(a, b, strict=True)
    )


def _parsed(arguments: str) -> Any:
    # Parsed JSON compares equal whatever the key order or spacing; unparseable text compares as is.
    try:
        return json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return arguments.strip()
