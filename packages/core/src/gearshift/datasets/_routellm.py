"""Outcome tables from the bundled RouteLLM evaluation data: GSM8K, MMLU and MT-Bench.

The files in `routellm/` are lm-sys/RouteLLM's, gzip-compressed but otherwise unchanged (see
`routellm/PROVENANCE.md`). Contaminated prompts are dropped exactly as RouteLLM's `benchmarks.py` does:
GSM8K and MMLU rows whose prompt is listed, MT-Bench questions whose first or second turn is listed.
That leaves 1,307 GSM8K, 14,037 MMLU and 72 MT-Bench prompts.

Scores: GSM8K and MMLU record whether the final answer was right (1.0 or 0.0). MT-Bench routes on the
first turn, so the prompt is the first turn's text and the score is the mean of GPT-4's 1-10 judgements
of the model's two turns, divided by 10.

Task labels: by default every row's `task` is the benchmark's name (`gsm8k`, `mmlu`, `mt-bench`). With
`task_labels="category"` it is the benchmark and the source category the prompt was drawn from, as the
RouteLLM files record it: `mmlu/<subject>` (the subject file the question came from, e.g.
`mmlu/abstract_algebra`) and `mt-bench/<category>` (e.g. `mt-bench/writing`); GSM8K has no categories.
An application that knows what kind of request it sends can pass such a label to a learned router.

Costs are estimated, since RouteLLM records none: tokens are counted with `estimate_tokens` and priced
at the list prices of `_routellm_models`.

- Input tokens are the recorded prompt's. RouteLLM's generation also prepended few-shot examples
  (8 for GSM8K, up to 5 for MMLU) that a router never sees; they are left out.
- GSM8K output tokens are each model's recorded response.
- MMLU records no response: RouteLLM generated exactly one token (`max_new_tokens=1`, the answer
  letter), so each MMLU outcome has 1 output token.
- MT-Bench: the routed model serves the whole two-turn conversation, so tokens and cost cover both
  calls: input = turn 1, then turn 1 + answer 1 + turn 2; output = answer 1 + answer 2. The answers
  are the ones quoted in the judge's prompt; `response` is the first-turn answer.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import sys
from collections.abc import Iterator
from importlib import resources
from typing import TYPE_CHECKING, Literal, get_args

from .._models import ModelSpec
from ..signals._tokens import estimate_tokens
from ._outcomes import Outcome, OutcomeRow, OutcomeTable, OutcomeTableError
from ._routellm_models import SOURCE_MODEL_NAMES, routellm_models

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

__all__ = ["ROUTELLM_DATASETS", "RoutellmDataset", "TaskLabels", "load_routellm"]

RoutellmDataset = Literal["gsm8k", "mmlu", "mt-bench"]
"""The names of the bundled RouteLLM benchmarks."""

TaskLabels = Literal["dataset", "category"]
"""What a bundled row's `task` holds: the benchmark's name, or the benchmark and the prompt's category."""

ROUTELLM_DATASETS: tuple[RoutellmDataset, ...] = get_args(RoutellmDataset)
"""Every bundled RouteLLM benchmark, in the order `load_routellm` knows them."""

MMLU_OUTPUT_TOKENS = 1
"""Output tokens of an MMLU answer: RouteLLM generated only the answer letter."""

_SCORES = {"True": 1.0, "False": 0.0}


def _data_root() -> Traversable:
    return resources.files("gearshift.datasets") / "routellm"


def _read(path: str) -> str:
    """A bundled file's text; `path` is relative to `routellm/`, `.gz` files are decompressed."""
    resource = _data_root()
    for part in path.split("/"):
        resource = resource / part
    data = resource.read_bytes()
    return (gzip.decompress(data) if path.endswith(".gz") else data).decode("utf-8")


def _jsonl(path: str) -> Iterator[dict[str, object]]:
    for line in _read(path).splitlines():
        if line.strip():
            yield json.loads(line)


