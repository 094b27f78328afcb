"""The classifier policy and text rules behind `RoutedChatModel`: the adapter sees one routed answer."""

from __future__ import annotations

from gearshift import ModelRegistry, Router
from gearshift._bridge import run_sync
from gearshift.learning import DefaultPolicy
from gearshift.policies import ClassifierConfig, ClassifierPolicy, RulesPolicy
from gearshift.providers._openai import OpenAIProvider
from gearshift.testing import LocalOpenAIServer, Reply
from gearshift_langchain import RoutedChatModel


def _provider(server: LocalOpenAIServer) -> OpenAIProvider:
    return OpenAIProvider("local", base_url=server.base_url, require_key=False, timeout=10.0)


async def test_a_classified_request_is_answered_by_the_tier_the_classifier_names(
    server: LocalOpenAIServer, registry: ModelRegistry
) -> None:
    policy = ClassifierPolicy(ClassifierConfig(model="small"), fallback=DefaultPolicy(), tiers=registry.tiers)
    server.script("small", Reply("2"))
    router = Router(registry, policy=policy, providers=[_provider(server)])
    message = await RoutedChatModel(router=router).ainvoke("Draft a migration plan for our billing database.")
    routed = message.response_metadata["gearshift"]
    assert routed["model_id"] == "large"
    assert routed["reasons"][0].endswith("'2' -> tier 2")
    assert [a["model_id"] for a in routed["attempts"]] == ["small", "large"]  # the classification is recorded
    assert [r.body["model"] for r in server.requests] == ["small", "large"]
    await router.aclose()


def test_a_keyword_rule_routes_a_langchain_call(server: LocalOpenAIServer, registry: ModelRegistry) -> None:
    rules = [{"name": "incidents", "when": {"keywords": ["outage", "sev1"]}, "model": "large"}]
    policy = RulesPolicy.from_config(rules, fallback=DefaultPolicy(), registry=registry)
    router = Router(registry, policy=policy, providers=[_provider(server)])
    model = RoutedChatModel(router=router)
    assert (
        model.invoke("We have a SEV1 outage in eu-west").response_metadata["gearshift"]["model_id"] == "large"
    )
    assert model.invoke("Say hello").response_metadata["gearshift"]["model_id"] == "small"
    run_sync(router.aclose())


async def test_speculative_routing_behind_the_chat_model_returns_the_strong_answer(
    server: LocalOpenAIServer, registry: ModelRegistry
) -> None:
    config = ClassifierConfig(model="small", speculative=True)
    policy = ClassifierPolicy(config, fallback=DefaultPolicy(), tiers=registry.tiers)
    server.script("small", Reply("2"), Reply("2"))  # the classification and the fast call, in either order
    router = Router(registry, policy=policy, providers=[_provider(server)])
    message = await RoutedChatModel(router=router).ainvoke("Plan the rollout of our new search index.")
    routed = message.response_metadata["gearshift"]
    assert routed["model_id"] == "large"
    assert routed["reasons"][-1] == "speculative: small cancelled, the classifier picked tier 2"
    assert sorted(a["model_id"] for a in routed["attempts"]) == ["large", "small", "small"]
    await router.aclose()
