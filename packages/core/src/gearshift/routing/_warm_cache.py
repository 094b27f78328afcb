"""Prompt caches within a run: which model has the run's prompt cached, and staying on it when cheaper.

An agent run resends a growing prompt at every step. A provider that caches prompts (Anthropic with
`cache_control`, OpenAI on its own) bills the cached part at a fraction of the input price, but only on
the model that cached it: moving to another model pays the whole prompt again. `WarmCaches` remembers,
per run (`StepContext.run_id`), the model whose answer last read or wrote the cache and how many
tokens it holds; `stay_warm` is the pure step that keeps a run on that model when the policy chose
another of no higher tier and staying costs less than moving, and says so in the reasons.

Caches expire (Anthropic's default lifetime is five minutes, refreshed on each read): an entry older
than `ttl_seconds` is forgotten.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

from .._decision import Decision
from .._messages import Usage
from ..policies import RouteInput

__all__ = ["WarmCache", "WarmCaches", "stay_warm"]


@dataclass(frozen=True, slots=True)
class WarmCache:
    """The model holding a run's prompt cache, the tokens cached, and when it was last used."""

    model_id: str
    tokens: int
    at: float


class WarmCaches:
    """The warm prompt cache of each recent run, at most `max_runs` of them (least recent dropped)."""

    def __init__(self, *, ttl_seconds: float = 300.0, max_runs: int = 10_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_runs = max_runs
        self._runs: OrderedDict[str, WarmCache] = OrderedDict()
        self._lock = threading.Lock()

    def note(self, run_id: str | None, model_id: str, usage: Usage, now: float) -> None:
        """An answer of `model_id` in run `run_id` used the prompt cache: that model's cache is warm."""
        tokens = usage.cache_read_tokens + usage.cache_write_tokens
        if run_id is None or tokens == 0:
            return
        with self._lock:
            self._runs[run_id] = WarmCache(model_id, tokens, now)
            self._runs.move_to_end(run_id)
            while len(self._runs) > self.max_runs:
                self._runs.popitem(last=False)

    def get(self, run_id: str | None, now: float) -> WarmCache | None:
        """The run's warm cache, or None (no run, never cached, or expired)."""
        if run_id is None:
            return None
        with self._lock:
            warm = self._runs.get(run_id)
            if warm is not None and now - warm.at > self.ttl_seconds:
                del self._runs[run_id]
                return None
            return warm


def stay_warm(route: RouteInput, decision: Decision, warm: WarmCache) -> Decision:
    """The decision moved back to the model with the warm cache, when that is no weaker than the
    policy's choice and costs less with the cached tokens at the cached rate than moving does.

    Only a choice of tier is revisited: a policy that named a model other than the cheapest of its
    tier (a rule's `model = ...`) meant that model, and keeps it.
    """
    if warm.model_id == decision.model:
        return decision
    peers = [m for m in route.candidates if m.tier == decision.tier]
    if peers and peers[0].id != decision.model:
        return decision
    spec = next((m for m in route.candidates if m.id == warm.model_id), None)
    if spec is None or spec.tier < decision.tier:
        return decision
    chosen = next((m for m in route.candidates if m.id == decision.model), None)
    if chosen is None:
        return decision
    cached = min(warm.tokens, route.input_tokens)
    stay = spec.estimate_cost(route.input_tokens, route.output_tokens, cached)
    move = route.estimated_cost(chosen)
    if stay >= move:
        return decision
    reason = (
        f"stayed on {spec.id}: its prompt cache is warm ({cached} tokens at the cached rate), "
        f"${stay:.6f} against ${move:.6f} for moving to {chosen.id}"
    )
    return replace(
        decision,
        model=spec.id,
        tier=spec.tier,
        fallbacks=(decision.model, *(m for m in decision.fallbacks if m != spec.id)),
        reasons=(*decision.reasons, reason),
        estimated_cost_usd=stay,
    )
