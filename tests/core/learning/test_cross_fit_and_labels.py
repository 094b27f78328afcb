"""Held-out routing for replays (the demo's), and the bundled data's category task labels."""

from __future__ import annotations

from learning_tables import two_model_table

from gearshift import ModelRegistry, Router, StepContext
from gearshift._messages import ChatRequest
from gearshift._models import ModelPrices, ModelSpec
from gearshift.datasets import load_routellm, normalize_prompt
from gearshift.learning._cross_fit import cross_fit_policy
from gearshift.providers._replay import ReplayProvider
from gearshift.routing._decide import route_input


def test_each_prompt_is_routed_by_a_router_that_never_saw_it() -> None:
    table = two_model_table(120, seed=9)
    policy, summary = cross_fit_policy({"synthetic": table}, folds=2, max_train_rows=50, internal_folds=2)
    assert summary.train_rows == {"synthetic": (50, 50)} and len(policy.policies) == 2
    held_by = {}
    for index, (train, held) in enumerate(table.kfold(2, seed=0)):
        trained_on = {normalize_prompt(r.prompt_text) for r in train}
        for row in held:
            held_by[row.id] = index
            assert normalize_prompt(row.prompt_text) not in trained_on
    specs = [
        ModelSpec(id=m, provider="replay", model=m, tier=t, prices=ModelPrices(input=p, output=p))
        for m, t, p in (("weak-model", 1, 0.2), ("strong-model", 2, 4.0))
    ]
    registry = ModelRegistry(specs)
    for row in table.rows[:6]:
        route = route_input(registry, ChatRequest(messages=row.as_messages()), StepContext())
        own = policy.policies[held_by[row.id]].decide(route)
        other = policy.policies[1 - held_by[row.id]].decide(route)
        assert policy.decide(route).scores == own.scores != other.scores
    router = Router(registry, policy=policy, providers=[ReplayProvider(table)])
    assert router.decide(table[0].prompt_text).policy == "learned"
    assert (
        "2-fold cross-fitting" in summary.describe() and "2 routers on 50, 50 prompts" in summary.describe()
    )


def test_category_labels_name_the_source_of_each_prompt() -> None:
    plain, labelled = load_routellm("mmlu"), load_routellm("mmlu", task_labels="category")
    assert plain.tasks == ("mmlu",) and len(labelled.tasks) == 57
    for row, same in zip(plain.rows[::500], labelled.rows[::500], strict=False):
        subject = row.id.removeprefix("mmlu-").rsplit("-", 1)[0]
        assert (same.id, same.prompt) == (row.id, row.prompt) and same.task == f"mmlu/{subject}"
    assert {r.task for r in load_routellm("mt-bench", task_labels="category")} >= {
        "mt-bench/writing",
        "mt-bench/math",
    }
    assert load_routellm("gsm8k", task_labels="category").tasks == ("gsm8k",)
