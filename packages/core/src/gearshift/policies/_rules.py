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

This module loads rules (checking each against the registry) and applies them; what a rule's `when`
may test, and how it is checked, is `_rule_conditions`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from .._decision import Decision
from .._errors import ConfigError
from .._models import ModelRegistry, ModelSpec
from ..config._config_errors import config_error
from ._protocol import Policy, RouteInput, make_decision
from ._rule_conditions import RuleConditions, condition_checks
from ._text_conditions import Check as _Check

__all__ = ["Rule", "RulesPolicy", "task_rules"]


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
                raise config_error(exc, source, schema=Rule, key=where) from None
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


def task_rules(
    tasks: Mapping[str, str | int],
    *,
    registry: ModelRegistry | None = None,
    source: str = "<python>",
    key: str = "routing.tasks",
) -> list[dict[str, Any]]:
    """Rules for a task map (`[routing.tasks] code = "model-a"`): one per task, a model id or a tier.

    With a `registry`, each target is checked against it, and an error names the task's own key
    (`routing.tasks.code`), not the rule made from it.
    """
    rules = []
    for task, target in tasks.items():
        field = "tier" if isinstance(target, int) else "model"
        if registry is not None:
            _check_target(registry, field, target, source=source, key=f"{key}.{task}")
        rules.append({"name": f"task {task}", "when": {"task": task}, field: target})
    return rules


def _strongest_at_most(route: RouteInput, tier: int) -> ModelSpec:
    """The cheapest candidate of the highest tier at or below `tier` (the weakest tier if none is)."""
    below = [m.tier for m in route.candidates if m.tier <= tier]
    target = max(below) if below else route.candidates[0].tier
    return next(m for m in route.candidates if m.tier == target)


def _compile(index: int, rule: Rule) -> _CompiledRule:
    label = f"rule {index}" + (f" '{rule.name}'" if rule.name else "")
    return _CompiledRule(index, rule, label, tuple(condition_checks(rule.when)))


def _check_against(registry: ModelRegistry, rule: Rule, *, source: str, where: str) -> None:
    for field in ("model", "tier", "min_tier", "max_tier"):
        target = getattr(rule, field)
        if target is not None:
            _check_target(registry, field, target, source=source, key=f"{where}.{field}")


def _check_target(registry: ModelRegistry, field: str, target: str | int, *, source: str, key: str) -> None:
    """A `ConfigError` at `key` when the registry has no such model id (`field` "model") or tier."""
    if field == "model":
        if target not in registry:
            raise ConfigError(
                f"unknown model id '{target}'; the registry has: {', '.join(registry.ids)}",
                source=source,
                key=key,
            )
    elif target not in registry.tiers:
        raise ConfigError(
            f"no model has tier {target}; the registry's tiers are {', '.join(map(str, registry.tiers))}",
            source=source,
            key=key,
        )
