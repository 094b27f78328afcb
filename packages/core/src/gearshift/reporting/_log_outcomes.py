"""Outcome rows from live traffic: shadow pairs and feedback in the decision log, as an outcome table.

A `shadow` record is one row, upward or downward alike: its prompt and both models' judged scores,
tokens and costs. A `feedback` record scores the model that answered its call: it overrides that
model's judged score in the call's shadow row, or, without one, makes a one-model row from the call's
decision record (which carries the prompt, and the caller's task label, only under
`log.include_prompts`). Several feedbacks on one call are averaged over their sources, each source's
latest score standing for it (a scorer that corrects itself, or resends, is one voice). Rows without
a prompt cannot train a router and are counted, not kept.

A router trains on every row with two or more models, whatever models it holds, over the union of
their models, and on the one-model rows of those models: a one-model row says nothing about the other
models, but it does tell how the model that answered does on prompts like it, and at a 5% shadow share
feedback on the other calls can outnumber the pairs many times over
(`tests/benchmarks/shadow_replay.py --feedback-share` measures what it adds). Over three or more tiers
the pairs hold several model sets ({cheap, top}, {middle, top}, {cheap, middle}...), and the learned
router fits each model on the rows that score it.

Two kinds of model are left out, their outcomes dropped from every row (a pair such a model was in
still scores the other model, as a one-model row), and named:
- one scored on fewer than `min_model_rows` rows: a fit on a handful of rows is noise, and a router
  would send traffic to a model whose few lucky scores look good;
- one missing from some pairs that no shadow ever asked: it is scored only on the calls the live
  policy sent it, so its quality on the rest of the traffic is a guess, and a guess from a slice where
  it did well sends it the traffic it never saw (a log written with `downward = false`, or before
  downward shadows spread over the tiers below, where a middle tier's model only ever answered its own
  calls).
Leaving one out can take rows from another, so both are applied again until every model left meets
them. `train --from-log` and `export-outcomes` use `--min-rows` as the floor.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..learning._features import LoggedPrompt

__all__ = ["LogOutcomes", "RowSelection", "outcomes_from_log", "parse_rows", "table_from_log"]


@dataclass(frozen=True)
class RowSelection:
    """The rows a router trains on, chosen from a log's outcome rows (`LogOutcomes.select`)."""

    rows: list[dict[str, Any]]
    """The kept rows, each with the outcomes of the kept models only (log order)."""
    models: tuple[str, ...]
    """The kept models, in order of first appearance."""
    left_out: dict[str, str]
    """Each model left out, with why in words."""

    @property
    def pairs(self) -> int:
        """How many of the kept rows hold two or more models."""
        return sum(len(row["outcomes"]) >= 2 for row in self.rows)


