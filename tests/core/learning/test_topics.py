"""Topic models: a router's text read through latent topics found over labeled and unlabeled prompts."""

from __future__ import annotations

import string

import numpy as np
import pytest

from gearshift.datasets import Outcome, OutcomeRow, OutcomeTable
from gearshift.learning import LearnedRouter, train_router
from gearshift.learning._features import FeatureSpec, build_features, prompt_inputs
from gearshift.learning._fitting import Design, FitData, fill_missing, fit_logistic
from gearshift.learning._topics import TopicDesign, table_text, topic_projection, unlabeled_text
from gearshift.learning._training import ROUTER_TEXT_DIMS, sweep_score

# Two families of made-up words: prompts of one family are hard for the weak model, the other's easy for
# both. A prompt draws 12 words from its family's 2,000, so 40 labeled prompts have seen a few percent
# of a family's words; 1,500 unlabeled prompts show which words go together.
_WORDS = 2000


def _families(seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    letters = list(string.ascii_lowercase)
    words = ["".join(rng.choice(letters, 7)) for _ in range(2 * _WORDS)]
    return words[:_WORDS], words[_WORDS:]


def _prompts(n: int, seed: int, words_seed: int = 0) -> list[tuple[str, bool]]:
    """(prompt, hard) pairs, half of each family."""
    easy, hard = _families(words_seed)
    rng = np.random.default_rng(seed)
    return [(" ".join(rng.choice(hard if i % 2 else easy, 12)), bool(i % 2)) for i in range(n)]


def _table(n: int, seed: int) -> OutcomeTable:
    rng = np.random.default_rng(seed + 1000)
    rows = []
    for i, (text, hard) in enumerate(_prompts(n, seed)):
        weak = float(rng.random() < (0.2 if hard else 0.9))
        strong = float(rng.random() < 0.9)
        rows.append(
            OutcomeRow(
                f"row-{seed}-{i}",
                "synthetic",
                text,
                {"weak-model": Outcome(weak, 0.0002), "strong-model": Outcome(strong, 0.004)},
            )
        )
    return OutcomeTable(rows)


def _held_out_score(router: LearnedRouter, held: OutcomeTable) -> float:
    scores = np.array([[row.outcomes[m].score for m in router.models] for row in held])
    return sweep_score(router.predict(held.rows), scores, router.relative_costs)


@pytest.fixture(scope="module")
def held() -> OutcomeTable:
    return _table(400, seed=99)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_topics_from_unlabeled_prompts_route_better_than_the_hashed_block_on_few_labels(
    seed: int, held: OutcomeTable
) -> None:
    labeled = _table(40, seed)
    unlabeled = [text for text, _ in _prompts(1500, seed + 50)]
    linear = train_router(labeled, method="linear", seed=seed)
    topics = train_router(labeled, method="topics", seed=seed, unlabeled=unlabeled)
    from_pairs_alone = train_router(labeled, method="topics", seed=seed)
    assert topics.training.method == "topics"
    assert topics.training.details["topics"] in (8.0, 16.0)
    assert topics.predictor.kind == "linear"  # the same artifact as any linear router
    score = _held_out_score(topics, held)
    assert score > _held_out_score(linear, held) + 0.05
    # The unlabeled prompts are what finds the topics: 40 prompts alone do not.
    assert score > _held_out_score(from_pairs_alone, held) + 0.05


def test_the_folded_linear_router_predicts_what_the_topic_fit_does() -> None:
    table = _table(80, seed=4)
    spec = FeatureSpec(ROUTER_TEXT_DIMS, None, 0, True, ())
    features = build_features(spec, prompt_inputs(table.rows))
    scores = np.array([[row.outcomes[m].score for m in ("weak-model", "strong-model")] for row in table])
    data = FitData(spec, features, scores, fill_missing(scores))
    design = Design.of(data)
    corpus = unlabeled_text([text for text, _ in _prompts(300, seed=5)], ROUTER_TEXT_DIMS)
    projection = topic_projection(corpus, 8, seed=0)
    assert projection is not None and projection.shape == (ROUTER_TEXT_DIMS, 8)
    topic = TopicDesign(design, table_text(spec, features), projection)
    weights, intercept = fit_logistic(topic.design, scores, np.arange(len(table)), 0.1)
    direct = 1 / (1 + np.exp(-(topic.design.x @ weights + intercept)))
    held = _table(50, seed=6)
    folded = design.predictor(spec, topic.unfold(weights), intercept)
    assert folded.predict(spec, features) == pytest.approx(direct, abs=1e-5)
    # On prompts it never saw, through the hashed columns alone, as routing reads them.
    held_features = build_features(spec, prompt_inputs(held.rows))
    held_topics = table_text(spec, held_features) @ topic.projection
    held_dense = (held_features.dense - design.mean) * design.scale
    expected = 1 / (1 + np.exp(-(held_topics @ weights[:8] + held_dense @ weights[8:] + intercept)))
    assert folded.predict(spec, held_features) == pytest.approx(expected, abs=1e-5)


def test_a_topic_router_saves_and_loads_as_it_predicts(tmp_path: object) -> None:
    from pathlib import Path

    labeled = _table(40, seed=7)
    router = train_router(labeled, method="topics", unlabeled=[t for t, _ in _prompts(600, seed=8)])
    path = Path(str(tmp_path)) / "router.json"
    router.save(path)
    loaded = LearnedRouter.load(path)
    held = _table(30, seed=9)
    assert loaded.training.method == "topics" and loaded.training.details == router.training.details
    assert np.array_equal(loaded.predict(held.rows), router.predict(held.rows))


def test_topics_need_two_prompts_each_and_a_table_to_cross_validate() -> None:
    # 31 prompts hold 8 topics, not 16.
    assert set(train_router(_table(31, seed=10), method="topics").training.scores) == {"topics(k=8)"}
    # Under 30 rows there is no cross-validation to choose by: a linear router, as for `auto`.
    assert train_router(_table(20, seed=11), method="topics").training.method == "linear"


def test_auto_weighs_topic_models_when_given_unlabeled_prompts() -> None:
    table = _table(60, seed=12)
    given = train_router(table, unlabeled=[t for t, _ in _prompts(200, seed=13)])
    assert {"topics(k=8)", "topics(k=16)"} <= set(given.training.scores)
    # Without them, `auto` compares what it always did (`gearshift eval`'s figures stay as they were).
    alone = train_router(table)
    assert not any(label.startswith("topics") for label in alone.training.scores)


def test_unlabeled_prompts_of_messages_are_read_by_their_users_text() -> None:
    from gearshift import Message

    spoken = (Message.system("Be brief."), Message.user("Name a river."))
    text = unlabeled_text([spoken, "Name a river."], ROUTER_TEXT_DIMS)
    assert (text[0] != text[1]).nnz == 0  # the system prompt is not read, as a router reads a prompt
    with pytest.raises(TypeError, match="unlabeled prompt"):
        unlabeled_text([[{"role": "user", "content": "raw dicts"}]], ROUTER_TEXT_DIMS)  # type: ignore[list-item]