def _contaminated(path: str) -> frozenset[str]:
    return frozenset(str(item["eval_prompt"]) for item in _jsonl(path))


def _outcome(
    spec: ModelSpec, score: float, input_tokens: int, output_tokens: int, response: str | None = None
) -> Outcome:
    return Outcome(
        score=score,
        cost_usd=spec.estimate_cost(input_tokens, output_tokens),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        response=response,
    )


def _score(value: str, path: str, row: int) -> float:
    try:
        return _SCORES[value]
    except KeyError:
        raise OutcomeTableError(
            f"bundled RouteLLM data: row {row} holds {value!r} where True or False belongs", path=path
        ) from None


def _specs() -> dict[str, ModelSpec]:
    return {spec.id: spec for spec in routellm_models()}


def _csv_rows(path: str) -> Iterator[dict[str, str]]:
    # newline="" keeps the quoted multi-line fields intact, as the csv module requires.
    return csv.DictReader(io.StringIO(_read(path), newline=""))


def _load_gsm8k(categories: bool) -> OutcomeTable:
    path = "gsm8k/gsm8k_responses.csv.gz"
    contaminated = _contaminated("gsm8k/contaminated_prompts.jsonl")
    specs = _specs()
    rows = []
    for index, record in enumerate(_csv_rows(path)):
        prompt = record["prompt"]
        if prompt in contaminated:
            continue
        input_tokens = estimate_tokens(prompt)
        outcomes = {}
        for source, model in SOURCE_MODEL_NAMES.items():
            response = record[f"{source}_response"]
            outcomes[model] = _outcome(
                specs[model],
                _score(record[source], path, index),
                input_tokens,
                estimate_tokens(response),
                response,
            )
        rows.append(OutcomeRow(f"gsm8k-{index}", "gsm8k", prompt, outcomes))
    return OutcomeTable(rows)


def _load_mmlu(categories: bool) -> OutcomeTable:
    contaminated = _contaminated("mmlu/contaminated_prompts.jsonl")
    specs = _specs()

    # An MMLU outcome is fixed by (model, score, input tokens): share the equal ones instead of building
    # and validating 28k values, which halves the load time.
    @functools.cache
    def outcome(model: str, score: float, input_tokens: int) -> Outcome:
        return _outcome(specs[model], score, input_tokens, MMLU_OUTPUT_TOKENS)

    names = sorted(item.name for item in (_data_root() / "mmlu" / "responses").iterdir())
    rows = []
    for name in names:
        if not (name.startswith("mmlu_") and name.endswith(".csv.gz")):
            continue
        subject = name[len("mmlu_") : -len(".csv.gz")]
        task = f"mmlu/{subject}" if categories else "mmlu"
        path = f"mmlu/responses/{name}"
        for index, record in enumerate(_csv_rows(path)):
            prompt = record["prompt"]
            if prompt in contaminated:
                continue
            input_tokens = estimate_tokens(prompt)
            outcomes = {
                model: outcome(model, _score(record[source], path, index), input_tokens)
                for source, model in SOURCE_MODEL_NAMES.items()
            }
            rows.append(OutcomeRow(f"mmlu-{subject}-{index}", task, prompt, outcomes))
    return OutcomeTable(rows)


_CONVERSATION_START = "<|The Start of Assistant A's Conversation with User|>\n\n### User:\n"
_CONVERSATION_END = "\n\n<|The End of Assistant A's Conversation with User|>"
_USER = "\n\n### User:\n"
_ASSISTANT = "\n\n### Assistant A:\n"


