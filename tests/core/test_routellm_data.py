"""The bundled RouteLLM data: base rates as published, costs and tokens filled, fast cached loading."""

from __future__ import annotations

from importlib import resources

import pytest

from gearshift.datasets import (
    MMLU_OUTPUT_TOKENS,
    ROUTELLM_DATASETS,
    ROUTELLM_PRICE_SOURCES,
    ROUTELLM_STRONG_MODEL,
    ROUTELLM_WEAK_MODEL,
    OutcomeTable,
    OutcomeTableError,
    load_routellm,
    routellm_models,
)
from gearshift.signals._tokens import estimate_tokens

WEAK, STRONG = ROUTELLM_WEAK_MODEL, ROUTELLM_STRONG_MODEL


@pytest.fixture
def tables() -> dict[str, OutcomeTable]:
    return {name: load_routellm(name) for name in ROUTELLM_DATASETS}


def _share(table: OutcomeTable, better: str, worse: str) -> float:
    return sum(row.outcomes[better].score > row.outcomes[worse].score for row in table) / len(table)


@pytest.mark.parametrize(
    ("name", "prompts", "weak", "strong", "only_strong", "only_weak"),
    [
        ("gsm8k", 1_307, 63.73, 85.77, 29.2, 7.2),
        ("mmlu", 14_037, 68.09, 80.59, 17.8, 5.3),
    ],
)
def test_base_rates_match_the_published_table(
    tables: dict[str, OutcomeTable],
    name: str,
    prompts: int,
    weak: float,
    strong: float,
    only_strong: float,
    only_weak: float,
) -> None:
    table = tables[name]
    assert len(table) == prompts
    assert round(table.mean_score(WEAK) * 100, 2) == weak
    assert round(table.mean_score(STRONG) * 100, 2) == strong
    assert round(_share(table, STRONG, WEAK) * 100, 1) == only_strong
    assert round(_share(table, WEAK, STRONG) * 100, 1) == only_weak
    assert {row.outcomes[WEAK].score for row in table} == {0.0, 1.0}


def test_mt_bench_scores_are_the_mean_judge_score_over_ten(tables: dict[str, OutcomeTable]) -> None:
    table = tables["mt-bench"]
    assert len(table) == 72
    assert round(table.mean_score(WEAK) * 10, 2) == 8.28
    assert round(table.mean_score(STRONG) * 10, 2) == 9.21
    email = table[0]  # question 82: the judge gave Mixtral 10 and 9, GPT-4 10 and 10
    assert email.id == "mt-bench-82"
    assert email.outcomes[WEAK].score == pytest.approx(0.95)
    assert email.outcomes[STRONG].score == 1.0


def test_contaminated_prompts_are_gone(tables: dict[str, OutcomeTable]) -> None:
    gsm8k, mmlu, mt_bench = (tables[name] for name in ROUTELLM_DATASETS)
    robe = (
        "A robe takes 2 bolts of blue fiber and half that much white fiber.  "
        "How many bolts in total does it take?"
    )
    assert gsm8k.by_prompt(robe) is None
    # The first three GSM8K questions are contaminated; ids keep the source row numbers.
    assert [row.id for row in gsm8k][:2] == ["gsm8k-3", "gsm8k-4"]
    assert mt_bench.by_prompt("Given that f(x) = 4x^3 - 9x - 14, find the value of f(2).") is None
    assert "mt-bench-81" not in {row.id for row in mt_bench}  # the Hawaii travel blog
    assert mt_bench[0].id == "mt-bench-82"
    assert mmlu.by_prompt(mmlu[0].prompt_text) is mmlu[0]


def test_rows_are_shaped_for_routing(tables: dict[str, OutcomeTable]) -> None:
    for name, table in tables.items():
        assert table.models == (WEAK, STRONG)
        assert table.tasks == (name,)
        assert len({row.id for row in table}) == len(table)
        assert all(isinstance(row.prompt, str) for row in table)
    assert tables["mmlu"][0].id == "mmlu-abstract_algebra-0"
    assert tables["mmlu"][-1].id.startswith("mmlu-world_religions-")


def test_every_outcome_has_tokens_and_the_cost_of_its_model(tables: dict[str, OutcomeTable]) -> None:
    specs = {spec.id: spec for spec in routellm_models()}
    for table in tables.values():
        for row in table:
            for model, outcome in row.outcomes.items():
                assert outcome.input_tokens
                assert outcome.output_tokens
                assert outcome.cost_usd == specs[model].estimate_cost(
                    outcome.input_tokens, outcome.output_tokens
                )


