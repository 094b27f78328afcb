"""`hash_arguments` hashes the canonical JSON of the arguments, as `json.dumps` writes it, on any value."""

from __future__ import annotations

import enum
import hashlib
import json
from typing import Any

import pytest

from gearshift import hash_arguments
from gearshift._context import _canonical_json


class Colour(str, enum.Enum):
    RED = "red"


class Size(enum.IntEnum):
    LARGE = 3


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


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


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_canonical_json_is_what_json_dumps_writes(value: Any) -> None:
    try:
        expected: str | type[Exception] = _dumps(value)
    except (TypeError, ValueError) as exc:
        expected = type(exc)
    if isinstance(expected, str):
        assert _canonical_json(value) == expected
    else:
        with pytest.raises(expected):
            _canonical_json(value)


def test_a_circular_value_is_refused_as_json_dumps_refuses_it_and_the_next_value_is_not_affected() -> None:
    loop: dict[str, Any] = {"a": 1}
    loop["self"] = loop
    with pytest.raises(ValueError, match="Circular reference"):
        _dumps(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        _canonical_json(loop)
    inner = {"x": 1}
    assert _canonical_json({"a": inner, "b": inner}) == '{"a":{"x":1},"b":{"x":1}}'


def test_the_hash_is_the_sha256_of_the_canonical_json_and_ignores_order_and_spacing() -> None:
    expected = hashlib.sha256(b'{"page":1,"q":"report"}').hexdigest()[:16]
    assert hash_arguments({"q": "report", "page": 1}) == expected
    assert hash_arguments('{"page": 1,  "q": "report"}') == expected
    assert hash_arguments("not json") == hashlib.sha256(b"not json").hexdigest()[:16]
    assert hash_arguments("") == hash_arguments({})
