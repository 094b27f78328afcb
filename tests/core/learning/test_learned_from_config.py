"""`routing.policy = "learned"` in a gearshift.toml: the router built from it routes by the learned score.

The two prompts are ones where the learned router and the signal scorer disagree, so a router that
silently fell back to the scorer would pick the other model.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gearshift import Router, SignalScorer, load_config
from gearshift.learning import LearnedRouter
from gearshift.testing import LocalOpenAIServer

# Shaped like the synthetic training table's hard topic, but not in it: the learned router sends it to
# the strong model, while its plain wording keeps the signal scorer on the cheap one.
HARD_FOR_THE_LEARNED_ROUTER = "please answer the question now: derivative integral series limit? (item 5000)"
# Code and reasoning markers push the scorer to the strong model; the learned router saw none of these
# words in training and keeps the cheap one.
HARD_FOR_THE_SCORER = (
    "Think step by step and prove rigorously: analyze the trade-offs of this distributed consensus "
    "algorithm, then design and implement it.\n```python\ndef raft(nodes):\n    for n in nodes:\n"
    "        n.vote()\n```\nExplain why it is correct, compare with Paxos, and derive the complexity."
)


@pytest.fixture
def server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=("small", "large")) as server:
        yield server


@pytest.fixture
def config(trained: LearnedRouter, server: LocalOpenAIServer, tmp_path: Path) -> Path:
    (tmp_path / "routers").mkdir()
    trained.save(tmp_path / "routers" / "router.json")
    path = tmp_path / "gearshift.toml"
    path.write_text(
        f"""
[providers.local]
kind = "openai"
base_url = "{server.base_url}"
require_key = false

[[models]]
id = "cheap"
provider = "local"
model = "small"
tier = 1
prices = {{ input = 0.2, output = 0.2 }}

[[models]]
id = "smart"
provider = "local"
model = "large"
tier = 2
prices = {{ input = 4.0, output = 4.0 }}

[routing]
policy = "learned"

[routing.learned]
path = "routers/router.json"
models = {{ "weak-model" = "cheap", "strong-model" = "smart" }}
""",
        encoding="utf-8",
    )
    return path


def _learned_pick(scores: dict[str, float], threshold: float) -> str:
    gain = scores["quality:strong-model"] - scores["quality:weak-model"]
    return "smart" if gain > threshold else "cheap"


async def test_a_learned_policy_in_the_config_routes_by_the_learned_score(
    config: Path, server: LocalOpenAIServer
) -> None:
    router = Router.from_config(load_config(config))
    prompts = (HARD_FOR_THE_LEARNED_ROUTER, HARD_FOR_THE_SCORER)
    # The scorer disagrees with the learned router on both prompts, so a fallback to it would pick the
    # other model; a fallback to the default policy shows in the decisions' policy name.
    scorer = Router(router.registry, policy=SignalScorer(), providers=list(router.providers.values()))
    assert [scorer.decide(p).model for p in prompts] == ["cheap", "smart"]

    decisions = [router.decide(p) for p in prompts]
    assert [d.policy for d in decisions] == ["learned", "learned"]
    assert [d.model for d in decisions] == ["smart", "cheap"]
    for decision in decisions:
        assert decision.reasons[0].startswith("learned router (")
        # The pick follows the predicted quality gain against the calibrated threshold in the reasons.
        threshold = float(decision.reasons[1].split("against a threshold of ")[1].split(",")[0])
        assert decision.model == _learned_pick(dict(decision.scores), threshold)
    assert decisions[0].scores["quality:strong-model"] > decisions[0].scores["quality:weak-model"]
    assert decisions[1].scores["quality:strong-model"] < decisions[1].scores["quality:weak-model"]

    # And a real call goes where the decision says, through the configured provider.
    for prompt, (model_id, served) in zip(prompts, (("smart", "large"), ("cheap", "small")), strict=True):
        result = await router.acomplete(prompt)
        assert result.decision.policy == "learned" and result.model_id == model_id
        assert server.requests[-1].model == served
    await router.aclose()
