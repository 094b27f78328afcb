"""Outcome rows from live traffic: shadow pairs and feedback in the decision log, as an outcome table.

A `shadow` record is one row, upward or downward alike: its prompt and both models' judged scores,
tokens and costs. A `feedback` record scores the model that answered its call: it overrides that
model's judged score in the call's shadow row, or, without one, makes a one-model row from the call's
decision record (which carries the prompt, and the caller's task label, only under
`log.include_prompts`). Several feedbacks on one call are averaged. Rows without a prompt cannot
train a router and are counted, not kept.

A router trains on the pairs and on the one-model rows of the pairs' models: a one-model row says
nothing about the other model, but it does tell how the model that answered does on prompts like it,
and at a 5% shadow share feedback on the other calls can outnumber the pairs many times over
(`tests/benchmarks/shadow_replay.py --feedback-share` measures what it adds).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LogOutcomes", "outcomes_from_log"]


@dataclass
class LogOutcomes:
    """The outcome rows (JSON-ready, the outcome-table format) read from a decision log, and what
    could not be used."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    shadow_records: int = 0
    feedback_records: int = 0
    without_prompt: int = 0
    feedback_without_call: int = 0

    def pairs(self) -> list[dict[str, Any]]:
        """The rows with the most common set of two or more models (what a router trains on)."""
        common = self._common_models()
        return [r for r in self.rows if frozenset(r["outcomes"]) == common]

    def training_rows(self) -> list[dict[str, Any]]:
        """The `pairs`, then the one-model rows (feedback) of a model among theirs."""
        common = self._common_models()
        return [
            r
            for r in self.rows
            if frozenset(r["outcomes"]) == common
            or (len(r["outcomes"]) == 1 and set(r["outcomes"]) <= common)
        ]

    def _common_models(self) -> frozenset[str]:
        sets = Counter(frozenset(r["outcomes"]) for r in self.rows if len(r["outcomes"]) >= 2)
        return sets.most_common(1)[0][0] if sets else frozenset()


def outcomes_from_log(records: Iterable[Mapping[str, Any]]) -> LogOutcomes:
    """Build outcome rows from the `shadow`, `feedback`, `decision` and `attempt` records of a log."""
    result = LogOutcomes()
    shadows: dict[str, dict[str, Any]] = {}
    prompts: dict[str, Any] = {}
    tasks: dict[str, str] = {}
    answered: dict[str, tuple[str, int, int]] = {}
    cost: defaultdict[str, float] = defaultdict(float)
    scores: defaultdict[str, list[float]] = defaultdict(list)
    for record in records:
        kind = record.get("kind")
        rid = record.get("request_id")
        if not isinstance(rid, str):
            continue
        if kind == "decision":
            if "prompt" in record and rid not in prompts:
                prompts[rid] = record["prompt"]
                if isinstance(record.get("task"), str):
                    tasks[rid] = record["task"]
        elif kind == "attempt":
            cost[rid] += float(record.get("cost_usd") or 0.0)
            if record.get("ok"):
                answered[rid] = (
                    record["model"],
                    int(record.get("input_tokens") or 0),
                    int(record.get("output_tokens") or 0),
                )
        elif kind == "shadow":
            result.shadow_records += 1
            shadows[rid] = dict(record)
            tasks[rid] = str(record.get("task") or tasks.get(rid) or "live")
        elif kind == "feedback":
            result.feedback_records += 1
            scores[rid].append(float(record["score"]))
    for rid, shadow in shadows.items():
        prompt = _prompt(shadow.get("prompt"))
        if prompt is None:
            result.without_prompt += 1
            continue
        outcomes = {model: dict(outcome) for model, outcome in shadow["outcomes"].items()}
        if rid in scores and rid in answered and answered[rid][0] in outcomes:
            outcomes[answered[rid][0]]["score"] = sum(scores[rid]) / len(scores[rid])
        result.rows.append({"id": rid, "task": tasks[rid], "prompt": prompt, "outcomes": outcomes})
    for rid, given in scores.items():
        if rid in shadows:
            continue
        if rid not in answered:
            result.feedback_without_call += 1
            continue
        prompt = _prompt(prompts.get(rid))
        if prompt is None:
            result.without_prompt += 1
            continue
        model, tokens_in, tokens_out = answered[rid]
        outcome = {
            "score": sum(given) / len(given),
            "cost_usd": cost[rid],
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
        }
        row = {"id": rid, "task": tasks.get(rid, "live"), "prompt": prompt, "outcomes": {model: outcome}}
        result.rows.append(row)
    return result


def _prompt(value: Any) -> str | list[dict[str, str]] | None:
    """An outcome-table prompt: one user message's text, or the messages; None when not recorded."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, list) and value:
        if len(value) == 1 and value[0].get("role") == "user":
            return str(value[0].get("content") or "") or None
        return [{"role": str(m.get("role")), "content": str(m.get("content") or "")} for m in value]
    return None


def table_from_log(path: Any, *, min_rows: int = 50, feedback_rows: bool = True) -> tuple[Any, LogOutcomes]:
    """The outcome table a router trains on from the decision log at `path` (its `training_rows`, or
    only its `pairs` without `feedback_rows`), and the whole reading. Fewer than `min_rows` pairs is a
    `ConfigError` that says what the log holds."""
    from .._errors import ConfigError
    from ..datasets import OutcomeTable
    from ..datasets._outcome_files import _parse_row
    from ._reader import iter_log

    read = outcomes_from_log(iter_log(path))
    pairs = read.pairs()
    if len(pairs) < min_rows:
        raise ConfigError(
            f"{len(pairs)} outcome rows with two or more models in {path} ({read.shadow_records} shadow "
            f"records, {read.feedback_records} feedback records, {read.without_prompt} without a prompt); "
            f"training needs at least {min_rows} (--min-rows): turn on [routing.shadow] with "
            "log.include_prompts = true and let traffic run",
            key="--from-log",
        )
    rows = read.training_rows() if feedback_rows else pairs
    return OutcomeTable(_parse_row(row) for row in rows), read
