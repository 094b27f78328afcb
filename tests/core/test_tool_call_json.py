"""Tool-call arguments are written as `json.dumps` writes them, and their hash is the SHA-256 of their
canonical JSON."""

from __future__ import annotations

import hashlib
import json

from gearshift import ToolCall, hash_arguments
from gearshift._argument_texts import flat_key


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


def _canonical_hash(arguments: object) -> str:
    text = json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# Argument values Python finds equal that JSON writes apart, key orders, values too long to keep, and
# arguments that are not flat (kept nowhere): each one written, hashed, then written and hashed again.
_ARGUMENTS: list[dict[object, object]] = [
    {"n": 1},
    {"n": True},
    {"n": 1.0},
    {"n": 0.0},
    {"n": -0.0},
    {"n": None},
    {"n": "1"},
    {1: "n"},
    {"1": "n"},
    {"a": 1, "b": "x"},
    {"b": "x", "a": 1},
    {"q": "café", "path": "src/ü.py"},
    {"q": 'line\nbreak "quoted" \\ tab\t'},
    {"text": "x" * 5_000},
    {"text": "x" * 4_999 + "y"},
    {"n": [1, 2]},
    {"n": (1, 2)},
    {"n": {"b": 1, "a": 2}},
    {"n": {"a": 2, "b": 1}},
    {},
    {"n": 10**30},
]


def test_kept_argument_texts_and_hashes_are_those_written_anew() -> None:
    """Texts and hashes written once are handed out again: only for arguments that write the same."""
    for _ in range(2):
        for arguments in _ARGUMENTS:
            for ensure_ascii in (True, False):
                call = ToolCall.with_arguments("c1", "t", arguments, ensure_ascii=ensure_ascii)  # type: ignore[arg-type]
                assert call.arguments == json.dumps(arguments, ensure_ascii=ensure_ascii), arguments
            assert hash_arguments(arguments) == _canonical_hash(arguments), arguments  # type: ignore[arg-type]
    # Arguments changed in place after a first writing are written as they are now.
    arguments: dict[str, object] = {"path": "a.py"}
    first = ToolCall.with_arguments("c1", "t", arguments).arguments
    arguments["path"] = "b.py"
    assert ToolCall.with_arguments("c1", "t", arguments).arguments == '{"path": "b.py"}' != first
    assert hash_arguments(arguments) == _canonical_hash({"path": "b.py"})


def test_only_flat_short_arguments_are_kept() -> None:
    assert flat_key({"path": "a.py", "n": 1, "all": True, "q": None}) is not None
    assert flat_key({"n": 1}) != flat_key({"n": True}) != flat_key({"n": "1"})
    assert flat_key({"a": 1, "b": 2}) != flat_key({"b": 2, "a": 1})  # json.dumps keeps the order
    for arguments in ({"n": 1.0}, {"n": [1]}, {"n": {"a": 1}}, {1: "n"}, {"text": "x" * 2_001}, "{}"):
        assert flat_key(arguments) is None, arguments
    assert flat_key({"text": "x" * 1_996}) is not None
