"""The learned answer judge: training on recorded answers, its gate, and its JSON file."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from gearshift import ConfigError
from gearshift._context import StepContext
from gearshift._decision import Decision
from gearshift._messages import ChatRequest, ChatResponse, Message
from gearshift.cascades import ANSWER_JUDGE_FORMAT, AnswerCheck, AnswerJudge, LearnedJudgeGate
from gearshift.cascades._answer_features import SHAPE_FEATURES
from gearshift.datasets import Outcome, OutcomeRow, OutcomeTable, OutcomeTableError

WORDS = ("apples", "pears", "marbles", "stamps", "coins", "shells")


def _good(a: int, b: int) -> str:
    return f"We add {a} and {b}: {a} + {b} = {a + b}.\n#### {a + b}"


def _bad(a: int, b: int, rng: random.Random) -> str:
    return rng.choice(
        [
            f"Hmm, I'm not sure. Maybe around {a + b + rng.randint(1, 9)}",
            f"Let me think about the {WORDS[a % len(WORDS)]}. First we take {a} and then",
            "I don't know how to solve this one.",
        ]
    )


def _table(n: int = 80, seed: int = 3) -> OutcomeTable:
    """Half the weak model's recorded answers conclude properly and score 1; the rest ramble and score 0."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b = rng.randint(2, 90), rng.randint(2, 90)
        prompt = f"Tom has {a} {WORDS[i % len(WORDS)]} and gets {b} more. How many does he have now?"
        good = i % 2 == 0
        rows.append(
            OutcomeRow(
                f"sum-{i}",
                "math",
                prompt,
                {
                    "weak": Outcome(
                        1.0 if good else 0.0, 0.0001, response=_good(a, b) if good else _bad(a, b, rng)
                    ),
                    "strong": Outcome(1.0, 0.002, response=_good(a, b)),
                    "silent": Outcome(1.0),
                },
            )
        )
    return OutcomeTable(rows)


@pytest.fixture(scope="module")
def judge() -> AnswerJudge:
    return AnswerJudge.train(_table(), models=["weak"], prompt_dims=256, answer_dims=256)


def test_the_judge_tells_concluded_answers_from_rambling_ones(judge: AnswerJudge) -> None:
    prompt = "Ann has 14 coins and gets 29 more. How many does she have now?"
    p_good = judge.predict_one(prompt, _good(14, 29))
    p_lost = judge.predict_one(prompt, "Hmm, I'm not sure. Maybe around 50")
    assert p_good > 0.5 > p_lost
    assert judge.models == ("weak",)
    assert judge.trained_on == 80
    assert judge.weights.shape == (judge.feature_count,)


def test_training_needs_answers_of_both_kinds() -> None:
    table = _table(20)
    with pytest.raises(OutcomeTableError, match="no row records a response of silent"):
        AnswerJudge.train(table, models=["silent"])
    with pytest.raises(OutcomeTableError, match=r"all 20 recorded answers scored at or above 0\.5"):
        AnswerJudge.train(table, models=["strong"])
    with pytest.raises(OutcomeTableError, match="no model 'nobody'"):
        AnswerJudge.train(table, models=["nobody"])
    with pytest.raises(TypeError, match="not one string"):
        AnswerJudge.train(table, models="weak")


def test_save_and_load_give_the_same_predictions(judge: AnswerJudge, tmp_path: Path) -> None:
    path = tmp_path / "judge.json"
    judge.save(path)
    loaded = AnswerJudge.load(path)
    prompts = [row.prompt_text for row in _table(10, seed=9)]
    answers = [row.outcomes["weak"].response or "" for row in _table(10, seed=9)]
    assert np.array_equal(loaded.predict(prompts, answers), judge.predict(prompts, answers))
    assert (loaded.models, loaded.prompt_dims, loaded.trained_on) == (judge.models, 256, 80)
    data = json.loads(path.read_text())
    assert data["format"] == ANSWER_JUDGE_FORMAT and data["version"] == 1


def _corrupt(data: dict[str, object], key: str, value: object) -> dict[str, object]:
    changed = dict(data)
    if value is _DROP:
        del changed[key]
    else:
        changed[key] = value
    return changed


