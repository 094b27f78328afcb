"""An artifact whose checksum is right but whose fields are wrong is refused with a `ConfigError`.

The checksum only proves the body is the one that was written; a body written by another tool, or
edited and re-summed, may still hold any JSON in any field. Loading it (and routing with it) must
never end in a bare `TypeError`, `ValueError` or `OverflowError`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gearshift import ConfigError
from gearshift.learning import LearnedRouter
from gearshift.learning._artifact import _canonical

# A JSON value of every shape, and numbers at the edges.
WRONG_VALUES: tuple[Any, ...] = (None, "x", -1, 10**30, True, [], {"a": 1}, [[1, 2]])


def _leaves(node: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if path:
        yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:1]):
            yield from _leaves(value, (*path, index))


def _write(path: Path, document: dict[str, Any], body: dict[str, Any]) -> None:
    signed = {**document, "body": body, "sha256": hashlib.sha256(_canonical(body)).hexdigest()}
    path.write_text(json.dumps(signed))


def _set(body: dict[str, Any], where: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    node: Any = changed
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = value
    return changed


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        (
            ("predictor", "linear", "intercept", "dtype"),
            ["float64"],
            "predictor.linear.intercept is not an encoded array",
        ),
        (("predictor", "knn", "keys", "shape"), [10**30, 4], "predictor.knn.keys has shape"),
        (("training", "folds"), "x", "training.folds must be a non-negative integer"),
        (("training", "tasks"), None, "training.tasks must be a list"),
        (("training", "scores"), {"linear": None}, "training.scores must map"),
        (("training", "seconds"), "x", "training.seconds must be a number"),
        (("features", "text_dims"), 10**30, "features.text_dims and embed_dims must be at most"),
        # Read as truthy, "no" made an unmet operating point pass for met and unknown costs for known.
        (("operating_point", "met"), "no", "operating_point.met has the wrong type (str)"),
        (("costs_known",), "no", "body.costs_known has the wrong type (str)"),
    ],
)
def test_a_wrong_field_is_named(
    method_routers: dict[str, LearnedRouter], tmp_path: Path, where: tuple[str, ...], value: Any, message: str
) -> None:
    path = tmp_path / "router.json"
    method_routers["blend"].save(path)
    document = json.loads(path.read_text())
    _write(path, document, _set(document["body"], where, value))
    with pytest.raises(ConfigError) as caught:
        LearnedRouter.load(path)
    assert message in str(caught.value)
    assert caught.value.source == str(path)


def test_no_wrong_value_in_any_field_escapes_as_a_plain_python_error(
    method_routers: dict[str, LearnedRouter], tmp_path: Path
) -> None:
    path = tmp_path / "router.json"
    method_routers["blend"].save(path)  # a blend holds a linear and a kNN predictor: every field
    document = json.loads(path.read_text())
    refused: list[str | None] = []
    loaded = 0
    for where in list(_leaves(document["body"])):
        for value in WRONG_VALUES:
            _write(path, document, _set(document["body"], where, value))
            try:
                router = LearnedRouter.load(path)
                router.choose(router.predict(["what is 2 + 2?"]), tradeoff=router.operating_point.tradeoff)
            except ConfigError as exc:
                refused.append(exc.source)
            else:
                loaded += 1  # a value the router can use (a name, a count in range...)
    assert len(refused) > loaded > 0
    assert set(refused) == {str(path)}
