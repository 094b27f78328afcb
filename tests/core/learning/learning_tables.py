"""Synthetic outcome tables whose right routing is known (shared by the learning tests)."""

from __future__ import annotations

import numpy as np

from gearshift.datasets import Outcome, OutcomeRow, OutcomeTable

# Each topic's words, and how likely the weak model is to answer a prompt of it correctly.
TOPICS = {
    "easy": ("capital city country flag", "colour of the sky fruit animal", "spell word letter name"),
    "medium": ("percent discount price total", "train speed distance hours", "ratio mixture litres"),
    "hard": ("integral derivative limit series", "prove theorem lemma prime", "eigenvalue matrix vector"),
}
WEAK_ACCURACY = {"easy": 0.95, "medium": 0.6, "hard": 0.15}
STRONG_ACCURACY = {"easy": 0.97, "medium": 0.9, "hard": 0.85}


def _prompt(rng: np.random.Generator, topic: str, index: int) -> str:
    words = " ".join(rng.permutation(TOPICS[topic][(index // 3) % 3].split()))
    filler = " ".join(rng.choice(["please", "answer", "the", "question", "about", "this", "now"], size=4))
    return f"{filler}: {words}? (item {index})"


def two_model_table(n: int = 480, seed: int = 0, *, costs: bool = True) -> OutcomeTable:
    """A weak and a strong model; the strong one only matters on medium and hard prompts."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        topic = ("easy", "medium", "hard")[i % 3]
        weak = float(rng.random() < WEAK_ACCURACY[topic])
        strong = float(rng.random() < STRONG_ACCURACY[topic])
        rows.append(
            OutcomeRow(
                f"row-{i}",
                "synthetic",
                _prompt(rng, topic, i),
                {
                    "weak-model": Outcome(weak, 0.0002 if costs else None),
                    "strong-model": Outcome(strong, 0.004 if costs else None),
                },
            )
        )
    return OutcomeTable(rows)


# N models, cheapest first: what each costs per request and how likely it is right per topic.
N_MODELS = {
    "tiny": (0.0001, {"easy": 0.96, "medium": 0.35, "hard": 0.05}),
    "small": (0.0004, {"easy": 0.97, "medium": 0.9, "hard": 0.2}),
    "medium": (0.002, {"easy": 0.97, "medium": 0.92, "hard": 0.5}),
    "large": (0.01, {"easy": 0.98, "medium": 0.95, "hard": 0.93}),
}


def n_model_table(n: int = 900, seed: int = 1) -> OutcomeTable:
    """Four models with costs; half the prompts easy, a third medium, a sixth hard. Listed out of order."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        topic = "easy" if i % 6 < 3 else "medium" if i % 6 < 5 else "hard"
        outcomes = {}
        for model in ("large", "tiny", "medium", "small"):  # not cheapest first: training must sort
            cost, accuracy = N_MODELS[model]
            outcomes[model] = Outcome(
                float(rng.random() < accuracy[topic]), cost * (0.8 + 0.4 * rng.random())
            )
        rows.append(OutcomeRow(f"n-{i}", "synthetic", _prompt(rng, topic, i), outcomes))
    return OutcomeTable(rows)
