"""Pseudo-labels: a small table's final linear fit also learns from prompts without outcomes."""

from __future__ import annotations

import numpy as np
import pytest
from test_topics import _prompts, _table

from gearshift.datasets import Outcome, OutcomeRow, OutcomeTable
from gearshift.learning import LoggedPrompt, train_router
from gearshift.learning._features import FeatureSpec, build_features, prompt_inputs
from gearshift.learning._fitting import Design, FitData, fill_missing
from gearshift.learning._pseudo_labels import MAX_PSEUDO_PROMPTS, PSEUDO_WEIGHT, pseudo_rows
from gearshift.learning._training import ROUTER_TEXT_DIMS


def _family_prompts(n: int, seed: int) -> list[tuple[str, bool]]:
    """(prompt, hard) pairs; a prompt draws 8 of its family's 40 words, so a family's prompts resemble
    each other (in `test_topics` they share few words: there, topics find what neighbours cannot)."""
    rng = np.random.default_rng(seed)
    family = [[f"{name}{i}" for i in range(40)] for name in ("easy", "hard")]
    return [(" ".join(rng.choice(family[i % 2], 8)), bool(i % 2)) for i in range(n)]


def _family_table(n: int, seed: int) -> OutcomeTable:
    rng = np.random.default_rng(seed + 1000)
    return OutcomeTable(
        OutcomeRow(
            f"row-{seed}-{i}",
            "synthetic",
            text,
            {
                "weak-model": Outcome(float(rng.random() < (0.2 if hard else 0.9)), 0.0002),
                "strong-model": Outcome(float(rng.random() < 0.9), 0.004),
            },
        )
        for i, (text, hard) in enumerate(_family_prompts(n, seed))
    )


def _data(n: int, seed: int) -> tuple[FitData, Design]:
    table = _family_table(n, seed)
    spec = FeatureSpec(ROUTER_TEXT_DIMS, None, 0, True, ())
    scores = np.array([[row.outcomes[m].score for m in table.models] for row in table])
    data = FitData(spec, build_features(spec, prompt_inputs(table.rows)), scores, fill_missing(scores))
    return data, Design.of(data)


def test_an_unlabeled_prompt_is_labeled_by_the_pairs_that_resemble_it() -> None:
    data, design = _data(120, seed=20)
    given = _family_prompts(400, seed=21)
    pseudo = pseudo_rows(data, design, [text for text, _ in given])
    assert pseudo is not None
    hard = np.array([h for _, h in given])
    weak, strong = pseudo.labels[:, 0], pseudo.labels[:, 1]
    # The weak model fails the hard family's prompts (0.2 against 0.9): so do their labels.
    assert weak[hard].mean() < weak[~hard].mean() - 0.3
    assert abs(strong[hard].mean() - strong[~hard].mean()) < 0.1
    # Together they count PSEUDO_WEIGHT times the table's rows, whatever their number.
    assert pseudo.weight * pseudo.labels.shape[0] == pytest.approx(PSEUDO_WEIGHT * 120)
    assert pseudo.x.shape == (400, design.x.shape[1])


def test_a_logged_prompt_is_read_with_the_task_label_its_call_was_routed_with() -> None:
    # Each family of prompts has its own task label, as a caller's calls do in a decision log.
    table = OutcomeTable(
        OutcomeRow(row.id, "proof" if i % 2 else "recall", row.prompt, row.outcomes)
        for i, row in enumerate(_family_table(80, seed=27))
    )
    spec = FeatureSpec(ROUTER_TEXT_DIMS, None, 0, True, table.tasks)
    scores = np.array([[row.outcomes[m].score for m in table.models] for row in table])
    data = FitData(spec, build_features(spec, prompt_inputs(table.rows)), scores, fill_missing(scores))
    design = Design.of(data)
    logged = [LoggedPrompt(str(row.prompt), row.task) for row in table]
    pseudo = pseudo_rows(data, design, logged)
    assert pseudo is not None
    # The table's own prompts, logged with their labels, are the table's rows in the design...
    assert np.allclose(pseudo.x.toarray(), design.x.toarray())
    # ... where without them they would get the mean label, as a call no caller labeled.
    unknown = pseudo_rows(data, design, [LoggedPrompt(str(row.prompt)) for row in table])
    assert unknown is not None and not np.allclose(unknown.x.toarray(), design.x.toarray())


