"""Agent outcome tables, checked and costed for replay: a cheap and a strong model's runs on each task.

`agent_runs(table)` (or `load_agent_runs(path)`) turns an agent outcome table into `AgentRuns`: for
each task the opening prompt and both models' runs, each with its score, its whole cost and the cost of
every step (assistant turn). What it cannot use is an error naming the file, line and field:

- an outcome without `messages` (an ordinary outcome table, or one model's run missing);
- a task only one of the two models ran (the runs do not cover the same tasks);
- a table with other than two models;
- a tool result answering no earlier tool call (found by the file loader).

What it can fill in, it fills in and counts in `AgentRuns.notes` ("cost estimated from text for 115
runs"): an assistant turn without `cost_usd` is priced from its `usage`, or, without usage, from the
tokens gearshift's estimator counts in its text and in everything sent before it (the prompt and the
run so far; tool definitions are not recorded, so not counted). A run without `cost_usd` costs the
sum of its steps; a run with one but with estimated steps has its steps scaled to it, and a run
with one whose model has no known price has it split over its steps by their estimated size.

The cheap model is the one whose runs cost less on average, unless `weak` and `strong` say otherwise.
Money is float dollars throughout, as in every outcome table.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from .._messages import Message, Usage
from .._models import ModelPrices
from ..signals._tokens import message_tokens
from ._agent_runs import AgentRun
from ._outcome_files import load_outcome_lines
from ._outcomes import Outcome, OutcomeRow, OutcomeTable, OutcomeTableError

__all__ = ["AgentRuns", "AgentTask", "CostedRun", "agent_runs", "estimate_step_usage", "load_agent_runs"]


@dataclass(frozen=True, slots=True)
class CostedRun:
    """One model's run on one task with its score, whole cost and the cost of each step (model call)."""

    run: AgentRun
    score: float
    cost_usd: float
    step_costs: tuple[float, ...]

    def cost_before(self, step: int) -> float:
        """What the run's first `step` steps cost."""
        return math.fsum(self.step_costs[:step])


@dataclass(frozen=True, slots=True)
class AgentTask:
    """One task: its opening prompt and the cheap (`weak`) and strong model's runs on it."""

    id: str
    prompt: tuple[Message, ...]
    weak: CostedRun
    strong: CostedRun


@dataclass(frozen=True, slots=True)
class AgentRuns:
    """The checked runs of an agent outcome table, ready for replay.

    `weak` and `strong` are the two model ids; `notes` say, with counts, what was estimated or filled
    in rather than read (empty when the table recorded everything); `source` names where it came from.
    """

    table: OutcomeTable
    weak: str
    strong: str
    tasks: tuple[AgentTask, ...]
    notes: tuple[str, ...] = ()
    source: str = "<python>"

    def subset(self, indices: Sequence[int]) -> AgentRuns:
        """The runs of the tasks at `indices`, in that order."""
        return AgentRuns(
            self.table.subset(indices),
            self.weak,
            self.strong,
            tuple(self.tasks[i] for i in indices),
            self.notes,
            self.source,
        )

    def __len__(self) -> int:
        return len(self.tasks)


def estimate_step_usage(prompt: Sequence[Message], run: AgentRun) -> tuple[Usage, ...]:
    """Estimated tokens of each step of `run`: input is everything sent before it, output its own turn."""
    sent = sum(map(message_tokens, prompt))
    usages = []
    for item in run.messages:
        tokens = message_tokens(item.message)
        if item.message.role == "assistant":
            usages.append(Usage(sent, tokens))
        sent += tokens
    return tuple(usages)


def _genai_prices(model: str) -> ModelPrices | None:
    """List prices of a model id genai-prices can match without being told the provider."""
    from ..config._pricing import lookup_prices

    for provider in ("openai", "anthropic", "google", "mistral", "deepseek", "groq", "together"):
        prices = lookup_prices(provider, model)
        if prices is not None:
            return prices
    return None


_SPLIT_WEIGHTS = ModelPrices(input=1.0, output=4.0)
"""Relative weights of input and output tokens when a run's recorded cost is split over its steps."""


