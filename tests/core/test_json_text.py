"""JSON text written without `JSONEncoder.encode`'s layers is the text it writes; tool-call arguments and
their hash are written from it."""

from __future__ import annotations

import enum
import hashlib
import json
from typing import Any

import pytest

from gearshift import ToolCall, hash_arguments
from gearshift._json_text import json_writer


class Colour(str, enum.Enum):
    RED = "red"


class Size(enum.IntEnum):
    LARGE = 3


ENCODERS = {
    "canonical": json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str),
    "dumps": json.JSONEncoder(),
    "unicode": json.JSONEncoder(ensure_ascii=False),
    "no-circular-check": json.JSONEncoder(check_circular=False, allow_nan=False, skipkeys=True),
    "indented": json.JSONEncoder(indent=2),
}


VALUES: list[Any] = [
    {},
    {"q": "report", "page": 1},
    {"z": {"b": [1, 2.5, None, True, False], "a": (1, "two")}, "a": 'café ✓ \n "quoted"'},
    {"n": float("nan"), "i": float("inf"), "m": -float("inf"), "big": 10**30, "tiny": 1e-300},
    {"colour": Colour.RED, "size": Size.LARGE},
    {10: "ten", 2: "two"},
    {True: 1, None: 2},
    {"set": {1}, "bytes": b"raw"},  # not JSON: written with str(), as default=str says
    [1, {"b": 1, "a": 2}],
    "text",
    12,
    None,
]


@pytest.mark.parametrize("name", ENCODERS)
@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_the_writer_writes_what_the_encoder_writes(name: str, value: Any) -> None:
    encoder = ENCODERS[name]
    try:
        expected: str | type[Exception] = encoder.encode(value)
    except (TypeError, ValueError) as exc:
        expected = type(exc)
    if isinstance(expected, str):
        assert json_writer(encoder)(value) == expected
    else:
        with pytest.raises(expected):
            json_writer(encoder)(value)


def test_a_circular_value_is_refused_as_the_encoder_refuses_it_and_the_next_value_is_not_affected() -> None:
    loop: dict[str, Any] = {"a": 1}
    loop["self"] = loop
    write = json_writer(ENCODERS["canonical"])
    with pytest.raises(ValueError, match="Circular reference"):
        ENCODERS["canonical"].encode(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        write(loop)
    inner = {"x": 1}
    assert write({"a": inner, "b": inner}) == '{"a":{"x":1},"b":{"x":1}}'


def test_a_tool_calls_arguments_are_written_as_json_dumps_writes_them() -> None:
    arguments = {"q": "café", "n": [1, 2.5, None]}
    assert ToolCall.with_arguments("c1", "search", arguments) == ToolCall(
        "c1", "search", json.dumps(arguments)
    )
    unicode = ToolCall.with_arguments("c1", "search", arguments, ensure_ascii=False)
    assert (
        unicode.arguments == json.dumps(arguments, ensure_ascii=False) == '{"q": "café", "n": [1, 2.5, null]}'
    )


def test_the_hash_is_the_sha256_of_the_canonical_json_and_ignores_order_and_spacing() -> None:
    expected = hashlib.sha256(b'{"page":1,"q":"report"}').hexdigest()[:16]
    assert hash_arguments({"q": "report", "page": 1}) == expected
    assert hash_arguments('{"page": 1,  "q": "report"}') == expected
    assert hash_arguments("not json") == hashlib.sha256(b"not json").hexdigest()[:16]
    assert hash_arguments("") == hash_arguments({})
