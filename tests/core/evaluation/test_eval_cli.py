"""`gearshift eval`, run in-process through its parser and `run_eval`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from eval_tables import hand_table, synthetic_table

from gearshift.cli import main
from gearshift.datasets import Outcome, OutcomeRow, OutcomeTable, load_outcomes, save_outcomes
from gearshift.evaluation import BASELINES, add_eval_parser, run_eval
from gearshift.learning import LearnedRouter


def _eval(argv: list[str]) -> int:
    # The lead wires `add_eval_parser` into `gearshift.cli`; this is the same parser, built alone.
    parser = argparse.ArgumentParser(prog="gearshift")
    add_eval_parser(parser.add_subparsers(dest="command", required=True))
    return run_eval(parser.parse_args(["eval", *argv]))


def test_json_is_all_of_stdout_and_holds_every_policy(capsys: pytest.CaptureFixture[str]) -> None:
    assert _eval(["--dataset", "mt-bench", "--policy", "scorer", "--folds", "2", "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)  # nothing but the JSON on stdout
    assert set(report["policies"]) == {*BASELINES, "scorer"}
    assert "APGR" in captured.err and "CPT(50%)" in captured.err  # the table went to stderr
    random = report["policies"]["random"]
    assert random["apgr"] == pytest.approx(0.5) and random["cpt50"] == pytest.approx(50.0)
    scorer = report["policies"]["scorer"]
    assert {"apgr", "cpt50", "cpt80", "aiq", "curve"} <= scorer.keys()
    # The curve is in dollars per request: from all-strong down to all-weak.
    models = report["models"]
    strong = models["gpt-4-1106-preview"]
    weak = models["mixtral-8x7b-instruct"]
    assert scorer["curve"][0] == pytest.approx([strong["cost"], strong["quality"]])
    assert scorer["curve"][-1] == pytest.approx([weak["cost"], weak["quality"]])
    assert report["cost_unit"] == "usd" and report["rows"] == 72
    assert 0 < scorer["latency_us"]["median"] <= scorer["latency_us"]["p99"]
    assert report["policies"]["always-strongest"]["apgr"] is None  # no knob, no curve metrics


def test_a_table_without_costs_uses_the_strong_call_share(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hand.jsonl"
    save_outcomes(hand_table(costs=False), path)
    assert _eval(["--data", str(path), "--policy", "length", "--folds", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["cost_unit"] == "strong_share"
    assert report["policies"]["oracle"]["aiq"] is None  # AIQ needs dollars
    assert report["policies"]["oracle"]["cpt50"] == pytest.approx(12.5)
    assert report["policies"]["length"]["curve"][0] == [1.0, 0.75]


def test_costs_missing_on_some_rows_are_named_as_the_reason_for_the_share_axis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One row of four lacks the strong model's cost: the axis falls back to the strong-call share, and
    # the notes used to say no costs were recorded at all.
    table = hand_table()
    row = table[2]
    gap = OutcomeRow(row.id, row.task, row.prompt, {**row.outcomes, "strong": Outcome(1.0)})
    path = tmp_path / "hand.jsonl"
    save_outcomes(OutcomeTable([*table.rows[:2], gap, table[3]]), path)
    assert _eval(["--data", str(path), "--policy", "default", "--folds", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["cost_unit"] == "strong_share"
    assert (
        "cost_usd is missing on 1 of the 4 rows (first: row 'hand-2', model strong), so the cost axis is "
        "the share of requests sent to strong, not dollars, and there is no AIQ" in report["notes"]
    )
    assert "weakest first, as not every row records every model's cost" in report["notes"][-2]


def test_a_table_whose_every_cost_is_zero_is_measured_on_the_strong_call_share(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Local models cost nothing: a dollar axis from $0 to $0 left every APGR, CPT and AIQ blank.
    free = OutcomeTable(
        OutcomeRow(row.id, row.task, row.prompt, {m: Outcome(o.score, 0.0) for m, o in row.outcomes.items()})
        for row in hand_table()
    )
    path = tmp_path / "free.jsonl"
    save_outcomes(free, path)
    assert _eval(["--data", str(path), "--policy", "length", "--folds", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["cost_unit"] == "strong_share"
    assert report["policies"]["oracle"]["cpt50"] == pytest.approx(12.5)  # as without costs
    assert (
        "every cost_usd is 0, so the cost axis is the share of requests sent to strong, not dollars, and "
        "there is no AIQ" in report["notes"]
    )


def test_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chart = tmp_path / "chart.png"
    assert _eval(["--dataset", "mt-bench", "--policy", "scorer", "--plot", str(chart)]) == 0
    data = chart.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a drawn chart, not an empty canvas
    assert str(chart) in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ('{"id": "a", "task": "t", "prompt": "hi", "outcomes": {"m": {"score": 2}}}\n', "score"),
        ('{"id": "a", "task": "t", "prompt": "hi", "outcomes": {"m": {"score": 1}}}\n', "two models"),
        ("not json\n", "line 1"),
    ],
)
def test_a_bad_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "table.jsonl"
    if content is not None:
        path.write_text(content)
    assert _eval(["--data", str(path), "--policy", "scorer"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gearshift: error:") and message in err and "Traceback" not in err


def test_bad_folds_and_an_unwritable_chart_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _eval(["--dataset", "mt-bench", "--folds", "1", "--policy", "knn"]) == 2
    assert "folds" in capsys.readouterr().err
    chart = tmp_path / "missing-dir" / "chart.png"
    assert _eval(["--dataset", "mt-bench", "--policy", "scorer", "--plot", str(chart)]) == 2
    assert "missing-dir" in capsys.readouterr().err


def test_an_unknown_policy_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _eval(["--dataset", "mt-bench", "--policy", "magic"])
    assert exit_info.value.code == 2
    assert "magic" in capsys.readouterr().err


def test_a_learned_policy_is_cross_validated(capsys: pytest.CaptureFixture[str]) -> None:
    assert _eval(["--dataset", "mt-bench", "--policy", "knn", "--folds", "2", "--json"]) == 0
    captured = capsys.readouterr()
    assert "2-fold cross-validation" in captured.err
    knn = json.loads(captured.out)["policies"]["knn"]
    assert knn["baseline"] is False
    assert knn["apgr"] is not None and knn["aiq"] is not None
    assert knn["quality"] is not None and knn["cost"] is not None
    assert len(knn["curve"]) > 10  # every kink of 72 out-of-fold predictions, not a coarse grid
    assert knn["latency_us"]["median"] > 0


@pytest.fixture(scope="module")
def saved_router(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a router trained by `gearshift train` on one table, another table of the same models)."""
    folder = tmp_path_factory.mktemp("saved-router")
    fit, held, router = folder / "fit.jsonl", folder / "held.jsonl", folder / "router.json"
    save_outcomes(synthetic_table(300, seed=0), fit)
    save_outcomes(synthetic_table(200, seed=1), held)
    assert main(["train", "--data", str(fit), "--out", str(router), "--no-progress"]) == 0
    return router, held


