"""LangChain's standard integration suite for `RoutedChatModel`, through the real router and `openai` SDK.

The models are the local OpenAI-compatible server's `small` (tier 1) and `large` (tier 2), so every
call is really routed: simple prompts go to `small`, `model="large"` overrides the decision.

The simulated model behind the server barely reads prompts: it fills tool arguments from the
tool's JSON schema, and in JSON mode answers with the keys the prompt names. Where a standard test
checks that the arguments follow the prompt ("the value of magic_function(3)", a customer named
'你好啊集团'), the server is scripted to answer what a model reading the prompt would; the HTTP
exchange, the SDK, the router and the conversion to LangChain messages run unchanged, so the test
still checks that those arguments arrive intact.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from gearshift import ModelPrices, ModelRegistry, ModelSpec, Router, SignalScorer
from gearshift._bridge import run_sync
from gearshift.providers import OpenAIProvider
from gearshift.testing import LocalOpenAIServer, Reply
from gearshift_langchain import RoutedChatModel

_MAGIC = Reply(tool_calls=[("magic_function", {"input": 3})])
_PROMPT_READING: dict[str, tuple[Reply, ...]] = {
    # invoke, then stream: two calls, both routed to `small`
    "test_tool_calling": (_MAGIC, _MAGIC),
    "test_tool_calling_async": (_MAGIC, _MAGIC),
    "test_unicode_tool_call_integration": (
        Reply(tool_calls=[("unicode_customer", {"customer_name": "你好啊集团", "description": "科技公司"})]),
        Reply(
            tool_calls=[("unicode_customer", {"customer_name": "こんにちは株式会社", "description": "会社"})]
        ),
    ),
}


class TestRoutedChatModelIntegration(ChatModelIntegrationTests):
    server: ClassVar[LocalOpenAIServer]
    routed: ClassVar[Router]

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _local_router(cls) -> Iterator[None]:
        with LocalOpenAIServer(models=("small", "large")) as server:
            cls.server = server
            models = ModelRegistry(
                [
                    ModelSpec(
                        id="small",
                        provider="local",
                        model="small",
                        tier=1,
                        prices=ModelPrices(input=0.15, output=0.6),
                    ),
                    ModelSpec(
                        id="large",
                        provider="local",
                        model="large",
                        tier=2,
                        prices=ModelPrices(input=2.5, output=10.0),
                    ),
                ]
            )
            provider = OpenAIProvider("local", base_url=server.base_url, require_key=False, timeout=10.0)
            cls.routed = Router(models, policy=SignalScorer(), providers=[provider])
            yield
            run_sync(cls.routed.aclose())

    @pytest.fixture(autouse=True)
    def _script_prompt_reading(self, request: pytest.FixtureRequest) -> Iterator[None]:
        replies = _PROMPT_READING.get(request.node.originalname, ())
        if replies:
            self.server.script("small", *replies)
        yield
        # Every scripted answer must have been asked for, by the model the router chose.
        assert not self.server.pending("small"), "a scripted answer was never asked for by `small`"

    @property
    def chat_model_class(self) -> type[RoutedChatModel]:
        return RoutedChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"router": self.routed, "agent_id": "standard-suite"}

    @property
    def supports_json_mode(self) -> bool:
        # JSON mode asks for any JSON object; as a real model would, the local simulated model answers
        # with the keys the prompt names ('setup' and 'punchline').
        return True

    @property
    def supports_anthropic_inputs(self) -> bool:
        # Anthropic-format tools and content blocks (tool_use, thinking) are converted, then routed to
        # whichever provider the router picks: here an OpenAI-compatible one.
        return True

    @property
    def supports_image_inputs(self) -> bool:
        # Routed models do take images (they go to a model with `supports_vision`), but the standard
        # image tests download their image from GitHub, and tests here never reach the network.
        return False

    @property
    def model_override_value(self) -> str:
        return "large"
