"""Learned routing: routers trained on outcome tables, calibrated, saved to a portable file, and routed with.

- `train_router(table)` fits a `LearnedRouter` that predicts each model's quality for a prompt from
  features that need no network and no downloaded model: hashed word and character n-grams
  (`text_features`), the core's signals, the text's shape and the task label. Plug in your own
  `Embedder` if you like.
- `calibrate(router, table, target_strong_share=... | quality_floor=... | max_cost_per_request=...)`
  sets the operating point, as RouteLLM calibrates its thresholds.
- `router.save(path)` / `LearnedRouter.load(path)` write and read one JSON file (never a pickle).
- `LearnedPolicy(router)` routes with it inside the core `Router`; `LearnedConfig` is its config.
- `DefaultPolicy` routes when nothing is configured, with the router shipped in `default_router.json`.

Training needs scikit-learn (`pip install 'gearshift[train]'`); routing needs only NumPy. Names load
on first use, so that building the command line's parser (`add_train_parser`) imports nothing heavy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._calibration import CalibrationCurve, OperatingPoint, calibrate
    from ._cli import add_train_parser, run_train
    from ._default_policy import DEFAULT_UPPER_SHARE, DefaultPolicy, default_router
    from ._features import CONTENT_FEATURES, Embedder, FeatureSpec, LoggedPrompt, PromptLike
    from ._policy import LearnedConfig, LearnedPolicy
    from ._router_model import LearnedRouter, TrainingSummary
    from ._text_hashing import DEFAULT_TEXT_DIMS, text_features
    from ._training import METHODS, train_router

_EXPORTS: dict[str, str] = {
    "CONTENT_FEATURES": "_features",
    "DEFAULT_TEXT_DIMS": "_text_hashing",
    "DEFAULT_UPPER_SHARE": "_default_policy",
    "DefaultPolicy": "_default_policy",
    "default_router": "_default_policy",
    "METHODS": "_training",
    "CalibrationCurve": "_calibration",
    "Embedder": "_features",
    "FeatureSpec": "_features",
    "LearnedConfig": "_policy",
    "LearnedPolicy": "_policy",
    "LearnedRouter": "_router_model",
    "LoggedPrompt": "_features",
    "OperatingPoint": "_calibration",
    "PromptLike": "_features",
    "TrainingSummary": "_router_model",
    "add_train_parser": "_cli",
    "calibrate": "_calibration",
    "run_train": "_cli",
    "text_features": "_text_hashing",
    "train_router": "_training",
}

__all__ = [
    "CONTENT_FEATURES",
    "DEFAULT_TEXT_DIMS",
    "DEFAULT_UPPER_SHARE",
    "METHODS",
    "CalibrationCurve",
    "DefaultPolicy",
    "Embedder",
    "FeatureSpec",
    "LearnedConfig",
    "LearnedPolicy",
    "LearnedRouter",
    "LoggedPrompt",
    "OperatingPoint",
    "PromptLike",
    "TrainingSummary",
    "add_train_parser",
    "calibrate",
    "default_router",
    "run_train",
    "text_features",
    "train_router",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