def test_a_saved_router_is_scored_as_shipped(
    saved_router: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    router_path, held = saved_router
    capsys.readouterr()
    assert main(["eval", "--data", str(held), "--router", str(router_path), "--json", "--no-progress"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    # Alone, --router scores the router and the baselines, and retrains nothing.
    assert set(report["policies"]) == {*BASELINES, str(router_path)}
    scored = report["policies"][str(router_path)]
    # At its operating point it routes each row as the saved router itself does.
    router = LearnedRouter.load(router_path)
    table = load_outcomes(held)
    outcomes = [row.outcomes[m] for row, m in zip(table, router.route(table.rows), strict=True)]
    assert scored["quality"] == pytest.approx(np.mean([o.score for o in outcomes]))
    assert scored["cost"] == pytest.approx(np.mean([o.cost_usd for o in outcomes]))
    assert len(scored["curve"]) > 10 and scored["latency_us"]["median"] > 0
    # The synthetic table's topics tell which model answers, so a router that read them beats a coin.
    assert scored["apgr"] > scored["chance_apgr"] > 0.5
    note = next(n for n in report["notes"] if n.startswith(str(router_path)))
    assert "trained on 300 rows" in note and router.operating_point.target in note
    assert "cross-validation" not in captured.err  # nothing was trained


def test_saved_routers_repeat_beside_policies(
    saved_router: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    router_path, held = saved_router
    cheaper = tmp_path / "cheaper.json"
    train = ["train", "--data", str(held), "--router", str(router_path), "--out", str(cheaper)]
    assert main([*train, "--target-strong-share", "0.01", "--no-progress"]) == 0
    capsys.readouterr()
    argv = ["eval", "--data", str(held), "--policy", "scorer", "--json", "--no-progress"]
    assert main([*argv, "--router", str(router_path), "--router", str(cheaper)]) == 0
    policies = json.loads(capsys.readouterr().out)["policies"]
    assert {"scorer", str(router_path), str(cheaper)} <= set(policies)
    assert policies[str(cheaper)]["strong_share"] < policies[str(router_path)]["strong_share"]


def test_a_router_file_that_cannot_be_scored_is_a_clear_error(
    saved_router: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    router_path, held = saved_router
    hand = tmp_path / "hand.jsonl"
    save_outcomes(hand_table(), hand)
    not_a_router = tmp_path / "outcomes.json"
    not_a_router.write_text('{"id": "a"}\n')
    cases = [
        (held, tmp_path / "missing.json", f"--router {tmp_path / 'missing.json'}: no such file"),
        (held, tmp_path, f"--router {tmp_path}: is a directory"),
        (held, not_a_router, f"--router {not_a_router}: not a gearshift router artifact"),
        (
            hand,
            router_path,
            f"router {router_path}: routes between tiny, small, large, huge, and the table is evaluated on "
            "weak, strong: it does not know the table's models weak, strong; the table has no outcome on "
            "every row for its models tiny, small, large, huge",
        ),
    ]
    for data, router, message in cases:
        assert main(["eval", "--data", str(data), "--router", str(router), "--folds", "2"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("gearshift: error:") and message in err and "Traceback" not in err


def test_saved_routers_alone_check_no_folds_and_refuse_a_training_table(
    saved_router: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing is cross-validated when only saved routers are scored, yet a 4-row table needed
    # `--folds 2`: "folds must be between 2 and the number of rows (4), got 5".
    router_path, held = saved_router
    small = tmp_path / "small.jsonl"
    save_outcomes(OutcomeTable(list(load_outcomes(held))[:4]), small)
    capsys.readouterr()
    assert main(["eval", "--data", str(small), "--router", str(router_path), "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["policies"]) == {*BASELINES, str(router_path)}
    assert report["folds"] is None and report["train_rows"] is None
    # --train was read and ignored: a saved router is scored as shipped and the baselines train
    # nothing, so a user who meant it to count is told, not shown figures that never used it.
    for policies in ([], ["--policy", "scorer"]):
        argv = ["eval", "--data", str(small), "--router", str(router_path), "--train", str(held), *policies]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("gearshift: error: a training table trains only the learned policies")
        assert "Traceback" not in err
