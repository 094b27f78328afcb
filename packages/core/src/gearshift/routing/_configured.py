"""The router's parts a gearshift.toml names: its policy, its learned escalation, its cascade gate and
its shadow evaluation.

`Router.from_config` builds each from the config's `[routing]` tables here; each is validated as it
is built, so a bad table is a `ConfigError` naming its key and line. `configured_parts` builds them
all and writes nothing, so an entry point that builds its router later (the MCP server, when it
starts serving) calls it first to refuse a bad table at once, before any file is opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .._errors import ConfigError

if TYPE_CHECKING:
    from .._models import ModelRegistry
    from ..cascades._gate import QualityGate
    from ..config._config import GearshiftConfig
    from ..escalation import LiveEscalation
    from ..policies import Policy
    from ._shadow import ShadowEvaluator

__all__ = [
    "ConfiguredParts",
    "configured_cascade",
    "configured_parts",
    "configured_policy",
    "configured_shadow",
]


@dataclass(frozen=True)
class ConfiguredParts:
    """What the `[routing]` tables of a config build, before any file is opened for writing."""

    registry: ModelRegistry
    policy: Policy
    escalation: LiveEscalation | None
    cascade: QualityGate | None
    shadow: ShadowEvaluator | None


def configured_parts(config: GearshiftConfig) -> ConfiguredParts:
    """Every part the config's `[routing]` tables name, each validated; a bad table raises a
    `ConfigError` with its key and its line in the config file."""
    registry = config.registry()
    try:
        escalation = None
        if config.routing.escalation is not None:
            from ..escalation import LiveEscalation

            escalation = LiveEscalation.from_config(config.routing.escalation, source=config.source)
        return ConfiguredParts(
            registry=registry,
            policy=configured_policy(config, registry),
            escalation=escalation,
            cascade=configured_cascade(config, registry),
            shadow=configured_shadow(config, registry),
        )
    except ConfigError as exc:
        raise config.located(exc) from None


def configured_policy(config: GearshiftConfig, registry: ModelRegistry) -> Policy:
    """The policy `[routing] policy` names, with its table, behind the task map when there is one."""
    from ..learning import DefaultPolicy
    from ..policies import RulesPolicy, ScorerConfig, SignalScorer, task_rules

    routing = config.routing
    scorer = ScorerConfig.from_config(routing.scorer, source=config.source)
    policy: Policy = (
        SignalScorer(scorer)
        if routing.policy == "scorer"
        else DefaultPolicy(upper_share=routing.upper_share, config=scorer)
    )
    if routing.policy == "rules":
        policy = RulesPolicy.from_config(
            routing.rules, fallback=policy, source=config.source, registry=registry
        )
    elif routing.policy == "learned" and routing.learned is not None:
        from ..learning import LearnedPolicy

        policy = LearnedPolicy.from_config(routing.learned, source=config.source, registry=registry)
        if routing.learned.get("recalibrate"):
            from ..learning import LearnedConfig
            from ..learning._recalibration import RecalibratingPolicy

            learned = LearnedConfig.from_config(routing.learned, source=config.source)
            policy = RecalibratingPolicy(
                policy,
                target_strong_share=learned.target_strong_share,
                quality_floor=learned.quality_floor,
                window=learned.recalibration_window,
                every=learned.recalibrate_every,
                feedback_horizon=learned.share_feedback_horizon,
            )
    elif routing.policy == "cheapest":
        from ..escalation import CheapestPolicy

        policy = CheapestPolicy()
    elif routing.policy == "classifier" and routing.classifier is not None:
        from ..policies import ClassifierConfig, ClassifierPolicy

        settings = ClassifierConfig.from_config(routing.classifier, source=config.source)
        if settings.model not in registry:
            raise ConfigError(
                f"unknown model id '{settings.model}'; the registry has: {', '.join(registry.ids)}",
                source=config.source,
                key="routing.classifier.model",
            )
        policy = ClassifierPolicy(settings, fallback=policy, tiers=registry.tiers)
    if routing.tasks:
        policy = RulesPolicy.from_config(
            task_rules(routing.tasks, registry=registry, source=config.source),
            fallback=policy,
            source=config.source,
            registry=registry,
            key="routing.tasks",
        )
    return policy


def configured_cascade(config: GearshiftConfig, registry: ModelRegistry) -> QualityGate | None:
    """The quality gate of `[routing.cascade]`, if the config has one."""
    if config.routing.cascade is None:
        return None
    from ..cascades._settings import CascadeConfig, build_cascade

    source = config.source
    return build_cascade(
        CascadeConfig.from_config(config.routing.cascade, source=source),
        registry=registry,
        source=source,
        base_dir=Path(source).parent if Path(source).is_file() else None,
    )


def configured_shadow(config: GearshiftConfig, registry: ModelRegistry) -> ShadowEvaluator | None:
    """The shadow evaluation of `[routing.shadow]`, if the config has one (it needs
    `log.include_prompts`)."""
    if config.routing.shadow is None:
        return None
    from ._shadow import ShadowConfig, ShadowEvaluator

    source = config.source
    # The judge's relative paths start at the config file's folder, which the cascade settings
    # derive from `source` themselves.
    shadow = ShadowEvaluator(
        ShadowConfig.from_config(config.routing.shadow, source=source), registry=registry, source=source
    )
    if not config.log.include_prompts:
        raise ConfigError(
            "shadow evaluation records prompts (they train routers): set [log] include_prompts = true",
            source=source,
            key="routing.shadow",
        )
    return shadow
