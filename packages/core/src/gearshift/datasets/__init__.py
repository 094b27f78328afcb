"""Outcome tables for training and evaluating routers, and the bundled RouteLLM data.

An outcome table records, per prompt, how each model scored and what it cost (`OutcomeTable`); it is
read from and written to JSONL with `load_outcomes` and `save_outcomes`. `load_routellm` builds the
tables of RouteLLM's GSM8K, MMLU and MT-Bench outcomes of Mixtral-8x7B and GPT-4 Turbo, shipped with
gearshift, and `routellm_models` gives the two models to route between.

Agent outcome tables carry each model's whole run (`AgentRun`); `load_agent_runs` checks and costs
one for replay (`AgentRuns`), and `load_tau_retail` gives the bundled tau-bench retail runs of
gpt-4o-mini and gpt-4o.
"""

from ._agent_runs import AgentRun, RunMessage
from ._agent_tables import AgentRuns, AgentTask, CostedRun, agent_runs, load_agent_runs
from ._outcome_files import load_outcomes, save_outcomes
from ._outcomes import Outcome, OutcomeRow, OutcomeTable, OutcomeTableError, normalize_prompt
from ._routellm import MMLU_OUTPUT_TOKENS, ROUTELLM_DATASETS, RoutellmDataset, load_routellm
from ._routellm_models import (
    ROUTELLM_PRICE_SOURCES,
    ROUTELLM_STRONG_MODEL,
    ROUTELLM_WEAK_MODEL,
    routellm_models,
)
from ._tau_bench import (
    TAU_RETAIL_PRICES,
    TAU_RETAIL_STRONG_MODEL,
    TAU_RETAIL_WEAK_MODEL,
    load_tau_retail,
    tau_retail_models,
)

__all__ = [
    "MMLU_OUTPUT_TOKENS",
    "ROUTELLM_DATASETS",
    "ROUTELLM_PRICE_SOURCES",
    "ROUTELLM_STRONG_MODEL",
    "ROUTELLM_WEAK_MODEL",
    "TAU_RETAIL_PRICES",
    "TAU_RETAIL_STRONG_MODEL",
    "TAU_RETAIL_WEAK_MODEL",
    "AgentRun",
    "AgentRuns",
    "AgentTask",
    "CostedRun",
    "Outcome",
    "OutcomeRow",
    "OutcomeTable",
    "OutcomeTableError",
    "RoutellmDataset",
    "RunMessage",
    "agent_runs",
    "load_agent_runs",
    "load_outcomes",
    "load_routellm",
    "load_tau_retail",
    "normalize_prompt",
    "routellm_models",
    "save_outcomes",
    "tau_retail_models",
]
