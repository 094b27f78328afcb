"""`gearshift demo`: replay real recorded traffic through the router and report what routing saved.

The bundled RouteLLM data records, for every GSM8K and MMLU prompt, whether Mixtral-8x7B and GPT-4
answered it correctly, plus token-derived costs at list prices. The demo sends every prompt through the
real `Router` (real policy, real fallback machinery, a real SQLite decision log) with the replay
provider answering from the recorded outcomes, then compares the routed traffic with sending
everything to the strongest model.

The policy is the learned router, and its figures are held out: each dataset is split in two, and
every prompt is routed by a router trained only on the other half of its dataset (2-fold
cross-fitting, `gearshift.learning.cross_fit_policy`), at the operating point calibrated in training
(the cheapest one expected to keep 95% of the strongest model's quality). MMLU prompts carry their
subject as the task label. Training is capped at 2,000 prompts per router, with 2-fold internal
cross-validation, to keep the demo fast.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .._context import StepContext
from .._errors import InvalidRequestError
from .._messages import ChatRequest
from .._models import ModelRegistry
from ..datasets import OutcomeTable, RoutellmDataset, load_routellm, routellm_models
from ..policies import Policy
from ..providers._replay import ReplayProvider
from ..routing._decision_log import open_decision_log
from ..routing._routed import RoutedResponse
from ..routing._router import Router

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["DatasetReport", "replay_table", "run_demo", "run_demo_cli"]

_CONCURRENCY = 64
_TRAIN_ROWS = 2_000
"""Training prompts per cross-fitted router: enough to route well, few enough to train in seconds."""
_MIN_TRAIN_ROWS = 1_000
_TRAIN_FOLDS = 2
"""Held-out routers per dataset: each routes the half of the prompts it did not see."""


@dataclass(frozen=True, slots=True)
class DatasetReport:
    """What routing one dataset's traffic did, against always calling the strongest model."""

    dataset: str
    requests: int
    share: dict[str, float]
    quality: float
    strongest_quality: float
    cheapest_quality: float
    cost_usd: float
    strongest_cost_usd: float

    @property
    def quality_kept(self) -> float:
        """Routed quality as a share of the strongest model's."""
        return self.quality / self.strongest_quality if self.strongest_quality else 1.0

    @property
    def cost_share(self) -> float:
        """Routed cost as a share of the strongest model's."""
        return self.cost_usd / self.strongest_cost_usd if self.strongest_cost_usd else 0.0


