"""`text_features` and the router's prompt features: deterministic, normalized, cheap to reason about."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from gearshift.learning import text_features
from gearshift.learning._features import CONTENT_FEATURES, FeatureSpec, build_features, prompt_inputs
from gearshift.learning._prompt_shape import SHAPE_FEATURES, shape_vector

TEXTS = ["What is 12% of 250?", "Prove that there are infinitely many primes.", "", "héllo wörld 中文"]

_DIGEST = (
    "import hashlib; from gearshift.learning import text_features; "
    "print(hashlib.sha256(text_features({texts!r}, dims=512).tobytes()).hexdigest())"
)


def test_rows_are_unit_vectors_and_an_empty_text_is_zero() -> None:
    x = text_features(TEXTS, dims=1024)
    assert x.shape == (4, 1024) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), [1, 1, 0, 1], atol=1e-6)


def test_the_same_text_gives_the_same_vector_in_another_process() -> None:
    # Python's str hash changes per process; features must not.
    here = hashlib.sha256(text_features(TEXTS, dims=512).tobytes()).hexdigest()
    for seed in ("12345",):  # this process runs with another (random or fixed) seed
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", _DIGEST.format(texts=TEXTS)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        assert out.stdout.strip() == here


def test_similar_prompts_are_closer_than_unrelated_ones() -> None:
    a, b, c = text_features(
        [
            "Solve the integral of x squared from 0 to 3",
            "solve the integral of x^2 from 1 to 4",
            "Write a haiku about autumn leaves",
        ]
    )
    assert a @ b > 0.5 > a @ c
    # Digits are folded: the numbers of a word problem do not make two prompts differ.
    p, q = text_features(["John has 3 apples and buys 5 more", "John has 7 apples and buys 2 more"])
    assert p @ q == pytest.approx(1.0, abs=1e-6)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(TypeError):
        text_features("one string")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        text_features(["x"], dims=0)


def test_any_width_works_not_only_powers_of_two() -> None:
    x = text_features(["routing is fun"], dims=1000)
    assert x.shape == (1, 1000) and np.count_nonzero(x) > 5


def test_shape_features_count_numbers_and_choices() -> None:
    values = dict(
        zip(SHAPE_FEATURES, shape_vector("Pay $3.50 for 20% of 1/2.\nA. 1\nB. 2\nC. 3"), strict=False)
    )
    assert (
        values["has_money"] == values["has_percent"] == values["has_fraction"] == values["has_decimal"] == 1.0
    )
    assert values["has_choices"] == 1.0
    assert values["log_numbers"] == pytest.approx(np.log1p(7))
    assert shape_vector("").tolist() == [0.0] * len(SHAPE_FEATURES)


def test_task_labels_outside_the_vocabulary_are_marked_unknown() -> None:
    spec = FeatureSpec(256, None, 0, True, ("math", "code"))
    features = build_features(spec, prompt_inputs(["add 2 and 2", "sort a list", "hello"], task=None))
    assert not features.task_known.any()
    labelled = build_features(
        spec, [*prompt_inputs(["add 2 and 2"], task="math"), *prompt_inputs(["x"], task="other")]
    )
    assert labelled.task_known.tolist() == [True, False]
    assert labelled.dense.shape == (2, len(CONTENT_FEATURES) + 2)
    assert labelled.dense[0, -2:].tolist() == [1.0, 0.0]
