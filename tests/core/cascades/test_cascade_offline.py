"""Cascades end to end, offline: the real router replays recorded GSM8K answers through the gates."""

from __future__ import annotations

import numpy as np
import pytest

from gearshift import ModelRegistry, Router, SignalScorer, StreamDone, TextDelta
from gearshift._messages import ChatRequest, ChatResponse, Message
from gearshift.cascades import (
    DEFAULT_CHECKS,
    AnswerJudge,
    Cascade,
    FinalAnswerCheck,
    HeuristicGate,
    LearnedJudgeGate,
)
from gearshift.cascades._answer_features import SHAPE_FEATURES
from gearshift.datasets import (
    Outcome,
    OutcomeRow,
    OutcomeTable,
    OutcomeTableError,
    load_routellm,
    routellm_models,
)
from gearshift.evaluation import arun_cascade_offline, run_cascade_offline
from gearshift.providers._replay import ReplayProvider
from gearshift.routing._routed import Escalation

WEAK, STRONG = routellm_models()
# Rows 0 and 1 of the bundled GSM8K data: Mixtral concludes "#### 540" on the first and is cut off
# mid-calculation ("= <<15+2") on the second.
CONCLUDED, CUT_OFF = 0, 1


@pytest.fixture(scope="module")
def gsm8k() -> OutcomeTable:
    return load_routellm("gsm8k").subset(range(60))


def _gate() -> HeuristicGate:
    return HeuristicGate([*DEFAULT_CHECKS, FinalAnswerCheck("number")])


def _router(table: OutcomeTable) -> Router:
    return Router(
        ModelRegistry([WEAK, STRONG]),
        policy=SignalScorer(),
        providers=[ReplayProvider(table)],
        cascade=_gate(),
    )


async def test_a_cut_off_answer_is_escalated_and_both_attempts_are_paid_for(gsm8k: OutcomeTable) -> None:
    row = gsm8k[CUT_OFF]
    weak, strong = row.outcomes[WEAK.id], row.outcomes[STRONG.id]

    result = await _router(gsm8k).acomplete(ChatRequest(messages=row.as_messages()))

    assert result.escalations == (
        Escalation(
            WEAK.id,
            STRONG.id,
            "the answer gives no final number (expected e.g. '#### 42' or 'the answer is 42')",
            "gate:heuristic",
        ),
    )
    assert [a.model_id for a in result.attempts] == [WEAK.id, STRONG.id]
    assert result.cost_usd == pytest.approx((weak.cost_usd or 0) + (strong.cost_usd or 0))
    assert result.response.text == strong.response
    assert result.response.metadata["score"] == strong.score == 1.0 and weak.score == 0.0


async def test_a_concluded_answer_is_kept(gsm8k: OutcomeTable) -> None:
    row = gsm8k[CONCLUDED]
    result = await _router(gsm8k).acomplete(ChatRequest(messages=row.as_messages()))
    assert result.escalations == ()
    assert result.model_id == WEAK.id
    assert result.cost_usd == pytest.approx(row.outcomes[WEAK.id].cost_usd or 0)


async def test_a_streamed_call_is_held_back_until_the_gate_has_spoken(gsm8k: OutcomeTable) -> None:
    row = gsm8k[CUT_OFF]
    stream = _router(gsm8k).astream(ChatRequest(messages=row.as_messages()))
    events = [event async for event in stream]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == row.outcomes[STRONG.id].response  # none of the weak answer leaked out
    assert isinstance(events[-1], StreamDone)
    assert stream.result is not None and [e.source for e in stream.result.escalations] == ["gate:heuristic"]


def _expected(table: OutcomeTable, rejected: set[int]) -> tuple[float, float]:
    quality = cost = 0.0
    for index, row in enumerate(table):
        weak, strong = row.outcomes[WEAK.id], row.outcomes[STRONG.id]
        quality += strong.score if index in rejected else weak.score
        cost += (weak.cost_usd or 0) + ((strong.cost_usd or 0) if index in rejected else 0)
    return quality / len(table), cost


def test_the_offline_report_adds_up(gsm8k: OutcomeTable) -> None:
    gate = _gate()
    rejected = {
        i
        for i, row in enumerate(gsm8k)
        if FinalAnswerCheck("number")(ChatRequest(messages=row.as_messages()), _replayed(row)) is not None
    }
    assert {CUT_OFF} <= rejected and CONCLUDED not in rejected

    report = run_cascade_offline(gsm8k, gate, weak=WEAK, strong=STRONG)

    quality, cost = _expected(gsm8k, rejected)
    assert report.requests == 60
    assert report.escalated == len(rejected) == report.escalations["gate:heuristic"]
    assert report.escalation_rate == pytest.approx(len(rejected) / 60)
    assert report.quality == pytest.approx(quality)
    assert report.cost_usd == pytest.approx(cost)
    assert report.weak_quality == pytest.approx(gsm8k.mean_score(WEAK.id))
    assert report.strong_quality == pytest.approx(gsm8k.mean_score(STRONG.id))
    assert report.weak_cost_usd < report.cost_usd < report.strong_cost_usd
    figures = report.to_dict()
    assert figures["cost_per_request"] == pytest.approx(cost / 60)
    assert 0 < figures["quality_gap_recovered"] < 1


def _replayed(row: OutcomeRow) -> ChatResponse:
    return ChatResponse(Message.assistant(row.outcomes[WEAK.id].response or ""), WEAK.id, WEAK.id)


async def test_a_learned_judge_gates_offline_by_table_model_keys(gsm8k: OutcomeTable) -> None:
    # A hand-set judge that trusts exactly the answers marking a final answer: it must escalate the
    # same rows as the heuristic final-answer check does.
    width = 16 + len(SHAPE_FEATURES)
    weights = np.zeros(width)
    weights[16 + SHAPE_FEATURES.index("marks_final_answer")] = 10.0
    judge = AnswerJudge(models=(WEAK.id,), weights=weights, bias=-5.0, prompt_dims=8, answer_dims=8)
    cascade = Cascade([HeuristicGate(), LearnedJudgeGate(judge)])

    by_judge = await arun_cascade_offline(gsm8k, cascade, weak=WEAK.id, strong=STRONG.id)
    by_check = await arun_cascade_offline(gsm8k, _gate(), weak=WEAK, strong=STRONG)

    assert by_judge.escalated == by_check.escalated
    assert by_judge.quality == by_check.quality
    assert set(by_judge.escalations) == {"gate:learned-judge"}


def test_a_table_without_recorded_answers_is_refused() -> None:
    table = OutcomeTable([OutcomeRow("q1", "mmlu", "2+2? A. 3 B. 4", {"w": Outcome(1.0), "s": Outcome(1.0)})])
    with pytest.raises(OutcomeTableError, match=r"no response of 'w'.*the bundled MMLU data has none"):
        run_cascade_offline(table, HeuristicGate(), weak="w", strong="s")
    with pytest.raises(OutcomeTableError, match="no row of the table has outcomes of both 'w' and 'x'"):
        run_cascade_offline(table, HeuristicGate(), weak="w", strong="x")
    with pytest.raises(ValueError, match="tier"):
        run_cascade_offline(table, HeuristicGate(), weak=STRONG, strong=WEAK)


def test_the_replay_is_still_served_from_gearshift_cascades() -> None:
    import gearshift.cascades as cascades
    import gearshift.evaluation as evaluation

    for name in ("CascadeReport", "arun_cascade_offline", "run_cascade_offline"):
        assert getattr(cascades, name) is getattr(evaluation, name)
