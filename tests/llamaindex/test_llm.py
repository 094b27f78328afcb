"""`RoutedLLM` as a LlamaIndex LLM: chat, complete, streams, tools and structured output, sync and async."""

from __future__ import annotations

import asyncio
import base64
import random
import re
from pathlib import Path

import pytest
from llama_index.core import Document, Settings, SummaryIndex
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, ImageBlock, TextBlock, ToolCallBlock
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.prompts import PromptTemplate
from llama_index.core.schema import TextNode
from llama_index.core.tools import FunctionTool
from llama_index.core.types import PydanticProgramMode
from llamaindex_support import REGISTRY, MakeRouter, Observed, local_config
from pydantic import BaseModel

import gearshift_llamaindex
from gearshift import CallerHints, InvalidRequestError, ModelRegistry, StepType
from gearshift.testing import Delay, LocalOpenAIServer, Reply
from gearshift_llamaindex import RoutedLLM, run_scope

USER = [ChatMessage(role="user", content="Say hello to the team")]


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"sunny in {city}"


def get_time(city: str) -> str:
    """The local time in a city."""
    return f"noon in {city}"


TOOLS = [FunctionTool.from_defaults(get_weather), FunctionTool.from_defaults(get_time)]


class Invoice(BaseModel):
    """An invoice's essentials."""

    number: str
    total: float
    paid: bool


def test_the_public_api_is_exactly_this() -> None:
    assert gearshift_llamaindex.__all__ == ["RoutedLLM", "run_scope"]
    assert issubclass(RoutedLLM, FunctionCallingLLM)


def test_metadata_says_chat_and_function_calling_with_the_smallest_window(llm: RoutedLLM) -> None:
    metadata = llm.metadata
    assert metadata.is_chat_model and metadata.is_function_calling_model
    assert metadata.context_window == min(m.context_window for m in REGISTRY) == 16_000
    assert RoutedLLM(llm.router, context_window=8_000).metadata.context_window == 8_000
    assert llm.to_payload() == {"class_name": "gearshift_routed_llm", "models": ("small", "large")}


async def test_achat_is_routed_and_reports_usage_cost_and_decision(
    llm: RoutedLLM, observed: Observed
) -> None:
    response = await llm.achat(USER)
    assert "small" in (response.message.content or "")
    record = response.additional_kwargs["gearshift"]
    assert record == response.raw
    assert record["model_id"] == "small" and record["tier"] == record["decided_tier"] == 1
    assert record["escalations"] == []
    (attempt,) = observed.records("attempt")
    assert response.additional_kwargs["prompt_tokens"] == attempt["input_tokens"] > 0
    assert response.additional_kwargs["completion_tokens"] == attempt["output_tokens"] > 0
    assert record["cost_usd"] == pytest.approx(observed.spent())
    (decision,) = observed.records("decision")
    assert decision["agent_id"] == "tester" and decision["step_type"] == "respond"


def test_sync_chat_and_complete_go_through_the_bridge(llm: RoutedLLM, observed: Observed) -> None:
    chat = llm.chat(USER)
    completion = llm.complete("Name a colour")
    assert chat.additional_kwargs["gearshift"]["model_id"] == "small"
    assert 'began: "Name a colour"' in completion.text
    assert completion.additional_kwargs["total_tokens"] > 0
    assert observed.served() == ["small", "small"]


async def test_acomplete_sends_the_prompt_as_a_user_message(llm: RoutedLLM, observed: Observed) -> None:
    completion = await llm.acomplete("Name a colour")
    assert 'began: "Name a colour"' in completion.text
    assert observed.body(0)["messages"] == [{"role": "user", "content": "Name a colour"}]


async def test_achat_does_not_block_the_event_loop(llm: RoutedLLM, server: LocalOpenAIServer) -> None:
    server.script("small", Delay(0.3))
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    before = ticks
    await llm.achat(USER)
    during = ticks - before
    ticker.cancel()
    # A call that blocked the loop (the sync bridge inside async code) would let the ticker run 0 times.
    assert during > 10


def _check_stream(chunks: list[ChatResponse], observed: Observed) -> None:
    deltas = [c.delta for c in chunks]
    final = chunks[-1]
    assert len(deltas) > 3 and deltas[-1] == ""
    text = "".join(d or "" for d in deltas)
    assert text == final.message.content
    # Each chunk's message is the text so far: the deltas arrive in order.
    assert all(c.message.content == "".join(deltas[: i + 1]) for i, c in enumerate(chunks[:-1]))
    (attempt,) = observed.records("attempt")
    assert attempt["streamed"] and attempt["ok"]
    assert final.additional_kwargs["prompt_tokens"] == attempt["input_tokens"] > 0
    assert final.additional_kwargs["completion_tokens"] == attempt["output_tokens"] > 0
    assert final.raw["cost_usd"] == pytest.approx(observed.spent())


