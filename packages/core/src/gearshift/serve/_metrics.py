"""Prometheus metrics of the proxy: requests, tokens and cost per model and tier, escalations,
fallbacks, budget refusals and latency, on a registry of its own (one per app)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics import MetricWrapperBase

from ..routing._routed import RoutedResponse

__all__ = ["CONTENT_TYPE_LATEST", "ProxyMetrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

M = TypeVar("M", bound=MetricWrapperBase)


class _Labelled(Generic[M]):
    """A metric's children, each looked up once per label values: prometheus_client's `labels()`
    checks its arguments and takes a lock on every call, a tenth of a millisecond per answered call.
    Label values come from the registry, the APIs and HTTP statuses, so the children stay few."""

    def __init__(self, metric: M) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class ProxyMetrics:
    """The proxy's counters and histograms; `render()` is the `/metrics` body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "gearshift_proxy_requests", "Requests answered, by API, model, tier and status.",
            ["api", "model", "tier", "status"], registry=r,
        )  # fmt: skip
        self.tokens = Counter(
            "gearshift_proxy_tokens", "Tokens of answered calls, by model, tier and direction.",
            ["model", "tier", "direction"], registry=r,
        )  # fmt: skip
        self.cost = Counter(
            "gearshift_proxy_cost_usd", "Dollars spent, failed attempts included, by model and tier.",
            ["model", "tier"], registry=r,
        )  # fmt: skip
        self.escalations = Counter(
            "gearshift_proxy_escalations", "Hand-overs a stronger model answered.", ["source"], registry=r
        )
        self.fallbacks = Counter(
            "gearshift_proxy_fallbacks",
            "Failed attempts another model of the chain replaced.",
            ["model"],
            registry=r,
        )
        self.budget_refusals = Counter(
            "gearshift_proxy_budget_refusals", "Calls a budget limit refused.", ["api"], registry=r
        )
        self.latency = Histogram(
            "gearshift_proxy_request_seconds", "Time to answer (to the end of a stream), by API.",
            ["api", "streamed"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self._cost, self._fallbacks = _Labelled(self.cost), _Labelled(self.fallbacks)
        self._requests, self._tokens = _Labelled(self.requests), _Labelled(self.tokens)
        self._escalations, self._latency = _Labelled(self.escalations), _Labelled(self.latency)

    def answered(
        self, api: str, result: RoutedResponse, seconds: float, *, streamed: bool, tiers: Mapping[str, int]
    ) -> None:
        """Count one routed call that produced an answer; `tiers` maps model ids to their tiers."""
        model = result.model_id
        for attempt in result.attempts:
            tier = str(tiers.get(attempt.model_id, ""))
            self._cost(attempt.model_id, tier).inc(attempt.cost_usd)
            # A tripped deployment's failed probe answered no request: no fallback (as in `report`).
            if not attempt.ok and not attempt.probe and attempt.model_id != model:
                self._fallbacks(attempt.model_id).inc()
        tier = str(tiers.get(model, ""))
        self._requests(api, model, tier, "200").inc()
        self._tokens(model, tier, "input").inc(result.usage.input_tokens)
        self._tokens(model, tier, "output").inc(result.usage.output_tokens)
        for escalation in result.escalations:
            if escalation.failed is None:  # one that found no stronger answer is no escalation
                self._escalations(escalation.source).inc()
        self._latency(api, "true" if streamed else "false").observe(seconds)

    def failed(self, api: str, status: int, *, budget: bool = False) -> None:
        """Count one request answered with an error."""
        self._requests(api, "", "", str(status)).inc()
        if budget:
            self.budget_refusals.labels(api).inc()

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
