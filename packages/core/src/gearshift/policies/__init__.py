"""Routing policies: one protocol, `decide(route) -> Decision`, pure and synchronous."""

from ._protocol import Policy, RouteInput, fallback_chain, make_decision
from ._rules import Rule, RuleConditions, RulesPolicy
from ._scorer import ScorerConfig, SignalScorer

__all__ = [
    "Policy",
    "RouteInput",
    "Rule",
    "RuleConditions",
    "RulesPolicy",
    "ScorerConfig",
    "SignalScorer",
    "fallback_chain",
    "make_decision",
]
