"""`[routing.cascade]`: validation that names the key, and the cascade it builds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gearshift import ConfigError, ModelPrices, ModelRegistry, ModelSpec
from gearshift.cascades import (
    DEFAULT_CHECKS,
    AnswerJudge,
    CascadeConfig,
    HeuristicGate,
    LearnedJudgeGate,
    LLMJudgeGate,
    SelfConsistencyGate,
    build_cascade,
    check_arithmetic,
)
from gearshift.cascades._answer_features import SHAPE_FEATURES

REGISTRY = ModelRegistry(
    [
        ModelSpec(id=m, provider="openai", model=m, tier=t, prices=ModelPrices(input=1, output=1))
        for m, t in (("mini", 1), ("big", 2))
    ]
    + [
        ModelSpec(
            id="plain",
            provider="openai",
            model="plain",
            tier=2,
            prices=ModelPrices(input=1, output=1),
            supports_json=False,
        )
    ]
)


def _judge_file(folder: Path) -> Path:
    judge = AnswerJudge(
        models=("mini",), weights=np.zeros(16 + len(SHAPE_FEATURES)), bias=0.5, prompt_dims=8, answer_dims=8
    )
    judge.save(folder / "judge.json")
    return folder / "judge.json"


@pytest.mark.parametrize(
    ("data", "key", "message"),
    [
        (
            {"gates": ["heuristic", "oracle"]},
            "routing.cascade.gates",
            "unknown gate 'oracle'; choose from heuristic",
        ),
        ({"gates": []}, "routing.cascade.gates", "name at least one gate"),
        ({"gates": ["heuristic", "heuristic"]}, "routing.cascade.gates", "repeated: heuristic"),
        ({"gates": ["llm-judge"]}, "routing.cascade.judge_model", "the llm-judge gate needs judge_model"),
        (
            {"gates": ["learned-judge"]},
            "routing.cascade.learned_judge_path",
            "needs the path of a saved judge",
        ),
        (
            {"judge_treshold": 0.5},
            "routing.cascade.judge_treshold",
            "unknown setting; [routing.cascade] accepts",
        ),
        ({"judge_threshold": 7}, "routing.cascade.judge_threshold", "must be <= 1, got 7"),
        ({"mode": "most"}, "routing.cascade.mode", "'all' or 'any'"),
        ({"max_escalations": 3}, "routing.cascade.max_escalations", "unknown setting"),
        ({"consistency_samples": 1}, "routing.cascade.consistency_samples", "must be >= 2, got 1"),
    ],
)
def test_errors_name_the_key(data: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        CascadeConfig.from_config(data, source="gearshift.toml")
    assert caught.value.key == key
    assert caught.value.source == "gearshift.toml"
    assert message in str(caught.value)


def test_the_default_is_the_heuristic_gate() -> None:
    cascade = build_cascade({}, registry=REGISTRY)
    assert cascade.mode == "all" and cascade.combine_prior == 0.0
    (gate,) = cascade.gates
    assert isinstance(gate, HeuristicGate)
    assert gate.checks == DEFAULT_CHECKS


def test_every_gate_in_the_order_given(tmp_path: Path) -> None:
    _judge_file(tmp_path)
    config = CascadeConfig.from_config(
        {
            "gates": ["self-consistency", "learned-judge", "llm-judge", "heuristic"],
            "mode": "any",
            "final_answer": "choice",
            "check_arithmetic": True,
            "judge_model": "big",
            "judge_threshold": 0.8,
            "judge_on_failure": "accept",
            "learned_judge_path": "judge.json",
            "learned_judge_threshold": 0.3,
            "consistency_samples": 3,
            "combine_prior": 0.2,
            "combined_threshold": 0.6,
        }
    )
    cascade = build_cascade(config, registry=REGISTRY, base_dir=tmp_path)
    consistency, learned, judge, heuristic = cascade.gates
    assert isinstance(consistency, SelfConsistencyGate) and consistency.samples == 3
    assert isinstance(learned, LearnedJudgeGate) and learned.threshold == 0.3
    assert learned.judge.models == ("mini",)
    assert isinstance(judge, LLMJudgeGate)
    assert (judge.model_id, judge.threshold, judge.on_failure, judge.structured) == (
        "big",
        0.8,
        "accept",
        True,
    )
    assert isinstance(heuristic, HeuristicGate)
    assert repr(heuristic.checks[-2]) == "FinalAnswerCheck('choice')"
    assert heuristic.checks[-1] is check_arithmetic
    assert (cascade.mode, cascade.combine_prior, cascade.threshold) == ("any", 0.2, 0.6)


def test_the_learned_judge_path_starts_at_the_config_files_folder(tmp_path: Path) -> None:
    _judge_file(tmp_path)
    config_file = tmp_path / "gearshift.toml"
    config_file.write_text("")
    data = {"gates": ["learned-judge"], "learned_judge_path": "judge.json"}
    cascade = build_cascade(data, registry=REGISTRY, source=str(config_file))
    assert isinstance(cascade.gates[0], LearnedJudgeGate)


def test_build_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="unknown model id 'gpt-9'; the registry has: mini, big, plain"
    ) as caught:
        build_cascade({"gates": ["llm-judge"], "judge_model": "gpt-9"}, registry=REGISTRY, source="g.toml")
    assert caught.value.key == "routing.cascade.judge_model"
    (tmp_path / "judge.json").write_text('{"format": "something-else"}')
    with pytest.raises(ConfigError, match="not a usable answer-judge file") as caught:
        build_cascade(
            {"gates": ["learned-judge"], "learned_judge_path": str(tmp_path / "judge.json")},
            registry=REGISTRY,
        )
    assert caught.value.key == "routing.cascade.learned_judge_path"
    assert str(tmp_path / "judge.json") in str(caught.value)


def test_a_judge_without_json_support_is_asked_in_words() -> None:
    cascade = build_cascade({"gates": ["llm-judge"], "judge_model": "plain"}, registry=REGISTRY)
    (judge,) = cascade.gates
    assert isinstance(judge, LLMJudgeGate) and not judge.structured
