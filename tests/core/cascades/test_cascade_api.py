"""The public names of `gearshift.cascades`: exactly these, each documented, none loading NumPy on import."""

from __future__ import annotations

import inspect
import subprocess
import sys
import typing

import gearshift.cascades as cascades

EXPECTED = {
    "ANSWER_JUDGE_FORMAT",
    "DEFAULT_CHECKS",
    "DEFAULT_JUDGE_PROMPT",
    "AnswerCheck",
    "AnswerJudge",
    "AskModel",
    "Cascade",
    "CascadeConfig",
    "CascadeReport",
    "FinalAnswer",
    "FinalAnswerCheck",
    "GateName",
    "HeuristicCheck",
    "HeuristicGate",
    "LLMJudgeGate",
    "LearnedJudgeGate",
    "PriorEstimate",
    "QualityGate",
    "SelfConsistencyGate",
    "Verdict",
    "agree_on_answer",
    "arun_cascade_offline",
    "build_cascade",
    "check_arithmetic",
    "check_empty",
    "check_hedging",
    "check_json_schema",
    "check_refusal",
    "check_tool_calls",
    "final_answer",
    "parse_grade",
    "router_prior",
    "run_cascade_offline",
    "same_answer",
}


def test_exports() -> None:
    assert set(cascades.__all__) == EXPECTED
    assert len(cascades.__all__) == len(EXPECTED)
    for name in cascades.__all__:
        value = getattr(cascades, name)
        # A type alias such as `AskModel` is no class, though inspect.isclass says so on Python 3.10.
        if typing.get_origin(value) is None and (inspect.isclass(value) or inspect.isfunction(value)):
            assert (getattr(value, "__doc__", None) or "").strip(), f"{name} has no docstring"


def test_importing_the_cascades_loads_neither_numpy_nor_jsonschema_nor_sklearn() -> None:
    code = (
        "import sys, gearshift.cascades\n"
        "print(sorted(m for m in ('numpy', 'jsonschema', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
