"""What the learned escalation reads at a step: domain-general facts of the run so far.

Every feature comes from the values a live call has (`RouteInput`: the signals, the `StepContext`
and the request's messages), never from words of a domain or names of tools, so a model trained on
one agent's runs can be applied to another's. Counts are squashed with `log1p`: the tenth error in a
row says less than the second.

Besides tool errors and repeats, one cue reads the conversation's own words, in any domain: the
assistant saying it cannot do something or is unable to. It is a plain English pattern with no domain
or tool vocabulary; an agent that speaks another language simply never shows it. (Three more cues were
measured and left out because they did not help under cross-fitting: the assistant apologising, a
user correcting the agent, a user saying the same thing again.)
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
)
"""The features, in the order of the model's weights."""

RECENT_CALLS = 5
"""How many of the latest tool calls `recent_error_share` looks at: a run that is failing now."""

_CANNOT = re.compile(r"\b(?:cannot|can ?not|can't|can’t|unable|not able)\b", re.IGNORECASE)


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


def _text_facts(messages: Sequence[Message]) -> tuple[int, int, int]:
    """(empty replies, malformed tool calls, replies saying the assistant cannot) of the assistant turns."""
    empty = malformed = cannot = 0
    for message in messages:
        if message.role != "assistant":
            continue
        text = message.text
        if not message.tool_calls and not text.strip():
            empty += 1
        malformed += sum(_malformed(call.arguments) for call in message.tool_calls)
        cannot += _CANNOT.search(text) is not None
    return empty, malformed, cannot


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
    empty, malformed, cannot = _text_facts(route.request.messages)
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
        empty_replies=empty,
        malformed_calls=malformed,
        user_turns=signals.turns,
        step_type=signals.step_type,
        assistant_cannot=cannot,
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
        ),
        dtype=np.float64,
    )
