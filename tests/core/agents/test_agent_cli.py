"""`gearshift eval-agents` and `gearshift train-escalation` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hand_made_runs import looping_table, prompted_table, repeated_trials_table

from gearshift.cli import main
from gearshift.datasets import load_agent_runs
from gearshift.escalation import EscalationModel
from gearshift.evaluation._agent_eval import self_disagreement
from gearshift.evaluation._agent_task_router import task_folds, task_groups

KEYS = {"success", "cost_per_task", "cost_per_success", "handover_rate", "success_ci", "cost_ci"}
THRESHOLDED = {"task-router", "learned-escalation", "task-router+escalation"}


def test_eval_agents_json_is_one_object_of_the_documented_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = looping_table(tmp_path / "runs.jsonl")
    assert main(["eval-agents", "--data", str(data), "--folds", "3", "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out)  # the whole of stdout is one object
    assert set(report) == {"models", "policies"}
    assert report["models"] == {"weak": "w", "strong": "s"}
    assert set(report["policies"]) == {
        "always-weak",
        "always-strong",
        "oracle",
        "task-router",
        "scorer-steps",
        *THRESHOLDED,
    }
    for name, entry in report["policies"].items():
        assert set(entry) >= KEYS, name
        assert ("curve" in entry) == (name in THRESHOLDED), name
        lo, hi = entry["success_ci"]
        assert lo <= entry["success"] <= hi
    assert report["policies"]["always-strong"]["success"] == 1.0
    assert report["policies"]["always-weak"]["success"] == 0.5
    # Held-out escalation on this table finds the loops: it keeps strong's success for less.
    learned = report["policies"]["learned-escalation"]
    assert learned["success"] == 1.0
    assert learned["cost_per_task"] < report["policies"]["always-strong"]["cost_per_task"]


def test_eval_agents_with_a_training_table_and_a_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = looping_table(tmp_path / "train.jsonl")
    data = looping_table(tmp_path / "data.jsonl", tasks=12)
    code = main(["eval-agents", "--data", str(data), "--train", str(train), "--policy", "scorer-steps"])
    assert code == 0
    out = capsys.readouterr().out
    assert "trained on 24 tasks" in out
    assert "scorer-steps" in out
    assert "learned-escalation" not in out
    assert "cannot be measured: the table holds one run per model and task" in out


def test_eval_agents_reports_bad_input_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval-agents", "--data", str(tmp_path / "none.jsonl")]) == 2
    assert "none.jsonl: no such file" in capsys.readouterr().err
    plain = tmp_path / "plain.jsonl"
    plain.write_text(
        json.dumps({"id": "a", "task": "t", "prompt": "hi", "outcomes": {"m": {"score": 1}}}) + "\n"
    )
    assert main(["eval-agents", "--data", str(plain)]) == 2
    assert "holds no agent runs" in capsys.readouterr().err


def test_train_escalation_writes_an_artifact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = looping_table(tmp_path / "runs.jsonl")
    out = tmp_path / "escalation.json"
    assert (
        main(["train-escalation", "--data", str(data), "--out", str(out), "--target-handover-share", "0.5"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "hand-over share 50%" in printed
    assert EscalationModel.load(out).target.startswith("hand-over share 50%")
    with pytest.raises(SystemExit) as exited:  # a usage error, before the table is read
        main(["train-escalation", "--data", str(data), "--out", str(out), "--success-floor", "2"])
    assert exited.value.code == 2
    assert "argument --success-floor: expected a number from 0 to 1, got 2" in capsys.readouterr().err


def test_train_escalation_embeds_the_task_prior_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = prompted_table(tmp_path / "prompted.jsonl")
    out = tmp_path / "escalation.json"
    assert main(["train-escalation", "--data", str(data), "--out", str(out), "--task-prior", "on"]) == 0
    assert "task prior: kept" in capsys.readouterr().out
    assert EscalationModel.load(out).features[-1] == "task_prior"
    assert main(["train-escalation", "--data", str(data), "--out", str(out), "--task-prior", "off"]) == 0
    assert "task prior: not used" in capsys.readouterr().out
    assert EscalationModel.load(out).prior is None


def test_the_demo_replays_the_bundled_agent_runs() -> None:
    from gearshift.cli._agent_demo import agent_demo

    result = agent_demo()
    assert (result["tasks"], result["weak"], result["strong"]) == (115, "gpt-4o-mini", "gpt-4o")
    rows = result["policies"]
    assert list(rows) == ["always-strong", "always-weak", "scorer-steps", "learned-escalation"]
    assert rows["always-strong"]["success"] == pytest.approx(72 / 115)
    assert rows["always-weak"]["success"] == pytest.approx(49 / 115)
    assert rows["always-strong"]["cost_per_success"] == pytest.approx(
        rows["always-strong"]["cost_per_task"] * 115 / 72
    )


def test_trials_of_one_task_share_a_fold_and_their_self_disagreement_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = repeated_trials_table(tmp_path / "trials.jsonl")
    runs = load_agent_runs(data)
    groups = task_groups(runs)
    assert len(set(groups.tolist())) == 8
    folds = task_folds(runs, 3, seed=0)
    for test in folds:
        inside = set(groups[test].tolist())
        assert all(set(np.flatnonzero(groups == g).tolist()) <= set(test.tolist()) for g in inside)
    agree = self_disagreement(runs)
    assert agree is not None
    assert (agree.tasks, agree.runs, agree.weak, agree.strong) == (8, 16, 0.25, 0.0)
    assert main(["eval-agents", "--data", str(data), "--folds", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["self_disagreement"] == {"tasks": 8, "runs": 16, "weak": 0.25, "strong": 0.0}
    # More folds than distinct tasks: the folds split rows, and the report says so.
    assert main(["eval-agents", "--data", str(data), "--folds", "9", "--json"]) == 0
    assert "only 8 distinct opening prompts among 16 tasks, fewer than the 9 folds" in capsys.readouterr().err
    assert main(["eval-agents", "--data", str(data), "--folds", "17"]) == 2
    assert "--folds must be between 2 and the 16 tasks, got 17" in capsys.readouterr().err


def test_eval_agents_replays_the_pair_named_with_weak_and_strong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = looping_table(tmp_path / "runs.jsonl")
    args = ["eval-agents", "--data", str(data), "--folds", "3", "--policy", "scorer-steps", "--json"]
    assert main([*args, "--weak", "s", "--strong", "w"]) == 0
    assert json.loads(capsys.readouterr().out)["models"] == {"weak": "s", "strong": "w"}
    assert main([*args, "--weak", "nobody"]) == 2
    assert "model 'nobody' is not in the table" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["eval-agents", "--dataset", "tau-retail", "--weak", "gpt-4o-mini-typo"], "--weak gpt-4o-mini-typo"),
        (
            ["train-escalation", "--data", "tau-retail", "--strong", "gpt-4o-mini", "--out", "e.json"],
            "--strong",
        ),
    ],
)
def test_weak_or_strong_the_bundled_runs_do_not_hold_is_refused_not_ignored(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    named: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"error: {named}" in captured.err
    assert "the bundled tau-retail runs compare gpt-4o-mini (cheap) with gpt-4o (strong)" in captured.err
    assert not (tmp_path / "e.json").exists()
