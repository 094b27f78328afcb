"""The report's figures: one pass over decision-log records, joined by request id (pure, no I/O).

A *request* is one routed call (one `request_id`). Its answer is its last successful attempt, unless
a hand-over's error reached the caller (an escalation record with `outcome` "error": the stronger
model's bad request, a cancellation, a stream the caller stopped reading), which leaves the request
unanswered though the weaker model's attempt succeeded. Its cost is the sum of its attempts', its tier
the tier of the model that answered. Its always-strongest
counterfactual prices the answering attempt's tokens at the `reference` of its first decision (the
cheapest model of the top eligible tier): at its whole price list when the record carries it, so cache
reads and writes and long-context tiers are priced as that model bills them (older logs give only its
input and output prices). Escalation rates are over answered requests: a request a budget refused
(or every model failed, or a hand-over's error reached the caller) was never answered, so it cannot
have escalated. Escalation causes: `gate` and
`self` from escalation records whose hand-over the stronger model answered (one that found no answer,
its `outcome` "kept", "empty" or "error", is counted apart as a failed hand-over; a record older than
`outcome` was written as the hand-over started and counts as answered), `step_signals` when a decision's
`scores.escalation > 0` (the scorer moved the step up for a tool error streak or a loop), `learned`
when the learned escalation handed the step up or held it up.
Upward shadow pairs give the judged quality of the answers callers got below the reference's tier
against the reference model's; downward pairs (calls answered at or above it, also asked of the
cheapest model) give the share that was over-routed: the cheap answer scored as well. A shadow's own
calls (`run_id` `shadow:<request id>`) are counted as shadow spend, not as traffic, and in one agent's
report only when they shadow that agent's calls.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from .._messages import Usage
from .._models import ModelPrices

__all__ = ["CAUSES", "build_report"]

CAUSES = ("gate", "self", "step_signals", "learned")
"""The escalation causes the report tells apart."""

_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
)
"""An attempt record's token counts, in `Usage`'s order (older logs lack the cache ones)."""
_BINS = 10  # of the predicted-difficulty histograms (difficulty is in [0, 1])


class _Call:
    """What the report keeps of one request while reading."""

    __slots__ = (
        "agent",
        "causes",
        "cost",
        "difficulty",
        "failed",
        "failed_handovers",
        "handover_error",
        "model",
        "reference",
        "ts",
        "usage",
    )

    def __init__(self, ts: float, agent: str | None) -> None:
        self.ts = ts
        self.agent = agent
        self.model: str | None = None  # of the last successful attempt
        self.cost = 0.0
        self.usage = Usage()
        self.reference: Mapping[str, Any] | None = None
        self.difficulty: float | None = None
        self.causes: set[str] | None = None
        self.failed: list[str] | None = None
        self.failed_handovers = 0
        self.handover_error = False

    @property
    def answered_by(self) -> str | None:
        """The model whose answer the caller got; None when the caller got none: every model failed,
        a budget refused the call, or a hand-over's error reached the caller after a weaker model
        answered (its answer was never returned)."""
        return None if self.handover_error else self.model

    def cause(self, cause: str) -> None:
        if self.causes is None:
            self.causes = set()
        self.causes.add(cause)

    def escalated(self) -> bool:
        """Whether an answered request escalated: a request never answered (a budget refused it, every
        model failed) has no escalation to count, so escalation rates are over answered requests."""
        return self.answered_by is not None and self.causes is not None

    def counterfactual(self) -> float | None:
        ref = self.reference
        if ref is None or self.answered_by is None:
            return None
        prices = ref.get("prices")
        if isinstance(prices, Mapping):
            try:
                return ModelPrices.model_validate(prices).cost(self.usage)
            except ValidationError:
                pass  # a list this version cannot read: its input and output prices still price it
        plain = self.usage.input_tokens * float(ref["input_per_mtok"])
        return (plain + self.usage.output_tokens * float(ref["output_per_mtok"])) / 1e6


class _Totals:
    """Requests, cost and the counterfactual of a group of requests (all, one agent, one day)."""

    __slots__ = (
        "answered",
        "cost",
        "escalated",
        "priced",
        "reference_cost",
        "requests",
        "tiers",
        "unpriced_cost",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.answered = 0
        self.escalated = 0
        self.cost = 0.0
        self.priced = 0
        self.reference_cost = 0.0
        self.unpriced_cost = 0.0
        self.tiers: Counter[int] = Counter()

    def add(self, call: _Call, tier: int | None) -> None:
        self.requests += 1
        self.cost += call.cost
        self.answered += call.answered_by is not None
        self.escalated += call.escalated()
        if tier is not None:
            self.tiers[tier] += 1
        reference = call.counterfactual()
        if reference is None:
            self.unpriced_cost += call.cost
        else:
            self.priced += 1
            self.reference_cost += reference

    def to_dict(self) -> dict[str, Any]:
        # Savings compare like with like: the requests that have a counterfactual price.
        priced_cost = self.cost - self.unpriced_cost
        savings = self.reference_cost - priced_cost
        return {
            "requests": self.requests,
            "cost_usd": self.cost,
            "cost_per_request_usd": self.cost / self.requests if self.requests else 0.0,
            "escalation_rate": self.escalated / self.answered if self.answered else 0.0,
            "always_strongest_usd": self.reference_cost,
            "savings_usd": savings,
            "savings_share": savings / self.reference_cost if self.reference_cost > 0 else None,
            "requests_without_counterfactual": self.requests - self.priced,
        }


def build_report(records: Iterable[Mapping[str, Any]], *, agent: str | None = None) -> dict[str, Any]:
    """The report over `records` (oldest first), for one agent's requests when `agent` is given.

    Returns a JSON-ready dict; `gearshift report --json` prints it and `--html` renders it.
    """
    calls: dict[str, _Call] = {}
    tiers: dict[str, int] = {}
    latencies: defaultdict[str, list[float]] = defaultdict(list)
    model_cost: defaultdict[str, float] = defaultdict(float)
    attempts: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    error_kinds: defaultdict[str, Counter[str]] = defaultdict(Counter)
    budget: dict[str, float] = {"refusals": 0, "overruns": 0, "overrun_excess_usd": 0.0}
    # One score per request and source, the latest: a scorer that corrects itself, or resends, is one voice.
    feedback: dict[tuple[str, str], float] = {}
    shadow = _Shadow()
    kinds: Counter[str] = Counter()
    agents: set[str] = set()  # of every routed call, whatever `agent` keeps
    first_ts: float | None = None
    last_ts: float | None = None
    for record in records:
        kind = record.get("kind")
        rid = record.get("request_id")
        kinds[str(kind)] += 1
        ts = record.get("ts")
        if isinstance(ts, (int, float)):
            # min and max, not first and last: routers sharing a log append their batches out of order
            first_ts = ts if first_ts is None or ts < first_ts else first_ts
            last_ts = ts if last_ts is None or ts > last_ts else last_ts
        run_id = str(record.get("run_id") or "")
        if run_id.startswith("shadow:"):
            # A shadow's own calls (reference answer, judge) are spend, not live traffic, and are the
            # spend of the agent whose call they shadow (their run id names it; it came before them).
            if kind == "attempt" and (agent is None or run_id[len("shadow:") :] in calls):
                shadow.spend(float(record.get("cost_usd") or 0.0))
            continue
        if kind == "decision" and record.get("agent_id") is not None:
            agents.add(str(record["agent_id"]))
        if agent is not None and kind not in ("feedback", "shadow") and record.get("agent_id") != agent:
            continue
        if agent is not None and kind == "shadow" and rid not in calls:
            continue
        if kind == "decision":
            call = calls.get(rid)  # type: ignore[arg-type]
            if call is None:
                call = calls[rid] = _Call(float(ts or 0.0), record.get("agent_id"))  # type: ignore[index]
                call.reference = record.get("reference")
                difficulty = (record.get("scores") or {}).get("difficulty")
                if isinstance(difficulty, (int, float)):
                    call.difficulty = min(max(float(difficulty), 0.0), 1.0)
            tiers[record["model"]] = record["tier"]
            scores = record.get("scores") or {}
            if scores.get("escalation", 0) > 0:
                call.cause("step_signals")
            risk = scores.get("escalation_risk")
            if record.get("policy") == "learned-escalation" or (
                risk is not None and risk > scores.get("escalation_threshold", 1.0)
            ):
                call.cause("learned")
        elif kind == "attempt":
            call = calls.get(rid)  # type: ignore[arg-type]
            model = record["model"]
            provider = record.get("provider", "?")
            cost = float(record.get("cost_usd") or 0.0)
            attempts[provider] += 1
            model_cost[model] += cost
            if call is not None:
                call.cost += cost
            # A tripped deployment's one-token probe is paid for, but it answers no request and
            # is no fallback of one; its latency is not an answer's.
            probe = bool(record.get("probe"))
            if record.get("ok"):
                if not probe:
                    latencies[model].append(float(record.get("latency_ms") or 0.0))
                if call is not None and not probe:
                    call.model = model
                    call.usage = Usage(*(int(record.get(name) or 0) for name in _USAGE_FIELDS))
            elif not record.get("cancelled"):
                errors[provider] += 1
                error_kinds[provider][str(record.get("error_kind"))] += 1
                if call is not None and not probe:
                    call.failed = [*(call.failed or ()), provider]
        elif kind == "escalation":
            call = calls.get(rid)  # type: ignore[arg-type]
            outcome = record.get("outcome", "answered")  # older records: written as it started
            if call is not None and outcome != "answered":
                call.failed_handovers += 1  # the caller kept the weaker answer, or got an error
                call.handover_error |= outcome == "error"
            elif call is not None:
                call.cause("gate" if str(record.get("source", "")).startswith("gate") else "self")
        elif kind == "budget_refusal":
            budget["refusals"] += 1
        elif kind == "budget_overrun":
            budget["overruns"] += 1
            budget["overrun_excess_usd"] += float(record.get("excess_usd") or 0.0)
        elif kind == "feedback" and (agent is None or rid in calls):
            feedback[(str(rid), str(record.get("source") or ""))] = float(record["score"])
        elif kind == "shadow":
            shadow.add(record)
    return _summarize(
        calls,
        tiers,
        latencies=latencies,
        model_cost=model_cost,
        attempts=attempts,
        errors=errors,
        error_kinds=error_kinds,
        budget=budget,
        feedback=list(feedback.values()),
        shadow=shadow,
        kinds=kinds,
        agents=agents,
        span=(first_ts, last_ts),
        agent=agent,
    )


def _summarize(
    calls: Mapping[str, _Call],
    tiers: Mapping[str, int],
    *,
    latencies: Mapping[str, list[float]],
    model_cost: Mapping[str, float],
    attempts: Mapping[str, int],
    errors: Mapping[str, int],
    error_kinds: Mapping[str, Counter[str]],
    budget: Mapping[str, float],
    feedback: list[float],
    shadow: _Shadow,
    kinds: Mapping[str, int],
    agents: set[str],
    span: tuple[float | None, float | None],
    agent: str | None,
) -> dict[str, Any]:
    total = _Totals()
    by_agent: defaultdict[str, _Totals] = defaultdict(_Totals)
    by_day: defaultdict[str, _Totals] = defaultdict(_Totals)
    by_week: dict[str, _Week] = {}
    answers: Counter[str] = Counter()
    tier_cost: defaultdict[int, float] = defaultdict(float)
    causes: Counter[str] = Counter()
    fallbacks: Counter[str] = Counter()
    calendar: dict[int, tuple[str, str]] = {}
    for call in calls.values():
        model = call.answered_by
        tier = tiers.get(model) if model is not None else None
        total.add(call, tier)
        by_agent[call.agent or "(none)"].add(call, tier)
        day_number = int(call.ts // 86400)
        keys = calendar.get(day_number)
        if keys is None:
            keys = calendar[day_number] = _calendar_keys(day_number)
        by_day[keys[0]].add(call, tier)
        week = by_week.get(keys[1])
        if week is None:
            week = by_week[keys[1]] = _Week(_days_in_span(day_number, span))
        week.add(call)
        if model is not None:
            answers[model] += 1
            if tier is not None:
                tier_cost[tier] += call.cost
            for provider in call.failed or ():
                fallbacks[provider] += 1
        for cause in (call.causes or ()) if call.escalated() else ():
            causes[cause] += 1
    requests = total.requests
    answered = sum(answers.values())
    weeks = [{"week": key, **by_week[key].to_dict()} for key in sorted(by_week)]
    return {
        "agent": agent,
        "log": {
            "records": sum(kinds.values()),
            "kinds": dict(kinds),
            "agents": sorted(agents),
            "first_ts": span[0],
            "last_ts": span[1],
        },
        "requests": requests,
        "answered": answered,
        "failed": requests - answered,
        "cost": total.to_dict(),
        "models": {
            model: {
                "tier": tiers.get(model),
                "requests": answers[model],
                "share": answers[model] / answered if answered else 0.0,
                "cost_usd": model_cost.get(model, 0.0),
                "latency_p50_ms": _quantile(latencies.get(model, []), 0.50),
                "latency_p95_ms": _quantile(latencies.get(model, []), 0.95),
            }
            for model in sorted(set(answers) | set(model_cost), key=lambda m: (tiers.get(m, 0), m))
        },
        "tiers": {
            str(tier): {
                "requests": count,
                "share": count / answered if answered else 0.0,
                "cost_usd": tier_cost[tier],
                "cost_per_request_usd": tier_cost[tier] / count,
            }
            for tier, count in sorted(total.tiers.items())
        },
        "escalation": {
            "rate": total.escalated / answered if answered else 0.0,  # of answered requests
            "by_cause": {
                c: {"requests": causes[c], "rate": causes[c] / answered if answered else 0.0} for c in CAUSES
            },
            # hand-overs that found no answer (the caller kept the weaker one, or got an error)
            "failed_handovers": sum(call.failed_handovers for call in calls.values()),
            # requests left unanswered because a hand-over's error reached the caller
            "handover_errors": sum(call.handover_error for call in calls.values()),
        },
        "providers": {
            provider: {
                "attempts": count,
                "errors": errors.get(provider, 0),
                "error_rate": errors.get(provider, 0) / count,
                "fallbacks": fallbacks[provider],
                "fallback_rate": fallbacks[provider] / count,
                "error_kinds": dict(error_kinds.get(provider, {})),
            }
            for provider, count in sorted(attempts.items())
        },
        "budget": dict(budget),
        "feedback": {
            "count": len(feedback),
            "mean_score": sum(feedback) / len(feedback) if feedback else None,
        },
        "shadow": shadow.to_dict(),
        "agents": {name: by_agent[name].to_dict() for name in sorted(by_agent)},
        "days": [
            {
                "day": key,
                **by_day[key].to_dict(),
                "tiers": {str(t): n for t, n in sorted(by_day[key].tiers.items())},
            }
            for key in sorted(by_day)
        ],
        "weeks": weeks,
        "drift": _drift(weeks),
    }


def _calendar_keys(day_number: int) -> tuple[str, str]:
    """The UTC date (2026-11-30) and ISO week (2026-W49) of the `day_number`th day since 1970."""
    day = dt.date(1970, 1, 1) + dt.timedelta(days=day_number)
    year, week, _ = day.isocalendar()
    return day.isoformat(), f"{year}-W{week:02d}"


class _Shadow:
    """Shadow pairs. Upward: the judged quality of the answers callers got against the reference's.
    Downward: how often the cheapest model's answer scored as well as the caller's (over-routed)."""

    __slots__ = ("cost", "down", "over_routed", "pairs", "reference", "routed")

    def __init__(self) -> None:
        self.pairs = 0
        self.routed = 0.0
        self.reference = 0.0
        self.down = 0
        self.over_routed = 0
        self.cost = 0.0

    def spend(self, usd: float) -> None:
        self.cost += usd

    def add(self, record: Mapping[str, Any]) -> None:
        outcomes = record.get("outcomes") or {}
        if len(outcomes) != 2:
            return
        (_, routed), (_, shadow) = list(outcomes.items())  # the caller's model first, then the shadow's
        if record.get("direction") == "down":
            self.down += 1
            self.over_routed += float(shadow["score"]) >= float(routed["score"])
            return
        self.pairs += 1  # upward (records from before downward shadows have no direction)
        self.routed += float(routed["score"])
        self.reference += float(shadow["score"])

    def to_dict(self) -> dict[str, Any]:
        figures: dict[str, Any] = {
            "pairs": self.pairs + self.down,
            "cost_usd": self.cost,
            "upward_pairs": self.pairs,
            "quality": None,
            "reference_quality": None,
            "quality_kept": None,
            "downward_pairs": self.down,
            "over_routed": self.over_routed / self.down if self.down else None,
        }
        if self.pairs:
            quality, reference = self.routed / self.pairs, self.reference / self.pairs
            figures["quality"] = quality
            figures["reference_quality"] = reference
            figures["quality_kept"] = quality / reference if reference > 0 else None
        return figures


def _days_in_span(day_number: int, span: tuple[float | None, float | None]) -> int:
    """How many days of the ISO week of the `day_number`th day the log covers: its first and last
    weeks are partial when it starts or ends mid-week (`--since 7d`, or a week still under way)."""
    monday = day_number - (dt.date(1970, 1, 1) + dt.timedelta(days=day_number)).weekday()
    first, last = span
    first_day = monday if first is None else max(monday, int(first // 86400))
    last_day = monday + 6 if last is None else min(monday + 6, int(last // 86400))
    return max(last_day - first_day + 1, 1)


class _Week:
    """One ISO week's requests: escalation rate and the predicted-difficulty histogram, and how many of
    its days the log covers."""

    __slots__ = ("answered", "days", "difficulty_sum", "escalated", "histogram", "requests", "scored")

    def __init__(self, days: int) -> None:
        self.days = days
        self.requests = 0
        self.answered = 0
        self.escalated = 0
        self.scored = 0
        self.difficulty_sum = 0.0
        self.histogram = [0] * _BINS

    def add(self, call: _Call) -> None:
        self.requests += 1
        self.answered += call.answered_by is not None
        self.escalated += call.escalated()
        if call.difficulty is not None:
            self.scored += 1
            self.difficulty_sum += call.difficulty
            self.histogram[min(int(call.difficulty * _BINS), _BINS - 1)] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "requests": self.requests,
            "escalation_rate": self.escalated / self.answered if self.answered else 0.0,
            "difficulty_mean": self.difficulty_sum / self.scored if self.scored else None,
            "difficulty_histogram": [n / self.scored for n in self.histogram] if self.scored else None,
        }


def _drift(weeks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The change from the week before last to the last week: escalation rate (points), mean
    predicted difficulty, and the total-variation distance between their difficulty histograms.

    The last week is compared even when the log covers only part of it (`to_days` < 7): its rates and
    shares are per request, so a short week is noisier but not smaller, and leaving it out would hide
    the newest traffic, the one drift is read for, for up to six days. The days and requests of both
    weeks go with the figures so that a reader sees how much each side rests on."""
    if len(weeks) < 2:
        return None
    before, last = weeks[-2], weeks[-1]
    mean_change = None
    distance = None
    if before["difficulty_histogram"] is not None and last["difficulty_histogram"] is not None:
        mean_change = last["difficulty_mean"] - before["difficulty_mean"]
        pairs = zip(before["difficulty_histogram"], last["difficulty_histogram"], strict=True)
        distance = sum(abs(a - b) for a, b in pairs) / 2
    return {
        "from_week": before["week"],
        "to_week": last["week"],
        "from_days": before["days"],
        "to_days": last["days"],
        "from_requests": before["requests"],
        "to_requests": last["requests"],
        "escalation_rate_change": last["escalation_rate"] - before["escalation_rate"],
        "difficulty_mean_change": mean_change,
        "difficulty_distance": distance,
    }


def _quantile(values: list[float], q: float) -> float | None:
    """The nearest-rank quantile, None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q * len(ordered)))) - 1]
