"""`EscalationPolicy`: a base policy's decision, moved a tier up when the run looks like it will fail."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .._decision import Decision
from ..policies import Policy, RouteInput, make_decision
from ._features import facts_of
from ._model import EscalationModel

__all__ = ["CheapestPolicy", "EscalationPolicy", "RunFloor"]


@dataclass(frozen=True, slots=True)
class RunFloor:
    """The tier a run was handed up to, kept for its later steps: where and why it was handed up.

    `step` is the 0-based step index of the hand-over; `reason` the hand-over's first reason.
    """

    run_id: str
    tier: int
    step: int
    reason: str

    def describe(self) -> str:
        """`run 't-1' was handed up to tier 2 at step 3 (…); it stays there`."""
        return (
            f"run '{self.run_id}' was handed up to tier {self.tier} at step {self.step + 1} "
            f"({self.reason}); it stays there"
        )


class CheapestPolicy:
    """Always the cheapest eligible model of the lowest tier: the base a pure escalation starts from."""

    name = "cheapest"

    def decide(self, route: RouteInput) -> Decision:
        """The first candidate (candidates come weakest and cheapest first)."""
        return make_decision(
            route, route.candidates[0], policy=self.name, reasons=["the cheapest eligible model"]
        )


class EscalationPolicy:
    """Asks `base`, then moves the step to the next tier up when the predicted failure risk is too high.

    The risk is the `EscalationModel`'s, from the run's features as this step sees them; above the
    model's calibrated threshold the decision takes the cheapest model of the next tier above the
    base's choice, and the reasons say why ("3 tool errors in a row and a repeated call: predicted
    failure 0.71 > 0.40"). `Decision.scores` carry `escalation_risk` and `escalation_threshold`.
    A step the base already sends to the top tier is left as it is (no risk is computed).

    `floor`, when given, is where an earlier step of the same run was handed up to (the router keeps
    it per run, see `LiveEscalation`): a base decision below it is raised to it first, and the risk
    is then weighed against the tiers above it. Pure and synchronous, like every policy.
    """

    def __init__(
        self,
        base: Policy,
        model: EscalationModel,
        *,
        name: str = "learned-escalation",
        floor: RunFloor | None = None,
    ) -> None:
        self.base = base
        self.model = model
        self.name = name
        self.floor = floor

    def __repr__(self) -> str:
        return f"EscalationPolicy({self.base!r}, {self.model!r})"

    def decide(self, route: RouteInput) -> Decision:
        """The base's decision, or the next tier up when the risk crosses the threshold."""
        decision = self.base.decide(route)
        if self.floor is not None:
            decision = self._hold(route, decision, self.floor)
        above = [tier for tier in route.tiers if tier > decision.tier]
        if not above:
            return decision
        facts = facts_of(route)
        risk = self.model.risk(self.model.vector(route, facts))
        threshold = self.model.threshold
        scores = {**decision.scores, "escalation_risk": risk, "escalation_threshold": threshold}
        if risk <= threshold:
            reason = f"{facts.describe()}: predicted failure {risk:.2f} <= {threshold:.2f}, no hand-over"
            return replace(decision, reasons=(*decision.reasons, reason), scores=scores)
        chosen = route.cheapest_in_tier(above[0])
        reasons = (
            f"{facts.describe()}: predicted failure {risk:.2f} > {threshold:.2f}",
            f"hand the step up to tier {chosen.tier} ({chosen.id}) instead of {decision.model}",
            *decision.reasons,
        )
        return make_decision(route, chosen, policy=self.name, reasons=reasons, scores=scores)

    def _hold(self, route: RouteInput, decision: Decision, floor: RunFloor) -> Decision:
        """`decision`, raised to the run's floor when it is below it and the floor's tier is eligible."""
        if decision.tier >= floor.tier:
            return decision
        chosen = route.cheapest_in_tier(floor.tier)
        if chosen.tier <= decision.tier:  # the caller's hints keep this step below the floor
            return decision
        reasons = (floor.describe(), *decision.reasons)
        return make_decision(route, chosen, policy=self.name, reasons=reasons, scores=decision.scores)
