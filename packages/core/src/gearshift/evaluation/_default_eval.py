"""The default policy on an outcome table, scored by a difficulty estimate that never saw the table.

The shipped estimate was trained on every bundled table. When the evaluated table shares prompts with
one of them (it is that table, or holds some of its prompts), the estimate is trained again here
without those tables (leave-one-dataset-out), so no prompt is scored by a router that was fitted on
it; a table with no bundled prompt is scored with the shipped estimate as users get it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .._context import StepContext
from .._messages import ChatRequest
from ..datasets import ROUTELLM_DATASETS, OutcomeRow, OutcomeTable, load_routellm, normalize_prompt
from ..learning._default_policy import DefaultPolicy, rank_of, upper_cut_points
from ..learning._features import PromptInput
from ..signals._signals import Signals, extract_signals
from ._metrics import RouterCurve
from ._sweep import OutcomeMatrix, sweep_difficulty

__all__ = ["DefaultRun", "bundled_overlap", "run_default"]


def bundled_overlap(table: OutcomeTable) -> tuple[str, ...]:
    """The bundled tables that share at least one prompt with `table`."""
    prompts = {normalize_prompt(row.prompt_text) for row in table}
    return tuple(
        name
        for name in ROUTELLM_DATASETS
        if any(normalize_prompt(row.prompt_text) in prompts for row in load_routellm(name))
    )


class DefaultRun:
    """The default policy's difficulty rank for every row of a table, and its curve.

    `excluded` names the bundled tables its estimate was trained without (empty: the shipped one).
    Its tiers are the table's models as a user would configure them (`tier_models`), cheapest first;
    its curve's model shares are over all of the table's models (none to a model not a tier).
    """

    def __init__(
        self, table: OutcomeTable, matrix: OutcomeMatrix, policy: DefaultPolicy, excluded: Sequence[str]
    ):
        self.policy = policy
        self.excluded = tuple(excluded)
        self.sample_rows = table.rows
        texts = [_user_text(row) for row in table.rows]
        inputs = [PromptInput(text, _signals(row), None) for text, row in zip(texts, table.rows, strict=True)]
        predicted = policy.router.predict_inputs(inputs)
        gains = predicted[:, -1] - predicted[:, 0]
        self.ranks = np.array([rank_of(float(g), policy.quantiles) for g in gains], dtype=np.float64)
        tiers = tier_models(matrix)
        tiered = OutcomeMatrix(
            tuple(matrix.models[i] for i in tiers),
            matrix.scores[:, tiers],
            None if matrix.costs is None else matrix.costs[:, tiers],
            tiers.index(matrix.strong),
        )
        cuts = upper_cut_points(len(tiers), policy.upper_share)
        curve = sweep_difficulty(tiered, "default", self.ranks, cuts, operating=0.0)
        assert curve.model_shares is not None
        shares = np.zeros((len(curve), len(matrix.models)))
        shares[:, tiers] = curve.model_shares
        self.curve: RouterCurve = replace(curve, model_shares=shares)
        some_costs = any(o.cost_usd is not None for row in table for o in row.outcomes.values())
        self.note = _describe(policy, matrix, tiered, self.excluded, cuts, some_costs=some_costs)

    def decide(self, row: OutcomeRow) -> float:
        """The rank of one row, computed as a live decision computes it (for timing)."""
        return self.policy.rank_text(_user_text(row), _signals(row))[1]


def tier_models(matrix: OutcomeMatrix) -> list[int]:
    """The models a user would make tiers of, cheapest first: with costs and more than two models, those
    no other model matches at less or equal cost (by mean score and mean cost), since nobody configures
    a model that costs more and scores less as a higher tier; otherwise every model.

    The best single model is always kept (the strong end of the metrics' axis).
    """
    costs = matrix.mean_costs
    everyone = list(range(len(matrix.models)))
    if costs is None or len(everyone) <= 2:
        return everyone
    quality = matrix.mean_scores

    def dominated(i: int) -> bool:
        # Exact ties in both: the earlier (cheaper-listed) model stands for both.
        return any(
            costs[j] <= costs[i]
            and quality[j] >= quality[i]
            and (costs[j], -quality[j], j) < (costs[i], -quality[i], i)
            for j in everyone
            if j != i
        )

    return [i for i in everyone if i == matrix.strong or not dominated(i)]


def _describe(
    policy: DefaultPolicy,
    matrix: OutcomeMatrix,
    tiered: OutcomeMatrix,
    excluded: Sequence[str],
    cuts: Sequence[float],
    *,
    some_costs: bool,
) -> str:
    """What the default policy's figures on this table are: which estimate, which pair, which tiers."""
    estimate = policy.router
    trained = (
        f"its estimate trained again without {', '.join(excluded)} (shares prompts with this table)"
        if excluded
        else "the shipped estimate (no bundled prompt is in this table)"
    )
    tiers = ", ".join(tiered.models)
    order = "cheapest first"
    if matrix.costs is None:
        why = "not every row records every model's cost" if some_costs else "no costs are recorded"
        order = f"weakest first, as {why}"
    dropped = [m for m in matrix.models if m not in tiered.models]
    if dropped:
        order += (
            f"; not {', '.join(dropped)}, which cost as much as or more than a model that scores as well "
            "or better on average, so no one would make them a higher tier"
        )
    ranks = (
        f"default: {trained} ranks each prompt by the predicted gain of {estimate.models[-1]} over "
        f"{estimate.models[0]}, the bundled pair, not this table's models"
    )
    if len(tiered.models) == 1:
        return (
            f"{ranks}; 1 of the table's {len(matrix.models)} models is its tier ({tiers}; {order}), so "
            f"every prompt goes to {tiers} whatever its rank"
        )
    where = " / ".join(f"{cut:.2f}" for cut in cuts)
    return (
        f"{ranks}; {len(tiered.models)} of the table's {len(matrix.models)} models are its tiers ({tiers}; "
        f"{order}), cut at rank {where}, so about {policy.upper_share:.0%} of prompts like the bundled ones "
        f"go above {tiered.models[0]}"
    )


def _signals(row: OutcomeRow) -> Signals:
    return extract_signals(ChatRequest(messages=row.as_messages()), StepContext())


def _user_text(row: OutcomeRow) -> str:
    return "\n\n".join(m.text for m in row.as_messages() if m.role == "user")


def run_default(table: OutcomeTable, matrix: OutcomeMatrix) -> DefaultRun:
    """The default policy on `table`, its estimate trained without any bundled table it overlaps."""
    excluded = bundled_overlap(table)
    if not excluded:
        return DefaultRun(table, matrix, DefaultPolicy(), ())
    from ..learning._default_training import train_default_router

    router = train_default_router(exclude=excluded)
    return DefaultRun(table, matrix, DefaultPolicy(router), excluded)
