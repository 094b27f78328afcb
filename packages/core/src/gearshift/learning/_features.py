"""What a learned router sees of a prompt: its text, the core's signals and its task label.

A prompt becomes two blocks of numbers:

- the text block: hashed word and character n-grams (`hashed_terms`), sparse, or the dense vector of a
  user's `Embedder` when one is plugged in;
- the dense block: the core's content signals (code, math and reasoning strength, size, turns, the
  signals' task guess), the text's shape (`_prompt_shape`: how many numbers, sentences, words...) and
  a one-hot of the caller's task label over the labels seen in training.

Only content is used: a router trained on an outcome table must see the same numbers for the same
prompt at routing time, and a table records no step types, tool histories or budgets.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from .._context import StepContext
from .._messages import ChatRequest, Message
from ..datasets import OutcomeRow
from ..signals._signals import TASKS, Signals, extract_signals
from ._prompt_shape import SHAPE_FEATURES, shape_vector
from ._text_hashing import hashed_terms

__all__ = [
    "CONTENT_FEATURES",
    "SIGNAL_FEATURES",
    "Embedder",
    "FeatureSpec",
    "LoggedPrompt",
    "PromptFeatures",
    "PromptInput",
    "PromptLike",
    "messages_text",
    "prompt_inputs",
    "signal_values",
    "signal_vector",
]


@dataclass(frozen=True, slots=True)
class LoggedPrompt:
    """A prompt without outcomes and the task label its caller gave (None when it gave none): a logged
    call that no shadow judged, read as the router read it when it routed the call."""

    prompt: str | tuple[Message, ...]
    task: str | None = None


PromptLike = OutcomeRow | LoggedPrompt | str | Sequence[Message]
"""What `LearnedRouter.predict` accepts per prompt: a table row, a logged prompt, a prompt string or a
conversation."""

SIGNAL_FEATURES: tuple[str, ...] = (
    "code",
    "math",
    "reasoning",
    "log_prompt_tokens",
    "log_last_user_tokens",
    "log_turns",
    *(f"signals_task={task}" for task in TASKS),
)
"""Names of the signal features, in the order `signal_vector` gives them."""

CONTENT_FEATURES: tuple[str, ...] = (*SIGNAL_FEATURES, *SHAPE_FEATURES)
"""Names of the dense content features: the signal features, then the shape features."""

_EMPTY_CONTEXT = StepContext()


@runtime_checkable
class Embedder(Protocol):
    """Your own text embedder: `embedder(texts)` returns float32 vectors, shape (len(texts), d).

    Plug one into `train_router(..., embedder=...)` to route on its vectors instead of the built-in
    hashed n-grams (pass the same embedder to `LearnedRouter.load`). It must be deterministic: the
    router learns from the vectors it gave in training. gearshift never downloads a model itself.
    """

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of `texts`, one row per text."""
        ...


def signal_vector(signals: Signals) -> np.ndarray:
    """The content signals of a request as numbers, in the order of `SIGNAL_FEATURES`."""
    return np.array(signal_values(signals), dtype=np.float64)


def signal_values(signals: Signals) -> list[float]:
    """`signal_vector` as a list of floats: a decision on one prompt adds them up without an array."""
    return [
        signals.code,
        signals.math,
        signals.reasoning,
        # Logs, scaled to about [0, 1] for prompts up to 20k tokens: size matters by ratio, not by count.
        math.log1p(signals.prompt_tokens) / 10.0,
        math.log1p(signals.last_user_tokens) / 10.0,
        math.log(max(signals.turns, 1)),
        *_task_one_hot(signals.task),
    ]


@functools.cache
def _task_one_hot(task: str) -> tuple[float, ...]:
    """The one-hot of a signals task over `TASKS`, built once per task."""
    return tuple(float(task == name) for name in TASKS)


@dataclass(frozen=True, slots=True)
class PromptInput:
    """One prompt as a learned router reads it: its text, its signals and its task label (or None)."""

    text: str
    signals: Signals
    task: str | None


def messages_text(messages: Sequence[Message]) -> str:
    # The same text `OutcomeRow.prompt_text` gives, so training and routing read prompts alike.
    return "\n\n".join(m.text for m in messages if m.role == "user")


