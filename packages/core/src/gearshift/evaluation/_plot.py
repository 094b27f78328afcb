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

__all__ = ["draw_report", "plot_report"]

_FIXED = ("always-cheapest", "always-strongest")
_PER_REQUESTS = 1_000.0
"""Costs are drawn per this many requests, so that cents, not millionths of a dollar, label the axis."""


def _point(cost: float, quality: float, usd: bool) -> str:
    where = f"${cost:,.2f} per 1,000" if usd else f"{cost:.0%} strong calls"
    return f"{where}, quality {quality:.3f}"


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

    X is the cost of 1,000 requests in dollars (or the strong-model share of calls when the table has
    no costs), written out in the axis title with no corner multiplier, Y the mean quality. Each
    policy's swept curve is a line; its operating point is a dot listed in the legend with its
    figures; random is the dashed line between the cheapest and the strong model; the oracle is one
    point (its tradeoff-0 choice); each single model is a labelled point.
    """
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(9, 6), dpi=110)
    try:
        draw_report(report, axes, title=title)
        figure.tight_layout()
        target = Path(path)
        figure.savefig(target, format="png")
    finally:
        plt.close(figure)
    return target


def draw_report(report: EvalReport, axes: Any, *, title: str | None = None) -> None:
    """Draw `report` on matplotlib `axes` (see `plot_report` for what is drawn)."""
    usd = report.costs_known
    scale = _PER_REQUESTS if usd else 1.0
    for name, result in report.policies.items():
        curve = result.curve
        if name == "random":
            axes.plot(curve.costs * scale, curve.qualities, "--", color="grey", label="random")
            continue
        if name == "oracle":
            op = curve.operating_point()
            if op is not None:
                axes.plot(
                    op[0] * scale,
                    op[1],
                    "*",
                    markersize=14,
                    color="gold",
                    markeredgecolor="black",
                    label=f"oracle ({_point(op[0] * scale, op[1], usd)})",
                )
            continue
        if name in _FIXED or len(curve) < 2:
            continue
        order = np.argsort(curve.costs, kind="stable")
        (line,) = axes.plot(
            curve.costs[order] * scale, curve.qualities[order], "-", linewidth=1.6, label=name
        )
        if result.cost is not None and result.quality is not None:
            axes.plot(
                result.cost * scale,
                result.quality,
                "o",
                color=line.get_color(),
                markersize=7,
                label=f"{name} operating point ({_point(result.cost * scale, result.quality, usd)})",
            )
    for model, (cost, quality) in report.models.items():
        axes.plot(cost * scale, quality, "s", color="black", markersize=6)
        axes.annotate(model, (cost * scale, quality), textcoords="offset points", xytext=(6, -12), fontsize=8)
    axes.set_xlabel("cost per 1,000 requests (USD)" if usd else "share of calls to the strong model")
    axes.set_ylabel("mean quality (score, 0 to 1)")
    axes.set_title(title or f"Cost and quality of routing ({report.rows:,} prompts)")
    # Plain tick labels: the unit is in the axis title, never in a "1e-3" corner multiplier.
    axes.ticklabel_format(axis="x", style="plain", useOffset=False)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize=9)
