"""LangChain's answer cache and `RoutedChatModel`: an answer is served again only to the same settings.

LangChain keys a cached answer on the model's identifying parameters and the prompt. Two routed models
that differ in a tier bound or a sampling setting must not share answers: the second would get the
model and text its own settings rule out, with no call made.
"""

from __future__ import annotations

from langchain_core.caches import InMemoryCache

from gearshift import Router
from gearshift.testing import LocalOpenAIServer
from gearshift_langchain import RoutedChatModel

PROMPT = "What is the capital of France?"


def test_models_with_other_tier_bounds_or_sampling_do_not_share_cached_answers(
    router: Router, server: LocalOpenAIServer
) -> None:
    cache = InMemoryCache()
    cheap = RoutedChatModel(router=router, cache=cache)
    strong = RoutedChatModel(router=router, cache=cache, min_tier=2)
    seeded = RoutedChatModel(router=router, cache=cache, seed=7)

    answers = [m.invoke(PROMPT).response_metadata["gearshift"]["model_id"] for m in (cheap, strong, seeded)]

    assert answers == ["small", "large", "small"]
    assert [r.model for r in server.requests] == ["small", "large", "small"]
    # The same settings still get the cached answer, with no call.
    again = RoutedChatModel(router=router, cache=cache, min_tier=2).invoke(PROMPT)
    assert again.response_metadata["gearshift"]["model_id"] == "large"
    assert len(server.requests) == 3
