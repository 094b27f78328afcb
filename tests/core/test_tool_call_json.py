"""Tool-call arguments are written as `json.dumps` writes them, and their hash is the SHA-256 of their
canonical JSON."""

from __future__ import annotations

import hashlib
import json

from gearshift import ToolCall, hash_arguments


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
