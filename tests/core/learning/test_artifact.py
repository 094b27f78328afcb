"""The router artifact: a JSON round trip that predicts identically, and clear refusals of bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gearshift import ConfigError
from gearshift.datasets import OutcomeTable
from gearshift.learning import LearnedRouter, text_features, train_router


def test_save_and_load_give_identical_predictions(
    trained: LearnedRouter, two_model_split: tuple[OutcomeTable, OutcomeTable], tmp_path: Path
) -> None:
    path = tmp_path / "router.json"
    trained.save(path)
    loaded = LearnedRouter.load(path)
    held = two_model_split[1].rows
    assert np.array_equal(loaded.predict(held), trained.predict(held))
    assert loaded.models == trained.models and loaded.costs == trained.costs
    assert loaded.operating_point == trained.operating_point
    assert loaded.training.method == trained.training.method
    assert loaded.curve is not None and trained.curve is not None
    assert np.array_equal(loaded.curve.breakpoints, trained.curve.breakpoints)
    assert json.loads(path.read_text())["format"] == "gearshift.learned-router"


@pytest.mark.parametrize("method", ["knn", "blend"])
def test_neighbour_routers_round_trip_too(
    method: str,
    two_model_split: tuple[OutcomeTable, OutcomeTable],
    method_routers: dict[str, LearnedRouter],
    tmp_path: Path,
) -> None:
    router = method_routers[method]
    router.save(tmp_path / "r.json")
    held = two_model_split[1].rows
    assert np.array_equal(LearnedRouter.load(tmp_path / "r.json").predict(held), router.predict(held))


def _saved(trained: LearnedRouter, tmp_path: Path) -> Path:
    path = tmp_path / "router.json"
    trained.save(path)
    return path


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found") as caught:
        LearnedRouter.load(tmp_path / "nope.json")
    assert "nope.json" in str(caught.value)


def test_a_truncated_file_is_refused(trained: LearnedRouter, tmp_path: Path) -> None:
    path = _saved(trained, tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match=r"not valid JSON.*truncated") as caught:
        LearnedRouter.load(path)
    assert str(path) in str(caught.value)


def test_a_foreign_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ConfigError, match="not a gearshift router artifact"):
        LearnedRouter.load(path)
    path.write_bytes(b"\x80\x04\x95 a pickle, not JSON")
    with pytest.raises(ConfigError, match="not a gearshift router artifact"):
        LearnedRouter.load(path)


def test_a_corrupt_file_fails_its_checksum(trained: LearnedRouter, tmp_path: Path) -> None:
    path = _saved(trained, tmp_path)
    document = json.loads(path.read_text())
    document["body"]["costs"][1] = 0.0  # a hand edit
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match=r"corrupt.*checksum"):
        LearnedRouter.load(path)


def test_a_newer_format_is_refused_with_advice(trained: LearnedRouter, tmp_path: Path) -> None:
    path = _saved(trained, tmp_path)
    document = json.loads(path.read_text())
    document["version"] = 99
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match=r"version 99, newer than this gearshift reads.*upgrade"):
        LearnedRouter.load(path)


def test_a_well_formed_body_with_wrong_arrays_is_refused(trained: LearnedRouter, tmp_path: Path) -> None:
    import hashlib

    from gearshift.learning._artifact import _canonical

    path = _saved(trained, tmp_path)
    document = json.loads(path.read_text())
    document["body"]["predictor"]["intercept"]["shape"] = [3]
    document["sha256"] = hashlib.sha256(_canonical(document["body"])).hexdigest()
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match=r"predictor\.intercept has shape"):
        LearnedRouter.load(path)


def test_an_embedder_router_needs_its_embedder_back(
    two_model_split: tuple[OutcomeTable, OutcomeTable], tmp_path: Path
) -> None:
    def embed(texts):  # type: ignore[no-untyped-def]
        return text_features(list(texts), dims=32)

    router = train_router(two_model_split[0], method="linear", embedder=embed)
    router.save(tmp_path / "e.json")
    with pytest.raises(ConfigError, match="trained with the embedder 'embed'"):
        LearnedRouter.load(tmp_path / "e.json")
    held = two_model_split[1].rows
    loaded = LearnedRouter.load(tmp_path / "e.json", embedder=embed)
    assert np.array_equal(loaded.predict(held), router.predict(held))
