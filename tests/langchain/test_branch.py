"""`routed_branch`: whole chains chosen by gearshift's decision on the input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableBranch, RunnableLambda

from gearshift import (
    ChatRequest,
    ConfigError,
    Decision,
    InvalidRequestError,
    Message,
    RouteInput,
    Router,
    SignalScorer,
    UnknownModelError,
)
from gearshift_langchain import routed_branch

EASY = "What is the capital of France?"
HARD = (
    "Prove that there are infinitely many primes, then analyze why the same argument fails for "
    "twin primes. Explain step by step and justify every claim rigorously."
)


async def _collect(chunks: AsyncIterator[str]) -> list[str]:
    return [chunk async for chunk in chunks]


def _chain(name: str) -> RunnableLambda[Any, str]:
    return RunnableLambda(lambda value: f"{name} chain got {value!r}")


def test_the_branch_of_the_decided_model_runs(router: Router) -> None:
    branch = routed_branch({"small": _chain("cheap"), "large": _chain("strong")}, router=router)
    assert isinstance(branch, RunnableBranch)
    assert router.decide(EASY).model == "small" and router.decide(HARD).model == "large"
    assert branch.invoke(EASY) == f"cheap chain got {EASY!r}"
    assert branch.invoke(HARD).startswith("strong chain")


async def test_tier_keys_take_the_lowest_branch_strong_enough_and_run_async(router: Router) -> None:
    branch = routed_branch({2: _chain("strong"), 1: _chain("cheap")}, router=router)
    assert (await branch.ainvoke(EASY)).startswith("cheap chain")
    assert (await branch.ainvoke(HARD)).startswith("strong chain")
    only_strong = routed_branch({2: _chain("strong")}, router=router)
    assert only_strong.invoke(EASY).startswith("strong chain")  # tier 1 decided: tier 2 is strong enough


def test_a_decision_without_a_branch_goes_to_the_default(router: Router) -> None:
    branch = routed_branch({"large": _chain("strong")}, router=router, default=_chain("fallback"))
    assert branch.invoke(EASY).startswith("fallback chain")


def test_run_metadata_steers_the_decision(router: Router) -> None:
    branch = routed_branch({"small": _chain("cheap"), "large": _chain("strong")}, router=router)
    steered = branch.invoke(EASY, {"metadata": {"min_tier": 2, "agent_id": "triage"}})
    assert steered.startswith("strong chain")


def test_prompts_dicts_and_messages_are_read_as_requests(router: Router) -> None:
    branch = routed_branch({"small": _chain("cheap"), "large": _chain("strong")}, router=router)
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    assert (prompt | branch).invoke({"question": HARD}).startswith("strong chain")
    assert branch.invoke({"question": EASY, "user": "ada"}).startswith("cheap chain")
    assert branch.invoke({"messages": [HumanMessage(HARD)]}).startswith("strong chain")
    with pytest.raises(InvalidRequestError, match="pass to_request"):
        branch.invoke({"numbers": [1, 2]})
    custom = routed_branch(
        {"small": _chain("cheap"), "large": _chain("strong")},
        router=router,
        to_request=lambda value: ChatRequest(messages=(Message.user(value["body"]),)),
    )
    assert custom.invoke({"body": HARD}).startswith("strong chain")


def test_messages_written_as_tuples_or_dicts_are_read_as_the_chat_model_reads_them(router: Router) -> None:
    # `RoutedChatModel` takes `[("user", ...)]` and `{"role": ..., "content": ...}` (LangChain's
    # message-likes, and the README's agent state); the branch took only message objects and refused
    # such a state with "cannot read a dict as a request".
    branch = routed_branch({"small": _chain("cheap"), "large": _chain("strong")}, router=router)
    assert branch.invoke({"messages": [("user", HARD)]}).startswith("strong chain")
    assert branch.invoke([{"role": "user", "content": HARD}]).startswith("strong chain")
    assert branch.invoke([("system", "Be brief."), ("user", EASY)]).startswith("cheap chain")
    with pytest.raises(InvalidRequestError, match="pass to_request"):
        branch.invoke({"messages": [("pirate", EASY)]})


class CountingScorer(SignalScorer):
    """The zero-training scorer, counting its decisions."""

    def __init__(self) -> None:
        super().__init__()
        self.decisions = 0

    def decide(self, route: RouteInput) -> Decision:
        self.decisions += 1
        return super().decide(route)


def test_the_conditions_share_one_decision_per_input(router: Router) -> None:
    scorer = CountingScorer()
    counted = Router(router.registry, policy=scorer, providers=router.providers)
    branch = routed_branch(
        {2: _chain("strong"), 1: _chain("cheap"), "large": _chain("strong")}, router=counted
    )
    branch.invoke(HARD)
    assert scorer.decisions == 1
    branch.invoke(EASY)
    branch.invoke(EASY, {"metadata": {"min_tier": 2}})  # another context: decided again
    assert scorer.decisions == 3


def test_branch_keys_are_checked_against_the_registry(router: Router) -> None:
    with pytest.raises(UnknownModelError, match="unknown model id 'medium'"):
        routed_branch({"medium": _chain("x")}, router=router)
    with pytest.raises(ConfigError, match="tier 3, but the registry's tiers are 1, 2"):
        routed_branch({3: _chain("x")}, router=router)
    with pytest.raises(InvalidRequestError, match="at least one branch"):
        routed_branch({}, router=router)


class AlternatingScorer(CountingScorer):
    """A stateful policy (as a recalibrating learned policy is): every other decision goes up a tier."""

    def decide(self, route: RouteInput) -> Decision:
        if self.decisions % 2:
            route = replace(route, candidates=route.candidates[-1:])
        return super().decide(route)


async def test_each_run_of_the_branch_is_decided_and_counted_once(router: Router) -> None:
    """The same input run again is decided again: a policy holding a share counts every run, and a
    decision that changed since (a moved threshold, a model in cooldown) is followed, not a stale one."""
    policy = AlternatingScorer()
    stateful = Router(router.registry, policy=policy, providers=router.providers)
    branch = routed_branch({"large": _chain("strong"), 1: _chain("cheap"), 2: _chain("top")}, router=stateful)
    ran = [branch.invoke(EASY) for _ in range(4)]
    ran += branch.batch([EASY] * 4)
    ran += await branch.abatch([EASY] * 4)
    ran += ["".join(await _collect(branch.astream(EASY))) for _ in range(2)]
    assert policy.decisions == len(ran) == 14
    assert sum(out.startswith("strong chain") for out in ran) == 7