async def replay_table(
    router: Router,
    table: OutcomeTable,
    *,
    run_id: str,
    on_done: Callable[[], None] | None = None,
    concurrency: int = _CONCURRENCY,
) -> list[RoutedResponse]:
    """Send every prompt of `table` through `router`, `concurrency` at a time, in table order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> RoutedResponse:
        row = table[index]
        async with gate:
            result = await router.acomplete(
                ChatRequest(messages=row.as_messages()),
                StepContext(agent_id="demo", run_id=run_id, metadata={"task": row.task}),
            )
        if on_done is not None:
            on_done()
        return result

    return list(await asyncio.gather(*(one(i) for i in range(len(table)))))


def _report(
    name: str, table: OutcomeTable, results: Sequence[RoutedResponse], strongest: str, cheapest: str
) -> DatasetReport:
    counts = Counter(r.model_id for r in results)
    n = len(results)

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    return DatasetReport(
        dataset=name,
        requests=n,
        share={model: counts.get(model, 0) / n for model in table.models},
        quality=mean([float(r.response.metadata["score"]) for r in results]),
        strongest_quality=mean([row.outcomes[strongest].score for row in table]),
        cheapest_quality=mean([row.outcomes[cheapest].score for row in table]),
        cost_usd=sum(r.cost_usd for r in results),
        strongest_cost_usd=sum(row.outcomes[strongest].cost_usd or 0.0 for row in table),
    )


def run_demo(
    *,
    datasets: Sequence[RoutellmDataset],
    limit: int | None,
    log_path: Path,
    policy: Policy | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_done: Callable[[], None] | None = None,
    on_policy: Callable[[str], None] | None = None,
    on_trained: Callable[[str, int], None] | None = None,
) -> list[DatasetReport]:
    """Replay the bundled datasets through a router over the two recorded models.

    Without a `policy`, routes with held-out learned routers (see the module docstring) and calls
    `on_policy` with a sentence saying what they were trained on, and `on_trained(dataset, rows)`
    after each router is trained.
    """
    full: dict[str, OutcomeTable] = {name: load_routellm(name, task_labels="category") for name in datasets}
    tables = full
    if limit is not None:
        tables = {name: table.subset(range(min(limit, len(table)))) for name, table in full.items()}
    if policy is None:
        policy = _learned_policy(full, tables, limit, on_policy, on_trained)
    if on_progress is not None:
        on_progress(sum(len(t) for t in tables.values()))
    cheapest, strongest = routellm_models()
    reports = []
    with Router(
        ModelRegistry(routellm_models()),
        policy=policy,
        providers=[ReplayProvider(OutcomeTable([row for t in tables.values() for row in t]))],
        decision_log=open_decision_log(log_path),
    ) as router:
        for name, table in tables.items():
            results = asyncio.run(replay_table(router, table, run_id=name, on_done=on_done))
            reports.append(_report(name, table, results, strongest.id, cheapest.id))
    return reports


def _learned_policy(
    full: dict[str, OutcomeTable],
    routed: dict[str, OutcomeTable],
    limit: int | None,
    on_policy: Callable[[str], None] | None,
    on_trained: Callable[[str, int], None] | None = None,
) -> Policy:
    """Held-out learned routers for the routed prompts; a short replay trains on fewer prompts."""
    from ..learning._cross_fit import cross_fit_policy

    rows = _TRAIN_ROWS if limit is None else min(_TRAIN_ROWS, max(_MIN_TRAIN_ROWS, 20 * limit))
    policy, summary = cross_fit_policy(
        full,
        routed=routed,
        folds=_TRAIN_FOLDS,
        max_train_rows=rows,
        method="linear",
        internal_folds=2,
        on_trained=on_trained,
    )
    if on_policy is not None:
        on_policy(summary.describe())
    return policy


def default_log_path() -> Path:
    """Where the demo writes its decision log unless told otherwise: `$GEARSHIFT_HOME` or the user's
    data folder."""
    from ..config._data_dir import data_dir

    return data_dir() / "demo" / "decisions.db"


def run_demo_cli(
    *,
    datasets: Sequence[RoutellmDataset],
    limit: int | None,
    log_path: Path | None,
    as_json: bool,
    progress: bool,
) -> int:
    """`gearshift demo`: run the replay with a progress bar, then print the report tables.

    With `as_json` stdout carries only the JSON report; the tables go to stderr.
    """
    from ._output import Stages, check_output, human_console

    if limit is not None and limit <= 0:
        raise InvalidRequestError(f"--limit must be a positive number of prompts, got {limit}")
    check_output(log_path, "--log")
    if log_path is None:
        # The demo's own log is replaced on each run; a log the user named is appended to.
        log_path = default_log_path()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.unlink(missing_ok=True)
    started = time.perf_counter()
    notes: list[str] = []
    with Stages(enabled=progress) as stages:
        stages.stage("training held-out learned routers", _TRAIN_FOLDS * len(datasets))
        reports = run_demo(
            datasets=datasets,
            limit=limit,
            log_path=log_path,
            on_progress=lambda total: stages.stage("replaying recorded traffic", total),
            on_done=stages.advance,
            on_policy=notes.append,
            on_trained=lambda _name, _rows: stages.advance(),
        )
        from ._agent_demo import agent_demo, print_agent_demo

        agents = agent_demo(on_progress=stages.counter("replaying logged agent runs"))
    elapsed = time.perf_counter() - started
    console = human_console(as_json)
    _print_table(console, reports, log_path, elapsed, notes)
    print_agent_demo(agents, console)
    if as_json:
        print(
            json.dumps(
                {
                    "datasets": [
                        asdict(r) | {"quality_kept": r.quality_kept, "cost_share": r.cost_share}
                        for r in reports
                    ],
                    "log": str(log_path),
                    "policy": " ".join(notes),
                    "seconds": round(elapsed, 2),
                    "agents": agents,
                }
            )
        )
    return 0


def _log_format(path: Path) -> str:
    return "JSONL" if path.suffix.lower() == ".jsonl" else "SQLite"  # as `open_decision_log` reads it


def _combined(reports: Sequence[DatasetReport]) -> DatasetReport:
    total = sum(r.requests for r in reports)

    def weighted(values: Iterable[float]) -> float:
        return sum(v * r.requests for v, r in zip(values, reports, strict=True)) / total if total else 0.0

    models = sorted({model for r in reports for model in r.share})
    return DatasetReport(
        dataset="all",
        requests=total,
        share={m: weighted(r.share.get(m, 0.0) for r in reports) for m in models},
        quality=weighted(r.quality for r in reports),
        strongest_quality=weighted(r.strongest_quality for r in reports),
        cheapest_quality=weighted(r.cheapest_quality for r in reports),
        cost_usd=sum(r.cost_usd for r in reports),
        strongest_cost_usd=sum(r.strongest_cost_usd for r in reports),
    )


def _print_table(
    console: Console,
    reports: Sequence[DatasetReport],
    log_path: Path,
    elapsed: float,
    notes: Sequence[str] = (),
) -> None:
    from rich.table import Table

    cheapest, strongest = routellm_models()
    columns = [*reports, _combined(reports)] if len(reports) > 1 else list(reports)
    table = Table(title="gearshift demo: routed traffic vs always calling the strongest model")
    table.add_column("")
    for r in columns:
        table.add_column(r.dataset, justify="right")
    rows: list[tuple[str, Callable[[DatasetReport], str]]] = [
        ("requests", lambda r: f"{r.requests:,}"),
        (f"sent to {cheapest.id}", lambda r: f"{r.share.get(cheapest.id, 0):.1%}"),
        (f"sent to {strongest.id}", lambda r: f"{r.share.get(strongest.id, 0):.1%}"),
        ("quality, routed", lambda r: f"{r.quality:.2%}"),
        ("quality, always strongest", lambda r: f"{r.strongest_quality:.2%}"),
        ("quality, always cheapest", lambda r: f"{r.cheapest_quality:.2%}"),
        ("quality kept vs strongest", lambda r: f"{r.quality_kept:.1%}"),
        ("cost, routed", lambda r: f"${r.cost_usd:,.2f}"),
        ("cost, always strongest", lambda r: f"${r.strongest_cost_usd:,.2f}"),
        ("cost saved vs strongest", lambda r: f"{1 - r.cost_share:.1%}"),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(r) for r in columns))
    console.print(table)
    routing = "".join(f"Routing: {note}.\n" for note in notes)
    console.print(
        f"{routing}Quality is the share of prompts answered correctly (recorded scores). Cost uses list "
        "prices per token with the recorded answer lengths (see gearshift/datasets/routellm/PROVENANCE.md).\n"
        f"Decision log ({_log_format(log_path)}): {log_path}\nTrained and replayed in {elapsed:.1f} s."
    )
