"""Outcome tables for training and evaluating routers, and the bundled RouteLLM data.

An outcome table records, per prompt, how each model scored and what it cost (`OutcomeTable`); it is
read from and written to JSONL with `load_outcomes` and `save_outcomes`. `load_routellm` builds the
tables of RouteLLM's GSM8K, MMLU and MT-Bench outcomes of Mixtral-8x7B and GPT-4 Turbo, shipped with
gearshift, and `routellm_models` gives the two models to route between.
"""

from ._outcome_files import load_outcomes, save_outcomes
from ._outcomes import Outcome, OutcomeRow, OutcomeTable, OutcomeTableError, normalize_prompt
from ._routellm import MMLU_OUTPUT_TOKENS, ROUTELLM_DATASETS, RoutellmDataset, load_routellm
from ._routellm_models import (
    ROUTELLM_PRICE_SOURCES,
    ROUTELLM_STRONG_MODEL,
    ROUTELLM_WEAK_MODEL,
    routellm_models,
)

__all__ = [
    "MMLU_OUTPUT_TOKENS",
    "ROUTELLM_DATASETS",
    "ROUTELLM_PRICE_SOURCES",
    "ROUTELLM_STRONG_MODEL",
    "ROUTELLM_WEAK_MODEL",
    "Outcome",
    "OutcomeRow",
    "OutcomeTable",
    "OutcomeTableError",
    "RoutellmDataset",
    "load_outcomes",
    "load_routellm",
    "normalize_prompt",
    "routellm_models",
    "save_outcomes",
]
