"""The public names of `gearshift.evaluation`, and its promise to load numpy only on use."""

from __future__ import annotations

import subprocess
import sys

import gearshift.evaluation as evaluation


def test_the_exact_public_names() -> None:
    assert evaluation.__all__ == [
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
    for name in evaluation.__all__:
        assert getattr(evaluation, name).__doc__, name


def test_building_the_eval_parser_does_not_import_numpy() -> None:
    code = (
        "import argparse, sys\n"
        "from gearshift.evaluation import add_eval_parser\n"
        "add_eval_parser(argparse.ArgumentParser().add_subparsers())\n"
        "print('numpy' in sys.modules, 'matplotlib' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
