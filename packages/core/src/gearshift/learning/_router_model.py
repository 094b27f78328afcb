"""`LearnedRouter`: a trained quality predictor over some models, their costs and an operating point.

It predicts each model's quality for a prompt (`predict`), turns predictions into a model per prompt
(`choose` with a trade-off, `choose_with_floor` with a quality floor), and is saved to and loaded from
one portable JSON file (`save`, `load`). Routing through the core `Router` is `LearnedPolicy`'s job.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np

from ._artifact import ArtifactReader
from ._calibration import CalibrationCurve, OperatingPoint, pick_operating_point
from ._choice import choose_by_floor, choose_by_tradeoff, relative_costs
from ._features import (
    Embedder,
    FeatureSpec,
    PromptFeatures,
    PromptInput,
    PromptLike,
    build_features,
    prompt_inputs,
)
from ._predictors import Predictor
from ._serialization import RouterParts, parts_body, parts_from_body
from ._summary import TrainingSummary

__all__ = ["LearnedRouter", "TrainingSummary", "router_body", "router_from_body"]


@dataclass(frozen=True, eq=False)
class LearnedRouter:
    """A router trained on an outcome table. Build one with `train_router` or `LearnedRouter.load`.

    `models` are the table's models, cheapest first by mean recorded cost when costs are known (else in
    the table's order); `costs` their mean cost per request in USD (0.0 each when unknown, see
    `costs_known`). `operating_point` is the trade-off routing uses unless told otherwise; `curve` the
    calibration sweep it was picked from, kept so another target can be picked without the data.
    """

    models: tuple[str, ...]
    costs: tuple[float, ...]
    costs_known: bool
    features: FeatureSpec
    predictor: Predictor
    operating_point: OperatingPoint
    curve: CalibrationCurve | None
    training: TrainingSummary
    embedder: Embedder | None = None

    @cached_property
    def relative_costs(self) -> np.ndarray:
        """Costs scaled so the most expensive model is 1 (by rank, 0 to 1, when costs are unknown)."""
        return relative_costs(self.costs if self.costs_known else (0.0,) * len(self.models))

    def featurize(self, inputs: Sequence[PromptInput]) -> PromptFeatures:
        """The features of prepared prompt inputs (the policy's fast path)."""
        return build_features(self.features, inputs, self.embedder)

    def predict_inputs(self, inputs: Sequence[PromptInput]) -> np.ndarray:
        """Predicted quality per model for prepared prompt inputs, shape (n, models)."""
        return self.predictor.predict(self.features, self.featurize(inputs))

    def predict(self, prompts: Sequence[PromptLike], *, task: str | None = None) -> np.ndarray:
        """Predicted quality of each model on each prompt, shape (len(prompts), len(models)).

        A prompt is an `OutcomeRow` (its task label is used), a string or a sequence of `Message`s;
        `task` labels the prompts that are not rows. Values are on the table's score scale.
        """
        return self.predict_inputs(prompt_inputs(prompts, task))

    def choose(self, predicted: np.ndarray, *, tradeoff: float) -> np.ndarray:
        """The model index per row of `predicted`: the best predicted quality minus `tradeoff` x cost.

        Costs are relative (the most expensive model is 1). `tradeoff=0` picks the best predicted
        quality; larger values pick cheaper models. For two models this is a threshold on the predicted
        strong-minus-weak gain: the strong model is chosen when the gain exceeds `tradeoff x (1 - c_weak)`.
        """
        return choose_by_tradeoff(self._check(predicted), self.relative_costs, float(tradeoff))

    def choose_with_floor(self, predicted: np.ndarray, floor: float) -> np.ndarray:
        """The model index per row: the cheapest predicted to reach `floor`, else the best-predicted."""
        return choose_by_floor(self._check(predicted), float(floor))

    def route(self, prompts: Sequence[PromptLike], *, task: str | None = None) -> list[str]:
        """The model id chosen for each prompt at the router's operating point."""
        chosen = self.choose(self.predict(prompts, task=task), tradeoff=self.operating_point.tradeoff)
        return [self.models[i] for i in chosen]

    def operating_point_for(
        self,
        *,
        target_strong_share: float | None = None,
        quality_floor: float | None = None,
        max_cost_per_request: float | None = None,
        tradeoff: float | None = None,
    ) -> OperatingPoint:
        """The operating point for one target, read off the calibration curve saved with the router."""
        if self.curve is None:
            if tradeoff is not None:
                return OperatingPoint(float(tradeoff), f"tradeoff={tradeoff:g}")
            from .._errors import ConfigError

            raise ConfigError(
                "this router has no calibration curve; calibrate it on a table with calibrate()"
            )
        return pick_operating_point(
            self.curve,
            target_strong_share=target_strong_share,
            quality_floor=quality_floor,
            max_cost_per_request=max_cost_per_request,
            tradeoff=tradeoff,
        )

    def with_operating_point(self, point: OperatingPoint) -> LearnedRouter:
        """A copy of this router that routes at `point`."""
        return replace(self, operating_point=point)

    def with_embedder(self, embedder: Embedder | None) -> LearnedRouter:
        """A copy of this router that computes text vectors with `embedder`."""
        return replace(self, embedder=embedder)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the router to `path` as one JSON file (the embedder itself is not saved, only its name)."""
        from ._artifact import write_artifact

        write_artifact(path, router_body(self))

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, embedder: Embedder | None = None) -> LearnedRouter:
        """Read a router saved with `save`; pass the same `embedder` it was trained with, if any.

        Raises `ConfigError` naming the file when it is missing, not JSON (e.g. truncated), not a
        router artifact, of a newer format version, corrupt (checksum mismatch) or malformed.
        """
        from ._artifact import read_artifact

        return router_from_body(read_artifact(path), embedder)

    def _check(self, predicted: np.ndarray) -> np.ndarray:
        array = np.asarray(predicted, dtype=np.float64)
        if array.ndim != 2 or array.shape[1] != len(self.models):
            raise ValueError(f"predicted must have shape (n, {len(self.models)}), got {array.shape}")
        return array

    def __repr__(self) -> str:
        return (
            f"LearnedRouter(method={self.training.method!r}, models={list(self.models)}, "
            f"operating_point={self.operating_point.target!r})"
        )


def router_body(router: LearnedRouter) -> dict[str, Any]:
    """The JSON body of `router`'s artifact."""
    return parts_body(
        RouterParts(
            router.models,
            router.costs,
            router.costs_known,
            router.features,
            router.predictor,
            router.operating_point,
            router.curve,
            router.training,
        )
    )


def router_from_body(reader: ArtifactReader, embedder: Embedder | None) -> LearnedRouter:
    """The router an artifact body describes; `embedder` is required when it was trained with one."""
    return LearnedRouter(*parts_from_body(reader, embedder), embedder)
