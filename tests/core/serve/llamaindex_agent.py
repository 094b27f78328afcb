"""An unchanged LlamaIndex app, run by test_llamaindex_through_proxy.py in LlamaIndex's side venv
(its OpenAI LLM pins openai<3): a `FunctionAgent` over `OpenAILike`, pointed at the proxy given as
the first argument. Prints one JSON line: the tool calls the agent made and its final answer."""

from __future__ import annotations

import asyncio
import json
import sys

from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.tools import FunctionTool
from llama_index.llms.openai_like import OpenAILike


def word_count(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


async def main(base_url: str) -> None:
    llm = OpenAILike(
        model="auto",
        api_base=base_url,
        api_key="unused-on-loopback",
        is_chat_model=True,
        is_function_calling_model=True,
        context_window=32000,
        max_retries=0,
        default_headers={"x-gearshift-agent-id": "li-agent", "x-gearshift-run-id": "li-run-1"},
    )
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(word_count)], llm=llm)
    handler = agent.run("How many words are in 'the quick brown fox'?")
    calls = []
    async for event in handler.stream_events():
        if isinstance(event, ToolCallResult):
            calls.append(
                {"name": event.tool_name, "kwargs": event.tool_kwargs, "output": str(event.tool_output)}
            )
    answer = await handler
    print(json.dumps({"tool_calls": calls, "answer": str(answer)}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