@dataclass(slots=True)
class _Counts:
    estimated: int = 0
    priced: int = 0
    scaled: int = 0
    summed: int = 0
    split: int = 0


def _costed(
    row: OutcomeRow,
    model: str,
    outcome: Outcome,
    prices: ModelPrices | None,
    counts: _Counts,
    fail: _Fail,
) -> CostedRun:
    run = outcome.run
    assert run is not None
    # Without a list price, a recorded run cost can still be split over its steps by their size.
    split = prices is None and outcome.cost_usd is not None
    rates = _SPLIT_WEIGHTS if split else prices
    estimates: tuple[Usage, ...] | None = None
    costs: list[float] = []
    derived: list[int] = []
    estimated = priced = False
    for number, index in enumerate(run.steps):
        item = run.messages[index]
        if item.cost_usd is not None:
            costs.append(item.cost_usd)
            continue
        if rates is None:
            raise fail(
                f"outcomes.{model}.messages[{index}] has no cost_usd, and no list price is known for "
                f"'{model}' to price it; record cost_usd (or usage, or the run's cost_usd) or pass the "
                "model's prices"
            )
        usage = item.usage
        if usage is None:
            estimates = estimates or estimate_step_usage(row.as_messages(), run)
            usage, estimated = estimates[number], True
        else:
            priced = True
        derived.append(len(costs))
        costs.append(rates.cost(usage))
    total = outcome.cost_usd
    if total is None:
        total = math.fsum(costs)
        counts.summed += 1
    elif derived and (estimated or split):
        recorded = math.fsum(costs) - math.fsum(costs[i] for i in derived)
        weight = math.fsum(costs[i] for i in derived)
        scale = max(total - recorded, 0.0) / weight if weight > 0 else 0.0
        for i in derived:
            costs[i] *= scale
        if split:
            counts.split += 1
        else:
            counts.scaled += 1
    counts.estimated += estimated and not split
    counts.priced += priced and not estimated and not split
    return CostedRun(run, outcome.score, total, tuple(costs))


class _Fail:
    def __init__(self, path: str | None, line: int | None) -> None:
        self.path, self.line = path, line

    def __call__(self, message: str) -> OutcomeTableError:
        return OutcomeTableError(message, path=self.path, line=self.line)


def _notes(counts: _Counts) -> tuple[str, ...]:
    notes = []
    if counts.estimated:
        notes.append(
            f"cost estimated from text for {counts.estimated} runs (steps without usage or cost_usd: "
            "tokens counted with gearshift's estimator, priced at list prices)"
        )
    if counts.priced:
        notes.append(f"cost priced from recorded usage for {counts.priced} runs")
    if counts.scaled:
        notes.append(f"estimated step costs scaled to the recorded run cost for {counts.scaled} runs")
    if counts.split:
        notes.append(
            f"step costs split from the recorded run cost for {counts.split} runs, in proportion to their "
            "estimated tokens (output weighted 4x), as no list price is known for their model"
        )
    if counts.summed:
        notes.append(f"run cost is the sum of its steps for {counts.summed} runs (no run cost_usd)")
    return tuple(notes)


