"""A user's code, type-checked and never run: `test_public_api` runs `mypy --strict` on it as a user would.

It uses the public API of the four packages as the README shows it; each `assert_type` is a type a
user's code relies on (an `Any` or a union there would pass their checker silently or fail it).
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import tool
from llama_index.core.base.llms.types import ChatMessage, CompletionResponse
from llama_index.core.base.llms.types import ChatResponse as LlamaChatResponse
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel
from typing_extensions import assert_type

from gearshift import (
    BudgetExceeded,
    CallerHints,
    ChatResponse,
    Decision,
    Message,
    RoutedResponse,
    Router,
    StepContext,
    StepType,
    StreamDone,
    TextDelta,
    Usage,
)
from gearshift.budgets import BudgetLedger, BudgetLimit, BudgetMode, MemoryStore
from gearshift.testing import Fail, LocalAnthropicServer, LocalOpenAIServer, Reply
from gearshift_langchain import RoutedChatModel
from gearshift_llamaindex import RoutedLLM, run_scope
from gearshift_mcp import RouterTools, build_server


class Capital(BaseModel):
    city: str


@tool
def word_count(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


def route(router: Router) -> None:
    assert_type(Router.from_config("gearshift.toml"), Router)
    assert_type(router.decide("What is the capital of France?"), Decision)
    step = StepContext(
        agent_id="researcher",
        run_id="run-1",
        step_type=StepType.PLAN,
        hints=CallerHints(min_tier=2, max_cost_usd=0.01),
        budget_keys=("team:search",),
        expected_steps=20,
    )
    answer = router.complete([Message.system("Be brief."), Message.user("Hi")], step)
    assert_type(answer, RoutedResponse)
    assert_type(answer.response.text, str)
    assert_type(answer.model_id, str)
    assert_type(answer.cost_usd, float)
    assert_type(answer.usage, Usage)
    stream = router.stream("Tell me a story", step)
    for event in stream:
        if isinstance(event, TextDelta):
            assert_type(event.text, str)
        elif isinstance(event, StreamDone):
            assert_type(event.response, ChatResponse)
    assert_type(stream.result, RoutedResponse | None)


async def aroute(router: Router) -> None:
    assert_type(await router.acomplete("Hi", StepContext(agent_id="a")), RoutedResponse)
    async for event in router.astream("Hi"):
        if isinstance(event, TextDelta):
            assert_type(event.text, str)


def budgets(router: Router) -> None:
    # The limits as a config file spells them: windows and modes by name.
    router.budgets = BudgetLedger(
        MemoryStore(),
        [
            BudgetLimit(key="run:*", usd=0.0002),
            BudgetLimit(name="daily", key="agent:*", usd=5.0, window="day", mode="hard"),
            BudgetLimit(key="team:*", tokens=10_000, window="rolling:1h", mode=BudgetMode.DOWNGRADE),
        ],
    )
    try:
        router.complete("Summarise the causes of the French revolution")
    except BudgetExceeded as refused:
        assert_type(refused.limit, float)
        assert_type(refused.spent, float)
        assert_type(refused.requested, float)
        assert_type(refused.key, str | None)


def langchain() -> None:
    model = RoutedChatModel(agent_id="writer", max_tokens=200)
    message = model.invoke("Hello")
    assert_type(message, AIMessage)
    assert_type(message.response_metadata["model_name"], Any)
    assert_type(model.bind_tools([word_count], tool_choice="auto"), Runnable[LanguageModelInput, AIMessage])
    capital = model.with_structured_output(Capital).invoke("What is the capital of France?")
    assert_type(capital, Capital)
    assert_type(capital.city, str)
    raw = model.with_structured_output(Capital, include_raw=True).invoke("Hi")
    assert_type(raw, dict[str, Any])
    schema = {"title": "Capital", "type": "object", "properties": {"city": {"type": "string"}}}
    assert_type(model.with_structured_output(schema).invoke("Hi"), dict[str, Any])


async def llamaindex() -> None:
    llm = RoutedLLM(config="gearshift.toml", agent_id="writer")
    orders = llm.model_copy(update={"agent_id": "orders"})
    assert_type(orders, RoutedLLM)
    with run_scope(run_id="ticket-42"):
        reply = await orders.achat([ChatMessage(role="user", content="Hi")])
        assert_type(reply, LlamaChatResponse)
    assert_type(llm.complete("Hi"), CompletionResponse)


def mcp() -> None:
    assert_type(build_server("gearshift.toml"), MCPServer[RouterTools])


def testing() -> None:
    with LocalOpenAIServer(models=("small", "large")) as server:
        server.script("small", Fail(status=429, retry_after=2.0), Reply(text="hello"))
        assert_type(server.base_url, str)
    with LocalAnthropicServer(models=["claude"]) as anthropic:
        assert_type(anthropic.base_url, str)
