"""`Cascade`: quality gates composed into one, optionally weighed against the router's own estimate.

A cascade is itself a `QualityGate`, so cascades nest. It runs its gates in the order given, cheapest
first is best, and stops as soon as the outcome is known:

- `mode="all"`: the answer must pass every gate; the first rejection ends the check (a heuristic
  rejection saves the judge call).
- `mode="any"`: one passing gate is enough; the first acceptance ends the check.

With `combine_prior = 0` (the default) the gates decide, each by its own threshold. With
`combine_prior = w > 0` and a pre-call estimate available, the cascade decides from numbers instead:

    q_gate  = the gates' confidence that the answer is good: the lowest confidence among the gates
              that ran (mode "all") or the highest (mode "any"); a gate without a confidence counts
              as 1 when it accepted and 0 when it rejected
    q_prior = the router's pre-call estimate that the answering model does the job (`router_prior`)
    P(escalate) = 1 - ((1 - w) * q_gate + w * q_prior)

and escalates when P(escalate) > 1 - `threshold`, i.e. when the blend falls below `threshold`. The
gates' own thresholds no longer decide then; their confidences do. A certain rejection (a heuristic
one, q_gate = 0) can only be overturned when `w * q_prior >= threshold`, so keep `w` below `threshold`
to let a heuristic always escalate. Without a prior (a policy that reports none) the gates decide.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from ._gate import AnswerCheck, QualityGate, Verdict

__all__ = ["Cascade", "PriorEstimate", "router_prior"]

PriorEstimate = Callable[[AnswerCheck], float | None]
"""Reads the router's pre-call estimate, in [0, 1], that the answering model does the job (or None)."""


def _unit(value: float) -> float:
    return min(max(float(value), 0.0), 1.0)


def router_prior(answer: AnswerCheck) -> float | None:
    """The router's pre-call estimate that the model which answered does the job, from the decision's
    scores: the learned router's predicted quality of that model (`quality:<model id>`), else a
    policy-wide `quality`, else `1 - difficulty` (the zero-training scorer's difficulty); None when
    the policy reported none of them."""
    scores = answer.decision.scores
    model = answer.response.model_id
    for key in (f"quality:{model}", "quality"):
        if key in scores:
            return _unit(scores[key])
    if "difficulty" in scores:
        return 1.0 - _unit(scores["difficulty"])
    return None


def _confidence(verdict: Verdict) -> float:
    if verdict.confidence is None:
        return 1.0 if verdict.accept else 0.0
    return _unit(verdict.confidence)


class Cascade:
    """Composes gates into one gate (`mode="all"` or `"any"`), optionally blending in the router's
    pre-call estimate with weight `combine_prior` (see the module documentation for the rule).

    `threshold` is the blended estimate below which the answer escalates; `prior` reads the router's
    estimate (default `router_prior`).
    """

    name = "cascade"

    def __init__(
        self,
        gates: Sequence[QualityGate],
        *,
        mode: Literal["all", "any"] = "all",
        combine_prior: float = 0.0,
        threshold: float = 0.5,
        prior: PriorEstimate = router_prior,
    ) -> None:
        gates = tuple(gates)
        if not gates:
            raise ValueError("a cascade needs at least one gate")
        for gate in gates:
            if not isinstance(gate, QualityGate):
                raise TypeError(f"{gate!r} is not a quality gate (it needs a `name` and an async `check`)")
        if mode not in ("all", "any"):
            raise ValueError(f"mode must be 'all' or 'any', got {mode!r}")
        if not 0.0 <= combine_prior <= 1.0:
            raise ValueError(f"combine_prior must be in [0, 1], got {combine_prior}")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.gates = gates
        self.mode = mode
        self.combine_prior = combine_prior
        self.threshold = threshold
        self.prior = prior

    def __repr__(self) -> str:
        gates = ", ".join(repr(g) for g in self.gates)
        return f"Cascade([{gates}], mode={self.mode!r}, combine_prior={self.combine_prior})"

    async def _run_gates(self, answer: AnswerCheck) -> list[Verdict]:
        verdicts: list[Verdict] = []
        for gate in self.gates:
            verdict = await gate.check(answer)
            verdicts.append(verdict)
            if verdict.accept == (self.mode == "any"):  # the outcome is settled
                break
        return verdicts

    async def check(self, answer: AnswerCheck) -> Verdict:
        """Run the gates and return one verdict; a rejection names the gate that rejected."""
        verdicts = await self._run_gates(answer)
        confidences = [_confidence(v) for v in verdicts]
        if self.mode == "all":
            accepted = all(v.accept for v in verdicts)
            q_gate = min(confidences)
        else:
            accepted = any(v.accept for v in verdicts)
            q_gate = max(confidences)
        rejecting = [v for v in verdicts if not v.accept]
        prior = self.prior(answer) if self.combine_prior > 0 else None
        if prior is None:
            if accepted:
                return Verdict(True, self.name, confidence=q_gate)
            return self._rejection(rejecting, q_gate)
        w = self.combine_prior
        blend = (1.0 - w) * q_gate + w * _unit(prior)
        if blend >= self.threshold:
            return Verdict(True, self.name, confidence=blend)
        because = (
            f"P(escalate) {1.0 - blend:.2f} above {1.0 - self.threshold:.2f} "
            f"(gates {q_gate:.2f}, router's estimate {prior:.2f}, weight {w:g})"
        )
        if rejecting:
            first = self._rejection(rejecting, q_gate)
            return Verdict(False, first.gate, f"{first.reason}; {because}", blend)
        return Verdict(False, self.name, f"the gates and the router's estimate together: {because}", blend)

    def _rejection(self, rejecting: list[Verdict], confidence: float) -> Verdict:
        if len(rejecting) == 1:
            only = rejecting[0]
            return Verdict(False, only.gate, only.reason, confidence)
        # mode "any": every gate rejected; name them all.
        reason = "; ".join(f"{v.gate}: {v.reason}" if v.reason else v.gate for v in rejecting)
        return Verdict(False, self.name, f"no gate accepted the answer ({reason})", confidence)
