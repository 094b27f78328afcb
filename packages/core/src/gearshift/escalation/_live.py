"""The learned escalation in a live router: the `[routing.escalation]` table and the per-run tier floors.

```toml
[routing.escalation]
path = "escalation.json"   # written by `gearshift train-escalation`; relative to this file
# threshold = 0.4          # or success_floor = 0.95, or target_handover_share = 0.2 (one at most)
# sticky = true            # a run handed up stays up (per run id)
# max_runs = 10000         # how many runs' floors are kept in memory (least recently used go first)
```

`LiveEscalation` is what the router holds: the model and, when `sticky`, each run's floor (the tier
its learned hand-over took it to), bounded in memory and keyed by run id. For each step it gives the
router an `EscalationPolicy` over the router's own policy with that run's floor, and after the step is
decided it remembers a hand-over. The decision itself stays the pure `EscalationPolicy.decide`, the
code path `gearshift eval-agents` replays.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from .._context import StepContext
from .._decision import Decision
from .._errors import ConfigError
from ..learning._settings import ArtifactSettings
from ..policies import Policy
from ._model import EscalationModel
from ._policy import EscalationPolicy, RunFloor
from ._training import pick_threshold

__all__ = ["DEFAULT_MAX_RUNS", "EscalationConfig", "LiveEscalation"]

DEFAULT_MAX_RUNS = 10_000
"""How many runs' floors a router keeps by default; the least recently used are forgotten first."""


class EscalationConfig(ArtifactSettings):
    """Settings of the live learned escalation (the `[routing.escalation]` table of gearshift.toml).

    At most one of `threshold`, `success_floor` and `target_handover_share`; with none, the threshold
    calibrated when the artifact was trained.
    """

    targets = ("threshold", "success_floor", "target_handover_share")
    accepted_by = "the escalation"

    path: str = Field(
        description="The escalation artifact written by `gearshift train-escalation` (JSON); relative "
        "paths start at the config file's folder."
    )
    threshold: float | None = Field(
        default=None, ge=0, le=1, description="Hand a step up when its predicted failure risk is above this."
    )
    success_floor: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="The cheapest threshold of the artifact's training curve keeping this share of "
        "always-strong's success.",
    )
    target_handover_share: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="The threshold of the artifact's training curve handing about this share of runs up.",
    )
    sticky: bool = Field(
        default=True,
        description="A run handed up stays on that tier for its later steps (runs are told apart by run id).",
    )
    max_runs: int = Field(
        default=DEFAULT_MAX_RUNS, gt=0, description="How many runs' tiers are kept in memory at most."
    )

    @classmethod
    def from_config(
        cls, data: Mapping[str, Any], *, source: str = "<python>", key: str = "routing.escalation"
    ) -> EscalationConfig:
        """Validate user-written settings; a `ConfigError` names the file, the offending key and why."""
        settings: EscalationConfig = cls.validate_table(data, source=source, key=key)
        return settings

    def operating_model(
        self, model: EscalationModel, *, source: str = "<python>", key: str = "routing.escalation"
    ) -> EscalationModel:
        """`model` at the threshold these settings ask for (its own when none is set)."""
        if self.threshold is not None:
            return model.with_threshold(self.threshold, f"threshold {self.threshold} set in {source}")
        if self.success_floor is None and self.target_handover_share is None:
            return model
        name = "success_floor" if self.success_floor is not None else "target_handover_share"
        if not model.curve:
            raise ConfigError(
                "the artifact holds no training curve to pick a threshold from; set `threshold` instead",
                source=source,
                key=f"{key}.{name}",
            )
        # At the curve's lowest threshold every run is handed up at its first step: always-strong.
        strong_success = min(model.curve, key=lambda point: point[0])[2]
        threshold, target = pick_threshold(
            model.curve,
            strong_success,
            success_floor=self.success_floor,
            target_handover_share=self.target_handover_share,
        )
        return model.with_threshold(threshold, target)


class LiveEscalation:
    """The learned escalation as a router applies it on every step: the model, and each run's floor.

    `policy_for(base, context)` is the policy for one step: `EscalationPolicy(base, model)` with the
    run's floor when the run was handed up before. `remember(context, decision)` records a decided
    step's hand-over as the run's floor when `sticky` (runs without a run id are never held). At most
    `max_runs` floors are kept; the least recently used are forgotten first. Safe to share between
    threads.
    """

    def __init__(
        self,
        model: EscalationModel,
        *,
        sticky: bool = True,
        max_runs: int = DEFAULT_MAX_RUNS,
        name: str = "learned-escalation",
    ) -> None:
        if max_runs <= 0:
            raise ConfigError(f"must be positive, got {max_runs}", key="routing.escalation.max_runs")
        self.model = model
        self.sticky = sticky
        self.max_runs = max_runs
        self.name = name
        self._floors: OrderedDict[str, RunFloor] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_config(
        cls,
        config: EscalationConfig | Mapping[str, Any],
        *,
        source: str = "<python>",
        key: str = "routing.escalation",
    ) -> LiveEscalation:
        """The escalation a `[routing.escalation]` table describes; `source` is the config file (for paths).

        Raises `ConfigError` for bad settings and for a missing or unusable artifact.
        """
        settings = (
            config
            if isinstance(config, EscalationConfig)
            else EscalationConfig.from_config(config, source=source, key=key)
        )
        path = settings.artifact_path(source)
        if not path.is_file():
            raise ConfigError(
                f"escalation artifact {os.fspath(path)!r} does not exist; train one with "
                "`gearshift train-escalation --data RUNS.jsonl --out ESCALATION.json`",
                source=source,
                key=f"{key}.path",
            )
        model = settings.operating_model(EscalationModel.load(path), source=source, key=key)
        return cls(model, sticky=settings.sticky, max_runs=settings.max_runs)

    def __repr__(self) -> str:
        return f"LiveEscalation({self.model!r}, sticky={self.sticky}, runs held={len(self._floors)})"

    def floor(self, run_id: str) -> RunFloor | None:
        """The floor run `run_id` is held at, if any."""
        with self._lock:
            floor = self._floors.get(run_id)
            if floor is not None:
                self._floors.move_to_end(run_id)
            return floor

    def policy_for(self, base: Policy, context: StepContext) -> EscalationPolicy:
        """The policy deciding one step of `context`'s run: `base`, held at the run's floor, then the risk."""
        floor = self.floor(context.run_id) if self.sticky and context.run_id else None
        return EscalationPolicy(base, self.model, name=self.name, floor=floor)

    def remember(self, context: StepContext, decision: Decision) -> None:
        """Keep the tier of a step the learned escalation handed up as its run's floor (when sticky)."""
        run_id = context.run_id
        if not self.sticky or not run_id or decision.policy != self.name:
            return
        risk = decision.scores.get("escalation_risk")
        if risk is None or risk <= decision.scores.get("escalation_threshold", 1.0):
            return
        with self._lock:
            held = self._floors.get(run_id)
            if held is not None and held.tier >= decision.tier:
                self._floors.move_to_end(run_id)
                return
            self._floors[run_id] = RunFloor(run_id, decision.tier, context.step_index, decision.reasons[0])
            self._floors.move_to_end(run_id)
            while len(self._floors) > self.max_runs:
                self._floors.popitem(last=False)

    def forget(self, run_id: str) -> None:
        """Drop run `run_id`'s floor (a finished run's tier need not be kept)."""
        with self._lock:
            self._floors.pop(run_id, None)

    @property
    def runs_held(self) -> int:
        """How many runs are held at a floor now."""
        return len(self._floors)