@dataclass
class LogOutcomes:
    """The outcome rows (JSON-ready, the outcome-table format) read from a decision log, and what
    could not be used. `shadow_models` maps a shadowed call's request id to the model its shadow asked."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    shadow_records: int = 0
    feedback_records: int = 0
    without_prompt: int = 0
    feedback_without_call: int = 0
    feedback_without_answer: int = 0
    """Feedback on calls whose caller got no answer: a hand-over's error reached it (an escalation
    record with `outcome` "error") after a weaker model's attempt succeeded, so that attempt was never
    returned and the score is no score of it."""
    shadow_models: dict[str, str] = field(default_factory=dict)
    unlabeled: list[LoggedPrompt] = field(default_factory=list)
    """The prompts of the logged calls that no row holds (no shadow, no feedback; shadow and judge
    calls are not traffic and are left out), each with the task label its call was routed with: what
    a router's topics are found over, beside its rows' prompts, and what its pseudo-labels label
    (`train_router(..., unlabeled=...)`)."""

    def pairs(self, min_model_rows: int = 0) -> list[dict[str, Any]]:
        """The rows with two or more models, whatever models they hold (what a router trains on),
        without the models `select` leaves out."""
        return self.select(min_model_rows, one_model_rows=False).rows

    def training_rows(self, min_model_rows: int = 0) -> list[dict[str, Any]]:
        """The `pairs` and the one-model rows (feedback) of a model among theirs, in log order,
        without the models `select` leaves out."""
        return self.select(min_model_rows).rows

    def select(self, min_model_rows: int = 0, *, one_model_rows: bool = True) -> RowSelection:
        """The training rows (only the pairs without `one_model_rows`) over the models of the pairs,
        less those scored on fewer than `min_model_rows` of these rows and those missing from some
        pairs that no shadow asked (see the module's docstring)."""
        kept = {model: None for row in self.rows if len(row["outcomes"]) >= 2 for model in row["outcomes"]}
        left_out: dict[str, str] = {}
        while True:
            rows = []
            for row in self.rows:
                outcomes = {m: o for m, o in row["outcomes"].items() if m in kept}
                if len(outcomes) >= 2 or (one_model_rows and len(outcomes) == 1):
                    rows.append(
                        row if len(outcomes) == len(row["outcomes"]) else {**row, "outcomes": outcomes}
                    )
            why = _unfit(rows, kept, min_model_rows, self.shadow_models)
            if not why:
                return RowSelection(rows, tuple(kept), left_out)
            left_out.update(why)
            kept = {model: None for model in kept if model not in why}


def _unfit(
    rows: list[dict[str, Any]], models: Iterable[str], floor: int, shadow_models: Mapping[str, str]
) -> dict[str, str]:
    """The `models` a router cannot learn from `rows`, with why."""
    scored = Counter(model for row in rows for model in row["outcomes"])
    pairs = [row for row in rows if len(row["outcomes"]) >= 2]
    in_pairs = Counter(model for row in pairs for model in row["outcomes"])
    asked = Counter(shadow_models.get(row["id"]) for row in pairs)
    why = {}
    for model in models:
        if scored[model] < floor:
            why[model] = f"scored on {scored[model]} rows, fewer than --min-rows {floor}"
        elif in_pairs[model] < len(pairs) and not asked[model]:
            why[model] = (
                f"scored only on the {in_pairs[model]} calls it answered, never by a shadow: "
                "its quality on other calls is unknown"
            )
    return why


def outcomes_from_log(records: Iterable[Mapping[str, Any]]) -> LogOutcomes:
    """Build outcome rows from the `shadow`, `feedback`, `decision`, `attempt` and `escalation` records
    of a log. A call whose hand-over error reached its caller is unanswered, as `gearshift report`
    counts it: its weaker model's successful attempt was never returned, so feedback on it scores no
    model."""
    result = LogOutcomes()
    shadows: dict[str, dict[str, Any]] = {}
    prompts: dict[str, Any] = {}
    tasks: dict[str, str] = {}
    answered: dict[str, tuple[str, int, int]] = {}
    handover_errors: set[str] = set()
    cost: defaultdict[str, float] = defaultdict(float)
    scores: defaultdict[str, dict[str, float]] = defaultdict(dict)  # request id -> source -> score
    for record in records:
        kind = record.get("kind")
        rid = record.get("request_id")
        if not isinstance(rid, str):
            continue
        if kind == "decision":
            if str(record.get("run_id") or "").startswith("shadow:"):
                continue  # a shadow's or its judge's own call: not traffic, and its prompt is a row's
            if "prompt" in record and rid not in prompts:
                prompts[rid] = record["prompt"]
                if isinstance(record.get("task"), str):
                    tasks[rid] = record["task"]
        elif kind == "attempt":
            cost[rid] += float(record.get("cost_usd") or 0.0)
            if record.get("ok") and not record.get("probe"):  # a probe answers no request
                answered[rid] = (
                    record["model"],
                    int(record.get("input_tokens") or 0),
                    int(record.get("output_tokens") or 0),
                )
        elif kind == "escalation" and record.get("outcome") == "error":
            handover_errors.add(rid)  # the caller got this error, not the weaker model's answer
        elif kind == "shadow":
            result.shadow_records += 1
            shadows[rid] = dict(record)
            models = list(record.get("outcomes") or ())
            if len(models) >= 2:  # the caller's model first, then the shadow's
                result.shadow_models[rid] = str(models[1])
            tasks[rid] = str(record.get("task") or tasks.get(rid) or "live")
        elif kind == "feedback":
            result.feedback_records += 1
            scores[rid][str(record.get("source") or "")] = float(record["score"])
    for rid in handover_errors:  # as `gearshift report` reads them: unanswered
        answered.pop(rid, None)
    for rid, shadow in shadows.items():
        prompt = _prompt(shadow.get("prompt"))
        if prompt is None:
            result.without_prompt += 1
            continue
        outcomes = {model: dict(outcome) for model, outcome in shadow["outcomes"].items()}
        if rid in scores and rid in answered and answered[rid][0] in outcomes:
            outcomes[answered[rid][0]]["score"] = _mean(scores[rid])
        result.rows.append({"id": rid, "task": tasks[rid], "prompt": prompt, "outcomes": outcomes})
    for rid, given in scores.items():
        if rid in shadows:
            continue
        if rid in handover_errors:
            result.feedback_without_answer += 1
            continue
        if rid not in answered:
            result.feedback_without_call += 1
            continue
        prompt = _prompt(prompts.get(rid))
        if prompt is None:
            result.without_prompt += 1
            continue
        model, tokens_in, tokens_out = answered[rid]
        outcome = {
            "score": _mean(given),
            "cost_usd": cost[rid],
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
        }
        row = {"id": rid, "task": tasks.get(rid, "live"), "prompt": prompt, "outcomes": {model: outcome}}
        result.rows.append(row)
    held = {row["id"] for row in result.rows}
    for rid, value in prompts.items():
        unlabeled = _unlabeled(value, tasks.get(rid)) if rid not in held else None
        if unlabeled is not None:
            result.unlabeled.append(unlabeled)
    return result


def _unlabeled(value: Any, task: str | None) -> LoggedPrompt | None:
    """A logged call's prompt as a router read it when it routed the call (a string, or its messages,
    with the call's `task` label); None when it was not recorded or is no prompt a table could hold
    (say, a call with no user message)."""
    from ..datasets._outcome_files import _FieldError, _parse_prompt
    from ..learning._features import LoggedPrompt

    prompt = _prompt(value)
    if prompt is None:
        return None
    try:
        return LoggedPrompt(_parse_prompt(prompt), task)
    except _FieldError:
        return None


def _prompt(value: Any) -> str | list[dict[str, str]] | None:
    """An outcome-table prompt: one user message's text, or the messages; None when not recorded."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, list) and value:
        if len(value) == 1 and value[0].get("role") == "user":
            return str(value[0].get("content") or "") or None
        return [{"role": str(m.get("role")), "content": str(m.get("content") or "")} for m in value]
    return None


def table_from_log(path: Any, *, min_rows: int = 50, feedback_rows: bool = True) -> tuple[Any, LogOutcomes]:
    """The outcome table a router trains on from the decision log at `path` (its `training_rows`, or
    only its `pairs` without `feedback_rows`, models scored on fewer than `min_rows` of them left
    out), and the whole reading. Fewer than `min_rows` pairs is a `ConfigError` that says what the log
    holds."""
    from .._errors import ConfigError
    from ..datasets import OutcomeTable
    from ._reader import read_log

    read = read_log(path, outcomes_from_log, key="--from-log")
    chosen = read.select(min_rows, one_model_rows=feedback_rows)
    if chosen.pairs < min_rows:
        raise ConfigError(
            f"{chosen.pairs} outcome rows with two or more models in {path} ({read.shadow_records} shadow "
            f"records, {read.feedback_records} feedback records, {read.without_prompt} without a prompt"
            f"{left_out_note(chosen.left_out, lead='; ')}); training needs at least {min_rows} "
            "(--min-rows): turn on [routing.shadow] with log.include_prompts = true and let traffic run",
            key="--from-log",
        )
    return OutcomeTable(parse_rows(chosen.rows, path)), read


def parse_rows(rows: Iterable[dict[str, Any]], path: Any) -> list[Any]:
    """`rows` as `OutcomeRow`s; a row the outcome-table format refuses (a logged score that is not a
    number in [0, 1]...) is a `ConfigError` naming the log and the row's request id."""
    from .._errors import ConfigError
    from ..datasets._outcome_files import _FieldError, _parse_row

    parsed = []
    for row in rows:
        try:
            parsed.append(_parse_row(row))
        except _FieldError as exc:
            raise ConfigError(
                f"the outcome row of request {row.get('id')!r} cannot be used: {exc}", source=str(path)
            ) from None
    return parsed


def left_out_note(left_out: Mapping[str, str], *, lead: str = "") -> str:
    """`lead` and the models left out, with why, as words ("" when none)."""
    if not left_out:
        return ""
    return lead + "left out " + "; ".join(f"{model} ({why})" for model, why in left_out.items())


def _mean(by_source: dict[str, float]) -> float:
    return sum(by_source.values()) / len(by_source)
