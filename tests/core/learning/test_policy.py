"""`LearnedPolicy` inside the real `Router`, and `LearnedConfig` from a config table."""

from __future__ import annotations

from pathlib import Path

import pytest

from gearshift import ConfigError, ModelRegistry, Router, StepContext
from gearshift._context import CallerHints
from gearshift._models import ModelPrices, ModelSpec
from gearshift.datasets import OutcomeTable
from gearshift.learning import LearnedConfig, LearnedPolicy, LearnedRouter
from gearshift.providers._replay import ReplayProvider

# Prompts shaped like the synthetic table's (see learning_tables), but not in it.
HARD = "please answer the question now: derivative integral series limit? (item 5000)"
EASY = "please answer the question now: country capital flag city? (item 5001)"


def _spec(model_id: str, tier: int, price: float, **extra: object) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider="replay",
        model=model_id,
        tier=tier,
        prices=ModelPrices(input=price, output=price),
        **extra,
    )


def _router(policy: LearnedPolicy, table: OutcomeTable, *specs: ModelSpec) -> Router:
    return Router(ModelRegistry(specs), policy=policy, providers=[ReplayProvider(table)])


@pytest.fixture
def registry_specs() -> tuple[ModelSpec, ModelSpec]:
    # Registered under other ids than the artifact's model names.
    return _spec("cheap-v1", 1, 0.2), _spec("smart-v1", 2, 4.0, supports_tools=False)


def test_decisions_name_registry_ids_and_say_why(
    trained: LearnedRouter,
    two_model_split: tuple[OutcomeTable, OutcomeTable],
    registry_specs: tuple[ModelSpec, ...],
) -> None:
    model_map = {"weak-model": "cheap-v1", "strong-model": "smart-v1"}
    policy = LearnedPolicy(
        trained, model_map=model_map, operating_point=trained.operating_point_for(tradeoff=0.2)
    )
    router = _router(policy, two_model_split[0], *registry_specs)
    hard, easy = router.decide(HARD), router.decide(EASY)
    assert (hard.model, easy.model) == ("smart-v1", "cheap-v1")
    assert hard.policy == "learned" and easy.fallbacks == ("smart-v1",)
    assert hard.scores["quality:strong-model"] > hard.scores["quality:weak-model"]
    assert hard.scores["tradeoff"] == pytest.approx(0.2)
    assert "predicted quality weak-model" in hard.reasons[0]
    assert "worth the extra cost -> strong-model" in hard.reasons[1]
    assert "not worth the extra cost -> weak-model" in easy.reasons[1]


def test_the_task_label_comes_from_the_step_context(
    trained: LearnedRouter,
    two_model_split: tuple[OutcomeTable, OutcomeTable],
    registry_specs: tuple[ModelSpec, ...],
) -> None:
    policy = LearnedPolicy(trained, model_map={"weak-model": "cheap-v1", "strong-model": "smart-v1"})
    router = _router(policy, two_model_split[0], *registry_specs)
    # One task label in training: no task column, so a label changes nothing.
    assert trained.features.tasks == ()
    with_label = router.decide(HARD, StepContext(metadata={"task": "synthetic"}))
    assert with_label.scores == router.decide(HARD).scores


def test_ineligible_and_unregistered_models_are_skipped_with_a_reason(
    trained: LearnedRouter,
    two_model_split: tuple[OutcomeTable, OutcomeTable],
    registry_specs: tuple[ModelSpec, ...],
) -> None:
    cheap, smart = registry_specs
    model_map = {"weak-model": "cheap-v1", "strong-model": "smart-v1"}
    registry = ModelRegistry(registry_specs)
    policy = LearnedPolicy(
        trained,
        model_map=model_map,
        operating_point=trained.operating_point_for(tradeoff=0.0),
        registry=registry,
    )
    router = _router(policy, two_model_split[0], cheap, smart)
    capped = router.decide(HARD, StepContext(hints=CallerHints(max_tier=1)))
    assert capped.model == "cheap-v1"
    assert "skipped smart-v1 (artifact model strong-model): not eligible for this request" in capped.reasons

    # Only the weak model is registered under its mapped id; the strong one is missing.
    other = _spec("other-v1", 3, 1.0)
    lone = LearnedPolicy(trained, model_map=model_map, registry=ModelRegistry([cheap, other]))
    decision = _router(lone, two_model_split[0], cheap, other).decide(HARD)
    assert decision.model == "cheap-v1"
    assert "skipped smart-v1 (artifact model strong-model): not in the model registry" in decision.reasons

    # None of the router's models can serve: the cheapest eligible model, and the reason why.
    nothing = LearnedPolicy(trained, model_map=model_map)
    fallback = _router(nothing, two_model_split[0], other).decide(HARD)
    assert fallback.model == "other-v1" and "none of its models can serve this request" in fallback.reasons[0]


def test_a_model_map_naming_unknown_models_is_refused(trained: LearnedRouter) -> None:
    with pytest.raises(ConfigError, match="not trained on"):
        LearnedPolicy(trained, model_map={"gpt-9": "x"})


@pytest.fixture
def artifact(trained: LearnedRouter, tmp_path: Path) -> Path:
    (tmp_path / "routers").mkdir()
    path = tmp_path / "routers" / "router.json"
    trained.save(path)
    return path


def test_config_paths_are_relative_to_the_config_file(
    trained: LearnedRouter, artifact: Path, tmp_path: Path
) -> None:
    source = str(tmp_path / "gearshift.toml")
    policy = LearnedPolicy.from_config({"path": "routers/router.json"}, source=source)
    assert policy.operating_point == trained.operating_point
    shared = LearnedPolicy.from_config({"path": str(artifact), "target_strong_share": 0.4}, source="<python>")
    assert shared.operating_point.target == "target_strong_share=0.4"
    assert shared.operating_point.tradeoff != trained.operating_point.tradeoff


@pytest.mark.parametrize(
    ("settings", "key", "message"),
    [
        ({"path": "missing.json"}, "routing.learned.path", "does not exist; train one with"),
        (
            {"path": "routers/router.json", "quality_floor": 0.5, "tradeoff": 0.1},
            "routing.learned",
            "at most one",
        ),
        ({"path": "routers/router.json", "threshold": 0.5}, "routing.learned.threshold", "unknown setting"),
        (
            {"path": "routers/router.json", "target_strong_share": 2},
            "routing.learned.target_strong_share",
            "1",
        ),
        (
            {"path": "routers/router.json", "models": {"nope": "x"}},
            "routing.learned.models",
            "no model named 'nope'",
        ),
    ],
)
def test_bad_config_names_the_key(
    artifact: Path, tmp_path: Path, settings: dict[str, object], key: str, message: str
) -> None:
    source = str(tmp_path / "gearshift.toml")
    with pytest.raises(ConfigError, match=message) as caught:
        LearnedPolicy.from_config(settings, source=source)
    assert caught.value.key == key and caught.value.source == source


def test_a_registry_without_any_of_the_models_is_a_config_error(artifact: Path, tmp_path: Path) -> None:
    registry = ModelRegistry([_spec("unrelated", 1, 1.0)])
    with pytest.raises(ConfigError, match="none of the artifact's models"):
        LearnedPolicy.from_config({"path": str(artifact)}, source=str(tmp_path / "g.toml"), registry=registry)
    settings = LearnedConfig(path=str(artifact), models={"weak-model": "unrelated"})
    assert LearnedPolicy.from_config(settings, registry=registry).registry_ids[0] == "unrelated"