def _answers(judge_prompt: str, turns: tuple[str, str], where: str) -> tuple[str, str]:
    """The model's two answers, as quoted in the second-turn judge's prompt.

    The prompt quotes the whole conversation between fixed markers. Splitting on the known turn texts,
    rather than on the markers alone, cannot be fooled by an answer that itself contains `### User:`.
    """
    first = _CONVERSATION_START + turns[0] + _ASSISTANT
    second = _USER + turns[1] + _ASSISTANT
    start = judge_prompt.find(first)
    middle = judge_prompt.find(second, start + len(first))
    end = judge_prompt.rfind(_CONVERSATION_END)
    if start < 0 or middle < 0 or end < middle:
        raise OutcomeTableError(f"bundled RouteLLM data: cannot find the quoted answers of {where}")
    return judge_prompt[start + len(first) : middle], judge_prompt[middle + len(second) : end]


def _load_mt_bench(categories: bool) -> OutcomeTable:
    contaminated = _contaminated("mt_bench/contaminated_prompts.jsonl")
    specs = _specs()
    judgements: dict[tuple[int, str, int], dict[str, object]] = {}
    for item in _jsonl("mt_bench/judgements.jsonl.gz"):
        source = str(item["model"])
        if source in SOURCE_MODEL_NAMES:
            key = (int(str(item["question_id"])), SOURCE_MODEL_NAMES[source], int(str(item["turn"])))
            judgements[key] = item
    rows = []
    for question in _jsonl("mt_bench/question.jsonl"):
        qid = int(str(question["question_id"]))
        turn_list = question["turns"]
        if not isinstance(turn_list, list) or len(turn_list) != 2:
            raise OutcomeTableError(f"bundled RouteLLM data: MT-Bench question {qid} does not have two turns")
        turns = (str(turn_list[0]), str(turn_list[1]))
        if turns[0] in contaminated or turns[1] in contaminated:
            continue
        outcomes = {}
        for model, spec in specs.items():
            try:
                first, second = judgements[qid, model, 1], judgements[qid, model, 2]
            except KeyError:
                raise OutcomeTableError(
                    f"bundled RouteLLM data: MT-Bench question {qid} lacks a judgement of {model}"
                ) from None
            score = (float(str(first["score"])) + float(str(second["score"]))) / 20
            answer1, answer2 = _answers(str(second["user_prompt"]), turns, f"question {qid}, {model}")
            t1, a1, t2, a2 = (estimate_tokens(text) for text in (turns[0], answer1, turns[1], answer2))
            outcomes[model] = _outcome(spec, score, t1 + (t1 + a1 + t2), a1 + a2, answer1)
        task = f"mt-bench/{question['category']}" if categories else "mt-bench"
        rows.append(OutcomeRow(f"mt-bench-{qid}", task, turns[0], outcomes))
    return OutcomeTable(rows)


_LOADERS = {"gsm8k": _load_gsm8k, "mmlu": _load_mmlu, "mt-bench": _load_mt_bench}


@functools.cache
def _load(name: str, categories: bool) -> OutcomeTable:
    return _LOADERS[name](categories)


def load_routellm(name: RoutellmDataset, *, task_labels: TaskLabels = "dataset") -> OutcomeTable:
    """The bundled RouteLLM outcomes of one benchmark, contaminated prompts dropped.

    `name` is `gsm8k`, `mmlu` or `mt-bench`. Rows hold the weak (`mixtral-8x7b-instruct`) and strong
    (`gpt-4-1106-preview`) model, in that order, with score, estimated cost and token counts filled
    in, and GSM8K's and MT-Bench's recorded responses. `task_labels="category"` labels each row with
    its source category (`mmlu/<subject>`, `mt-bench/<category>`) instead of the benchmark's name.
    Tables are built once per process and shared (they are immutable).
    """
    if name not in _LOADERS:
        raise OutcomeTableError(
            f"no bundled RouteLLM dataset named {name!r}; choose one of {', '.join(ROUTELLM_DATASETS)}"
        )
    if task_labels not in ("dataset", "category"):
        raise OutcomeTableError(f"task_labels must be 'dataset' or 'category', got {task_labels!r}")
    return _load(name, task_labels == "category")
