"""`Cascade`: gates composed with `all` / `any`, and blended with the router's pre-call estimate."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gearshift.cascades import AnswerCheck, Cascade, HeuristicGate, Verdict, router_prior

MakeCheck = Callable[..., AnswerCheck]


class Fixed:
    """A user-written gate that always returns the same verdict and counts its calls."""

    def __init__(self, name: str, accept: bool, confidence: float | None = None, reason: str = "") -> None:
        self.name = name
        self.verdict = Verdict(accept, name, reason or ("" if accept else f"{name} says no"), confidence)
        self.calls = 0

    async def check(self, answer: AnswerCheck) -> Verdict:
        self.calls += 1
        return self.verdict


async def test_all_stops_at_the_first_rejection_and_names_the_gate(make_check: MakeCheck) -> None:
    first, second, third = Fixed("a", True, 0.9), Fixed("b", False, 0.2), Fixed("c", True)
    verdict = await Cascade([first, second, third]).check(make_check("42"))
    assert verdict == Verdict(False, "b", "b says no", 0.2)
    assert (first.calls, second.calls, third.calls) == (1, 1, 0)


async def test_all_accepts_with_the_lowest_confidence(make_check: MakeCheck) -> None:
    verdict = await Cascade([Fixed("a", True, 0.9), Fixed("b", True, 0.6), Fixed("c", True)]).check(
        make_check("4")
    )
    assert verdict == Verdict(True, "cascade", "", 0.6)


async def test_any_stops_at_the_first_acceptance(make_check: MakeCheck) -> None:
    first, second, third = Fixed("a", False, 0.1), Fixed("b", True, 0.8), Fixed("c", True)
    verdict = await Cascade([first, second, third], mode="any").check(make_check("42"))
    assert verdict.accept and verdict.confidence == 0.8
    assert third.calls == 0


async def test_any_names_every_gate_when_all_reject(make_check: MakeCheck) -> None:
    verdict = await Cascade([Fixed("a", False, 0.3), Fixed("b", False)], mode="any").check(make_check("42"))
    assert verdict == Verdict(
        False, "cascade", "no gate accepted the answer (a: a says no; b: b says no)", 0.3
    )


async def test_cascades_nest_and_real_gates_compose(make_check: MakeCheck) -> None:
    inner = Cascade([HeuristicGate(), Fixed("judge", True, 0.8)])
    outer = Cascade([inner, Fixed("last", True)])
    refused = await outer.check(make_check("I can't help with that."))
    assert (
        not refused.accept and refused.gate == "heuristic" and refused.reason.startswith("the model refused")
    )
    assert (await outer.check(make_check("It is 42."))).accept


@pytest.mark.parametrize(
    ("scores", "model", "prior"),
    [
        ({"quality:small": 0.8, "difficulty": 0.9}, "small", 0.8),
        ({"quality": 1.4}, "small", 1.0),
        ({"difficulty": 0.25}, "small", 0.75),
        ({"quality:large": 0.9}, "small", None),
        ({}, "small", None),
    ],
)
def test_router_prior_reads_the_decision_scores(
    make_check: MakeCheck, scores: dict[str, float], model: str, prior: float | None
) -> None:
    assert router_prior(make_check("42", scores=scores, model_id=model)) == prior


async def test_combining_the_prior_turns_confidences_into_one_escalation_probability(
    make_check: MakeCheck,
) -> None:
    judge = Fixed("judge", False, 0.6, "graded 6/10")
    # q = 0.7 * 0.6 + 0.3 * 0.9 = 0.69 >= 0.5: a confident router overrules a lukewarm judge.
    confident = await Cascade([judge], combine_prior=0.3).check(make_check("42", scores={"difficulty": 0.1}))
    assert confident == Verdict(True, "cascade", "", pytest.approx(0.69))
    # q = 0.7 * 0.6 + 0.3 * 0.0 = 0.42 < 0.5: the router's doubt adds to the judge's.
    doubtful = await Cascade([judge], combine_prior=0.3).check(make_check("42", scores={"difficulty": 1.0}))
    assert not doubtful.accept and doubtful.gate == "judge"
    assert doubtful.reason == (
        "graded 6/10; P(escalate) 0.58 above 0.50 (gates 0.60, router's estimate 0.00, weight 0.3)"
    )
    # The gates accept (0.55) but the blend falls short: the cascade itself rejects.
    lukewarm = Fixed("judge", True, 0.55)
    blended = await Cascade([lukewarm], combine_prior=0.5).check(make_check("42", scores={"quality": 0.2}))
    assert not blended.accept and blended.gate == "cascade"
    assert blended.confidence == pytest.approx(0.375)


async def test_a_certain_rejection_stands_below_the_threshold_and_without_a_prior(
    make_check: MakeCheck,
) -> None:
    heuristic = HeuristicGate()
    refusal = make_check("I can't help with that.", scores={"difficulty": 0.0})
    assert not (await Cascade([heuristic], combine_prior=0.4).check(refusal)).accept  # 0.4 * 1.0 < 0.5
    no_prior = make_check("I can't help with that.")
    assert not (
        await Cascade([heuristic], combine_prior=0.9).check(no_prior)
    ).accept  # no scores: gates decide


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one gate"):
        Cascade([])
    with pytest.raises(TypeError, match="is not a quality gate"):
        Cascade([object()])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="mode"):
        Cascade([HeuristicGate()], mode="most")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="combine_prior"):
        Cascade([HeuristicGate()], combine_prior=1.5)
    with pytest.raises(ValueError, match="threshold"):
        Cascade([HeuristicGate()], threshold=0)
