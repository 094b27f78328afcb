"""What the learned answer judge sees of a (prompt, answer) pair: a fixed-length vector.

Three blocks, concatenated:

1. the prompt's hashed word and character n-grams (`gearshift.learning.text_features`): what kind of
   question it is, which says how often the answering model gets such questions right;
2. the answer's hashed n-grams: how the answer reads (the phrases of confident and of lost answers);
3. the answer's shape: whether it marks a final answer (and whether that is a number or a letter),
   whether it is empty, refuses or hedges, whether it stops mid-sentence, whether an equation it
   shows is wrong, and its length against the prompt's: signals a text model would otherwise have
   to learn from examples, spelled out so that a small training table need not rediscover them.

`ANSWER_FEATURES_VERSION` names this recipe; a saved judge records it with its widths, and a file of
another recipe is refused rather than scored with the wrong columns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._messages import ChatRequest, ChatResponse, Message
from ._arithmetic import wrong_equations
from ._final_answer import marked_answer
from ._heuristic import check_hedging, check_refusal

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ANSWER_FEATURES_VERSION", "SHAPE_FEATURES", "answer_features"]

ANSWER_FEATURES_VERSION = 1
"""The feature recipe; bump it whenever a column changes meaning."""

SHAPE_FEATURES = (
    "marks_final_answer",
    "final_answer_is_number",
    "final_answer_is_choice",
    "empty",
    "refuses",
    "hedges",
    "stops_mid_sentence",
    "wrong_arithmetic",
    "answer_words_log",
    "prompt_words_log",
    "answer_to_prompt_words_log_ratio",
)
"""The names of the answer-shape columns, in order."""

_ENDINGS = frozenset(".!?)]}\"'`*$%>")
# Word counts enter as log1p(words) / _LOG_SCALE so typical answers land near 0.5-1, like the n-grams.
_LOG_SCALE = 8.0
_PROBE = ChatRequest(messages=(Message.user("-"),))


def _shape(prompt: str, answer: str) -> list[float]:
    stripped = answer.rstrip()
    marked = marked_answer(answer)
    response = ChatResponse(Message.assistant(answer), "", "")
    answer_words = len(answer.split())
    prompt_words = len(prompt.split())
    last = stripped[-1:] if stripped else ""
    return [
        float(marked is not None),
        float(marked is not None and marked.kind == "number"),
        float(marked is not None and marked.kind == "choice"),
        float(not stripped),
        float(check_refusal(_PROBE, response) is not None),
        float(check_hedging(_PROBE, response) is not None),
        float(bool(stripped) and last not in _ENDINGS and not last.isdigit()),
        float(bool(wrong_equations(answer))),
        math.log1p(answer_words) / _LOG_SCALE,
        math.log1p(prompt_words) / _LOG_SCALE,
        (math.log1p(answer_words) - math.log1p(prompt_words)) / _LOG_SCALE,
    ]


def answer_features(
    prompts: Sequence[str], answers: Sequence[str], *, prompt_dims: int, answer_dims: int
) -> np.ndarray:
    """The feature matrix of (prompt, answer) pairs: float64, shape (n, prompt_dims + answer_dims +
    len(SHAPE_FEATURES))."""
    import numpy as np  # imported here: importing gearshift must not load NumPy

    from ..learning import text_features

    if len(prompts) != len(answers):
        raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
    blocks = [
        text_features(list(prompts), dims=prompt_dims).astype(np.float64),
        text_features(list(answers), dims=answer_dims).astype(np.float64),
        np.array([_shape(p, a) for p, a in zip(prompts, answers, strict=True)], dtype=np.float64).reshape(
            len(prompts), len(SHAPE_FEATURES)
        ),
    ]
    return np.hstack(blocks)
