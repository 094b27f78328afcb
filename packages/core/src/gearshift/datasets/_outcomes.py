"""Outcome tables: what each model scored, and cost, on each prompt.

An `OutcomeTable` is the data `train` and `eval` work on and the replay provider answers from. Each
`OutcomeRow` holds one prompt (a string, or a conversation) and, per model id, an `Outcome`: a quality
score in [0, 1] and, when known, the cost, token counts and the model's recorded response.

Values are frozen; a table never changes after it is built, so `filter`, `subset` and `kfold` return
new tables that share the rows. Invalid values raise `OutcomeTableError`, which the file loader
(`load_outcomes`) extends with the file and line.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._errors import GearshiftError
from .._messages import Message, Role

if TYPE_CHECKING:
    from ._agent_runs import AgentRun

__all__ = ["Outcome", "OutcomeRow", "OutcomeTable", "OutcomeTableError", "normalize_prompt"]

PROMPT_ROLES: tuple[Role, ...] = ("system", "user", "assistant")
"""Roles a prompt conversation may use: tool messages need tool calls, which tables do not record."""


class OutcomeTableError(GearshiftError, ValueError):
    """An outcome table, or a file holding one, that is malformed.

    `path` and `line` say where, when the table came from a file; the message says which field is
    wrong and what it holds instead.
    """

    def __init__(
        self, message: str, *, path: str | os.PathLike[str] | None = None, line: int | None = None
    ) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.line = line
        where = self.path or ""
        if line is not None:
            where = f"{where} line {line}" if where else f"line {line}"
        super().__init__(f"{where}: {message}" if where else message)


# Each check returns what is wrong with a value, or None. The loader and the dataclasses share them so
# a value rejected in a file is rejected in Python with the same words.
def _score_problem(value: object) -> str | None:
    # bool is an int in Python but not a number in JSON; NaN fails both comparisons.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        problem = f"must be a number in [0, 1], got {value!r}"
        if not isinstance(value, bool) and isinstance(value, (int, float)) and 1 < value < math.inf:
            # Benchmarks grade on other scales (MT-Bench 1-10, percentages); the fix is one division.
            problem += (
                " (a score on another scale, such as MT-Bench's 1 to 10, is divided by the top of that "
                "scale first)"
            )
        return problem
    return None


def _cost_problem(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a non-negative number of dollars or null, got {value!r}"
    if not math.isfinite(value) or value < 0:
        return f"must be a non-negative number of dollars or null, got {value!r}"
    return None


def _tokens_problem(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return f"must be a non-negative integer or null, got {value!r}"
    return None


def _response_problem(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return None
    return f"must be a string or null, got {type(value).__name__}"


OUTCOME_FIELDS: dict[str, Callable[[object], str | None]] = {
    "score": _score_problem,
    "cost_usd": _cost_problem,
    "input_tokens": _tokens_problem,
    "output_tokens": _tokens_problem,
    "response": _response_problem,
}
"""The fields of an outcome, each with its check."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one model did on one prompt.

    `score` is quality in [0, 1] (1 = a correct or perfect answer). `cost_usd` is what the call cost
    in US dollars; `input_tokens` and `output_tokens` its size; `response` the model's answer text.
    Each of the last four is None when the table does not record it. `run`, in an agent outcome table,
    is the model's whole run on the task after the opening prompt (see `AgentRun`).
    """

    score: float
    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    response: str | None = None
    run: AgentRun | None = None

    def __post_init__(self) -> None:
        for name, check in OUTCOME_FIELDS.items():
            problem = check(getattr(self, name))
            if problem is not None:
                raise OutcomeTableError(f"Outcome.{name} {problem}")
        if self.run is not None:
            from ._agent_runs import AgentRun

            if not isinstance(self.run, AgentRun):
                raise OutcomeTableError(
                    f"Outcome.run must be an AgentRun or None, got {type(self.run).__name__}"
                )
        # Keep money and scores floats even when built from JSON integers (0, 1).
        object.__setattr__(self, "score", float(self.score))
        if self.cost_usd is not None:
            object.__setattr__(self, "cost_usd", float(self.cost_usd))


def normalize_prompt(text: str) -> str:
    """The lookup key of a prompt: whitespace runs collapsed to one space, ends trimmed.

    Recorded prompts and the text a caller sends often differ only in spacing (double spaces after a
    full stop, a trailing newline), which must not make a replay miss.
    """
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """One prompt and how each model did on it.

    `prompt` is the text sent as one user message, or a conversation (system, user and assistant
    messages). `outcomes` maps model ids to their `Outcome`.
    """

    id: str
    task: str
    prompt: str | tuple[Message, ...]
    outcomes: Mapping[str, Outcome]

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise OutcomeTableError(f"OutcomeRow.id must be a non-empty string, got {self.id!r}")
        where = f"row '{self.id}'"
        if not isinstance(self.task, str) or not self.task:
            raise OutcomeTableError(f"{where}: task must be a non-empty string, got {self.task!r}")
        if isinstance(self.prompt, str):
            if not self.prompt.strip():
                raise OutcomeTableError(f"{where}: prompt is empty")
        else:
            messages = tuple(self.prompt)
            for index, message in enumerate(messages):
                if not isinstance(message, Message) or message.role not in PROMPT_ROLES:
                    raise OutcomeTableError(
                        f"{where}: prompt[{index}] must be a Message with role "
                        f"{', '.join(PROMPT_ROLES)}, got {message!r}"
                    )
            if not any(m.role == "user" for m in messages):
                raise OutcomeTableError(f"{where}: the prompt conversation has no user message")
            object.__setattr__(self, "prompt", messages)
        if not self.outcomes:
            raise OutcomeTableError(f"{where}: outcomes must name at least one model")
        for model, outcome in self.outcomes.items():
            if not isinstance(model, str) or not model:
                raise OutcomeTableError(f"{where}: model ids must be non-empty strings, got {model!r}")
            if not isinstance(outcome, Outcome):
                raise OutcomeTableError(f"{where}: outcomes[{model!r}] must be an Outcome, got {outcome!r}")
        # A private copy, so a caller mutating the dict it passed cannot change a frozen row.
        object.__setattr__(self, "outcomes", dict(self.outcomes))

    @property
    def prompt_text(self) -> str:
        """The prompt as text: the string itself, or the user messages joined by blank lines."""
        if isinstance(self.prompt, str):
            return self.prompt
        return "\n\n".join(m.text for m in self.prompt if m.role == "user")

    def as_messages(self) -> tuple[Message, ...]:
        """The prompt as gearshift messages, ready for a `ChatRequest`."""
        if isinstance(self.prompt, str):
            return (Message.user(self.prompt),)
        return self.prompt


class OutcomeTable:
    """Rows of outcomes, in a fixed order, with unique row ids.

    Iterate it, index it (`table[3]`), look a prompt up with `by_prompt`, and cut it with `filter`,
    `subset`, `with_models` and `kfold`. Rows need not all hold the same models; `models` lists every
    model that appears, in order of first appearance.
    """

    __slots__ = ("_by_prompt", "_models", "_rows", "_tasks")

    def __init__(self, rows: Iterable[OutcomeRow]) -> None:
        self._rows = tuple(rows)
        seen: dict[str, int] = {}
        models: dict[str, None] = {}
        tasks: dict[str, None] = {}
        for index, row in enumerate(self._rows):
            if not isinstance(row, OutcomeRow):
                raise OutcomeTableError(f"row {index} must be an OutcomeRow, got {type(row).__name__}")
            if row.id in seen:
                raise OutcomeTableError(f"row id '{row.id}' is used by rows {seen[row.id]} and {index}")
            seen[row.id] = index
            models.update(dict.fromkeys(row.outcomes))
            tasks[row.task] = None
        self._models = tuple(models)
        self._tasks = tuple(tasks)
        # Built on the first lookup: most tables (training folds) are never looked up by prompt.
        self._by_prompt: dict[str, OutcomeRow] | None = None

    @property
    def rows(self) -> tuple[OutcomeRow, ...]:
        """All rows, in order."""
        return self._rows

    @property
    def models(self) -> tuple[str, ...]:
        """Every model id that has an outcome in some row, in order of first appearance."""
        return self._models

    @property
    def tasks(self) -> tuple[str, ...]:
        """Every task name, in order of first appearance."""
        return self._tasks

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[OutcomeRow]:
        return iter(self._rows)

    def __getitem__(self, index: int) -> OutcomeRow:
        return self._rows[index]

    def __repr__(self) -> str:
        return f"OutcomeTable({len(self._rows)} rows, models={list(self._models)}, tasks={list(self._tasks)})"

    def by_prompt(self, text: str) -> OutcomeRow | None:
        """The row whose prompt text matches `text` up to whitespace, or None. O(1) after the first call.

        When several rows share a prompt (MMLU repeats some questions across subjects), the first wins.
        """
        if self._by_prompt is None:
            index: dict[str, OutcomeRow] = {}
            for row in self._rows:
                index.setdefault(normalize_prompt(row.prompt_text), row)
            self._by_prompt = index
        return self._by_prompt.get(normalize_prompt(text))

    def mean_score(self, model: str) -> float:
        """The mean score of `model` over the rows that have an outcome for it."""
        scores = [row.outcomes[model].score for row in self._rows if model in row.outcomes]
        if not scores:
            raise KeyError(f"no row has an outcome for model '{model}' (models: {', '.join(self._models)})")
        return math.fsum(scores) / len(scores)

    def filter(self, keep: Callable[[OutcomeRow], bool]) -> OutcomeTable:
        """A table of the rows for which `keep(row)` is true, in order."""
        return OutcomeTable(row for row in self._rows if keep(row))

    def with_models(self, models: Iterable[str]) -> OutcomeTable:
        """A table of the same rows holding only the outcomes of `models`; a row left with none is dropped."""
        keep = set(models)
        rows = []
        for row in self._rows:
            outcomes = {m: o for m, o in row.outcomes.items() if m in keep}
            if len(outcomes) == len(row.outcomes):
                rows.append(row)
            elif outcomes:
                rows.append(OutcomeRow(row.id, row.task, row.prompt, outcomes))
        return OutcomeTable(rows)

    def subset(self, indices: Iterable[int]) -> OutcomeTable:
        """A table of the rows at `indices`, in the order given; each index at most once."""
        return OutcomeTable(self._rows[i] for i in indices)

    def kfold(self, k: int, seed: int = 0) -> list[tuple[OutcomeTable, OutcomeTable]]:
        """`k` (train, test) splits for cross-validation.

        Rows are shuffled with `seed`, then dealt into `k` folds whose sizes differ by at most one;
        each row is in exactly one test table. Both tables of a split keep the original row order, and
        the same seed always gives the same splits.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 2:
            raise OutcomeTableError(f"kfold needs k >= 2, got {k!r}")
        if k > len(self._rows):
            raise OutcomeTableError(f"kfold cannot make {k} folds from {len(self._rows)} rows")
        order = list(range(len(self._rows)))
        random.Random(seed).shuffle(order)
        splits = []
        for fold in range(k):
            test = set(order[fold::k])
            splits.append(
                (
                    self.subset(i for i in range(len(self._rows)) if i not in test),
                    self.subset(sorted(test)),
                )
            )
        return splits
