"""`LearnedPolicy`: routing with a `LearnedRouter` inside the core `Router`, and its config.

The policy predicts each of the router's models' quality for the request, keeps the models that are
eligible for it (the router has already checked capabilities, context window and caller hints), and
picks the one with the best `predicted quality - tradeoff x relative cost`. The artifact's model names
map onto registry ids (the same names unless `models` says otherwise); a model the registry lacks or
that cannot serve this request is skipped, and the reasons say so.

Pure and synchronous like every policy: the features come from the request's text, the signals the
router already computed and the task label the caller put in `StepContext.metadata["task"]`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field

from .._decision import Decision
from .._errors import ConfigError
from .._models import ModelRegistry, ModelSpec
from ..policies import RouteInput, fallback_chain, make_decision
from ._calibration import OperatingPoint
from ._features import PromptInput
from ._router_model import LearnedRouter
from ._settings import ArtifactSettings

__all__ = ["LearnedConfig", "LearnedPolicy"]

_TARGETS = ("target_strong_share", "quality_floor", "max_cost_per_request", "tradeoff")
# Distinct candidate sets stay few; past this many the cache starts over rather than grow.
_MAX_SLATES = 64


class LearnedConfig(ArtifactSettings):
    """Settings of the learned policy (the `[routing.learned]` table of gearshift.toml).

    At most one of `target_strong_share`, `quality_floor`, `max_cost_per_request` and `tradeoff`;
    with none, the router routes at the operating point calibrated when it was trained.
    """

    targets = _TARGETS
    accepted_by = "the learned policy"

    path: str = Field(
        description="The router artifact written by `gearshift train` (JSON); relative paths start at "
        "the config file's folder."
    )
    target_strong_share: float | None = Field(
        default=None, ge=0, le=1, description="Send about this share of calls to the most expensive model."
    )
    quality_floor: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="The cheapest operating point whose expected mean quality is at least this.",
    )
    max_cost_per_request: float | None = Field(
        default=None,
        ge=0,
        description="The best operating point whose expected mean cost per request (USD) is at most this.",
    )
    tradeoff: float | None = Field(
        default=None,
        description="Route at this trade-off: quality given up per unit of relative cost (0 = best quality).",
    )
    models: dict[str, str] = Field(
        default_factory=dict,
        description="Artifact model name -> registry model id, for models registered under other ids.",
    )
    recalibrate: bool = Field(
        default=False,
        description="Hold target_strong_share (or quality_floor) on live traffic by re-thresholding on a "
        "sliding window of recent decisions (needs one of them).",
    )
    recalibration_window: int = Field(default=500, ge=10, description="Decisions in the sliding window.")
    recalibrate_every: int = Field(default=100, ge=1, description="Decisions between two recalibrations.")
    share_feedback_horizon: float = Field(
        default=10,
        ge=0,
        description="With recalibrate: correct the threshold before every decision by the realised excess "
        "of strong decisions over the target's count, paid back over about this many decisions "
        "(0: the window's quantile re-fit alone).",
    )

    @classmethod
    def from_config(
        cls, data: Mapping[str, Any], *, source: str = "<python>", key: str = "routing.learned"
    ) -> LearnedConfig:
        """Validate user-written settings; a `ConfigError` names the offending key and why."""
        settings: LearnedConfig = cls.validate_table(data, source=source, key=key)
        if settings.recalibrate and settings.target_strong_share is None and settings.quality_floor is None:
            raise ConfigError(
                "recalibrate = true holds target_strong_share (or quality_floor) on live traffic: set "
                "target_strong_share or quality_floor",
                source=source,
                key=f"{key}.recalibrate",
            )
        if 0 < settings.share_feedback_horizon < 1:
            raise ConfigError(
                f"must be 0 (off) or at least 1 decision, got {settings.share_feedback_horizon}",
                source=source,
                key=f"{key}.share_feedback_horizon",
            )
        return settings

    def operating_point(self, router: LearnedRouter) -> OperatingPoint:
        """The operating point these settings ask for (the artifact's own when none is set)."""
        targets = {name: getattr(self, name) for name in _TARGETS if getattr(self, name) is not None}
        return router.operating_point_for(**targets) if targets else router.operating_point


def _check_share_models(
    settings: LearnedConfig, router: LearnedRouter, registry: ModelRegistry, *, source: str, key: str
) -> None:
    """A share or quality target is a split between the artifact's cheapest and most expensive models:
    with either unregistered, every call would go to the other one, whatever the target says."""
    target = "target_strong_share" if settings.target_strong_share is not None else "quality_floor"
    if getattr(settings, target) is None:
        return
    costs = router.relative_costs
    for model in (router.models[int(np.argmin(costs))], router.models[int(np.argmax(costs))]):
        model_id = settings.models.get(model, model)
        if model_id not in registry:
            shown = f"'{model}'" if model_id == model else f"'{model}' (mapped to '{model_id}')"
            raise ConfigError(
                f"{target} splits calls between the artifact's cheapest and most expensive models, but "
                f"{shown} is not in the registry (it has: {', '.join(registry.ids)}); register it or map "
                "it with `models = {artifact name = registry id}`",
                source=source,
                key=f"{key}.models",
            )


@dataclass(frozen=True, slots=True)
class _Slate:
    """For one candidates tuple: the router's models that are eligible, and why the others are not."""

    candidates: tuple[ModelSpec, ...]
    indices: np.ndarray
    specs: tuple[ModelSpec, ...]
    fallbacks: tuple[tuple[str, ...], ...]
    skipped: tuple[str, ...]


class LearnedPolicy:
    """Routes with a trained `LearnedRouter`. Pure and synchronous; a decision takes well under a millisecond.

    `model_map` maps the artifact's model names to registry ids (identity by default).
    `operating_point` overrides the router's calibrated one. `registry`, when given, lets the reasons
    tell a model the registry lacks from one that cannot serve a particular request.
    """

    name = "learned"

    def __init__(
        self,
        router: LearnedRouter,
        *,
        model_map: Mapping[str, str] | None = None,
        operating_point: OperatingPoint | None = None,
        registry: ModelRegistry | None = None,
    ) -> None:
        mapping = dict(model_map or {})
        unknown = sorted(set(mapping) - set(router.models))
        if unknown:
            raise ConfigError(
                f"model map names '{unknown[0]}', which the router was not trained on "
                f"(it knows: {', '.join(router.models)})"
            )
        self.router = router
        self.operating_point = operating_point if operating_point is not None else router.operating_point
        self.registry_ids = tuple(mapping.get(model, model) for model in router.models)
        self._registered = None if registry is None else frozenset(registry.ids)
        self._tradeoff = float(self.operating_point.tradeoff)
        self._penalty = self._tradeoff * router.relative_costs
        self._slates: dict[tuple[int, ...], _Slate] = {}
        self._last: _Slate | None = None
        training = router.training
        self._about = f"learned router ({training.method}, trained on {training.rows:,} prompts)"
        self._point = f"trade-off {self._tradeoff:.3g} ({self.operating_point.target})"

    @property
    def tradeoff(self) -> float:
        """The trade-off it routes at: quality given up per unit of relative cost."""
        return self._tradeoff

    def retune(self, tradeoff: float, why: str) -> None:
        """Route at `tradeoff` from now on (recalibration on live traffic); `why` goes in the reasons."""
        self._tradeoff = float(tradeoff)
        self._penalty = self._tradeoff * self.router.relative_costs
        self._point = f"trade-off {self._tradeoff:.3g} ({why})"

    @classmethod
    def from_config(
        cls,
        config: LearnedConfig | Mapping[str, Any],
        *,
        source: str = "<python>",
        registry: ModelRegistry | None = None,
        key: str = "routing.learned",
    ) -> LearnedPolicy:
        """The policy a `[routing.learned]` table describes; `source` is the config file (for paths).

        Raises `ConfigError` for bad settings, a missing or unusable artifact, a model map naming
        models the artifact lacks, and an artifact none of whose models the registry has.
        """
        settings = (
            config
            if isinstance(config, LearnedConfig)
            else LearnedConfig.from_config(config, source=source, key=key)
        )
        path = settings.artifact_path(source)
        if not path.is_file():
            raise ConfigError(
                f"router artifact {os.fspath(path)!r} does not exist; train one with "
                "`gearshift train --data OUTCOMES.jsonl --out ROUTER.json`",
                source=source,
                key=f"{key}.path",
            )
        router = LearnedRouter.load(path)
        unknown = sorted(set(settings.models) - set(router.models))
        if unknown:
            raise ConfigError(
                f"the artifact has no model named '{unknown[0]}' (it has: {', '.join(router.models)})",
                source=source,
                key=f"{key}.models",
            )
        if registry is not None and not any(settings.models.get(m, m) in registry for m in router.models):
            raise ConfigError(
                f"none of the artifact's models ({', '.join(router.models)}) is in the registry; map them "
                "to registry ids with `models = {artifact name = registry id}`",
                source=source,
                key=f"{key}.models",
            )
        if registry is not None:
            _check_share_models(settings, router, registry, source=source, key=key)
        try:
            point = settings.operating_point(router)
        except ConfigError as exc:
            raise ConfigError(str(exc), source=source, key=key) from None
        return cls(router, model_map=settings.models, operating_point=point, registry=registry)

    def __repr__(self) -> str:
        return f"LearnedPolicy({self.router!r}, operating_point={self.operating_point.target!r})"

    def decide(self, route: RouteInput) -> Decision:
        """The eligible model with the best predicted quality for its cost."""
        slate = self._last
        if slate is None or slate.candidates is not route.candidates:
            slate = self._slate(route.candidates)
        if not slate.specs:
            chosen = route.candidates[0]
            reasons = [
                f"{self._about}: none of its models can serve this request; "
                "using the cheapest eligible model",
                *slate.skipped,
            ]
            return make_decision(route, chosen, policy=self.name, reasons=reasons)
        task = route.context.metadata.get("task")
        text = "\n\n".join(m.text for m in route.request.messages if m.role == "user")
        item = PromptInput(text, route.signals, task if isinstance(task, str) else None)
        predicted = self.router.predict_inputs((item,))[0]
        indices = slate.indices
        quality = predicted[indices]
        pick = int(np.argmax(quality - self._penalty[indices]))
        chosen = slate.specs[pick]
        names = self.router.models
        scores = {f"quality:{names[i]}": float(q) for i, q in zip(indices, quality, strict=False)}
        scores["tradeoff"] = self._tradeoff
        reasons = [
            f"{self._about}: predicted quality "
            + ", ".join(f"{names[i]} {q:.2f}" for i, q in zip(indices, quality, strict=False)),
            self._why(indices, quality, pick),
            *slate.skipped,
        ]
        return make_decision(
            route, chosen, policy=self.name, reasons=reasons, scores=scores, fallbacks=slate.fallbacks[pick]
        )

    def _why(self, indices: np.ndarray, quality: np.ndarray, pick: int) -> str:
        names, rel = self.router.models, self.router.relative_costs
        chosen = names[indices[pick]]
        if len(indices) == 2:
            weak, strong = int(indices[0]), int(indices[1])
            gain = float(quality[1] - quality[0])
            threshold = self._tradeoff * float(rel[strong] - rel[weak])
            verdict = "worth" if pick == 1 else "not worth"
            return (
                f"{self._point}: predicted gain of {names[strong]} over {names[weak]} {gain:+.2f} against "
                f"a threshold of {threshold:.2f}, {verdict} the extra cost -> {chosen}"
            )
        return f"{self._point}: {chosen} has the best predicted quality for its cost"

    def _slate(self, candidates: tuple[ModelSpec, ...]) -> _Slate:
        key = tuple(map(id, candidates))
        slate = self._slates.get(key)
        if slate is None or slate.candidates != candidates:
            by_id = {spec.id: spec for spec in candidates}
            indices, specs, skipped = [], [], []
            for index, (name, model_id) in enumerate(
                zip(self.router.models, self.registry_ids, strict=False)
            ):
                spec = by_id.get(model_id)
                if spec is not None:
                    indices.append(index)
                    specs.append(spec)
                    continue
                shown = model_id if model_id == name else f"{model_id} (artifact model {name})"
                if self._registered is None:
                    skipped.append(f"skipped {shown}: not an eligible model here (unregistered or ruled out)")
                elif model_id not in self._registered:
                    skipped.append(f"skipped {shown}: not in the model registry")
                else:
                    skipped.append(f"skipped {shown}: not eligible for this request")
            slate = _Slate(
                candidates,
                np.asarray(indices, dtype=np.intp),
                tuple(specs),
                tuple(fallback_chain(candidates, spec) for spec in specs),
                tuple(skipped),
            )
            if len(self._slates) >= _MAX_SLATES:
                self._slates.clear()
            self._slates[key] = slate
        self._last = slate
        return slate
