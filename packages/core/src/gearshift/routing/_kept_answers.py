"""Answers a routed call received, kept so that the call done again does not buy them twice.

A routed call cut off (a batch stopped by Ctrl-C) may have received answers it had not finished with:
the model's answer while its cost was being committed, the classifier's verdict, a cascade judge's
grade on a cheap answer that a stronger model might still replace. Which of them would have been final
is the router's to know, not its caller's. So `keeping(see)` hands every answer a chain receives
(`ChainRun.complete`) to `see` as it arrives, with the question it answers, in that task and the tasks
it starts; and `answering_from(kept)` gives them back when the call is made again: a model asked the
same question is answered from `kept`, in the order they came, without a call or a charge. The router
then takes the steps it took before with the answers it had, and pays only for what it had not received.

A question is the request as sent to the model, its output cap aside: the cap follows what the budget
has left, which the answers bought before a cut-off have changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._messages import ChatRequest, ChatResponse

__all__ = ["KeptAnswer", "answering_from", "given_back", "keeping", "note_answer", "question_of"]


@dataclass(frozen=True, slots=True)
class KeptAnswer:
    """An answer `model_id` gave to `question` (see `question_of`)."""

    model_id: str
    question: str
    response: ChatResponse


_KEEPERS: ContextVar[tuple[Callable[[KeptAnswer], None], ...]] = ContextVar(
    "gearshift_answer_keepers", default=()
)
_GIVEN: ContextVar[list[KeptAnswer] | None] = ContextVar("gearshift_answers_given_back", default=None)


def question_of(request: ChatRequest) -> str:
    """The digest of what `request` asks a model, its output cap aside."""
    asked = repr(replace(request, max_tokens=None))  # frozen values all through: the same text each run
    return hashlib.sha256(asked.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@contextmanager
def keeping(see: Callable[[KeptAnswer], None]) -> Iterator[None]:
    """Send every answer received in this context to `see` until the block ends."""
    token = _KEEPERS.set((*_KEEPERS.get(), see))
    try:
        yield
    finally:
        _KEEPERS.reset(token)


@contextmanager
def answering_from(kept: tuple[KeptAnswer, ...]) -> Iterator[list[KeptAnswer]]:
    """Answer this context's calls from `kept` first; yields those not given back yet."""
    left = list(kept)
    token = _GIVEN.set(left)
    try:
        yield left
    finally:
        _GIVEN.reset(token)


def note_answer(model_id: str, request: ChatRequest, response: ChatResponse) -> None:
    """`model_id` answered `request` with `response`: tell the keepers open in this context."""
    keepers = _KEEPERS.get()
    if keepers:
        answer = KeptAnswer(model_id, question_of(request), response)
        for see in keepers:
            see(answer)


def given_back(model_id: str, request: ChatRequest) -> ChatResponse | None:
    """The kept answer of `model_id` to `request`, taken (and kept again, as if it had just come), or
    None when none is kept for it."""
    left = _GIVEN.get()
    if not left:
        return None
    question = question_of(request)
    for index, answer in enumerate(left):
        if answer.model_id == model_id and answer.question == question:
            del left[index]
            note_answer(model_id, request, answer.response)
            return answer.response
    return None
