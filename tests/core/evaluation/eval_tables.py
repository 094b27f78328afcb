"""Outcome tables built in the tests: a hand-checkable four-row table and an N-model synthetic one."""

from __future__ import annotations

import random

from gearshift.datasets import Outcome, OutcomeRow, OutcomeTable

# Four prompts, weak W and strong S: S alone right on rows 1 and 2, both right on row 3, W alone on 4.
HAND_SCORES = [(0.0, 1.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0)]


def hand_table(*, costs: bool = True) -> OutcomeTable:
    """The four-row table; W costs $0.001 and S $0.010 per request when `costs`."""
    rows = []
    for i, (weak, strong) in enumerate(HAND_SCORES):
        rows.append(
            OutcomeRow(
                f"hand-{i}",
                "hand",
                f"question number {i} " + "word " * (10 * (i + 1)),
                {
                    "weak": Outcome(weak, 0.001 if costs else None),
                    "strong": Outcome(strong, 0.010 if costs else None),
                },
            )
        )
    return OutcomeTable(rows)


# Four models, each five times the price of the one before. A prompt's topic says how hard it is; model
# j answers level-k prompts right when j >= k (5% of answers flipped), except that the priciest model
# is no specialist: it misses 12% of level-1 prompts (formatting chores), as big general models do.
# Most traffic is easy, as in production, so a router that reads the topic keeps 95% of the best
# quality at a fraction of its cost, and beats every single model.
SYNTHETIC_MODELS = ("tiny", "small", "large", "huge")
SYNTHETIC_PRICES = (0.0001, 0.0005, 0.0025, 0.0125)
_LEVEL_SHARE = (0.5, 0.25, 0.15, 0.10)
_TOPICS = (
    ("greeting", "weather", "capital", "colour", "animal"),
    ("recipe", "summary", "translation", "email", "spelling"),
    ("algebra", "statistics", "contract", "diagnosis", "chemistry"),
    ("proof", "theorem", "compiler", "concurrency", "cryptanalysis"),
)
_FILLER = ["please", "help", "me", "with", "this", "question", "about", "the", "following"]


def synthetic_table(rows: int = 400, seed: int = 0, *, flip: float = 0.05) -> OutcomeTable:
    """An N-model table whose prompt text tells which models can answer it."""
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        level = rng.choices(range(4), weights=_LEVEL_SHARE)[0]
        topic = rng.choice(_TOPICS[level])
        words = rng.sample(_FILLER, 5)
        prompt = f"{' '.join(words)} {topic} {rng.choice(_TOPICS[level])} item {rng.randrange(1000)}"
        outcomes = {}
        for j, (model, price) in enumerate(zip(SYNTHETIC_MODELS, SYNTHETIC_PRICES, strict=True)):
            right = j >= level
            if j == 3 and level == 1 and rng.random() < 0.12:
                right = False
            elif rng.random() < flip:
                right = not right
            outcomes[model] = Outcome(float(right), price * rng.uniform(0.8, 1.2))
        out.append(OutcomeRow(f"syn-{i}", "synthetic", prompt, outcomes))
    return OutcomeTable(out)