def prompt_input(prompt: PromptLike, task: str | None = None) -> PromptInput:
    """The `PromptInput` of a row, a logged prompt, a prompt string or a conversation; a row brings its
    own task, and so does a logged prompt that has one."""
    if isinstance(prompt, OutcomeRow):
        messages = prompt.as_messages()
        return PromptInput(prompt.prompt_text, _signals(messages), prompt.task)
    if isinstance(prompt, LoggedPrompt):
        return prompt_input(prompt.prompt, prompt.task if prompt.task is not None else task)
    if isinstance(prompt, str):
        return PromptInput(prompt, _signals((Message.user(prompt),)), task)
    messages = tuple(prompt)
    if not all(isinstance(m, Message) for m in messages):
        raise TypeError(
            "a prompt must be an OutcomeRow, a LoggedPrompt, a string, or a sequence of Message values"
        )
    return PromptInput(messages_text(messages), _signals(messages), task)


def prompt_inputs(prompts: Sequence[PromptLike], task: str | None = None) -> list[PromptInput]:
    """`prompt_input` of every prompt; `task` labels the prompts that bring no task of their own."""
    if isinstance(prompts, (str, OutcomeRow)):
        raise TypeError("pass a sequence of prompts, not a single prompt")
    return [prompt_input(p, task) for p in prompts]


def _signals(messages: tuple[Message, ...]) -> Signals:
    return extract_signals(ChatRequest(messages=messages), _EMPTY_CONTEXT)


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """How prompts become features; saved in the router artifact so routing reads prompts as training did.

    `text_dims` is the width of the hashed n-gram block (0 when `embedder` names a user embedder whose
    vectors have `embed_dims` columns instead). `content` says whether the `CONTENT_FEATURES` (signals
    and text shape) are used.
    `tasks` is the task-label vocabulary seen in training (empty when the table had a single label).
    """

    text_dims: int
    embedder: str | None
    embed_dims: int
    content: bool
    tasks: tuple[str, ...]

    @property
    def dense_width(self) -> int:
        """Columns of the dense block: the embedding, the content features, then the task one-hot."""
        return self.embed_dims + (len(CONTENT_FEATURES) if self.content else 0) + len(self.tasks)


@dataclass(frozen=True, slots=True)
class PromptFeatures:
    """Features of a batch of prompts.

    The text block is in compressed-row form (`indptr`, `indices`, `values`: row i's columns are
    `indices[indptr[i]:indptr[i + 1]]`), empty when an embedder is used. `dense` holds the embedding,
    content features and task one-hot, shape (n, spec.dense_width). `task_known` says, per row, whether
    its task label was in the training vocabulary.
    """

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    dense: np.ndarray
    task_known: np.ndarray

    @property
    def rows(self) -> int:
        """How many prompts."""
        return int(self.dense.shape[0])


@functools.lru_cache(maxsize=16)
def _task_index(tasks: tuple[str, ...]) -> Mapping[str, int]:
    """Column of each task label in the one-hot block (cached: routing asks on every decision)."""
    return {task: i for i, task in enumerate(tasks)}


def build_features(
    spec: FeatureSpec, inputs: Sequence[PromptInput], embedder: Embedder | None = None
) -> PromptFeatures:
    """The features of `inputs` under `spec`; `embedder` is required when the spec names one."""
    n = len(inputs)
    dense = np.zeros((n, spec.dense_width), dtype=np.float64)
    column = 0
    if spec.embed_dims:
        if embedder is None:
            raise ValueError(f"these features need the embedder '{spec.embedder}'; pass it as embedder=")
        vectors = np.asarray(embedder([item.text for item in inputs]), dtype=np.float64)
        if vectors.shape != (n, spec.embed_dims):
            raise ValueError(
                f"the embedder returned shape {vectors.shape}; expected ({n}, {spec.embed_dims}) "
                "as in training"
            )
        dense[:, : spec.embed_dims] = vectors
        column = spec.embed_dims
    if spec.content:
        signal_end, shape_end = column + len(SIGNAL_FEATURES), column + len(CONTENT_FEATURES)
        for row, item in enumerate(inputs):
            dense[row, column:signal_end] = signal_vector(item.signals)
            dense[row, signal_end:shape_end] = shape_vector(item.text)
        column = shape_end
    task_index = _task_index(spec.tasks)
    task_known = np.zeros(n, dtype=bool)
    for row, item in enumerate(inputs):
        where = task_index.get(item.task) if item.task is not None else None
        if where is not None:
            dense[row, column + where] = 1.0
            task_known[row] = True
    indptr = np.zeros(n + 1, dtype=np.int64)
    indices: list[np.ndarray] = []
    values: list[np.ndarray] = []
    if spec.text_dims:
        for row, item in enumerate(inputs):
            cols, vals = hashed_terms(item.text, spec.text_dims)
            indices.append(cols)
            values.append(vals)
            indptr[row + 1] = indptr[row] + cols.size
    return PromptFeatures(
        indptr,
        np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64),
        np.concatenate(values) if values else np.zeros(0, dtype=np.float32),
        dense,
        task_known,
    )
