"""`HeuristicGate`: cheap checks that catch answers no one should be handed, without a model call.

Each check is a pure function `(request, response) -> reason | None`: the reason says in plain words
what is wrong with the answer, None means the check has nothing against it. The gate runs its checks
in order and rejects on the first reason. The built-in checks:

- `check_empty`: no text and no tool call.
- `check_refusal`: the model declined ("I can't help with that", "As an AI, I cannot ...").
- `check_hedging`: the model said it does not know ("I'm not sure", "I don't know").
- `check_json_schema`: the request asked for JSON matching a schema and the answer (one that calls no
  tool) is not JSON, or does not match it.
- `check_tool_calls`: a tool call names a tool the request did not offer, its arguments are not a JSON
  object or do not match the tool's schema, or the request required a tool call and got none.
- `FinalAnswerCheck("number" | "choice")`: opt-in, for tasks graded on a final answer (math,
  multiple choice): the answer must mark one (`#### 42`, "the answer is B").
- `check_arithmetic`: opt-in, for math: an equation the answer shows does not hold (`15 + 25 = 45`).

Schemas are checked with the `jsonschema` package (any draft the schema declares, 2020-12 otherwise).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from .._errors import ConfigError, InvalidRequestError
from .._messages import ChatRequest, ChatResponse
from ._arithmetic import wrong_equations
from ._final_answer import marked_answer, parse_json_answer
from ._gate import AnswerCheck, Verdict

__all__ = [
    "DEFAULT_CHECKS",
    "FinalAnswerCheck",
    "HeuristicCheck",
    "HeuristicGate",
    "check_arithmetic",
    "check_empty",
    "check_hedging",
    "check_json_schema",
    "check_refusal",
    "check_tool_calls",
]

HeuristicCheck = Callable[[ChatRequest, ChatResponse], str | None]
"""A pure check of one answer: the reason it fails, in plain words, or None."""

_REFUSALS = re.compile(
    r"\bI(?:'m| am)? (?:sorry|afraid),? but I (?:can't|cannot|can not|won't|am unable|'m unable|am not able)"
    r"|\bI(?: can't| cannot| can not| won't| will not| am unable to|'m unable to| am not able to"
    r"|'m not able to) (?:help|assist|comply|provide|answer|do that|fulfil|support|engage|create|generate"
    r"|write)"
    r"|\bas an AI(?: language model| assistant)?,? I (?:can't|cannot|am unable|am not able|don't|do not)"
    r"|\bI must (?:decline|refuse)\b",
    re.IGNORECASE,
)
_HEDGES = re.compile(
    r"\bI(?:'m| am) (?:not (?:sure|certain|confident)|unsure|uncertain)\b"
    r"|\bI (?:don't|do not|really don't) know\b"
    r"|\bI can(?:'t|not| not) (?:be (?:sure|certain)|say for (?:sure|certain)|determine)\b"
    r"|\bI(?:'m| am) (?:just )?guessing\b"
    r"|\bI have no (?:idea|way of knowing)\b",
    re.IGNORECASE,
)
# Refusals open the answer; one deep inside a long answer is usually about something else.
_REFUSAL_WINDOW = 400
_QUOTE_CHARS = 60


def _plain(text: str) -> str:
    # Curly apostrophes are what many models write; the patterns spell the straight one.
    return text.replace("\u2019", "'").replace("\u2018", "'")


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 1] + "…"


def check_empty(request: ChatRequest, response: ChatResponse) -> str | None:
    """The answer has no text (whitespace only) and no tool call."""
    if response.text.strip() or response.tool_calls:
        return None
    return "the answer is empty"


def check_refusal(request: ChatRequest, response: ChatResponse) -> str | None:
    """The answer opens with a refusal ("I can't help with that", "I'm sorry, but I cannot ...").

    An answer that calls a tool is acting, not refusing, and is not checked.
    """
    if response.tool_calls:
        return None
    found = _REFUSALS.search(_plain(response.text[:_REFUSAL_WINDOW]))
    if found is None:
        return None
    return f'the model refused ("{_quote(found.group(0))}")'


def check_hedging(request: ChatRequest, response: ChatResponse) -> str | None:
    """The answer says the model does not know ("I'm not sure", "I don't know", "I can't be certain").

    An answer that calls a tool is not checked: "I don't know the time zone, let me look it up" is
    how an agent should work.
    """
    if response.tool_calls:
        return None
    found = _HEDGES.search(_plain(response.text))
    if found is None:
        return None
    return f'the model is not sure of its answer ("{_quote(found.group(0))}")'


def check_arithmetic(request: ChatRequest, response: ChatResponse) -> str | None:
    """An equation of plain arithmetic in the answer does not hold ("15 + 25 = 45").

    Opt-in, for math: on the bundled GSM8K data it flags 79 of Mixtral's 1,307 answers, 73 of them
    wrong, and none of GPT-4's 1,121 right ones.
    """
    errors = wrong_equations(response.text)
    if not errors:
        return None
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"the answer's arithmetic is wrong: {errors[0]}{more}"


class FinalAnswerCheck:
    """The answer must mark a final answer: a number (`kind="number"`), a choice letter
    (`kind="choice"`), or text matching `pattern`.

    Marks are GSM8K's `#### 42`, `\\boxed{42}`, and phrases such as "the answer is 42" or
    "Answer: B"; a choice answer may also be the letter alone. Answers that call tools are not
    checked: a tool call is a step, not a conclusion.
    """

    def __init__(self, kind: Literal["number", "choice"] = "number", *, pattern: str | None = None) -> None:
        if kind not in ("number", "choice"):
            raise ValueError(f"kind must be 'number' or 'choice', got {kind!r}")
        self.kind = kind
        self.pattern = re.compile(pattern) if pattern is not None else None

    def __repr__(self) -> str:
        pattern = f", pattern={self.pattern.pattern!r}" if self.pattern else ""
        return f"FinalAnswerCheck({self.kind!r}{pattern})"

    def __call__(self, request: ChatRequest, response: ChatResponse) -> str | None:
        """The reason the answer has no final answer of the expected kind, or None."""
        if response.tool_calls:
            return None
        text = response.text
        if self.pattern is not None:
            if self.pattern.search(text):
                return None
            return f"the answer has no final answer in the expected form (/{self.pattern.pattern}/)"
        answer = marked_answer(text)
        if answer is not None and answer.kind == self.kind:
            return None
        if self.kind == "choice":
            if re.fullmatch(r"\s*\(?[A-Ja-j]\)?[.)]?\s*", text):
                return None
            return "the answer names no final choice (expected e.g. 'Answer: B')"
        return "the answer gives no final number (expected e.g. '#### 42' or 'the answer is 42')"


# -- schemas ------------------------------------------------------------------------------------


def _load_jsonschema() -> Any:
    try:
        return importlib.import_module("jsonschema")
    except ImportError:
        raise ConfigError(
            "checking JSON and tool-call answers against their schemas needs the 'jsonschema' package; "
            "install it with: pip install jsonschema",
            key="routing.cascade.gates",
        ) from None


@functools.lru_cache(maxsize=256)
def _validator(schema_text: str) -> Any:
    """A validator for one schema (keyed by its canonical JSON: agents send the same schemas again)."""
    jsonschema = _load_jsonschema()
    schema = json.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError:
        return None  # the caller's schema is itself broken: nothing to hold the answer to
    return cls(schema)


def _schema_problem(value: object, schema: Mapping[str, Any]) -> str | None:
    """What is wrong with `value` under `schema`, in one line, or None."""
    validator = _validator(json.dumps(schema, sort_keys=True, default=str))
    if validator is None:
        return None
    jsonschema = sys.modules["jsonschema"]
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = error.json_path if error.path else "the top level"
    return f"at {where}: {_quote(error.message)}"


def check_json_schema(request: ChatRequest, response: ChatResponse) -> str | None:
    """The request asked for JSON matching `response_schema`; the answer is not JSON, or does not match.

    A surrounding code fence (```json ... ```) is tolerated; a schema that is itself invalid is not
    held against the answer. An answer that calls a tool is a step of an agent asked for a structured
    final answer, not that answer yet, and is not checked.
    """
    schema = request.response_schema
    if schema is None or response.tool_calls:
        return None
    ok, value = parse_json_answer(response.text)
    if not ok:
        return f'the answer is not the JSON the request asked for ("{_quote(response.text) or "empty"}")'
    problem = _schema_problem(value, schema)
    return None if problem is None else f"the JSON answer does not match the requested schema: {problem}"


def check_tool_calls(request: ChatRequest, response: ChatResponse) -> str | None:
    """A tool call is unusable: unknown tool, arguments not a JSON object or not matching the tool's
    schema; or the request required a tool call (`tool_choice`) and the answer made none."""
    tools = {tool.name: tool for tool in request.tools}
    choice = request.tool_choice
    if not response.tool_calls:
        if choice == "required" or (choice is not None and choice in tools):
            wanted = "a tool call" if choice == "required" else f"a call to tool '{choice}'"
            return f"the request required {wanted} and the answer made none"
        return None
    for call in response.tool_calls:
        tool = tools.get(call.name)
        if tool is None:
            offered = ", ".join(tools) or "none"
            return f"tool call '{call.name}' names a tool the request did not offer (offered: {offered})"
        try:
            arguments = call.parsed_arguments()
        except InvalidRequestError as exc:
            return str(exc)
        problem = _schema_problem(arguments, tool.parameters)
        if problem is not None:
            return f"tool call '{call.name}': the arguments do not match the tool's schema: {problem}"
    return None


DEFAULT_CHECKS: tuple[HeuristicCheck, ...] = (
    check_empty,
    check_refusal,
    check_hedging,
    check_json_schema,
    check_tool_calls,
)
"""The checks of `HeuristicGate()`: every built-in one except the opt-in math checks
(`FinalAnswerCheck`, `check_arithmetic`)."""


class HeuristicGate:
    """Rejects an answer that fails any of its checks (`DEFAULT_CHECKS` unless told otherwise).

    Verdicts carry no confidence: a check either finds something wrong or does not.
    """

    name = "heuristic"

    def __init__(self, checks: Sequence[HeuristicCheck] = DEFAULT_CHECKS) -> None:
        self.checks = tuple(checks)

    def __repr__(self) -> str:
        names = ", ".join(getattr(c, "__name__", None) or repr(c) for c in self.checks)
        return f"HeuristicGate(checks=[{names}])"

    def problems(self, request: ChatRequest, response: ChatResponse) -> list[str]:
        """Every check's reason against the answer, in check order (empty: nothing wrong)."""
        return [reason for check in self.checks if (reason := check(request, response)) is not None]

    async def check(self, answer: AnswerCheck) -> Verdict:
        """Reject with the first failing check's reason; accept when none fails."""
        request = answer.request
        if "jsonschema" not in sys.modules and (
            request.response_schema is not None or answer.response.tool_calls
        ):
            # Its first import takes tens of milliseconds: keep it off the event loop.
            await asyncio.to_thread(_load_jsonschema)
        for check in self.checks:
            reason = check(request, answer.response)
            if reason is not None:
                return Verdict(False, self.name, reason)
        return Verdict(True, self.name)