def test_stream_chat_yields_deltas_in_order_then_usage(llm: RoutedLLM, observed: Observed) -> None:
    _check_stream(list(llm.stream_chat(USER)), observed)


async def test_astream_chat_yields_deltas_in_order_then_usage(llm: RoutedLLM, observed: Observed) -> None:
    _check_stream([chunk async for chunk in await llm.astream_chat(USER)], observed)


def test_a_stream_left_early_records_a_cancelled_attempt(llm: RoutedLLM, observed: Observed) -> None:
    # Without escalation on offer the small model's stream reaches the caller as it comes (with it,
    # the core holds a lower tier's answer back until it knows the model did not hand the step over).
    chunks = llm.stream_chat(USER, self_escalation=False)
    first = next(chunks)
    chunks.close()
    assert first.delta
    (attempt,) = observed.records("attempt")
    assert attempt["cancelled"] and not attempt["ok"]
    assert attempt["input_tokens"] > 0  # the provider saw the prompt: gearshift's estimate is kept


async def test_streamed_completions_accumulate_text(llm: RoutedLLM, observed: Observed) -> None:
    chunks = [c async for c in await llm.astream_complete("Name a colour")]
    assert chunks[-1].text == "".join(c.delta or "" for c in chunks)
    assert chunks[-1].additional_kwargs["completion_tokens"] > 0
    sync_chunks = list(llm.stream_complete("Name a colour"))
    assert sync_chunks[-1].text == chunks[-1].text
    assert observed.served() == ["small", "small"]


async def test_tools_are_offered_and_parallel_calls_come_back_as_selections(
    llm: RoutedLLM, server: LocalOpenAIServer, observed: Observed
) -> None:
    server.script(
        "small", Reply(tool_calls=[("get_weather", {"city": "Oslo"}), ("get_time", {"city": "Lima"})])
    )
    response = await llm.achat_with_tools(
        TOOLS, "Weather in Oslo and time in Lima?", allow_parallel_tool_calls=True
    )
    selections = llm.get_tool_calls_from_response(response)
    assert [(s.tool_name, s.tool_kwargs) for s in selections] == [
        ("get_weather", {"city": "Oslo"}),
        ("get_time", {"city": "Lima"}),
    ]
    assert all(s.tool_id for s in selections)
    body = observed.body(0)
    assert body["parallel_tool_calls"] is True
    # The router offers the small model its escalate tool; the agent's tools come first, unchanged.
    assert observed.tools(0) == ["get_weather", "get_time", "escalate"]
    assert body["tools"][0]["function"]["parameters"]["required"] == ["city"]


async def test_without_parallel_calls_only_the_first_call_is_kept(
    llm: RoutedLLM, server: LocalOpenAIServer, observed: Observed
) -> None:
    server.script(
        "small", Reply(tool_calls=[("get_weather", {"city": "Oslo"}), ("get_time", {"city": "Lima"})])
    )
    response = await llm.achat_with_tools(TOOLS, "Weather in Oslo and time in Lima?")
    assert [s.tool_name for s in llm.get_tool_calls_from_response(response)] == ["get_weather"]
    assert observed.body(0)["parallel_tool_calls"] is False


async def test_a_dropped_parallel_call_is_gone_from_the_message_s_legacy_tool_calls_too(
    llm: RoutedLLM, server: LocalOpenAIServer
) -> None:
    # The message also lists its calls in additional_kwargs["tool_calls"], where other integrations
    # read them: a call dropped from the blocks but kept there would reach their next request with
    # no tool result, which OpenAI refuses.
    server.script(
        "small", Reply(tool_calls=[("get_weather", {"city": "Oslo"}), ("get_time", {"city": "Lima"})])
    )
    response = await llm.achat_with_tools(TOOLS, "Weather in Oslo and time in Lima?")
    (kept,) = llm.get_tool_calls_from_response(response)
    listed = response.message.additional_kwargs["tool_calls"]
    assert [(c["id"], c["function"]["name"]) for c in listed] == [(kept.tool_id, "get_weather")]


