"""`RulesPolicy`: declarative routing rules from gearshift.toml, with another policy as fallback.

```toml
[[routing.rules]]
name = "plans on the strong tier"
when = { step = ["plan", "reflect"], agent = "coder-*" }
tier = 2

[[routing.rules]]
when = { min_consecutive_tool_errors = 3 }
model = "claude-sonnet"

[[routing.rules]]
when = { task = ["summarize", "translate"] }
max_tier = 0
```

Rules are tried in order and the first whose conditions all hold decides, with exactly one action:
`model` (that model, if it can serve the request; otherwise the next rule is tried), `tier` (the
cheapest eligible model of that tier), or `min_tier` / `max_tier` (ask the fallback policy, then clamp
its choice). When no rule matches, the fallback policy decides alone.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .._context import StepType
from .._decision import Decision
from .._errors import ConfigError
from .._models import ModelRegistry, ModelSpec
from .._signals import MARKER_THRESHOLD, TASKS
from ._protocol import Policy, RouteInput, make_decision
from ._text_conditions import Check as _Check
from ._text_conditions import compile_pattern, text_checks

__all__ = ["Rule", "RuleConditions", "RulesPolicy", "task_rules"]


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
        "'fr'); needs `pip install 'gearshift[language]'`.",
    )

    @field_validator("step", mode="before")
    @classmethod
    def _parse_steps(cls, value: Any) -> Any:
        if value is None:
            return None
        steps = []
        for item in _as_tuple(value):
            if isinstance(item, StepType):
                steps.append(item)
                continue
            if not isinstance(item, str) or item.strip().lower() not in StepType._value2member_map_:
                known = ", ".join(s.value for s in StepType)
                raise ValueError(f"unknown step type {item!r}; use one of {known}")
            steps.append(StepType(item.strip().lower()))
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


class Rule(BaseModel):
    """One routing rule: conditions (`when`) and exactly one action.

    The action is `model` (a registry id), `tier`, or `min_tier` and/or `max_tier`, which clamp the
    fallback policy's choice.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: StrictStr | None = Field(default=None, description="Shown in the decision's reasons.")
    when: RuleConditions = Field(default_factory=RuleConditions, description="All must hold.")
    model: StrictStr | None = Field(
        default=None, min_length=1, description="Route to this model id when it is eligible."
    )
    tier: StrictInt | None = Field(
        default=None, ge=0, description="Route to the cheapest model of this tier."
    )
    min_tier: StrictInt | None = Field(
        default=None, ge=0, description="Raise the fallback's choice to this tier."
    )
    max_tier: StrictInt | None = Field(
        default=None, ge=0, description="Lower the fallback's choice to this tier."
    )

    @model_validator(mode="after")
    def _check_action(self) -> Rule:
        actions = [
            name
            for name, present in (
                ("model", self.model is not None),
                ("tier", self.tier is not None),
                ("min_tier/max_tier", self.min_tier is not None or self.max_tier is not None),
            )
            if present
        ]
        if len(actions) != 1:
            got = " and ".join(actions) if actions else "none"
            raise ValueError(f"a rule needs exactly one action: model, tier, or min_tier/max_tier; got {got}")
        if self.min_tier is not None and self.max_tier is not None and self.min_tier > self.max_tier:
            raise ValueError(f"min_tier {self.min_tier} is above max_tier {self.max_tier}")
        return self


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    index: int
    rule: Rule
    label: str
    checks: tuple[_Check, ...]

    def matches(self, route: RouteInput) -> bool:
        return all(check.holds(route) for check in self.checks)

    @property
    def conditions(self) -> str:
        return ", ".join(check.text for check in self.checks) or "no conditions"


