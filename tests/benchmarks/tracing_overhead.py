"""Tracing and logging overhead: what observing a routed call adds (OpenTelemetry span with a child per
attempt, the INFO log line), with the OpenTelemetry SDK installed and a no-op exporter.

A real routed call against a local server gives a real `RoutedResponse`; then the observation the
router makes around each call (`CallTrace`: start, plan, finish) is timed on it many times, in three
settings: nothing on (no tracer provider, the `gearshift` logger at WARNING), logging on (INFO to a
handler that formats each line into a discarded stream), and logging plus tracing (an SDK
`TracerProvider` with a `SimpleSpanProcessor` exporting to a no-op exporter). Also reported: a whole
routed call's p50 with and without observation, interleaved call by call (the local server's
round trip dominates that one).

    uv run python tests/benchmarks/tracing_overhead.py [--n 20000] [--calls 300] [--json]

Prints a JSON object last: {"off_p50_us", "logging_p50_us", "logging_tracing_p50_us",
"overhead_p50_us", "routed_off_p50_ms", "routed_on_p50_ms", "n", "calls"}.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import statistics
import time
from collections.abc import Sequence

from _local_pair import PROMPT, local_router
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from gearshift import ChatRequest, Message, Router, StepContext
from gearshift.routing import _tracing
from gearshift.routing._planning import plan_call
from gearshift.routing._routed import RoutedResponse
from gearshift.routing._tracing import CallTrace
from gearshift.testing import LocalOpenAIServer


class NoopExporter(SpanExporter):
    """Takes spans and drops them."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _observe_p50_us(router: Router, result: RoutedResponse, run: object, n: int) -> float:
    context = StepContext(agent_id="bench")
    times = []
    for _ in range(n):
        started = time.perf_counter()
        observed = CallTrace(router, context)
        observed.run = run  # type: ignore[assignment]
        with observed.current():
            pass
        observed.finish(result)
        times.append((time.perf_counter() - started) * 1e6)
    return statistics.median(times)


async def _routed_p50_ms(router: Router, request: ChatRequest, calls: int) -> tuple[float, float]:
    """p50 of whole routed calls without and with observation, interleaved call by call so load on
    the machine hits both alike. "Without" is gearshift's own path when no tracer provider is set
    (`_tracing._tracer` returns None) and the `gearshift` logger is at WARNING."""
    gearshift_logger = logging.getLogger("gearshift")
    real_tracer = _tracing._tracer
    off_ms, on_ms = [], []
    for _ in range(calls):
        for observed, sink in ((False, off_ms), (True, on_ms)):
            _tracing._tracer = real_tracer if observed else (lambda: None)  # type: ignore[assignment]
            gearshift_logger.setLevel(logging.INFO if observed else logging.WARNING)
            started = time.perf_counter()
            await router.acomplete(request)
            sink.append((time.perf_counter() - started) * 1000)
    _tracing._tracer = real_tracer  # type: ignore[assignment]
    return statistics.median(off_ms), statistics.median(on_ms)


async def measure(n: int, calls: int) -> dict[str, float]:
    gearshift_logger = logging.getLogger("gearshift")
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    gearshift_logger.addHandler(handler)
    gearshift_logger.propagate = False
    with LocalOpenAIServer(models=("small", "large")) as server:
        router = local_router(server)
        request = ChatRequest(messages=(Message.user(PROMPT),))
        for _ in range(20):
            result = await router.acomplete(request)
        run = plan_call(router, request, StepContext(agent_id="bench"), log=False)
        run.attempts = list(result.attempts)

        gearshift_logger.setLevel(logging.WARNING)
        off = _observe_p50_us(router, result, run, n)
        gearshift_logger.setLevel(logging.INFO)
        logged = _observe_p50_us(router, result, run, n)
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(NoopExporter()))
        trace.set_tracer_provider(provider)
        both = _observe_p50_us(router, result, run, n)
        routed_off, routed_on = await _routed_p50_ms(router, request, calls)
        await router.aclose()
    return {
        "off_p50_us": round(off, 2),
        "logging_p50_us": round(logged, 2),
        "logging_tracing_p50_us": round(both, 2),
        "overhead_p50_us": round(both - off, 2),
        "routed_off_p50_ms": round(routed_off, 3),
        "routed_on_p50_ms": round(routed_on, 3),
        "n": n,
        "calls": calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="observations timed per setting")
    parser.add_argument("--calls", type=int, default=300, help="whole routed calls timed per setting")
    parser.add_argument("--json", action="store_true", help="print only the JSON figures")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.n, args.calls))
    if not args.json:
        print(f"observation, nothing on:      {figures['off_p50_us']} µs p50")
        print(f"observation, logging:         {figures['logging_p50_us']} µs p50")
        print(f"observation, logging + OTel:  {figures['logging_tracing_p50_us']} µs p50")
        print(f"overhead of tracing+logging:  {figures['overhead_p50_us']} µs p50 (target < 100 µs)")
        print(
            f"routed call p50 (interleaved): {figures['routed_off_p50_ms']} ms off, "
            f"{figures['routed_on_p50_ms']} ms on"
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