_DROP = object()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: ["not", "a", "judge"], "its format is 'list'"),
        (
            lambda d: _corrupt(d, "format", "gearshift-learned-router"),
            "its format is 'gearshift-learned-router'",
        ),
        (lambda d: _corrupt(d, "version", 2), "written by a newer gearshift (file version 2"),
        (
            lambda d: _corrupt(d, "weights", d["weights"][:-5]),
            f"weights for {512 + len(SHAPE_FEATURES)} features (truncated or corrupt)",
        ),
        (
            lambda d: _corrupt(d, "weights", ["x"] * (512 + len(SHAPE_FEATURES))),
            "'weights' must be a list of finite numbers",
        ),
        (lambda d: _corrupt(d, "bias", None), "'bias' is None"),
        (lambda d: _corrupt(d, "features", {**d["features"], "recipe": 99}), "feature recipe 99"),
        (lambda d: _corrupt(d, "features", _DROP), "the 'features' table is missing"),
        (lambda d: _corrupt(d, "models", "weak"), "'models' must be a list"),
        (lambda d: _corrupt(d, "features", {**d["features"], "shape": -1}), "answer-shape columns"),
        (lambda d: _corrupt(d, "label_threshold", "high"), "'label_threshold' is 'high'"),
        (lambda d: _corrupt(d, "label_threshold", 7), "expected a number in [0, 1]"),
        (lambda d: _corrupt(d, "trained_on", -3), "'trained_on' is -3"),
    ],
)
def test_a_foreign_or_corrupt_file_is_refused(
    judge: AnswerJudge, tmp_path: Path, change: object, message: str
) -> None:
    path = tmp_path / "judge.json"
    path.write_text(json.dumps(change(judge.to_dict())))  # type: ignore[operator]
    with pytest.raises(ConfigError, match="not a usable answer-judge file") as caught:
        AnswerJudge.load(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_unreadable_files_are_refused(judge: AnswerJudge, tmp_path: Path) -> None:
    path = tmp_path / "judge.json"
    judge.save(path)
    path.write_text(path.read_text()[:200])  # cut short mid-write
    with pytest.raises(ConfigError, match=r"not an answer-judge file: not JSON"):
        AnswerJudge.load(path)
    with pytest.raises(ConfigError, match="no such answer-judge file"):
        AnswerJudge.load(tmp_path / "missing.json")


def _check(prompt: str, text: str) -> AnswerCheck:
    async def ask(model_id: str, request: ChatRequest) -> ChatResponse:
        raise AssertionError("the learned judge makes no model call")

    request = ChatRequest(messages=(Message.system("You are good at sums."), Message.user(prompt)))
    response = ChatResponse(Message.assistant(text), "weak", "weak")
    return AnswerCheck(request, response, Decision("weak", 1), StepContext(), ask)


async def test_the_gate_accepts_from_its_threshold(judge: AnswerJudge) -> None:
    prompt = "Bo has 40 shells and gets 2 more. How many does he have now?"
    good, lost = _check(prompt, _good(40, 2)), _check(prompt, "I don't know how to solve this one.")
    gate = LearnedJudgeGate(judge, threshold=0.5)
    accepted, rejected = await gate.check(good), await gate.check(lost)
    assert accepted.accept and accepted.confidence == pytest.approx(judge.predict_one(prompt, _good(40, 2)))
    assert not rejected.accept and rejected.gate == "learned-judge"
    assert rejected.reason.startswith("the learned judge rates this answer good with probability 0.")
    assert not (await LearnedJudgeGate(judge, threshold=1.0).check(good)).accept
    with pytest.raises(ValueError, match="threshold"):
        LearnedJudgeGate(judge, threshold=1.5)


def test_a_threshold_for_an_escalation_rate(judge: AnswerJudge) -> None:
    table = _table(40, seed=11)
    threshold = judge.threshold_for(table, "weak", escalation_rate=0.5)
    predicted = judge.predict(
        [r.prompt_text for r in table], [r.outcomes["weak"].response or "" for r in table]
    )
    assert float(np.mean(predicted < threshold)) == pytest.approx(0.5, abs=0.03)
