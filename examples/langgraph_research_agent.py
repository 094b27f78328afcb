"""A LangGraph research agent whose every model call gearshift routes: plan, research with tools, write.

    uv run python examples/langgraph_research_agent.py

The graph has three nodes: `planner` (one model call), `research` (LangChain's `create_agent` with
two tools over a small offline library) and `writer` (one model call). All three use the same
`RoutedChatModel`; gearshift reads each step from LangGraph (the node's name, the tool results, the
thread) and picks the cheapest model that will do it. The script prints, per step, the node, the
model that answered, its tier, the cost and why.

Offline (no key set) it starts gearshift's local OpenAI-compatible server on 127.0.0.1 with a small
and a large simulated model. The simulation cannot plan a search, so the research agent's moves are
scripted: two failed lookups (which move the next step up a tier), a search, then the small model
handing the final step to the large one through gearshift's `escalate` tool. A $0.05 hard budget per
thread is kept in an in-memory ledger. With OPENAI_API_KEY or ANTHROPIC_API_KEY set, the same graph
runs against the real providers over gearshift's built-in model ladder (or your gearshift.toml).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import ToolException, tool
from langgraph.graph import END, START, MessagesState, StateGraph

from gearshift import ModelPrices, ModelRegistry, ModelSpec, Router, SignalScorer
from gearshift.budgets import BudgetLedger, BudgetLimit, MemoryStore
from gearshift.providers import OpenAIProvider
from gearshift.testing import LocalOpenAIServer, Reply
from gearshift_langchain import RoutedChatModel

QUESTION = "How do LLM routers decide when a cheap model is good enough, and what do they save?"
LIBRARY = {
    "RouteLLM": "RouteLLM trains routers on preference data and calibrates a threshold to a target "
    "share of strong-model calls; at 50% fewer strong calls it keeps ~95% of the strong model's quality.",
    "FrugalGPT": "FrugalGPT cascades models from cheap to expensive and stops when a scorer accepts "
    "the answer; it reports up to 98% cost reduction at matched quality on some tasks.",
    "Self-escalation": "A weak model offered an escalate tool can hand a step it cannot do to a stronger "
    "model; the caller still sees one answer.",
}


@tool
def search_library(query: str) -> str:
    """Search the research library; returns the titles of matching documents."""
    words = {w.lower().strip("?,.") for w in query.split()}
    hits = [
        title for title, text in LIBRARY.items() if words & {w.lower().strip(",.;") for w in text.split()}
    ]
    return ", ".join(hits) if hits else "no matches"


@tool
def read_document(title: str) -> str:
    """Read one document of the research library by its exact title."""
    if title not in LIBRARY:
        raise ToolException(f"no document titled {title!r}; search the library for titles first")
    return LIBRARY[title]


read_document.handle_tool_error = True  # a failed lookup becomes an error ToolMessage the agent sees


def research_graph(model: RoutedChatModel) -> Any:
    """planner -> research (a tool-calling agent) -> writer, all on the same routed model."""
    researcher = create_agent(
        model,
        tools=[search_library, read_document],
        system_prompt="Research the question with the library tools, then state your findings.",
    )

    async def planner(state: MessagesState) -> dict[str, list[BaseMessage]]:
        prompt = SystemMessage("Write a three-step research plan for the question. Be brief.")
        return {"messages": [await model.ainvoke([prompt, *state["messages"]])]}

    async def writer(state: MessagesState) -> dict[str, list[BaseMessage]]:
        prompt = SystemMessage("Write the final answer in three sentences from the research above.")
        return {"messages": [await model.ainvoke([*state["messages"], prompt])]}

    graph = StateGraph(MessagesState)
    graph.add_node("planner", planner).add_node("research", researcher).add_node("writer", writer)
    graph.add_edge(START, "planner").add_edge("planner", "research").add_edge("research", "writer")
    return graph.add_edge("writer", END).compile()


async def run(model: RoutedChatModel, thread: str) -> list[BaseMessage]:
    """Run the graph once and print what gearshift did at every step."""
    graph = research_graph(model)
    config = {"configurable": {"thread_id": thread}, "metadata": {"agent_id": "researcher"}}
    steps: dict[str | None, AIMessage] = {}
    updates = graph.astream(
        {"messages": [HumanMessage(QUESTION)]}, config, stream_mode="updates", subgraphs=True
    )
    async for namespace, nodes in updates:
        # The research agent's own steps arrive from inside its subgraph; its node's final update
        # repeats them, so each message is printed once, by id.
        where = namespace[0].split(":")[0] if namespace else None
        for node, output in nodes.items():
            for message in (output or {}).get("messages", []):
                if isinstance(message, AIMessage) and message.id not in steps:
                    steps[message.id] = message
                    _print_step(where or node, message)
    total = sum(m.response_metadata["gearshift"]["cost_usd"] for m in steps.values())
    print(f"\n{len(steps)} model calls, ${total:.6f} in all")
    print(f"answer: {list(steps.values())[-1].text[:300]}")
    return list(steps.values())


def _print_step(node: str, message: AIMessage) -> None:
    routed = message.response_metadata["gearshift"]
    did = ", ".join(c["name"] for c in message.tool_calls) or "answer"
    print(f"{node:>9}: {routed['model_id']:<18} tier {routed['tier']}  ${routed['cost_usd']:.6f}  -> {did}")
    why = [r for r in routed["reasons"] if "escalating" in r or "step:" in r]
    for reason in why:
        print(f"{'':>11}- {reason}")
    for escalation in routed["escalations"]:
        print(f"{'':>11}- escalated {escalation['from']} -> {escalation['to']}: {escalation['reason']}")


def offline() -> None:
    with LocalOpenAIServer(models=("small", "large")) as server:
        registry = ModelRegistry(
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
        ledger = BudgetLedger(MemoryStore(), [BudgetLimit(name="per thread", key="run:*", usd=0.05)])
        router = Router(
            registry,
            policy=SignalScorer(),
            providers=[OpenAIProvider("local", base_url=server.base_url, require_key=False)],
            budgets=ledger,
        )
        # The research agent's moves; the planner's and writer's calls are the simulation's own.
        server.script(
            "small",
            Reply(text="1. Search the library. 2. Read the sources. 3. Compare the savings."),  # planner
            Reply(tool_calls=[("read_document", {"title": "Routers"})]),  # fails: no such title
            Reply(tool_calls=[("read_document", {"title": "LLM routing"})]),  # fails again
            Reply(tool_calls=[("read_document", {"title": "FrugalGPT"})]),  # after reading RouteLLM
            Reply(tool_calls=[("escalate", {"reason": "comparing the two methods' savings needs care"})]),
        )
        server.script("large", Reply(tool_calls=[("read_document", {"title": "RouteLLM"})]))  # after 2 errors
        model = RoutedChatModel(router=router)
        asyncio.run(run(model, "thread-1"))
        (spent,) = asyncio.run(ledger.usage(["run:thread-1"]))
        print(f"ledger: thread-1 spent ${spent.spent_usd:.6f} of its $0.05")


def live() -> None:
    model = RoutedChatModel(router=Router.from_config())
    asyncio.run(run(model, "thread-1"))


if __name__ == "__main__":
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("ANTHROPIC_API_KEY"):
        live()
    else:
        offline()
