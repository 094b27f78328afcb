"""Router evaluation: metrics (APGR, CPT, AIQ), baselines, cross-validated evaluation and plots.

`evaluate` runs every policy on an outcome table (K-fold cross-validation, or a separate training
table) and returns an `EvalReport`; `gearshift eval` prints it and `plot_report` draws it.
`run_cascade_offline` replays a cascade of quality gates on a table the same way. The metric
functions are plain numpy over (cost, quality) points and follow RouteLLM (APGR, CPT) and RouterBench
(AIQ); see `gearshift.evaluation._metrics` for the exact definitions.

Names load on first use: the command line builds its `eval` parser from here without importing numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._baselines import (
        always_cheapest,
        always_strongest,
        oracle,
        prompt_length,
        random_router,
    )
    from ._cascade_replay import CascadeReport, arun_cascade_offline, run_cascade_offline
    from ._cli import add_eval_parser, run_eval
    from ._evaluate import EvalReport, Latency, PolicyResult, evaluate
    from ._metrics import (
        RouterCurve,
        aiq,
        apgr,
        convex_hull_nondecreasing,
        cpt,
        curve_integral,
        pgr_curve,
    )
    from ._names import BASELINES, POLICIES
    from ._plot import plot_report
    from ._sweep import EvaluationError, OutcomeMatrix, sweep_difficulty, sweep_scorer, sweep_tradeoff

_EXPORTS: dict[str, str] = {
    "BASELINES": "_names",
    "CascadeReport": "_cascade_replay",
    "arun_cascade_offline": "_cascade_replay",
    "run_cascade_offline": "_cascade_replay",
    "POLICIES": "_names",
    "EvalReport": "_evaluate",
    "EvaluationError": "_sweep",
    "Latency": "_evaluate",
    "OutcomeMatrix": "_sweep",
    "PolicyResult": "_evaluate",
    "RouterCurve": "_metrics",
    "add_eval_parser": "_cli",
    "aiq": "_metrics",
    "always_cheapest": "_baselines",
    "always_strongest": "_baselines",
    "apgr": "_metrics",
    "convex_hull_nondecreasing": "_metrics",
    "cpt": "_metrics",
    "curve_integral": "_metrics",
    "evaluate": "_evaluate",
    "oracle": "_baselines",
    "pgr_curve": "_metrics",
    "plot_report": "_plot",
    "prompt_length": "_baselines",
    "random_router": "_baselines",
    "run_eval": "_cli",
    "sweep_difficulty": "_sweep",
    "sweep_scorer": "_sweep",
    "sweep_tradeoff": "_sweep",
}

__all__ = [
    "BASELINES",
    "POLICIES",
    "CascadeReport",
    "EvalReport",
    "EvaluationError",
    "Latency",
    "OutcomeMatrix",
    "PolicyResult",
    "RouterCurve",
    "add_eval_parser",
    "aiq",
    "always_cheapest",
    "always_strongest",
    "apgr",
    "arun_cascade_offline",
    "convex_hull_nondecreasing",
    "cpt",
    "curve_integral",
    "evaluate",
    "oracle",
    "pgr_curve",
    "plot_report",
    "prompt_length",
    "random_router",
    "run_cascade_offline",
    "run_eval",
    "sweep_difficulty",
    "sweep_scorer",
    "sweep_tradeoff",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
