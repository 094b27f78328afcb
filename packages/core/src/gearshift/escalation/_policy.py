"""`EscalationPolicy`: a base policy's decision, moved a tier up when the run looks like it will fail."""

from __future__ import annotations

from dataclasses import replace

from .._decision import Decision
from ..policies import Policy, RouteInput, make_decision
from ._features import facts_of
from ._model import EscalationModel

__all__ = ["CheapestPolicy", "EscalationPolicy"]


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
    Pure and synchronous, like every policy.
    """

    def __init__(self, base: Policy, model: EscalationModel, *, name: str = "learned-escalation") -> None:
        self.base = base
        self.model = model
        self.name = name

    def __repr__(self) -> str:
        return f"EscalationPolicy({self.base!r}, {self.model!r})"

    def decide(self, route: RouteInput) -> Decision:
        """The base's decision, or the next tier up when the risk crosses the threshold."""
        decision = self.base.decide(route)
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
