"""Structured output read from what models really send: JSON with a fence or a sentence around it.

Not every OpenAI-compatible server enforces the JSON schema a request carries (older Ollama and
llama.cpp builds, some hosted open models): the object then comes back inside a code fence or after a
sentence. LlamaIndex's own text programs read it out of such an answer; `RoutedLLM` reads it as they do.
"""

from __future__ import annotations

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.prompts import PromptTemplate
from llamaindex_support import MakeRouter
from pydantic import BaseModel

from gearshift.testing import LocalOpenAIServer, Reply
from gearshift_llamaindex import RoutedLLM

PROMPT = PromptTemplate("Extract the invoice from: {text}")
OBJECT = '{"number": "7", "total": 12.5, "paid": true}'

# LlamaIndex's workflows look their steps up with inspect.getmembers on the agent, a pydantic model, and
# its structured LLM streams partial objects through pydantic's deprecated `.json()`: framework noise.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect"),
    pytest.mark.filterwarnings("ignore:The `json` method is deprecated:DeprecationWarning"),
]


class Invoice(BaseModel):
    """An invoice's essentials."""

    number: str
    total: float
    paid: bool


EXPECTED = Invoice(number="7", total=12.5, paid=True)


@pytest.mark.parametrize(
    "answer",
    [f"```json\n{OBJECT}\n```", f"Here is the invoice: {OBJECT}", OBJECT],
    ids=["fenced", "after-a-sentence", "bare"],
)
async def test_an_object_inside_a_fence_or_a_sentence_is_read(
    answer: str, llm: RoutedLLM, server: LocalOpenAIServer
) -> None:
    server.script("small", Reply(text=answer), Reply(text=answer), Reply(text=answer))
    assert await llm.astructured_predict(Invoice, PROMPT, text="Invoice 7, $12.50, paid") == EXPECTED
    assert llm.structured_predict(Invoice, PROMPT, text="Invoice 7, $12.50, paid") == EXPECTED
    response = await llm.as_structured_llm(Invoice).achat([ChatMessage(role="user", content="Invoice 7")])
    assert response.raw == EXPECTED


async def test_an_agent_s_structured_response_is_read_from_a_fenced_answer(
    make_router: MakeRouter, server: LocalOpenAIServer
) -> None:
    agent = FunctionAgent(tools=[], llm=RoutedLLM(make_router()), output_cls=Invoice)
    server.script("small", Reply(text="Invoice 7 is paid."), Reply(text=f"```json\n{OBJECT}\n```"))
    result = await agent.run(user_msg="Invoice 7, $12.50, paid")
    assert result.structured_response == EXPECTED.model_dump()


async def test_an_answer_without_the_object_says_which_model_gave_it(
    llm: RoutedLLM, server: LocalOpenAIServer
) -> None:
    server.script("small", Reply(text="I could not find an invoice."), Reply(text='{"number": "7"}'))
    with pytest.raises(ValueError, match=r"model 'small' answered no valid Invoice object: Could not"):
        await llm.astructured_predict(Invoice, PROMPT, text="nothing")
    with pytest.raises(ValueError, match=r"(?s)model 'small' .* Invoice object: .*total\n  Field required"):
        await llm.astructured_predict(Invoice, PROMPT, text="Invoice 7")


@pytest.mark.parametrize(
    "answer",
    [f"```json\n{OBJECT}\n```", f"Here is the invoice: {OBJECT}", f"{OBJECT}\nAnything else?"],
    ids=["fenced", "after-a-sentence", "before-a-sentence"],
)
async def test_a_streamed_object_inside_a_fence_or_a_sentence_keeps_the_whole_object_once_it_is_read(
    answer: str, llm: RoutedLLM, server: LocalOpenAIServer
) -> None:
    server.script("small", Reply(text=answer), Reply(text=answer), Reply(text=answer))
    streamed = [p async for p in await llm.astream_structured_predict(Invoice, PROMPT, text="Invoice 7")]
    whole = [isinstance(p, Invoice) for p in streamed]
    assert whole.index(True) < len(streamed) - 1 and all(whole[whole.index(True) :])  # once whole, kept
    assert streamed[-1] == EXPECTED
    assert list(llm.stream_structured_predict(Invoice, PROMPT, text="Invoice 7"))[-1] == EXPECTED
    chat = await llm.as_structured_llm(Invoice).astream_chat([ChatMessage(role="user", content="Invoice 7")])
    assert [chunk async for chunk in chat][-1].raw == EXPECTED
