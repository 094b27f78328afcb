"""StreamAssembler: deltas in, the final assistant message and a priced response out."""

from __future__ import annotations

from gearshift._messages import TextDelta, ToolCall, ToolCallDelta, Usage
from gearshift._models import ModelPrices, ModelSpec
from gearshift.providers._assembly import StreamAssembler

MODEL = ModelSpec(id="m1", provider="p", model="model-one", tier=0, prices=ModelPrices(input=2.0, output=8.0))


def test_text_is_concatenated_in_order() -> None:
    assembler = StreamAssembler()
    assert assembler.is_empty
    assembler.extend([TextDelta("Hel"), TextDelta("lo"), TextDelta(", world")])
    assert assembler.text == "Hello, world"
    assert not assembler.is_empty
    assert assembler.message().role == "assistant"
    assert assembler.message().content == "Hello, world"


def test_tool_call_pieces_are_joined_by_index() -> None:
    assembler = StreamAssembler()
    assembler.extend(
        [
            ToolCallDelta(1, "call_b", "second", '{"b"'),
            ToolCallDelta(0, "call_a", "first", ""),
            ToolCallDelta(0, arguments='{"x": '),
            ToolCallDelta(1, arguments=": 2}"),
            ToolCallDelta(0, arguments="1}"),
        ]
    )
    assert assembler.tool_calls == (
        ToolCall("call_a", "first", '{"x": 1}'),
        ToolCall("call_b", "second", '{"b": 2}'),
    )


def test_a_name_repeated_on_every_piece_is_not_concatenated() -> None:
    assembler = StreamAssembler()
    assembler.extend([ToolCallDelta(0, "c1", "lookup", '{"q"'), ToolCallDelta(0, "c1", "lookup", ': "x"}')])
    assert assembler.tool_calls == (ToolCall("c1", "lookup", '{"q": "x"}'),)


def test_missing_id_and_arguments_get_defaults() -> None:
    assembler = StreamAssembler()
    assembler.add(ToolCallDelta(3, name="ping"))
    assert assembler.tool_calls == (ToolCall("call_3", "ping", "{}"),)


def test_finish_prices_the_usage_and_names_the_models() -> None:
    assembler = StreamAssembler()
    assembler.extend([TextDelta("ok"), ToolCallDelta(0, "c", "t", "{}")])
    usage = Usage(input_tokens=1000, output_tokens=500)
    metadata = {"response_id": "r1"}
    response = assembler.finish(MODEL, "model-one-2025", usage, "tool_calls", metadata)
    metadata["response_id"] = "changed"  # the response keeps its own copy
    assert response.model_id == "m1"
    assert response.provider_model == "model-one-2025"
    assert response.text == "ok"
    assert response.tool_calls == (ToolCall("c", "t", "{}"),)
    assert response.usage == usage
    assert response.finish_reason == "tool_calls"
    assert response.cost_usd == (1000 * 2.0 + 500 * 8.0) / 1_000_000
    assert response.metadata == {"response_id": "r1"}


def test_finish_falls_back_to_the_configured_model_name() -> None:
    response = StreamAssembler().finish(MODEL, "", Usage(), None)
    assert response.provider_model == "model-one"
    assert response.text == ""
    assert response.cost_usd == 0.0
