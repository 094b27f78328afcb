"""The LLM classifier behind `RoutedLLM`, on a local server where a third model ("judge") classifies."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.tools import FunctionTool
from llama_index.core.workflow import Context
from llamaindex_support import KEY
from llamaindex_support import REGISTRY as BASE

from gearshift import ModelPrices, ModelRegistry, Router
from gearshift.learning import DefaultPolicy
from gearshift.policies import ClassifierConfig, ClassifierPolicy
from gearshift.providers import OpenAIProvider
from gearshift.testing import Delay, Drip, LocalOpenAIServer, Reply
from gearshift_llamaindex import RoutedLLM

PLAN = [ChatMessage(role="user", content="Plan the migration of our billing database to Postgres.")]


# The judge is a tier-1 model dearer than "small", so the speculative fast call always goes to "small".
_SMALL = BASE["small"]
REGISTRY = ModelRegistry(
    [
        _SMALL,
        _SMALL.model_copy(
            update={"id": "judge", "model": "judge", "prices": ModelPrices(input=0.3, output=1.2)}
        ),
        BASE["large"],
    ]
)


@pytest.fixture
def judged() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("small", "judge", "large"), api_key=KEY) as server:
        yield server


def _llm(server: LocalOpenAIServer, **settings: object) -> RoutedLLM:
    # A generous timeout: the first call of a test also imports the SDK, slow on a loaded machine.
    config = ClassifierConfig.model_validate({"model": "judge", "timeout": 30.0, **settings})
    policy = ClassifierPolicy(config, fallback=DefaultPolicy(), tiers=REGISTRY.tiers)
    provider = OpenAIProvider("local", api_key=KEY, base_url=server.base_url, timeout=10.0)
    return RoutedLLM(Router(REGISTRY, policy=policy, providers=[provider]), agent_id="planner")


async def test_achat_is_answered_by_the_tier_the_classifier_names(judged: LocalOpenAIServer) -> None:
    judged.script("judge", Reply("2"))
    llm = _llm(judged)
    response = await llm.achat(PLAN)
    record = response.additional_kwargs["gearshift"]
    assert record["model_id"] == "large" and record["reasons"][0].endswith("'2' -> tier 2")
    assert [a["model_id"] for a in record["attempts"]] == ["judge", "large"]  # the classification is billed
    assert record["cost_usd"] == pytest.approx(sum(a["cost_usd"] for a in record["attempts"]))
    assert [r.model for r in judged.requests] == ["judge", "large"]
    assert "billing database" in judged.requests[0].body["messages"][0]["content"]
    await llm.router.aclose()


async def test_a_garbage_classification_falls_back_to_the_default_policy_through_the_llm(
    judged: LocalOpenAIServer,
) -> None:
    judged.script("judge", Reply("I would rather not say."))
    llm = _llm(judged)
    record = (await llm.achat(PLAN)).additional_kwargs["gearshift"]
    assert record["reasons"][0].endswith("which names no tier: the default policy decides")
    assert record["model_id"] == record["decided_model"]
    await llm.router.aclose()


async def test_a_speculative_astream_chat_streams_only_the_chosen_model_and_cancels_the_fast_one(
    judged: LocalOpenAIServer,
) -> None:
    judged.script("small", Drip(0.01))
    judged.script("judge", Delay(0.2, Reply("2")))
    judged.script("large", Reply("First copy the data, then switch the writers."))
    llm = _llm(judged, speculative=True)
    chunks = [chunk async for chunk in await llm.astream_chat(PLAN)]
    assert chunks[-1].message.content == "First copy the data, then switch the writers."
    record = chunks[-1].raw
    assert record["model_id"] == "large"
    assert record["reasons"][-1] == "speculative: small's stream cancelled, the classifier picked tier 2"
    assert sorted(a["model_id"] for a in record["attempts"]) == ["judge", "large", "small"]
    for _ in range(500):  # the dropped connection reaches the server a moment later
        if judged.hangups:
            break
        await asyncio.sleep(0.01)
    assert [r.model for r in judged.hangups] == ["small"]
    await llm.router.aclose()


def lookup_order(order_id: str) -> str:
    """The items and payment state of an order."""
    return f"Order {order_id}: 2 x SKU-9, paid"


# LlamaIndex's workflows, not ours: pydantic's deprecated attributes, and a Context kept for a 2nd turn.
@pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")
@pytest.mark.filterwarnings("ignore:Skipping serialization of known unserializable key")
async def test_a_function_agents_steps_share_one_classification_per_user_turn(
    judged: LocalOpenAIServer,
) -> None:
    # The classifier reads the user's words, which stay the same while the agent calls tools: each step
    # of one turn must reuse the turn's verdict, not pay for the same classification again.
    judged.script("judge", Reply("1"), Reply("2"))
    judged.script(
        "small",
        Reply(tool_calls=[("lookup_order", {"order_id": "A-17"})]),
        Reply(tool_calls=[("lookup_order", {"order_id": "A-18"})]),
        Reply(text="Both orders are paid."),
    )
    judged.script("large", Reply(text="Ship A-17 first, then A-18."))
    llm = _llm(judged)
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(lookup_order)], llm=llm, system_prompt="Support.")
    context = Context(agent)
    first = await agent.run(user_msg="Are orders A-17 and A-18 paid?", ctx=context)
    assert [r.model for r in judged.requests] == ["judge", "small", "small", "small"]
    assert str(first.response.content) == "Both orders are paid."
    second = await agent.run(user_msg="Which order should ship first, and why?", ctx=context)
    assert str(second.response.content) == "Ship A-17 first, then A-18."
    assert [r.model for r in judged.requests][4:] == ["judge", "large"]  # a new user turn: a new verdict
    await llm.router.aclose()
