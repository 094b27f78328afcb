"""Routing policies: one protocol, `decide(route) -> Decision`, pure and synchronous."""

from ._classifier import CLASSIFICATION_KEY, ClassifierConfig, ClassifierPolicy
from ._protocol import Policy, RouteInput, fallback_chain, make_decision
from ._rule_conditions import RuleConditions
from ._rules import Rule, RulesPolicy, task_rules
from ._scorer import ScorerConfig, SignalScorer

__all__ = [
    "CLASSIFICATION_KEY",
    "ClassifierConfig",
    "ClassifierPolicy",
    "Policy",
    "RouteInput",
    "Rule",
    "RuleConditions",
    "RulesPolicy",
    "ScorerConfig",
    "SignalScorer",
    "fallback_chain",
    "make_decision",
    "task_rules",
]