async def test_a_repeated_identical_tool_call_moves_the_step_up(llm: RoutedLLM, observed: Observed) -> None:
    def weather_call(call_id: str) -> ChatMessage:
        block = ToolCallBlock(tool_call_id=call_id, tool_name="get_weather", tool_kwargs={"city": "Oslo"})
        return ChatMessage(role="assistant", blocks=[block])

    def result(call_id: str) -> ChatMessage:
        return ChatMessage(role="tool", content="sunny in Oslo", additional_kwargs={"tool_call_id": call_id})

    history = [ChatMessage(role="user", content="Weather in Oslo?"), weather_call("a"), result("a")]
    await llm.achat_with_tools(TOOLS, chat_history=history)
    await llm.achat_with_tools(TOOLS, chat_history=[*history, weather_call("b"), result("b")])
    assert observed.served() == ["small", "large"]
    looping = observed.records("decision")[1]
    assert looping["step_index"] == 2 and any("repeated identical tool call" in r for r in looping["reasons"])
    # The agent's tool calls and results reached the model in OpenAI's pairing.
    sent = observed.body(1)["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "tool"]
    assert sent[3]["tool_calls"][0]["id"] == sent[4]["tool_call_id"] == "b"


async def test_a_history_from_other_providers_reaches_the_model_with_paired_portable_ids(
    llm: RoutedLLM, observed: Observed
) -> None:
    # Small local servers number every turn's call `call_0`; other providers use ids OpenAI refuses.
    def call(call_id: str) -> ChatMessage:
        block = ToolCallBlock(tool_call_id=call_id, tool_name="get_weather", tool_kwargs={"city": "Oslo"})
        return ChatMessage(role="assistant", blocks=[block])

    def result(call_id: str, text: str) -> ChatMessage:
        return ChatMessage(role="tool", content=text, additional_kwargs={"tool_call_id": call_id})

    history = [ChatMessage(role="user", content="Weather in Oslo, twice?")]
    history += [call("call_0"), result("call_0", "sunny"), call("call_0"), result("call_0", "rainy")]
    history += [call("functions.get_weather:2")]  # a call whose result the history lost
    await llm.achat_with_tools(TOOLS, chat_history=history)
    sent = observed.body(0)["messages"]
    assert [m["role"] for m in sent] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
        "tool",
    ]
    ids = [sent[i]["tool_calls"][0]["id"] for i in (1, 3, 5)]
    assert ids[0] == "call_0" and len(set(ids)) == 3
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,40}", i) for i in ids)
    assert [(sent[i]["tool_call_id"], sent[i]["content"]) for i in (2, 4)] == [
        (ids[0], "sunny"),
        (ids[1], "rainy"),
    ]
    assert sent[6]["tool_call_id"] == ids[2]  # answered, so OpenAI takes the turn


@pytest.mark.parametrize("sticky", [True, False])
async def test_a_sticky_tool_loop_reads_its_results_with_the_model_that_made_the_calls(
    make_router: MakeRouter, server: LocalOpenAIServer, observed: Observed, sticky: bool
) -> None:
    llm = RoutedLLM(make_router(), sticky_tool_loops=sticky, self_escalation=False)
    server.script("large", Reply(tool_calls=[("get_weather", {"city": "Oslo"})]))
    asked = await llm.achat_with_tools(TOOLS, "Weather in Oslo?", hints=CallerHints(force_model="large"))
    call_id = llm.get_tool_calls_from_response(asked)[0].tool_id
    result = ChatMessage(role="tool", content="sunny", additional_kwargs={"tool_call_id": call_id})
    history = [ChatMessage(role="user", content="Weather in Oslo?"), asked.message, result]
    await llm.achat_with_tools(TOOLS, chat_history=history)
    # Reading a short tool result is an easy step: only stickiness keeps it on the model that asked.
    assert observed.served() == ["large", "large" if sticky else "small"]


async def test_no_tool_call_is_an_error_only_when_asked(llm: RoutedLLM) -> None:
    response = await llm.achat(USER)
    assert llm.get_tool_calls_from_response(response, error_on_no_tool_call=False) == []
    with pytest.raises(ValueError, match="without calling a tool"):
        llm.get_tool_calls_from_response(response)


