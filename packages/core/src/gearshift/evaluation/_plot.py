"""The cost-quality chart of an `EvalReport`: every policy's curve, the random line, the oracle point.

matplotlib is an optional extra (`pip install 'gearshift[plot]'`), imported only when a chart is
drawn, with the non-interactive Agg backend so it works on servers and in CI without a display.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ._evaluate import EvalReport
from ._sweep import EvaluationError

__all__ = ["plot_report"]

_FIXED = ("always-cheapest", "always-strongest")


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise EvaluationError(
            "drawing the chart needs matplotlib; install it with: pip install 'gearshift[plot]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_report(report: EvalReport, path: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Draw `report` as a PNG at `path` and return the path.

    X is the mean cost per request in dollars (or the strong-model share of calls when the table has
    no costs), Y the mean quality. Each policy's swept curve is a line with its operating point
    marked; random is the dashed line between the cheapest and the strong model; the oracle is one
    point (its tradeoff-0 choice); each single model is a labelled point.
    """
    plt = _pyplot()
    usd = report.costs_known
    figure, axes = plt.subplots(figsize=(9, 6), dpi=110)
    try:
        for name, result in report.policies.items():
            curve = result.curve
            if name == "random":
                axes.plot(curve.costs, curve.qualities, "--", color="grey", label="random")
                continue
            if name == "oracle":
                op = curve.operating_point()
                if op is not None:
                    axes.plot(*op, marker="*", markersize=14, color="gold", markeredgecolor="black")
                    axes.annotate("oracle", op, textcoords="offset points", xytext=(6, 4))
                continue
            if name in _FIXED or len(curve) < 2:
                continue
            order = np.argsort(curve.costs, kind="stable")
            (line,) = axes.plot(curve.costs[order], curve.qualities[order], "-", linewidth=1.6, label=name)
            if result.cost is not None and result.quality is not None:
                axes.plot(result.cost, result.quality, "o", color=line.get_color(), markersize=7)
        for model, (cost, quality) in report.models.items():
            axes.plot(cost, quality, "s", color="black", markersize=6)
            axes.annotate(model, (cost, quality), textcoords="offset points", xytext=(6, -12), fontsize=8)
        axes.set_xlabel("mean cost per request (USD)" if usd else "share of calls to the strong model")
        axes.set_ylabel("mean quality (score, 0 to 1)")
        axes.set_title(title or f"Cost and quality of routing ({report.rows:,} prompts)")
        if usd:
            axes.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))
        axes.grid(True, alpha=0.3)
        axes.legend(loc="lower right", fontsize=9)
        figure.tight_layout()
        target = Path(path)
        figure.savefig(target, format="png")
    finally:
        plt.close(figure)
    return target
