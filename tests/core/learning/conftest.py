"""Routers trained once per test session on the synthetic tables of `learning_tables`."""

from __future__ import annotations

import pytest
from learning_tables import two_model_table

from gearshift.datasets import OutcomeTable
from gearshift.learning import LearnedRouter, train_router


@pytest.fixture(scope="package")
def two_model_split() -> tuple[OutcomeTable, OutcomeTable]:
    """(train, held-out) of the two-model table."""
    table = two_model_table()
    train, held = table.kfold(4, seed=0)[0]
    return train, held


@pytest.fixture(scope="package")
def trained(two_model_split: tuple[OutcomeTable, OutcomeTable]) -> LearnedRouter:
    """A router trained (method auto) on the two-model training rows."""
    return train_router(two_model_split[0])


@pytest.fixture(scope="package")
def method_routers(two_model_split: tuple[OutcomeTable, OutcomeTable]) -> dict[str, LearnedRouter]:
    """One router per method, trained on the two-model training rows."""
    return {method: train_router(two_model_split[0], method=method) for method in ("linear", "knn", "blend")}
