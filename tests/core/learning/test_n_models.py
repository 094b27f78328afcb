"""Four models with costs: the router's cost-quality curve beats every single model on held-out rows."""

from __future__ import annotations

import numpy as np
from learning_tables import N_MODELS, n_model_table

from gearshift.evaluation import RouterCurve
from gearshift.learning import train_router
from gearshift.learning._choice import tradeoff_grid


def test_the_router_beats_every_single_model_and_keeps_95_percent_for_a_fifth_of_the_cost() -> None:
    train, held = n_model_table(900, seed=1), n_model_table(450, seed=2)
    router = train_router(train)
    assert router.models == tuple(N_MODELS)  # sorted cheapest first from a table listing them out of order
    predicted = router.predict(held.rows)
    scores = np.array([[row.outcomes[m].score for m in router.models] for row in held])
    costs = np.array([[row.outcomes[m].cost_usd for m in router.models] for row in held])
    rows = np.arange(len(held))
    points = []
    for tradeoff in tradeoff_grid(predicted, router.relative_costs):
        chosen = router.choose(predicted, tradeoff=float(tradeoff))
        points.append((costs[rows, chosen].mean(), scores[rows, chosen].mean(), np.mean(chosen == 3)))
    curve = RouterCurve("learned", *np.array(points).T)
    singles = [(float(costs[:, j].mean()), float(scores[:, j].mean())) for j in range(4)]
    for cost, quality in singles:
        reached = curve.quality_at_cost(cost)
        assert reached is not None and reached >= quality - 1e-9, (cost, quality, reached)
    best_cost, best_quality = max(singles, key=lambda point: point[1])
    needed = curve.cost_at_quality(0.95 * best_quality)
    assert needed is not None and needed <= best_cost / 5
    # The default operating point keeps 95% of the best model's quality on the training rows' sweep.
    point = router.operating_point
    assert (
        point.met and point.quality is not None and point.quality >= 0.95 * max(q for _, q in singles) - 0.03
    )
