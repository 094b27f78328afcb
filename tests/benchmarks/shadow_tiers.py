"""Which shadow pairs a three-tier product logs, and how many of them `train --from-log` keeps.

The real product as it ships: the built-in registry (three tiers, OpenAI and Anthropic models), the
default policy, `[routing.shadow]` with the heuristic judge, through a real `Router` whose providers
are the local OpenAI and Anthropic servers on 127.0.0.1. The calls are bundled prompts (`--prompts`,
spread evenly over GSM8K, MMLU and MT-Bench, which holds 72). Every call may get a shadow (`--share`,
1.0 by default: the counts, not the judge's scores, are what this measures).

It prints the pairs per (direction, model set), how many the selection before issue 15 kept (only the
most common model set: "kept_most_common_set") and how many the current one keeps
("kept_every_set", models scored on fewer than `--min-rows` rows or by no shadow left out, as
`train --from-log --min-rows` does). Run on a checkout of the older shadows
(`git checkout 79080ce -- packages/core/src`) it measures what they logged; "kept_every_set" is
then null.

    uv run python tests/benchmarks/shadow_tiers.py [--prompts 300] [--share 1.0] [--min-rows 50]
                                                   [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from gearshift import Router, ShadowConfig, StepContext, default_registry, read_records
from gearshift.datasets import load_routellm
from gearshift.learning import DefaultPolicy
from gearshift.providers import AnthropicProvider, OpenAIProvider
from gearshift.reporting._log_outcomes import outcomes_from_log
from gearshift.routing._decision_log import open_decision_log
from gearshift.testing import LocalAnthropicServer, LocalOpenAIServer


def _prompts(count: int) -> list[str]:
    """`count` bundled prompts, a third from each table (MT-Bench has 72), evenly spaced in each."""
    prompts: list[str] = []
    for name in ("gsm8k", "mmlu", "mt-bench"):
        rows = list(load_routellm(name))
        take = min(len(rows), count // 3)
        prompts += [rows[i * len(rows) // take].prompt_text for i in range(take)]
    return prompts


async def _replay(log: Path, prompts: list[str], share: float, seed: int) -> Counter[str]:
    registry = default_registry()
    by_provider = {p: [m.id for m in registry if m.provider == p] for p in ("openai", "anthropic")}
    with (
        LocalOpenAIServer(models=by_provider["openai"]) as openai,
        LocalAnthropicServer(models=by_provider["anthropic"]) as anthropic,
    ):
        providers = {
            "openai": OpenAIProvider(base_url=openai.base_url, require_key=False),
            "anthropic": AnthropicProvider(base_url=anthropic.url, api_key="local"),
        }
        router = Router(
            registry,
            policy=DefaultPolicy(),
            providers=providers,
            decision_log=open_decision_log(log, include_prompts=True),
            shadow=ShadowConfig(share=share, judge="heuristic", seed=seed, max_in_flight=10_000),
        )
        answered: Counter[str] = Counter()
        for prompt in prompts:
            answered[(await router.acomplete(prompt, StepContext(agent_id="app"))).model_id] += 1
        await router.aclose()
    return answered


def measure(count: int, share: float, min_rows: int, seed: int) -> dict[str, Any]:
    """Replay `count` prompts and count the pairs each selection keeps."""
    prompts = _prompts(count)
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "log.jsonl"
        answered = asyncio.run(_replay(log, prompts, share, seed))
        records = list(read_records(log))
    shadows = [r for r in records if r["kind"] == "shadow"]
    sets = Counter(f"{s['direction']} {'+'.join(sorted(s['outcomes']))}" for s in shadows)
    read = outcomes_from_log(records)
    model_sets = Counter(frozenset(r["outcomes"]) for r in read.rows if len(r["outcomes"]) >= 2)
    pairs = sum(model_sets.values())
    most_common = model_sets.most_common(1)[0][1] if model_sets else 0
    result: dict[str, Any] = {
        "calls": len(prompts),
        "answered": dict(answered.most_common()),
        "pairs": pairs,
        "pairs_by_set": dict(sets.most_common()),
        "kept_most_common_set": most_common,
        "dropped_by_most_common_set": pairs - most_common,
        "kept_every_set": None,
        "models": None,
        "left_out": None,
    }
    if hasattr(read, "select"):
        chosen = read.select(min_rows, one_model_rows=False)
        result.update(kept_every_set=chosen.pairs, models=list(chosen.models), left_out=chosen.left_out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=300)
    parser.add_argument("--share", type=float, default=1.0)
    parser.add_argument("--min-rows", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args()
    result = measure(args.prompts, args.share, args.min_rows, args.seed)
    if not args.json:
        print(f"{result['calls']} calls, answered by {result['answered']}")
        for label, n in result["pairs_by_set"].items():
            print(f"  {n:5d}  {label}")
        print(
            f"pairs {result['pairs']}: the most common set alone keeps {result['kept_most_common_set']}, "
            f"every set keeps {result['kept_every_set']} (models {result['models']}, "
            f"left out {result['left_out']})"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
