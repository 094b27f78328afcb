"""What the learned escalation reads at a step: domain-general facts of the run so far.

Every feature comes from the values a live call has (`RouteInput`: the signals, the `StepContext`
and the request's messages), never from words of a domain or names of tools, so a model trained on
one agent's runs can be applied to another's. Counts are squashed with `log1p`: the tenth error in a
row says less than the second.

Besides tool errors and repeats, a few cues read the conversation's own words, in any domain: the
assistant saying it cannot do something or apologising, and a user correcting the agent or saying
the same thing again. They are plain English patterns with no domain or tool vocabulary; an agent
that speaks another language simply never shows them. Each was kept because leaving it out lowered
the held-out figures on the bundled runs (tests/benchmarks/agent_replay.py).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._context import StepType
from .._messages import Message
from ..policies import RouteInput

__all__ = ["FEATURE_NAMES", "RunFacts", "facts_of", "feature_vector"]

FEATURE_NAMES: tuple[str, ...] = (
    "consecutive_tool_errors",
    "tool_errors",
    "tool_error_share",
    "recent_error_share",
    "repeated_call_streak",
    "repeated_calls",
    "steps",
    "tokens_thousands",
    "empty_replies",
    "malformed_calls",
    "user_turns",
    "step_observe",
    "step_act",
    "assistant_cannot",
    "assistant_apologies",
    "user_corrections",
    "user_repeats",
)
"""The features, in the order of the model's weights."""

RECENT_CALLS = 5
"""How many of the latest tool calls `recent_error_share` looks at: a run that is failing now."""

_CANNOT = re.compile(r"\b(?:cannot|can ?not|can't|can’t|unable|not able)\b", re.IGNORECASE)
_APOLOGY = re.compile(r"\b(?:sorry|apologi[sz]e|apologies)\b", re.IGNORECASE)
_CORRECTION = re.compile(
    r"^\W*(?:no\b|nope\b)|\b(?:that's not|that is not|not what i|i said|i already|wrong|incorrect|"
    r"still\b|again\b|actually\b)",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+")
_SAME_WORDS = 0.8
"""Share of shared words (Jaccard) from which a later user turn counts as saying an earlier one again."""


@dataclass(frozen=True, slots=True)
class RunFacts:
    """The facts of a run so far that the features and the reasons are made of."""

    consecutive_tool_errors: int
    tool_errors: int
    tool_calls: int
    recent_errors: int
    recent_calls: int
    repeated_call_streak: int
    repeated_calls: int
    steps: int
    tokens: int
    empty_replies: int
    malformed_calls: int
    user_turns: int
    step_type: StepType
    assistant_cannot: int = 0
    assistant_apologies: int = 0
    user_corrections: int = 0
    user_repeats: int = 0

    def describe(self) -> str:
        """The notable facts in plain words: `3 tool errors in a row and a repeated call`."""
        parts = []
        if self.consecutive_tool_errors:
            parts.append(_count(self.consecutive_tool_errors, "tool error") + " in a row")
        elif self.tool_errors:
            parts.append(_count(self.tool_errors, "tool error") + " so far")
        if self.repeated_call_streak:
            parts.append(
                "a repeated call"
                if self.repeated_call_streak == 1
                else f"the same call {self.repeated_call_streak + 1} times"
            )
        elif self.repeated_calls:
            parts.append(_count(self.repeated_calls, "repeated call") + " so far")
        if self.empty_replies:
            parts.append(_count(self.empty_replies, "empty reply"))
        if self.malformed_calls:
            parts.append(_count(self.malformed_calls, "malformed tool call"))
        if self.assistant_cannot:
            parts.append(f"the assistant said it cannot {_times(self.assistant_cannot)}")
        if self.user_corrections or self.user_repeats:
            parts.append(
                f"the user corrected or repeated {_times(self.user_corrections + self.user_repeats)}"
            )
        if not parts:
            parts.append(f"step {self.steps + 1} with {self.tokens:,} tokens so far")
        return " and ".join(parts) if len(parts) <= 2 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


def _malformed(arguments: str) -> bool:
    try:
        return not isinstance(json.loads(arguments or "{}"), dict)
    except json.JSONDecodeError:
        return True


@dataclass(frozen=True, slots=True)
class _TextFacts:
    empty_replies: int = 0
    malformed_calls: int = 0
    assistant_cannot: int = 0
    assistant_apologies: int = 0
    user_corrections: int = 0
    user_repeats: int = 0


def _same_words(words: set[str], earlier: Sequence[set[str]]) -> bool:
    return bool(words) and any(len(words & before) >= _SAME_WORDS * len(words | before) for before in earlier)


def _text_facts(messages: Sequence[Message]) -> _TextFacts:
    """Replies and cues of the run's own words: one pass over the assistant and user turns."""
    empty = malformed = cannot = apologies = corrections = repeats = 0
    users: list[set[str]] = []
    for message in messages:
        if message.role == "assistant":
            text = message.text
            if not message.tool_calls and not text.strip():
                empty += 1
            malformed += sum(_malformed(call.arguments) for call in message.tool_calls)
            cannot += _CANNOT.search(text) is not None
            apologies += _APOLOGY.search(text) is not None
        elif message.role == "user":
            text = message.text
            words = set(_WORD.findall(text.lower()))
            if users:  # the opening request is never a correction
                corrections += _CORRECTION.search(text) is not None
                repeats += _same_words(words, users)
            users.append(words)
    return _TextFacts(empty, malformed, cannot, apologies, corrections, repeats)


def facts_of(route: RouteInput) -> RunFacts:
    """The run's facts as a live call sees them."""
    signals, context = route.signals, route.context
    history = context.tool_history
    seen: set[tuple[str, str]] = set()
    repeated = 0
    for record in history:
        key = (record.name, record.args_hash)
        repeated += key in seen
        seen.add(key)
    text = _text_facts(route.request.messages)
    recent = history[-RECENT_CALLS:]
    return RunFacts(
        consecutive_tool_errors=signals.consecutive_tool_errors,
        tool_errors=sum(not record.ok for record in history),
        tool_calls=len(history),
        recent_errors=sum(not record.ok for record in recent),
        recent_calls=len(recent),
        repeated_call_streak=signals.repeated_tool_calls,
        repeated_calls=repeated,
        steps=max(context.step_index, signals.run_depth),
        tokens=signals.prompt_tokens,
        empty_replies=text.empty_replies,
        malformed_calls=text.malformed_calls,
        user_turns=signals.turns,
        step_type=signals.step_type,
        assistant_cannot=text.assistant_cannot,
        assistant_apologies=text.assistant_apologies,
        user_corrections=text.user_corrections,
        user_repeats=text.user_repeats,
    )


def feature_vector(facts: RunFacts) -> np.ndarray:
    """The features of `facts`, in the order of `FEATURE_NAMES`."""
    log = math.log1p
    return np.array(
        (
            log(facts.consecutive_tool_errors),
            log(facts.tool_errors),
            facts.tool_errors / facts.tool_calls if facts.tool_calls else 0.0,
            facts.recent_errors / facts.recent_calls if facts.recent_calls else 0.0,
            log(facts.repeated_call_streak),
            log(facts.repeated_calls),
            log(facts.steps),
            log(facts.tokens / 1000),
            log(facts.empty_replies),
            log(facts.malformed_calls),
            log(facts.user_turns),
            float(facts.step_type is StepType.OBSERVE),
            float(facts.step_type is StepType.ACT),
            log(facts.assistant_cannot),
            log(facts.assistant_apologies),
            log(facts.user_corrections),
            log(facts.user_repeats),
        ),
        dtype=np.float64,
    )
