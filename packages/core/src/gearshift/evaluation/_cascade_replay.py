"""Replaying a cascade on an outcome table: what it would have cost, and what quality it kept.

`run_cascade_offline` sends every row of the table through the real `Router`, with the cascade as its
quality gate and a `ReplayProvider` answering each model with its recorded response. Every call starts
at the weak model; the gate sees the weak model's real recorded answer and either keeps it or hands
the request to the strong model, whose recorded answer is returned. Quality is the recorded score of
the answer returned; cost is every attempt the router recorded (the weak answer, the strong one after
an escalation, and any extra call a gate made). The report sets these against always answering with
the weak model and always with the strong one, replayed the same way.

Gates that call a model (an LLM judge, self-consistency) need that model's answer to *their* request
recorded in the table, which outcome tables do not hold; offline, use the heuristic and learned gates.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._bridge import run_sync
from .._context import StepContext
from .._decision import Decision
from .._messages import ChatRequest
from .._models import ModelPrices, ModelRegistry, ModelSpec
from ..cascades._gate import QualityGate
from ..datasets import OutcomeRow, OutcomeTable, OutcomeTableError
from ..policies import Policy, RouteInput, make_decision
from ..providers._replay import ReplayProvider

__all__ = ["CascadeReport", "arun_cascade_offline", "run_cascade_offline"]

_CONCURRENCY = 64


@dataclass(frozen=True, slots=True)
class CascadeReport:
    """A cascade replayed over a table, against always-weak and always-strong.

    Qualities are mean recorded scores; costs are totals in US dollars. `escalations` counts the
    requests handed to the strong model, by the escalation's source (`gate:heuristic`, ...).
    """

    requests: int
    quality: float
    cost_usd: float
    escalated: int
    weak_quality: float
    weak_cost_usd: float
    strong_quality: float
    strong_cost_usd: float
    escalations: Mapping[str, int] = field(default_factory=dict)

    @property
    def escalation_rate(self) -> float:
        """Share of requests the cascade handed to the strong model."""
        return self.escalated / self.requests if self.requests else 0.0

    @property
    def cost_per_request(self) -> float:
        """Mean cost of one request through the cascade, every attempt included."""
        return self.cost_usd / self.requests if self.requests else 0.0

    @property
    def cost_share(self) -> float:
        """The cascade's cost as a share of always calling the strong model."""
        return self.cost_usd / self.strong_cost_usd if self.strong_cost_usd else 0.0

    @property
    def quality_gap_recovered(self) -> float:
        """The share of the weak-to-strong quality gap the cascade closed (RouteLLM's PGR); NaN if none."""
        gap = self.strong_quality - self.weak_quality
        return (self.quality - self.weak_quality) / gap if gap else math.nan

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, derived figures included."""
        return {
            "requests": self.requests,
            "quality": self.quality,
            "cost_usd": self.cost_usd,
            "cost_per_request": self.cost_per_request,
            "escalation_rate": self.escalation_rate,
            "escalations": dict(self.escalations),
            "weak_quality": self.weak_quality,
            "weak_cost_per_request": self.weak_cost_usd / self.requests if self.requests else 0.0,
            "strong_quality": self.strong_quality,
            "strong_cost_per_request": self.strong_cost_usd / self.requests if self.requests else 0.0,
            "cost_share": self.cost_share,
            "quality_gap_recovered": self.quality_gap_recovered,
        }


class _StartCheapest:
    """Answers every request with the cheapest eligible model: a cascade's first rung.

    After a gate rejects, the router plans again with the minimum tier raised, so the cheapest
    eligible model is then the next rung up.
    """

    name = "cascade-start"

    def decide(self, route: RouteInput) -> Decision:
        model = route.candidates[0]
        return make_decision(
            route, model, policy=self.name, reasons=["cascade: start with the cheapest model"]
        )


def _spec(model: ModelSpec | str, tier: int, provider: str) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return model
    # Without prices, the replayed cost is the table's recorded cost_usd (0 where none is recorded).
    return ModelSpec(
        id=model, provider=provider, model=model, tier=tier, prices=ModelPrices(input=0, output=0)
    )


def _usable(table: OutcomeTable, weak: ModelSpec, strong: ModelSpec) -> OutcomeTable:
    rows = table.filter(lambda row: weak.model in row.outcomes and strong.model in row.outcomes)
    if not len(rows):
        raise OutcomeTableError(
            f"no row of the table has outcomes of both {weak.model!r} and {strong.model!r}"
        )
    if not any(row.outcomes[weak.model].response is not None for row in rows):
        raise OutcomeTableError(
            f"the table records no response of {weak.model!r}: a cascade's gates judge the weak model's "
            "answer, so an offline cascade needs the recorded answers (the bundled MMLU data has none)"
        )
    return rows


async def arun_cascade_offline(
    table: OutcomeTable,
    cascade: QualityGate,
    *,
    weak: ModelSpec | str,
    strong: ModelSpec | str,
    policy: Policy | None = None,
    concurrency: int = _CONCURRENCY,
) -> CascadeReport:
    """Replay `table` through a router gated by `cascade`, from `weak` up to `strong`.

    `weak` and `strong` are model specs (tiers and prices; `model` is the table's model key) or table
    model keys. `policy` replaces the default start at the cheapest model, to try a cascade behind a
    router's own choice. Rows lacking an outcome of either model are left out.
    """
    from ..routing._router import Router

    provider_name = weak.provider if isinstance(weak, ModelSpec) else "replay"
    weak_spec, strong_spec = _spec(weak, 0, provider_name), _spec(strong, 1, provider_name)
    if weak_spec.tier >= strong_spec.tier:
        raise ValueError(
            f"the weak model's tier ({weak_spec.tier}) must be below the strong one's ({strong_spec.tier})"
        )
    rows = _usable(table, weak_spec, strong_spec)
    replay = ReplayProvider(rows, name=provider_name)
    router = Router(
        ModelRegistry([weak_spec, strong_spec]),
        policy=policy or _StartCheapest(),
        providers=[replay],
        cascade=cascade,
        max_escalations=1,
    )
    gate = asyncio.Semaphore(concurrency)

    async def one(row: OutcomeRow) -> tuple[float, float, str | None, float, float, float, float]:
        request = ChatRequest(messages=row.as_messages())
        async with gate:
            routed = await router.acomplete(request, StepContext(metadata={"task": row.task}))
            weak_answer = await replay.complete(weak_spec, request)
            strong_answer = await replay.complete(strong_spec, request)
        source = routed.escalations[0].source if routed.escalations else None
        return (
            float(routed.response.metadata["score"]),
            routed.cost_usd,
            source,
            float(weak_answer.metadata["score"]),
            weak_answer.cost_usd,
            float(strong_answer.metadata["score"]),
            strong_answer.cost_usd,
        )

    results = await asyncio.gather(*(one(row) for row in rows))
    n = len(results)
    sources = Counter(r[2] for r in results if r[2] is not None)
    return CascadeReport(
        requests=n,
        quality=math.fsum(r[0] for r in results) / n,
        cost_usd=math.fsum(r[1] for r in results),
        escalated=sum(sources.values()),
        weak_quality=math.fsum(r[3] for r in results) / n,
        weak_cost_usd=math.fsum(r[4] for r in results),
        strong_quality=math.fsum(r[5] for r in results) / n,
        strong_cost_usd=math.fsum(r[6] for r in results),
        escalations=dict(sorted(sources.items())),
    )


def run_cascade_offline(
    table: OutcomeTable,
    cascade: QualityGate,
    *,
    weak: ModelSpec | str,
    strong: ModelSpec | str,
    policy: Policy | None = None,
    concurrency: int = _CONCURRENCY,
) -> CascadeReport:
    """`arun_cascade_offline` for synchronous callers."""
    return run_sync(
        arun_cascade_offline(table, cascade, weak=weak, strong=strong, policy=policy, concurrency=concurrency)
    )
