"""`gearshift train`: the sub-command's parser and runner, on a table written to disk."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from learning_tables import two_model_table

from gearshift import ConfigError
from gearshift.datasets import OutcomeTableError, save_outcomes
from gearshift.learning import LearnedRouter, add_train_parser, run_train


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gearshift")
    add_train_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["train", *argv])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("train") / "outcomes.jsonl"
    save_outcomes(two_model_table(150, seed=7), path)
    return path


def test_train_writes_a_calibrated_router_and_says_what_it_did(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "router.json"
    assert (
        run_train(_parse(["--data", str(data), "--out", str(out), "--target-strong-share", "0.4", "--json"]))
        == 0
    )
    captured = capsys.readouterr()
    summary = json.loads(captured.out)  # with --json, stdout is the JSON and nothing else
    printed = captured.err
    assert "read 150 prompts, 2 models" in printed
    assert "internal 3-fold cross-validation" in printed and "<- kept" in printed
    assert "operating point: target_strong_share=0.4" in printed
    assert summary["models"] == ["weak-model", "strong-model"]
    assert abs(summary["operating_point"]["strong_share"] - 0.4) <= 0.02
    router = LearnedRouter.load(out)
    assert router.operating_point.target == "target_strong_share=0.4"
    assert router.training.method == summary["method"]


def test_the_method_and_targets_are_checked_by_the_parser(data: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        _parse(["--data", str(data), "--out", "r.json", "--method", "forest"])
    with pytest.raises(SystemExit):
        _parse(["--data", str(data), "--out", "r.json", "--quality-floor", "0.8", "--max-cost", "0.01"])
    args = _parse(
        ["--data", str(data), "--out", str(tmp_path / "r.json"), "--method", "knn", "--quality-floor", "0.9"]
    )
    assert run_train(args) == 0
    assert LearnedRouter.load(tmp_path / "r.json").training.method == "knn"


def test_bad_input_files_are_gearshift_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        run_train(_parse(["--data", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "r.json")]))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a", "task": "t", "prompt": "p"}\n')
    with pytest.raises(OutcomeTableError, match="line 1"):
        run_train(_parse(["--data", str(broken), "--out", str(tmp_path / "r.json")]))