def test_at_most_max_pseudo_prompts_are_labeled_and_none_without_prompts_or_weight() -> None:
    data, design = _data(40, seed=22)
    many = [text for text, _ in _prompts(MAX_PSEUDO_PROMPTS + 500, seed=23)]
    pseudo = pseudo_rows(data, design, many)
    assert pseudo is not None and pseudo.labels.shape[0] <= MAX_PSEUDO_PROMPTS
    assert pseudo_rows(data, design, []) is None
    assert pseudo_rows(data, design, many[:10], weight=0.0) is None


def test_the_final_fit_learns_from_the_pseudo_labels_and_a_bad_weight_is_refused() -> None:
    table, held = _table(60, seed=24), _table(50, seed=25)
    unlabeled = [text for text, _ in _prompts(300, seed=26)]
    alone = train_router(table, unlabeled=unlabeled, seed=1)
    pseudo = train_router(table, unlabeled=unlabeled, seed=1, pseudo_weight=PSEUDO_WEIGHT)
    assert pseudo.training.method == alone.training.method  # the same candidate, refitted on more rows
    assert not np.allclose(pseudo.predict(held.rows), alone.predict(held.rows))
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="pseudo_weight must be a finite number at least 0"):
            train_router(table, unlabeled=unlabeled, pseudo_weight=bad)


def test_train_router_leaves_pseudo_labels_out_unless_asked() -> None:
    # With the operating point on the final fit's scale, pseudo-labels keep the strong share they promise,
    # but the held-out APGR they give moved within the seeds' noise: not worth the default
    # (`uv run python tests/benchmarks/shadow_operating_point.py --variants auto-pseudo --seeds ...`).
    table, held = _table(60, seed=24), _table(50, seed=25)
    unlabeled = [text for text, _ in _prompts(300, seed=26)]
    default = train_router(table, unlabeled=unlabeled, seed=1)
    alone = train_router(table, unlabeled=unlabeled, seed=1, pseudo_weight=0.0)
    assert np.allclose(default.predict(held.rows), alone.predict(held.rows))


@pytest.mark.parametrize("weight", [PSEUDO_WEIGHT, 0.0], ids=["pseudo-labels", "without"])
def test_a_router_trained_on_a_log_sends_the_share_it_promises_over_the_log(weight: float) -> None:
    # The curve is swept over out-of-fold fits; the final fit learned from every row (and, given a
    # weight, the pseudo-labels) and spreads its gains otherwise, so a trade-off read off that sweep
    # sent another share of the log's calls to the strong model than it promised: 0.38 for 0.59 with
    # pseudo-labels, 0.51 for 0.59 without (`tests/benchmarks/shadow_operating_point.py`).
    table = _table(80, seed=28)
    unlabeled = [text for text, _ in _prompts(400, seed=29)]
    router = train_router(table, unlabeled=unlabeled, seed=1, pseudo_weight=weight)
    logged = [*table.rows, *unlabeled]
    predicted = router.predict(logged)

    def strong_share(tradeoff: float) -> float:
        return float(np.mean(router.choose(predicted, tradeoff=tradeoff) == len(router.models) - 1))

    point = router.operating_point
    assert point.strong_share is not None
    assert strong_share(point.tradeoff) == pytest.approx(point.strong_share, abs=0.01)
    for target in (0.2, 0.3, 0.5):
        asked = router.operating_point_for(target_strong_share=target)
        assert strong_share(asked.tradeoff) == pytest.approx(target, abs=0.01)
