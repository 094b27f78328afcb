"""What a cascade gate costs a streamed answer: time to its first text, with and without the gate.

    uv run python tests/benchmarks/cascade_stream_latency.py [--runs 7] [--interval 0.0002] [--json]

One `LocalOpenAIServer` on 127.0.0.1 serves two tiers through the real `openai` SDK; the small model
streams its answer slowly (`Drip`: one byte of the stream every `--interval` seconds). The same prompt
is streamed `--runs` times by a router without a cascade and by one with the heuristic gate, which
accepts the answer. Reported: the medians of the time to the first text and to the whole answer. The
gate holds a lower tier's answer back until it has checked it, so its first text comes with the last.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from _local_pair import PROMPT, REGISTRY

from gearshift import Router, SignalScorer, TextDelta
from gearshift.cascades import HeuristicGate
from gearshift.providers import OpenAIProvider
from gearshift.testing import Drip, LocalOpenAIServer


async def _stream_once(
    server: LocalOpenAIServer, provider: OpenAIProvider, *, gated: bool, interval: float
) -> tuple[float, float]:
    """Seconds to the first text and to the end of one streamed answer of the small model."""
    server.script("small", Drip(interval=interval))
    gate = HeuristicGate() if gated else None
    router = Router(REGISTRY, policy=SignalScorer(), providers=[provider], cascade=gate)
    started = time.perf_counter()
    first: float | None = None
    async for event in router.astream(PROMPT):
        if first is None and isinstance(event, TextDelta) and event.text:
            first = time.perf_counter() - started
    total = time.perf_counter() - started
    await router.aclose()
    assert first is not None, "the answer had no text"
    return first, total


async def _medians(runs: int, interval: float) -> dict[str, float]:
    figures: dict[str, float] = {}
    with LocalOpenAIServer(models=("small", "large")) as server:
        provider = OpenAIProvider("local", base_url=server.base_url, require_key=False)
        for label, gated in (("plain", False), ("gated", True)):
            times = [
                await _stream_once(server, provider, gated=gated, interval=interval) for _ in range(runs)
            ]
            figures[f"{label}_first_text_ms"] = statistics.median(t[0] for t in times) * 1000
            figures[f"{label}_whole_answer_ms"] = statistics.median(t[1] for t in times) * 1000
        await provider.aclose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--interval", type=float, default=0.0002, help="seconds per streamed byte")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    figures = asyncio.run(_medians(args.runs, args.interval))
    if not args.json:
        for label in ("plain", "gated"):
            print(
                f"{label:>5}: first text {figures[f'{label}_first_text_ms']:.0f} ms, "
                f"whole answer {figures[f'{label}_whole_answer_ms']:.0f} ms (medians of {args.runs})"
            )
    print(json.dumps({key: round(value, 1) for key, value in figures.items()}))


if __name__ == "__main__":
    main()