async def test_tool_required_and_a_named_tool_choice_reach_the_model(
    llm: RoutedLLM, observed: Observed
) -> None:
    await llm.achat_with_tools(TOOLS, "Anything new?", tool_required=True)
    await llm.achat_with_tools(TOOLS, "Anything new?", tool_choice="get_time")
    openai_style = {"type": "function", "function": {"name": "get_weather"}}
    response = await llm.achat_with_tools(TOOLS, "Anything new?", tool_choice=openai_style)
    assert observed.body(0)["tool_choice"] == "required"
    assert observed.body(1)["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    assert observed.body(2)["tool_choice"] == openai_style
    assert llm.get_tool_calls_from_response(response)[0].tool_name == "get_weather"
    # A pinned tool leaves no room for the escalate tool.
    assert "escalate" in observed.tools(0) and "escalate" not in observed.tools(1)


def test_sync_chat_with_tools_and_predict_and_call_run_the_tool(
    llm: RoutedLLM, server: LocalOpenAIServer
) -> None:
    server.script("small", Reply(tool_calls=[("get_weather", {"city": "Oslo"})]))
    output = llm.predict_and_call(TOOLS, "Weather in Oslo?")
    assert output.response == "sunny in Oslo"


async def test_structured_predict_asks_for_json_matching_the_schema(
    llm: RoutedLLM, observed: Observed
) -> None:
    prompt = PromptTemplate("Extract the invoice from: {text}")
    invoice = await llm.astructured_predict(Invoice, prompt, text="Invoice 7, $12.50, paid")
    assert isinstance(invoice, Invoice)
    format_ = observed.body(0)["response_format"]
    assert format_["type"] == "json_schema"
    assert format_["json_schema"]["schema"]["required"] == ["number", "total", "paid"]
    assert isinstance(llm.structured_predict(Invoice, prompt, text="Invoice 8"), Invoice)


async def test_structured_output_streams_partial_objects(llm: RoutedLLM, observed: Observed) -> None:
    prompt = PromptTemplate("Extract the invoice from: {text}")
    partials = list(llm.stream_structured_predict(Invoice, prompt, text="Invoice 7, $12.50, paid"))
    assert isinstance(partials[-1], Invoice)
    assert any(not isinstance(p, Invoice) for p in partials[:-1])  # partial objects came first
    streamed = [p async for p in await llm.astream_structured_predict(Invoice, prompt, text="Invoice 8")]
    assert streamed[-1] == partials[-1]
    assert observed.body(0)["response_format"]["type"] == "json_schema" and observed.body(0)["stream"]


async def test_structured_predict_in_function_mode_requires_the_tool(
    make_router: MakeRouter, observed: Observed
) -> None:
    llm = RoutedLLM(make_router(), pydantic_program_mode=PydanticProgramMode.FUNCTION)
    invoice = await llm.astructured_predict(Invoice, PromptTemplate("Extract: {text}"), text="Invoice 9")
    assert isinstance(invoice, Invoice)
    assert observed.body(0)["tool_choice"] == "required"
    assert observed.tools(0)[0] == "Invoice"


async def test_per_call_ids_win_over_the_scope_and_the_scope_over_the_fields(
    make_router: MakeRouter, observed: Observed
) -> None:
    llm = RoutedLLM(make_router(), agent_id="agent-field", run_id="run-field", budget_keys=("team:a",))
    await llm.achat(USER)
    with run_scope(run_id="run-scope", budget_keys=("team:b",)):
        await llm.achat(USER)
        await llm.achat(USER, agent_id="agent-call", run_id="run-call", step_type="plan")
    await llm.achat(USER, hints=CallerHints(force_model="large"), step_type=StepType.SUMMARIZE)
    decisions = observed.records("decision")
    assert [(d["agent_id"], d["run_id"]) for d in decisions] == [
        ("agent-field", "run-field"),
        ("agent-field", "run-scope"),
        ("agent-call", "run-call"),
        ("agent-field", "run-field"),
    ]
    assert [d["step_type"] for d in decisions] == ["respond", "respond", "plan", "summarize"]
    assert observed.served()[-1] == "large"


async def test_unknown_call_options_are_refused_by_name(llm: RoutedLLM) -> None:
    with pytest.raises(InvalidRequestError, match="does not take logit_bias"):
        await llm.achat(USER, logit_bias={"50256": -100})


async def test_n_1_is_taken_as_asking_for_nothing_and_more_answers_are_refused(
    llm: RoutedLLM, observed: Observed
) -> None:
    # n=1 asks for the one answer every call gets: code written for OpenAI's LLM that says so was
    # refused by name, with logprobs and extra_body, which do ask for something gearshift cannot give.
    answer = await llm.achat(USER, n=1)
    assert answer.message.content and "n" not in observed.server.requests[-1].body
    for option, value in (("n", 2), ("n", True), ("logprobs", True), ("extra_body", {"x": 1})):
        with pytest.raises(InvalidRequestError, match=f"does not take {option};"):
            await llm.achat(USER, **{option: value})


async def test_images_go_to_a_vision_model_and_image_files_are_read(
    make_router: MakeRouter, observed: Observed, tmp_path: Path
) -> None:
    registry = ModelRegistry(
        [*REGISTRY, REGISTRY["large"].model_copy(update={"id": "eyes", "supports_vision": True})]
    )
    llm = RoutedLLM(make_router(registry))
    picture = tmp_path / "dot.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    message = ChatMessage(
        role="user",
        blocks=[
            TextBlock(text="What is in these pictures?"),
            ImageBlock(url="https://example.com/cat.png"),
            ImageBlock(path=picture, image_mimetype="image/png"),
        ],
    )
    response = await llm.achat([message])
    assert response.additional_kwargs["gearshift"]["model_id"] == "eyes"
    parts = observed.body(0)["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "What is in these pictures?"}
    assert parts[1]["image_url"]["url"] == "https://example.com/cat.png"
    encoded = base64.b64encode(picture.read_bytes()).decode()
    assert parts[2]["image_url"]["url"] == f"data:image/png;base64,{encoded}"


async def test_settings_llm_serves_query_engines(
    llm: RoutedLLM, observed: Observed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Settings, "_llm", llm)  # Settings.llm = llm, undone after the test
    index = SummaryIndex.from_documents([Document(text="gearshift routes LLM calls to the cheapest model.")])
    answer = await index.as_query_engine().aquery("What does gearshift do?")
    streamed = index.as_query_engine(streaming=True).query("What does gearshift do?")
    text = "".join(streamed.response_gen)  # type: ignore[union-attr]
    assert "Context information is below" in str(answer) and text == str(answer)
    assert observed.served() == ["small", "small"]


async def test_a_query_engine_packs_its_prompts_to_fit_the_window_it_is_told(
    make_router: MakeRouter, observed: Observed, monkeypatch: pytest.MonkeyPatch
) -> None:
    # LlamaIndex packs retrieved text up to context_window less num_output; num_output was its own
    # default of 256 while the router keeps 512 for the answer when it checks that a prompt fits, so a
    # full prompt fitted no model: NoEligibleModel ("about 4008 tokens do not fit its context window
    # of 4000") where LlamaIndex's own LLM would have answered.
    registry = ModelRegistry([spec.model_copy(update={"context_window": 4_000}) for spec in REGISTRY])
    llm = RoutedLLM(make_router(registry))
    monkeypatch.setattr(Settings, "_llm", llm)
    words = ["router", "model", "budget", "cheap", "strong", "escalate", "answer", "token", "step"]
    draw = random.Random(1)
    text = [draw.choice(words) for _ in range(12_000)]
    chunks = [" ".join(text[i : i + 300]) for i in range(0, len(text), 300)]
    index = SummaryIndex([TextNode(text=chunk) for chunk in chunks])
    answer = await index.as_query_engine(response_mode="compact").aquery("What does the router do?")
    assert "Simulated answer" in str(answer)
    assert len(observed.served()) > 1 and set(observed.served()) == {"small"}
    assert (llm.metadata.context_window, llm.metadata.num_output) == (4_000, llm.router.default_output_tokens)
    assert RoutedLLM(llm.router, max_tokens=100).metadata.num_output == 100


def test_both_a_router_and_a_config_is_an_error(llm: RoutedLLM) -> None:
    with pytest.raises(Exception, match="either a Router or a config"):
        RoutedLLM(llm.router, config="gearshift.toml")


async def test_built_from_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "gearshift.toml"
    with LocalOpenAIServer(models=("small", "large")) as keyless:
        config.write_text(
            local_config(keyless.base_url)
            + """
[budgets]
store = "memory://"

[[budgets.limits]]
key = "run:*"
usd = 1.0
"""
        )
        llm = RoutedLLM(config=config, run_id="from-file")
        assert llm.config == str(config)
        assert list(llm.router.registry.ids) == ["small", "large"]
        ledger = llm.router.budgets
        assert ledger is not None
        async with llm.router:
            response = await llm.achat(USER)
            (run_limit,) = (await ledger.status(["run:from-file"])).limits
        assert response.raw["model_id"] == "small"
        assert response.raw["cost_usd"] > 0
        assert run_limit.spent_usd == pytest.approx(response.raw["cost_usd"])
        assert [r.model for r in keyless.requests] == ["small"]