class RulesPolicy:
    """Declarative rules tried in order; the first that matches decides, else `fallback` does."""

    name = "rules"

    def __init__(self, rules: Sequence[Rule], fallback: Policy) -> None:
        for index, rule in enumerate(rules):
            if not isinstance(rule, Rule):
                raise TypeError(
                    f"rules[{index}] is a {type(rule).__name__}, not a Rule; "
                    "use RulesPolicy.from_config() for rules written as tables or dicts"
                )
        self.rules = tuple(rules)
        self.fallback = fallback
        # A fallback that must call a model before deciding (the classifier) still gets to: the router
        # awaits `aprepare` on the policy it holds, which is this one.
        prepare = getattr(fallback, "aprepare", None)
        if prepare is not None:
            self.aprepare = prepare
        self._compiled = tuple(_compile(index, rule) for index, rule in enumerate(self.rules))

    def __repr__(self) -> str:
        return f"RulesPolicy({len(self.rules)} rules, fallback={self.fallback.name!r})"

    @classmethod
    def from_config(
        cls,
        rules: Sequence[Mapping[str, Any]],
        *,
        fallback: Policy,
        source: str = "<python>",
        key: str = "routing.rules",
        registry: ModelRegistry | None = None,
    ) -> RulesPolicy:
        """Validate user-written rules; a `ConfigError` names the offending key and what is wrong.

        With a `registry`, model ids and tiers the rules name are checked against it too.
        """
        if isinstance(rules, (str, bytes, Mapping)) or not isinstance(rules, Sequence):
            raise ConfigError(
                f"must be a list of rules (an array of tables), got {type(rules).__name__}",
                source=source,
                key=key,
            )
        parsed = []
        for index, raw in enumerate(rules):
            where = f"{key}[{index}]"
            if not isinstance(raw, Mapping):
                raise ConfigError(
                    f"a rule must be a table, got {type(raw).__name__}", source=source, key=where
                )
            try:
                rule = Rule.model_validate(dict(raw))
            except ValidationError as exc:
                raise _config_error(exc, source=source, where=where) from None
            if registry is not None:
                _check_against(registry, rule, source=source, where=where)
            parsed.append(rule)
        return cls(parsed, fallback)

    def decide(self, route: RouteInput) -> Decision:
        """The first matching rule's decision, or the fallback policy's."""
        notes: list[str] = []
        for compiled in self._compiled:
            if not compiled.matches(route):
                continue
            rule = compiled.rule
            matched = f"{compiled.label} matched ({compiled.conditions})"
            if rule.model is not None:
                spec = next((m for m in route.candidates if m.id == rule.model), None)
                if spec is None:
                    notes.append(
                        f"{matched} but model '{rule.model}' is not eligible for this request: "
                        "trying the next rule"
                    )
                    continue
                return self._decision(route, spec, compiled, [*notes, f"{matched}: model {spec.id}"])
            if rule.tier is not None:
                spec = route.cheapest_in_tier(rule.tier)
                why = f"{matched}: tier {rule.tier}"
                if spec.tier != rule.tier:
                    why += f" has no eligible model, nearest is tier {spec.tier}"
                return self._decision(route, spec, compiled, [*notes, f"{why}: {spec.id}"])
            return self._clamp(route, compiled, notes, matched)
        decision = self.fallback.decide(route)
        lead = f"no rule matched: the {self.fallback.name} policy decides"
        return replace(decision, reasons=(*notes, lead, *decision.reasons))

    def _decision(
        self, route: RouteInput, model: ModelSpec, compiled: _CompiledRule, reasons: list[str]
    ) -> Decision:
        scores = {"rule": float(compiled.index)}
        return make_decision(route, model, policy=self.name, reasons=reasons, scores=scores)

    def _clamp(self, route: RouteInput, compiled: _CompiledRule, notes: list[str], matched: str) -> Decision:
        rule = compiled.rule
        decision = self.fallback.decide(route)
        scores = {**decision.scores, "rule": float(compiled.index)}
        low, high = rule.min_tier, rule.max_tier
        if low is not None and decision.tier < low:
            spec = route.cheapest_in_tier(low)
            why = f"{matched}: raising tier {decision.tier} to min_tier {low}"
            if spec.tier < low:
                why += f", but no eligible model is that strong; highest is tier {spec.tier}"
        elif high is not None and decision.tier > high:
            spec = _strongest_at_most(route, high)
            why = f"{matched}: lowering tier {decision.tier} to max_tier {high}"
            if spec.tier > high:
                why += f", but no eligible model is that weak; lowest is tier {spec.tier}"
        else:
            bounds = " to ".join(
                f"{k} {v}" for k, v in (("min_tier", low), ("max_tier", high)) if v is not None
            )
            kept = (*notes, *decision.reasons, f"{matched}: tier {decision.tier} is within {bounds}")
            return replace(decision, reasons=kept, scores=scores, policy=self.name)
        reasons = [*notes, *decision.reasons, f"{why}: {spec.id}"]
        return make_decision(
            route,
            spec,
            policy=self.name,
            reasons=reasons,
            scores=scores,
            budget_changed=decision.budget_changed,
        )


def task_rules(tasks: Mapping[str, str | int]) -> list[dict[str, Any]]:
    """Rules for a task map (`[routing.tasks] code = "model-a"`): one per task, a model id or a tier."""
    return [
        {
            "name": f"task {task}",
            "when": {"task": task},
            ("tier" if isinstance(target, int) else "model"): target,
        }
        for task, target in tasks.items()
    ]


