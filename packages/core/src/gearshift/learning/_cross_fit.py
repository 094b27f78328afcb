"""Cross-fitting: replay recorded prompts through learned routers that never saw them.

To show honestly what a learned router does on a table it was trained from, split the table into
folds and route each prompt with a router trained on the other folds only (`cross_fit_policy`). The
returned `CrossFitPolicy` is an ordinary policy: it looks the prompt up and hands the decision to that
fold's `LearnedPolicy`. Prompts that repeat across folds (MMLU has a few) are left out of the training
rows of every router that routes them, so no router is asked about a prompt it was trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .._decision import Decision
from ..datasets import OutcomeTable, normalize_prompt
from ..policies import RouteInput
from ._policy import LearnedPolicy
from ._training import train_router

__all__ = ["CrossFitPolicy", "CrossFitSummary", "cross_fit_policy"]


@dataclass(frozen=True, slots=True)
class CrossFitSummary:
    """What the cross-fitted routers were trained on: per table, the routers and their training sizes."""

    folds: int
    method: str
    train_rows: dict[str, tuple[int, ...]]
    methods: dict[str, tuple[str, ...]]

    def describe(self) -> str:
        """One sentence for people."""
        parts = []
        for name, sizes in self.train_rows.items():
            if sizes:
                parts.append(f"{name}: {len(sizes)} routers on {', '.join(f'{s:,}' for s in sizes)} prompts")
        detail = "; ".join(parts) or "no routers were needed"
        return (
            f"learned routers ({self.method}), {self.folds}-fold cross-fitting: each prompt is routed by a "
            f"router trained only on prompts of the other folds of its own dataset ({detail})"
        )


class CrossFitPolicy:
    """Routes each known prompt with the `LearnedPolicy` of the router that was not trained on it."""

    name = "learned"

    def __init__(self, policies: Sequence[LearnedPolicy], route_by_prompt: Mapping[str, int]) -> None:
        if not policies:
            raise ValueError("CrossFitPolicy needs at least one policy")
        self.policies = tuple(policies)
        self._route_by_prompt = dict(route_by_prompt)

    def decide(self, route: RouteInput) -> Decision:
        """The decision of the policy whose router held this prompt out (the first for unknown ones)."""
        text = "\n\n".join(m.text for m in route.request.messages if m.role == "user")
        index = self._route_by_prompt.get(normalize_prompt(text), 0)
        return self.policies[index].decide(route)


def cross_fit_policy(
    tables: Mapping[str, OutcomeTable],
    *,
    routed: Mapping[str, OutcomeTable] | None = None,
    folds: int = 2,
    max_train_rows: int | None = None,
    method: str = "linear",
    seed: int = 0,
    internal_folds: int = 3,
    on_trained: Callable[[str, int], None] | None = None,
) -> tuple[CrossFitPolicy, CrossFitSummary]:
    """A policy that routes every prompt of `routed` (default: all of `tables`) with held-out routers.

    Each table is split into `folds` folds (`OutcomeTable.kfold`); the prompts of a fold are routed by
    a router trained on the other folds (at most `max_train_rows` of them, a seeded sample), only for
    folds that hold a routed prompt. `internal_folds` is each router's internal cross-validation (see
    `train_router`). `on_trained(table name, training rows)` is called per router.
    """
    policies: list[LearnedPolicy] = []
    route_by_prompt: dict[str, int] = {}
    train_rows: dict[str, tuple[int, ...]] = {}
    methods: dict[str, tuple[str, ...]] = {}
    rng = np.random.default_rng(seed)
    for name, table in tables.items():
        wanted = {normalize_prompt(r.prompt_text) for r in (routed or tables).get(name, table)}
        sizes, used = [], []
        for train, held in table.kfold(folds, seed=seed):
            held_prompts = {normalize_prompt(r.prompt_text) for r in held}
            if not held_prompts & wanted:
                continue
            keep = [i for i, r in enumerate(train) if normalize_prompt(r.prompt_text) not in held_prompts]
            if max_train_rows is not None and len(keep) > max_train_rows:
                keep = sorted(rng.choice(keep, size=max_train_rows, replace=False).tolist())
            router = train_router(train.subset(keep), method=method, seed=seed, folds=internal_folds)
            if on_trained is not None:
                on_trained(name, len(keep))
            for prompt in held_prompts & wanted:
                route_by_prompt[prompt] = len(policies)
            policies.append(LearnedPolicy(router))
            sizes.append(len(keep))
            used.append(router.training.method)
        train_rows[name], methods[name] = tuple(sizes), tuple(used)
    return CrossFitPolicy(policies, route_by_prompt), CrossFitSummary(folds, method, train_rows, methods)
