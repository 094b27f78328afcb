"""A rule's conditions (`when = {...}`): what they may test, and the checks they compile to.

Every condition is a test on the `RouteInput` (the request's signals, its step context, its text);
all of a rule's conditions must hold for the rule to match. `condition_checks` compiles them once,
when the rules are loaded, into `Check`s that carry the words a decision's reasons show ("step is
plan", "3+ consecutive tool errors").
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from .._context import StepType
from ..signals._signals import MARKER_THRESHOLD, TASKS
from ._protocol import RouteInput
from ._text_conditions import Check, compile_pattern, text_checks

__all__ = ["RuleConditions", "condition_checks"]


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


class RuleConditions(BaseModel):
    """When a rule applies: every condition that is set must hold (none set: always)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step: tuple[StepType, ...] | None = Field(default=None, description="Step type, or a list of them.")
    task: tuple[str, ...] | None = Field(
        default=None, description="Task label, or a list of them (see `gearshift.TASKS`)."
    )
    agent: tuple[str, ...] | None = Field(
        default=None, description="Agent id or glob (`coder-*`), or a list of them."
    )
    min_prompt_tokens: StrictInt | None = Field(
        default=None, ge=0, description="Prompt at least this long (messages only, tool schemas not counted)."
    )
    max_prompt_tokens: StrictInt | None = Field(default=None, ge=0, description="Prompt at most this long.")
    has_code: bool | float | None = Field(
        default=None,
        description="true: code strength at least 0.5; false: below 0.5; a number in [0, 1]: at least that.",
    )
    has_math: bool | float | None = Field(default=None, description="Like `has_code`, for math.")
    min_consecutive_tool_errors: StrictInt | None = Field(
        default=None, ge=1, description="At least this many tool errors in a row, just before this step."
    )
    min_repeated_tool_calls: StrictInt | None = Field(
        default=None, ge=1, description="The latest tool call repeated at least this many times in a row."
    )
    has_tools: StrictBool | None = Field(default=None, description="Whether the request offers tools.")
    needs_json: StrictBool | None = Field(default=None, description="Whether JSON output is asked for.")
    has_images: StrictBool | None = Field(default=None, description="Whether the messages hold images.")
    metadata: dict[str, Any] | None = Field(
        default=None, description="Keys of the step context's metadata and the values they must equal."
    )
    keywords: tuple[str, ...] | None = Field(
        default=None,
        description="The last user message holds one of these words or phrases (whole words, any case).",
    )
    contains: tuple[str, ...] | None = Field(
        default=None, description="The last user message holds one of these substrings (any case)."
    )
    regex: tuple[str, ...] | None = Field(
        default=None,
        description="One of these regular expressions matches the last user message; each search gives "
        "up after 50 ms (a pattern that backtracks without end counts as no match).",
    )
    language: tuple[str, ...] | None = Field(
        default=None,
        description="The last user message is in one of these languages (ISO 639-1 codes such as "
        "'fr'); a message of fewer than 10 letters is in none; needs `pip install 'gearshift[language]'`.",
    )

    @field_validator("step", mode="before")
    @classmethod
    def _parse_steps(cls, value: Any) -> Any:
        if value is None:
            return None
        steps = []
        for item in _as_tuple(value):
            if not isinstance(item, (str, StepType)):
                known = ", ".join(s.value for s in StepType)
                raise ValueError(f"unknown step type {item!r}; use one of {known}")
            steps.append(StepType.parse(item, where="step"))
        return tuple(steps)

    @field_validator("task", mode="before")
    @classmethod
    def _parse_tasks(cls, value: Any) -> Any:
        if value is None:
            return None
        tasks = _as_tuple(value)
        for item in tasks:
            if item not in TASKS:
                raise ValueError(f"unknown task {item!r}; use one of {', '.join(TASKS)}")
        return tasks

    @field_validator("agent", mode="before")
    @classmethod
    def _parse_agents(cls, value: Any) -> Any:
        if value is None:
            return None
        agents = _as_tuple(value)
        for item in agents:
            if not isinstance(item, str) or not item:
                raise ValueError(f"an agent must be a non-empty id or glob, got {item!r}")
        return agents

    @field_validator("keywords", "contains", mode="before")
    @classmethod
    def _parse_texts(cls, value: Any) -> Any:
        if value is None:
            return None
        items = _as_tuple(value)
        for item in items:
            if not isinstance(item, str) or not item.strip():
                raise ValueError(f"each entry must be a non-empty string, got {item!r}")
        return items

    @field_validator("regex", mode="before")
    @classmethod
    def _parse_patterns(cls, value: Any) -> Any:
        if value is None:
            return None
        patterns = _as_tuple(value)
        for item in patterns:
            if not isinstance(item, str) or not item:
                raise ValueError(f"a pattern must be a non-empty string, got {item!r}")
            compile_pattern(item)
        return patterns

    @field_validator("language", mode="before")
    @classmethod
    def _parse_languages(cls, value: Any) -> Any:
        if value is None:
            return None
        codes = _as_tuple(value)
        for item in codes:
            if not isinstance(item, str) or not re.fullmatch(r"[a-z]{2,3}", item):
                raise ValueError(f"a language is an ISO 639-1 code such as 'fr', got {item!r}")
        return codes

    @field_validator("has_code", "has_math", mode="before")
    @classmethod
    def _parse_strength(cls, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and 0 <= value <= 1:
            return float(value)
        raise ValueError(f"use true, false or a strength between 0 and 1, got {value!r}")

    @model_validator(mode="after")
    def _check_token_range(self) -> RuleConditions:
        low, high = self.min_prompt_tokens, self.max_prompt_tokens
        if low is not None and high is not None and low > high:
            raise ValueError(f"min_prompt_tokens {low} is above max_prompt_tokens {high}")
        return self


def condition_checks(when: RuleConditions) -> list[Check]:
    """The checks a rule's conditions compile to, each with the words a decision's reasons show."""
    checks: list[Check] = []
    if when.step is not None:
        steps = frozenset(when.step)
        names = " or ".join(s.value for s in when.step)
        checks.append(Check(f"step is {names}", lambda r: r.signals.step_type in steps))
    if when.task is not None:
        tasks = frozenset(when.task)
        checks.append(Check(f"task is {' or '.join(when.task)}", lambda r: r.signals.task in tasks))
    if when.agent is not None:
        pattern = re.compile("|".join(fnmatch.translate(glob) for glob in when.agent))
        globs = " or ".join(f"'{glob}'" for glob in when.agent)
        checks.append(
            Check(
                f"agent matches {globs}",
                lambda r: r.context.agent_id is not None and pattern.match(r.context.agent_id) is not None,
            )
        )
    low, high = when.min_prompt_tokens, when.max_prompt_tokens
    if low is not None:
        checks.append(Check(f"prompt_tokens >= {low}", lambda r: r.signals.prompt_tokens >= low))
    if high is not None:
        checks.append(Check(f"prompt_tokens <= {high}", lambda r: r.signals.prompt_tokens <= high))
    if when.has_code is not None:
        checks.append(_strength_check("code", when.has_code, lambda r: r.signals.code))
    if when.has_math is not None:
        checks.append(_strength_check("math", when.has_math, lambda r: r.signals.math))
    errors = when.min_consecutive_tool_errors
    if errors is not None:
        checks.append(
            Check(f"{errors}+ consecutive tool errors", lambda r: r.signals.consecutive_tool_errors >= errors)
        )
    repeats = when.min_repeated_tool_calls
    if repeats is not None:
        checks.append(
            Check(f"tool call repeated {repeats}+ times", lambda r: r.signals.repeated_tool_calls >= repeats)
        )
    for field, yes, no in (
        ("has_tools", "tools offered", "no tools offered"),
        ("needs_json", "JSON output asked for", "no JSON output asked for"),
        ("has_images", "images attached", "no images attached"),
    ):
        wanted = getattr(when, field)
        if wanted is not None:
            checks.append(_flag_check(field, wanted, yes if wanted else no))
    for key, value in (when.metadata or {}).items():
        checks.append(_metadata_check(key, value))
    checks.extend(text_checks(when.keywords, when.contains, when.regex, when.language))
    return checks


def _strength_check(feature: str, wanted: bool | float, strength: Callable[[RouteInput], float]) -> Check:
    if wanted is True:
        return Check(f"{feature} markers present", lambda r: strength(r) >= MARKER_THRESHOLD)
    if wanted is False:
        return Check(f"no {feature} markers", lambda r: strength(r) < MARKER_THRESHOLD)
    return Check(f"{feature} strength >= {wanted:.2f}", lambda r: strength(r) >= wanted)


def _flag_check(field: str, wanted: bool, text: str) -> Check:
    return Check(text, lambda r: getattr(r.signals, field) is wanted)


def _metadata_check(key: str, value: Any) -> Check:
    missing = object()
    return Check(f"metadata {key} = {value!r}", lambda r: r.context.metadata.get(key, missing) == value)
