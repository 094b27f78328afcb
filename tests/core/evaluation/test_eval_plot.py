"""The eval chart: the cost axis says its unit in its title (no "1e-3" corner multiplier), and every
policy's operating point is in the legend with its figures."""

from __future__ import annotations

from eval_tables import hand_table

from gearshift.datasets import load_routellm
from gearshift.evaluation import evaluate
from gearshift.evaluation._plot import _pyplot, draw_report


def test_the_cost_axis_names_its_unit_and_the_legend_lists_operating_points() -> None:
    report = evaluate(load_routellm("mt-bench"), policies=("scorer",), folds=2)
    plt = _pyplot()
    figure, axes = plt.subplots()
    try:
        draw_report(report, axes)
        figure.canvas.draw()
        assert axes.get_xlabel() == "cost per 1,000 requests (USD)"
        assert axes.xaxis.get_offset_text().get_text() == ""  # no corner multiplier
        ticks = [float(t.get_text().replace("−", "-")) for t in axes.get_xticklabels() if t.get_text()]
        strongest = report.models[report.strong][0] * 1000
        assert max(ticks) >= strongest * 0.8  # ticks read in dollars per 1,000 requests
        legend = [t.get_text() for t in axes.get_legend().get_texts()]
        scorer = report.policies["scorer"]
        assert scorer.cost is not None and scorer.quality is not None
        assert (
            f"scorer operating point (${scorer.cost * 1000:,.2f} per 1,000, quality {scorer.quality:.3f})"
            in legend
        )
        assert any(text.startswith("oracle (") for text in legend)
    finally:
        plt.close(figure)


def test_without_costs_the_axis_is_the_strong_share() -> None:
    report = evaluate(hand_table(costs=False), policies=("length",), folds=2)
    plt = _pyplot()
    figure, axes = plt.subplots()
    try:
        draw_report(report, axes)
        assert axes.get_xlabel() == "share of calls to the strong model"
    finally:
        plt.close(figure)
