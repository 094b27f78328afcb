"""Execution: the `Router` and what carries out its decisions.

A decision (`_decide`, pure; planned for each step by `_planning`) becomes a chain run (`_chain`:
fallbacks, cooldowns, deployments,
budget reservations), reviewed by the review loop (`_review`: self-escalation and cascade gates);
records go to the decision log (`_records`, `_decision_log`) and traces (`_tracing`). Shadow
evaluation, speculative classification and batches work through the router as a `RouterHost`.

The public names (`Router`, `RoutedResponse`, ...) are exported from `gearshift`.
"""

__all__: list[str] = []
