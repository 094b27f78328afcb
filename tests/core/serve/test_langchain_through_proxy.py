"""An unchanged LangChain app: `ChatOpenAI` pointed at `gearshift serve` runs a tool-using agent, and
every one of its model calls is routed (and read as a step) by the proxy."""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from proxy_support import ProxyProcess

from gearshift import read_records
from gearshift.testing import LocalOpenAIServer


@tool
def word_count(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


def test_a_langchain_agent_through_the_proxy(proxy: ProxyProcess, proxy_dir: Any) -> None:
    model = ChatOpenAI(
        model="auto",
        base_url=proxy.base_url,
        api_key="unused-on-loopback",  # type: ignore[arg-type]
        default_headers={"x-gearshift-agent-id": "lc-agent", "x-gearshift-run-id": "lc-run-1"},
        max_retries=0,
    )
    agent = create_agent(model=model, tools=[word_count])
    state = agent.invoke({"messages": [("user", "How many words are in 'the quick brown fox'?")]})
    messages = state["messages"]
    assert [m.type for m in messages] == ["human", "ai", "tool", "ai"]
    assert messages[1].tool_calls[0]["name"] == "word_count"
    assert messages[-1].response_metadata["model_name"] in ("small", "large")
    decisions: list[dict[str, Any]] = []
    for _ in range(100):
        decisions = [
            r
            for r in read_records(proxy_dir / "decisions.db")
            if r["kind"] == "decision" and r["run_id"] == "lc-run-1"
        ]
        if len(decisions) == 2:
            break
        import time

        time.sleep(0.05)
    assert [(d["step_type"], d["step_index"]) for d in decisions] == [("act", 0), ("observe", 1)]
    assert {d["agent_id"] for d in decisions} == {"lc-agent"}


def test_chatopenai_s_sampling_settings_reach_the_model(
    proxy: ProxyProcess, openai_server: LocalOpenAIServer
) -> None:
    """ChatOpenAI's `top_p`, `seed` and penalties were accepted by the proxy and dropped: the routed
    model never saw them."""
    model = ChatOpenAI(
        model="small",
        base_url=proxy.base_url,
        api_key="unused-on-loopback",  # type: ignore[arg-type]
        max_retries=0,
        top_p=0.2,
        seed=3,
        frequency_penalty=0.4,
        presence_penalty=-0.3,
    )
    model.invoke("Name a colour")
    sent = openai_server.requests[-1].body
    assert {k: sent.get(k) for k in ("top_p", "seed", "frequency_penalty", "presence_penalty")} == {
        "top_p": 0.2, "seed": 3, "frequency_penalty": 0.4, "presence_penalty": -0.3,
    }  # fmt: skip