def _strongest_at_most(route: RouteInput, tier: int) -> ModelSpec:
    """The cheapest candidate of the highest tier at or below `tier` (the weakest tier if none is)."""
    below = [m.tier for m in route.candidates if m.tier <= tier]
    target = max(below) if below else route.candidates[0].tier
    return next(m for m in route.candidates if m.tier == target)


def _compile(index: int, rule: Rule) -> _CompiledRule:
    label = f"rule {index}" + (f" '{rule.name}'" if rule.name else "")
    return _CompiledRule(index, rule, label, tuple(_checks(rule.when)))


def _checks(when: RuleConditions) -> list[_Check]:
    checks: list[_Check] = []
    if when.step is not None:
        steps = frozenset(when.step)
        names = " or ".join(s.value for s in when.step)
        checks.append(_Check(f"step is {names}", lambda r: r.signals.step_type in steps))
    if when.task is not None:
        tasks = frozenset(when.task)
        checks.append(_Check(f"task is {' or '.join(when.task)}", lambda r: r.signals.task in tasks))
    if when.agent is not None:
        pattern = re.compile("|".join(fnmatch.translate(glob) for glob in when.agent))
        globs = " or ".join(f"'{glob}'" for glob in when.agent)
        checks.append(
            _Check(
                f"agent matches {globs}",
                lambda r: r.context.agent_id is not None and pattern.match(r.context.agent_id) is not None,
            )
        )
    low, high = when.min_prompt_tokens, when.max_prompt_tokens
    if low is not None:
        checks.append(_Check(f"prompt_tokens >= {low}", lambda r: r.signals.prompt_tokens >= low))
    if high is not None:
        checks.append(_Check(f"prompt_tokens <= {high}", lambda r: r.signals.prompt_tokens <= high))
    if when.has_code is not None:
        checks.append(_strength_check("code", when.has_code, lambda r: r.signals.code))
    if when.has_math is not None:
        checks.append(_strength_check("math", when.has_math, lambda r: r.signals.math))
    errors = when.min_consecutive_tool_errors
    if errors is not None:
        checks.append(
            _Check(
                f"{errors}+ consecutive tool errors", lambda r: r.signals.consecutive_tool_errors >= errors
            )
        )
    repeats = when.min_repeated_tool_calls
    if repeats is not None:
        checks.append(
            _Check(f"tool call repeated {repeats}+ times", lambda r: r.signals.repeated_tool_calls >= repeats)
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


def _strength_check(feature: str, wanted: bool | float, strength: Callable[[RouteInput], float]) -> _Check:
    if wanted is True:
        return _Check(f"{feature} markers present", lambda r: strength(r) >= MARKER_THRESHOLD)
    if wanted is False:
        return _Check(f"no {feature} markers", lambda r: strength(r) < MARKER_THRESHOLD)
    return _Check(f"{feature} strength >= {wanted:.2f}", lambda r: strength(r) >= wanted)


def _flag_check(field: str, wanted: bool, text: str) -> _Check:
    return _Check(text, lambda r: getattr(r.signals, field) is wanted)


def _metadata_check(key: str, value: Any) -> _Check:
    missing = object()
    return _Check(f"metadata {key} = {value!r}", lambda r: r.context.metadata.get(key, missing) == value)


def _config_error(exc: ValidationError, *, source: str, where: str) -> ConfigError:
    err = exc.errors()[0]
    loc = err["loc"]
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    if err["type"] == "extra_forbidden":
        in_when = tuple(loc[:-1]) == ("when",)
        fields = RuleConditions.model_fields if in_when else Rule.model_fields
        owner = "a rule's 'when'" if in_when else "a rule"
        message = f"unknown field '{loc[-1]}'; {owner} accepts: {', '.join(fields)}"
    elif err["type"] == "value_error":
        message = err["msg"].removeprefix("Value error, ")
    else:
        message = f"{err['msg']} (got {err['input']!r})"
    return ConfigError(message, source=source, key=f"{where}{path}")


def _check_against(registry: ModelRegistry, rule: Rule, *, source: str, where: str) -> None:
    if rule.model is not None and rule.model not in registry:
        raise ConfigError(
            f"unknown model id '{rule.model}'; the registry has: {', '.join(registry.ids)}",
            source=source,
            key=f"{where}.model",
        )
    for field in ("tier", "min_tier", "max_tier"):
        tier = getattr(rule, field)
        if tier is not None and tier not in registry.tiers:
            raise ConfigError(
                f"no model has tier {tier}; the registry's tiers are {', '.join(map(str, registry.tiers))}",
                source=source,
                key=f"{where}.{field}",
            )
