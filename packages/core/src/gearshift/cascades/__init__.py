"""Cascades: answer with a cheaper model, check the answer with a quality gate, escalate if it fails.

A quality gate (`QualityGate`) looks at one answer (`AnswerCheck`) and returns a `Verdict`; the
router escalates a rejected answer to a stronger model. Built-in gates:

- `HeuristicGate`: empty answers, refusals, hedging, JSON that does not match the requested schema,
  unusable tool calls, and for math (opt-in) a missing final answer or wrong arithmetic. No model call.
- `LLMJudgeGate`: a configured model grades the answer 1-10.
- `LearnedJudgeGate`: an `AnswerJudge` trained on recorded answers predicts whether it is good.
- `SelfConsistencyGate`: the answering model is asked again; disagreement escalates (live providers).

`Cascade` composes gates (and the router's own pre-call estimate) into one gate; `build_cascade`
makes one from the `[routing.cascade]` table (`CascadeConfig`). Replaying an outcome table through a
cascaded router (`run_cascade_offline`) is evaluation, and lives in `gearshift.evaluation`; its names
are still served here, on first use, for code written before it moved.
"""

from __future__ import annotations

from typing import Any

from ._answer_judge import ANSWER_JUDGE_FORMAT, AnswerJudge, LearnedJudgeGate
from ._cascade import Cascade, PriorEstimate, router_prior
from ._consistency import SelfConsistencyGate, agree_on_answer
from ._final_answer import FinalAnswer, final_answer, same_answer
from ._gate import AnswerCheck, AskModel, QualityGate, Verdict
from ._heuristic import (
    DEFAULT_CHECKS,
    FinalAnswerCheck,
    HeuristicCheck,
    HeuristicGate,
    check_arithmetic,
    check_empty,
    check_hedging,
    check_json_schema,
    check_refusal,
    check_tool_calls,
)
from ._judge import DEFAULT_JUDGE_PROMPT, LLMJudgeGate, parse_grade
from ._settings import CascadeConfig, GateName, build_cascade

__all__ = [
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
]

_REPLAY = ("CascadeReport", "arun_cascade_offline", "run_cascade_offline")


def __getattr__(name: str) -> Any:
    # Loaded on use: the replay runs the router, which imports this package's gates.
    if name in _REPLAY:
        from ..evaluation import _cascade_replay

        value = getattr(_cascade_replay, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_REPLAY))