def test_token_assumptions_per_dataset(tables: dict[str, OutcomeTable]) -> None:
    # Every row of the small tables; every 20th MMLU row, since re-estimating 14k prompts takes a second.
    for row in tables["gsm8k"]:
        for outcome in row.outcomes.values():
            assert outcome.response is not None
            assert outcome.input_tokens == estimate_tokens(row.prompt_text)
            assert outcome.output_tokens == estimate_tokens(outcome.response)
    assert {row.outcomes[WEAK].output_tokens for row in tables["mmlu"]} == {MMLU_OUTPUT_TOKENS} == {1}
    for row in tables["mmlu"].rows[::20]:
        for outcome in row.outcomes.values():
            assert outcome.response is None
            assert outcome.input_tokens == estimate_tokens(row.prompt_text)
    for row in tables["mt-bench"]:
        for outcome in row.outcomes.values():
            # Two calls: the first turn, then the first turn again with its answer and the second turn.
            assert outcome.response
            answer = estimate_tokens(outcome.response)
            assert outcome.output_tokens is not None
            assert outcome.input_tokens is not None
            assert outcome.output_tokens > answer
            assert outcome.input_tokens > 2 * estimate_tokens(row.prompt_text) + answer


def test_gsm8k_and_mt_bench_keep_the_recorded_answers(tables: dict[str, OutcomeTable]) -> None:
    sprints = tables["gsm8k"].by_prompt(
        "James decides to run 3 sprints 3 times a week. He runs 60 meters each sprint. "
        "How many total meters does he run a week?"
    )
    assert sprints is not None
    assert sprints.id == "gsm8k-3"
    for outcome in sprints.outcomes.values():
        assert outcome.score == 1.0
        assert outcome.response is not None
        assert "540" in outcome.response
    email = tables["mt-bench"].by_prompt(
        "Draft a professional email seeking your supervisor's feedback on the 'Quarterly Financial Report' "
        "you prepared. Ask specifically about the data analysis, presentation style, and the clarity of "
        "conclusions drawn. Keep the email short and to the point."
    )
    assert email is not None
    assert email.id == "mt-bench-82"
    weak_answer = email.outcomes[WEAK].response
    assert weak_answer is not None
    assert weak_answer.startswith(" Subject: Request for Feedback on Quarterly Financial Report")
    assert weak_answer.endswith("[Your Name]\n[Your Position]")  # the second turn is cut off


def test_models_tiers_and_prices() -> None:
    weak, strong = routellm_models()
    assert (weak.id, weak.model, weak.tier, weak.provider) == (WEAK, WEAK, 1, "replay")
    assert (strong.id, strong.model, strong.tier, strong.provider) == (STRONG, STRONG, 2, "replay")
    assert (weak.prices.input, weak.prices.output) == (0.7, 0.7)
    assert (strong.prices.input, strong.prices.output) == (10.0, 30.0)
    assert routellm_models(provider="offline")[0].provider == "offline"


def test_pinned_prices_are_genai_prices_list_prices() -> None:
    from genai_prices import Usage, calc_price

    for spec in routellm_models():
        provider_id, model_ref = ROUTELLM_PRICE_SOURCES[spec.id]
        # 1,000 tokens stays below every tier boundary, so this is the base list price.
        per_input = calc_price(Usage(input_tokens=1_000), model_ref, provider_id=provider_id).input_price
        per_output = calc_price(Usage(output_tokens=1_000), model_ref, provider_id=provider_id).output_price
        assert (float(per_input * 1_000), float(per_output * 1_000)) == (
            spec.prices.input,
            spec.prices.output,
        )


def test_tables_are_cached_per_process() -> None:
    # Load speed is a benchmark figure (the demo prints its wall time), not a timed assert.
    assert load_routellm("mmlu") is load_routellm("mmlu")


def test_unknown_dataset_names_the_choices() -> None:
    with pytest.raises(OutcomeTableError, match="choose one of gsm8k, mmlu, mt-bench"):
        load_routellm("mt_bench")  # type: ignore[arg-type]


def test_license_and_provenance_ship_with_the_data() -> None:
    root = resources.files("gearshift.datasets") / "routellm"
    license_text = (root / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in license_text
    assert "Version 2.0, January 2004" in license_text
    provenance = (root / "PROVENANCE.md").read_text(encoding="utf-8")
    assert "0b64fdafe049e596a3f5657c219329f24af24198" in provenance
    assert "$0.70 input, $0.70 output" in provenance
    assert "$10 input,\n    $30 output" in provenance or "$10 input, $30 output" in provenance