def agent_runs(
    table: OutcomeTable,
    *,
    weak: str | None = None,
    strong: str | None = None,
    prices: Mapping[str, ModelPrices] | None = None,
    path: str | os.PathLike[str] | None = None,
    lines: Sequence[int] | None = None,
    notes: Sequence[str] = (),
) -> AgentRuns:
    """Check an agent outcome table and cost its steps (see the module docstring).

    `prices` gives list prices per model id for steps that must be priced (default: genai-prices).
    `path` and `lines` (each row's line) make errors name the file and line; `notes` are prepended.
    """
    where = os.fspath(path) if path is not None else None
    models = table.models
    if not any(o.run is not None for row in table for o in row.outcomes.values()):
        raise OutcomeTableError(
            "holds no agent runs (no outcome has messages): it is an ordinary outcome table; "
            "use `gearshift eval` for it",
            path=where,
        )
    if len(models) < 2:
        raise OutcomeTableError(
            f"an agent table compares a cheap and a strong model, but this one has only {', '.join(models)}",
            path=where,
        )
    if weak is not None or strong is not None:
        for name in (weak, strong):
            if name is not None and name not in models:
                raise OutcomeTableError(
                    f"model '{name}' is not in the table ({', '.join(models)})", path=where
                )
    if len(models) > 2:
        weak, strong = _pair(table, models, weak, strong, where)
        notes = (
            *notes,
            f"the table holds {len(models)} models ({', '.join(models)}); compared '{weak}' with "
            f"'{strong}' (choose the pair with weak= and strong=, or --weak and --strong)",
        )
        table = OutcomeTable(
            replace(row, outcomes={m: o for m, o in row.outcomes.items() if m in (weak, strong)})
            for row in table
        )
        models = table.models
    counts = _Counts()
    known = dict(prices or {})
    price_of = {m: known[m] if m in known else _genai_prices(m) for m in models}
    by_model: dict[str, list[CostedRun]] = {m: [] for m in models}
    for index, row in enumerate(table):
        fail = _Fail(where, lines[index] if lines is not None else None)
        for model in models:
            outcome = row.outcomes.get(model)
            if outcome is None:
                raise fail(
                    f"outcomes.{model} is missing: row '{row.id}' has only "
                    f"{', '.join(row.outcomes)}, so the two runs do not cover the same tasks"
                )
            if outcome.run is None:
                raise fail(f"outcomes.{model}.messages is missing: an agent table needs every model's run")
            by_model[model].append(_costed(row, model, outcome, price_of[model], counts, fail))
    if weak is None or strong is None:
        mean = {m: math.fsum(r.cost_usd for r in runs) / len(runs) for m, runs in by_model.items()}
        cheap = min(models, key=lambda m: (mean[m], models.index(m)))
        weak = weak or (cheap if strong != cheap else next(m for m in models if m != strong))
        strong = strong or next(m for m in models if m != weak)
    if weak == strong:
        raise OutcomeTableError(f"the cheap and the strong model must differ, both are '{weak}'", path=where)
    tasks = tuple(
        AgentTask(row.id, row.as_messages(), by_model[weak][i], by_model[strong][i])
        for i, row in enumerate(table)
    )
    return AgentRuns(table, weak, strong, tasks, (*notes, *_notes(counts)), where or "<python>")


def _pair(
    table: OutcomeTable, models: Sequence[str], weak: str | None, strong: str | None, where: str | None
) -> tuple[str, str]:
    """The two models a table of several is replayed with: the ones named, else the cheap model is the
    one whose recorded runs cost least on average and the strong one the most successful of the others
    (ties: the costlier). Only recorded costs and scores are read here, before any step is priced."""

    def mean(model: str, field: str) -> float | None:
        values = [
            getattr(row.outcomes[model], field)
            for row in table
            if model in row.outcomes and getattr(row.outcomes[model], field) is not None
        ]
        return math.fsum(values) / len(values) if values else None

    cost = {m: mean(m, "cost_usd") for m in models}
    score = {m: mean(m, "score") or 0.0 for m in models}
    if weak is None:
        others = [m for m in models if m != strong]
        if any(cost[m] is None for m in others):
            raise OutcomeTableError(
                f"the table holds {len(models)} models ({', '.join(models)}) and not every run records "
                "its cost_usd, so the cheap one cannot be told: name the pair (--weak and --strong)",
                path=where,
            )
        weak = min(others, key=lambda m: (cost[m] or 0.0, models.index(m)))
    if strong is None:
        strong = max(
            (m for m in models if m != weak), key=lambda m: (score[m], cost[m] or 0.0, -models.index(m))
        )
    return weak, strong


def load_agent_runs(
    path: str | os.PathLike[str],
    *,
    weak: str | None = None,
    strong: str | None = None,
    prices: Mapping[str, ModelPrices] | None = None,
) -> AgentRuns:
    """Read and check an agent outcome table from JSONL (`.gz` for gzip); errors name file, line, field."""
    table, lines = load_outcome_lines(path)
    return agent_runs(table, weak=weak, strong=strong, prices=prices, path=path, lines=lines)
