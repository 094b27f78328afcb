"""A learned router's parts to and from the JSON body of its artifact (the file format is `_artifact`'s).

`RouterParts` is everything a `LearnedRouter` is made of but its embedder; `_router_model` builds the
router from them, so this module never needs the router class itself.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from ._artifact import ArtifactReader, encode_array
from ._calibration import CalibrationCurve, OperatingPoint
from ._features import CONTENT_FEATURES, Embedder, FeatureSpec
from ._predictors import BlendPredictor, KnnPredictor, LinearPredictor, Predictor
from ._summary import TrainingSummary

__all__ = ["RouterParts", "parts_body", "parts_from_body"]


class RouterParts(NamedTuple):
    """What a learned router's artifact holds, in `LearnedRouter`'s field order (its embedder aside)."""

    models: tuple[str, ...]
    costs: tuple[float, ...]
    costs_known: bool
    features: FeatureSpec
    predictor: Predictor
    operating_point: OperatingPoint
    curve: CalibrationCurve | None
    training: TrainingSummary


_MAX_FEATURE_DIMS = 2**24  # far above any hashing width or embedding size in use


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _predictor_body(predictor: Predictor) -> dict[str, Any]:
    if isinstance(predictor, LinearPredictor):
        return {
            "kind": "linear",
            "text_weights": encode_array(predictor.text_weights),
            "dense_weights": encode_array(predictor.dense_weights, "float64"),
            "intercept": encode_array(predictor.intercept, "float64"),
            "task_fill": encode_array(predictor.task_fill, "float64"),
        }
    if isinstance(predictor, KnnPredictor):
        return {
            # Half precision: neighbour keys are the bulk of a kNN artifact and cosine ranks survive it.
            "kind": "knn",
            "keys": encode_array(predictor.keys, "float16"),
            "scores": encode_array(predictor.scores, "float32"),
            "prior": encode_array(predictor.prior, "float64"),
            "k": predictor.k,
            "shrink": predictor.shrink,
        }
    return {
        "kind": "blend",
        "weight": predictor.weight,
        "linear": _predictor_body(predictor.linear),
        "knn": _predictor_body(predictor.knn),
    }


def _curve_body(curve: CalibrationCurve | None) -> dict[str, Any] | None:
    if curve is None:
        return None
    return {
        "tradeoffs": encode_array(curve.tradeoffs, "float64"),
        "strong_share": encode_array(curve.strong_share, "float64"),
        # JSON has no NaN: unknown figures are stored as -1, which no real share, score or cost is.
        "quality": encode_array(np.nan_to_num(curve.quality, nan=-1.0), "float64"),
        "cost": encode_array(np.nan_to_num(curve.cost, nan=-1.0), "float64"),
        "breakpoints": encode_array(np.clip(curve.breakpoints, -1e300, 1e300), "float64"),
        "rows": curve.rows,
    }


def parts_body(router: RouterParts) -> dict[str, Any]:
    """The JSON body of the artifact of a router made of these parts."""
    spec, point, training = router.features, router.operating_point, router.training
    return {
        "models": list(router.models),
        "costs": list(router.costs),
        "costs_known": router.costs_known,
        "features": {
            "text_dims": spec.text_dims,
            "embedder": spec.embedder,
            "embed_dims": spec.embed_dims,
            "content": list(CONTENT_FEATURES) if spec.content else [],
            "tasks": list(spec.tasks),
        },
        "predictor": _predictor_body(router.predictor),
        "operating_point": {
            "tradeoff": point.tradeoff,
            "target": point.target,
            "strong_share": _finite_or_none(point.strong_share),
            "quality": _finite_or_none(point.quality),
            "cost_per_request": _finite_or_none(point.cost_per_request),
            "met": point.met,
        },
        "curve": _curve_body(router.curve),
        "training": {
            "rows": training.rows,
            "tasks": list(training.tasks),
            "method": training.method,
            "scores": {k: v for k, v in training.scores.items() if math.isfinite(v)},
            "folds": training.folds,
            "seconds": training.seconds,
            "source": training.source,
            "details": training.details,
        },
    }


def _features(reader: ArtifactReader, body: dict[str, Any]) -> FeatureSpec:
    raw = reader.get(body, "features", dict, "body")
    text_dims = reader.get(raw, "text_dims", int, "features")
    embed_dims = reader.get(raw, "embed_dims", int, "features")
    embedder = raw.get("embedder")
    content = reader.get(raw, "content", list, "features")
    tasks = reader.get(raw, "tasks", list, "features")
    if text_dims < 0 or embed_dims < 0 or (text_dims == 0) == (embed_dims == 0):
        raise reader.fail("features must use either hashed text or an embedder")
    if max(text_dims, embed_dims) > _MAX_FEATURE_DIMS:
        raise reader.fail(f"features.text_dims and embed_dims must be at most {_MAX_FEATURE_DIMS}")
    if embedder is not None and not isinstance(embedder, str):
        raise reader.fail("features.embedder must be a name or null")
    if content and content != list(CONTENT_FEATURES):
        raise reader.fail(
            "features.content were computed by a different gearshift version; retrain the router"
        )
    if not all(isinstance(t, str) for t in tasks):
        raise reader.fail("features.tasks must be strings")
    return FeatureSpec(text_dims, embedder, embed_dims, bool(content), tuple(tasks))


def _predictor(
    reader: ArtifactReader, raw: dict[str, Any], spec: FeatureSpec, m: int, where: str
) -> Predictor:
    kind = reader.get(raw, "kind", str, where)
    if kind == "linear":
        return LinearPredictor(
            reader.array(raw, "text_weights", where, (spec.text_dims, m)),
            reader.array(raw, "dense_weights", where, (spec.dense_width, m)),
            reader.array(raw, "intercept", where, (m,)),
            reader.array(raw, "task_fill", where, (len(spec.tasks),)),
        )
    if kind == "knn":
        keys = reader.array(raw, "keys", where, (None, None)).astype(np.float32)
        scores = reader.array(raw, "scores", where, (keys.shape[0], m))
        k = reader.get(raw, "k", int, where)
        shrink = float(reader.get(raw, "shrink", (int, float), where))
        if k < 1 or shrink < 0:
            raise reader.fail(f"{where}.k must be positive and {where}.shrink non-negative")
        return KnnPredictor(keys, scores, reader.array(raw, "prior", where, (m,)), k, shrink)
    if kind == "blend":
        weight = float(reader.get(raw, "weight", (int, float), where))
        linear = _predictor(reader, reader.get(raw, "linear", dict, where), spec, m, f"{where}.linear")
        knn = _predictor(reader, reader.get(raw, "knn", dict, where), spec, m, f"{where}.knn")
        if (
            not isinstance(linear, LinearPredictor)
            or not isinstance(knn, KnnPredictor)
            or not 0 <= weight <= 1
        ):
            raise reader.fail(f"{where} must blend a linear and a knn predictor with a weight in [0, 1]")
        return BlendPredictor(linear, knn, weight)
    raise reader.fail(f"{where}.kind {kind!r} is not one this gearshift knows (linear, knn, blend)")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _optional_float(reader: ArtifactReader, raw: dict[str, Any], key: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise reader.fail(f"operating_point.{key} must be a number or null")
    return float(value)


def _flag(reader: ArtifactReader, raw: dict[str, Any], key: str, where: str, *, default: bool) -> bool:
    """`raw[key]`, a JSON boolean (`default` when absent): a string such as "no" must not read as true."""
    return default if key not in raw else bool(reader.get(raw, key, bool, where))


def _curve(reader: ArtifactReader, raw: dict[str, Any] | None) -> CalibrationCurve | None:
    if raw is None:
        return None
    tradeoffs = reader.array(raw, "tradeoffs", "curve", (None,))
    k = tradeoffs.shape[0]

    def unknown_to_nan(array: np.ndarray) -> np.ndarray:
        return np.where(array < 0, np.nan, array)

    return CalibrationCurve(
        tradeoffs,
        reader.array(raw, "strong_share", "curve", (k,)),
        unknown_to_nan(reader.array(raw, "quality", "curve", (k,))),
        unknown_to_nan(reader.array(raw, "cost", "curve", (k,))),
        reader.array(raw, "breakpoints", "curve", (None,)),
        reader.get(raw, "rows", int, "curve"),
    )


def parts_from_body(reader: ArtifactReader, embedder: Embedder | None) -> RouterParts:
    """The parts of the router an artifact body describes; `embedder` (not kept in the parts) is
    required when the router was trained with one."""
    body = dict(reader.body)
    models = reader.get(body, "models", list, "body")
    costs = reader.get(body, "costs", list, "body")
    if not models or not all(isinstance(m, str) and m for m in models) or len(set(models)) != len(models):
        raise reader.fail("models must be distinct non-empty names")
    if len(costs) != len(models) or not all(
        isinstance(c, (int, float)) and not isinstance(c, bool) and c >= 0 for c in costs
    ):
        raise reader.fail("costs must hold one non-negative number per model")
    spec = _features(reader, body)
    if spec.embedder is not None and embedder is None:
        from .._errors import ConfigError

        raise ConfigError(
            f"this router was trained with the embedder '{spec.embedder}'; load it with "
            "LearnedRouter.load(path, embedder=...) passing the same embedder",
            source=reader.path,
        )
    predictor = _predictor(
        reader, reader.get(body, "predictor", dict, "body"), spec, len(models), "predictor"
    )
    raw_point = reader.get(body, "operating_point", dict, "body")
    point = OperatingPoint(
        float(reader.get(raw_point, "tradeoff", (int, float), "operating_point")),
        reader.get(raw_point, "target", str, "operating_point"),
        _optional_float(reader, raw_point, "strong_share"),
        _optional_float(reader, raw_point, "quality"),
        _optional_float(reader, raw_point, "cost_per_request"),
        _flag(reader, raw_point, "met", "operating_point", default=True),
    )
    raw_curve = body.get("curve")
    curve = _curve(reader, raw_curve if isinstance(raw_curve, dict) else None)
    raw_training = reader.get(body, "training", dict, "body")
    scores = raw_training.get("scores", {})
    tasks = raw_training.get("tasks", [])
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        raise reader.fail("training.tasks must be a list of task names")
    if not isinstance(scores, dict) or not all(_is_number(v) for v in scores.values()):
        raise reader.fail("training.scores must map each candidate to a number")
    folds = raw_training.get("folds", 0)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 0:
        raise reader.fail(f"training.folds must be a non-negative integer, got {folds!r}")
    seconds = raw_training.get("seconds", 0.0)
    if not _is_number(seconds):
        raise reader.fail(f"training.seconds must be a number, got {seconds!r}")
    training = TrainingSummary(
        rows=reader.get(raw_training, "rows", int, "training"),
        tasks=tuple(tasks),
        method=reader.get(raw_training, "method", str, "training"),
        scores={str(k): float(v) for k, v in scores.items()},
        folds=folds,
        seconds=float(seconds),
        source=raw_training.get("source") if isinstance(raw_training.get("source"), str) else None,
        details=raw_training.get("details") if isinstance(raw_training.get("details"), dict) else {},
    )
    return RouterParts(
        tuple(models),
        tuple(float(c) for c in costs),
        _flag(reader, body, "costs_known", "body", default=False),
        spec,
        predictor,
        point,
        curve,
        training,
    )
