"""`SelfConsistencyGate`: ask the answering model again; if its answers disagree, it was guessing.

A model that knows the answer tends to reach it again when re-sampled; one that does not scatters.
The gate asks the same model `samples - 1` more times (concurrently, through `AnswerCheck.ask`, so
each extra call is recorded and costed) and compares each extra answer's conclusion with the first's:
numbers, choice letters and JSON values must be equal, other text must share enough words (see
`same_answer`). The gate's confidence is the share of extra samples that agree; the answer is
accepted when that share reaches `min_agreement`.

It needs a live provider that samples: a replay provider answers every call with the same recorded
text, so every sample agrees and the gate accepts everything. A deterministic live setup
(temperature 0 on some servers) agrees too often for the same reason; set `temperature` to re-sample
with one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable

from .._errors import AllModelsFailed, InvalidRequestError, ProviderError, RoutingError
from .._messages import ChatResponse, ToolCall
from ._final_answer import same_answer
from ._gate import AnswerCheck, Verdict

__all__ = ["SelfConsistencyGate", "agree_on_answer"]

AgreeFn = Callable[[ChatResponse, ChatResponse], bool]


def _conclusion(response: ChatResponse) -> str:
    # A tool call's conclusion is which tool, with which arguments; otherwise the text.
    if response.tool_calls:
        return "\n".join(f"{c.name} {c.arguments}" for c in response.tool_calls)
    return response.text


def _call_key(call: ToolCall) -> tuple[str, str]:
    # Call ids differ between samples and key order is arbitrary: compare names and argument values.
    return call.name, json.dumps(call.parsed_arguments(), sort_keys=True)


def agree_on_answer(first: ChatResponse, second: ChatResponse, *, min_similarity: float = 0.5) -> bool:
    """The default agreement: the same tool calls (names and argument values), or the same final answer."""
    if first.tool_calls or second.tool_calls:
        try:
            left = sorted(_call_key(c) for c in first.tool_calls)
            right = sorted(_call_key(c) for c in second.tool_calls)
        except InvalidRequestError:  # unparsable arguments: compare the raw text instead
            return _conclusion(first) == _conclusion(second)
        return left == right
    return same_answer(first.text, second.text, min_similarity=min_similarity)


class SelfConsistencyGate:
    """Re-samples the answering model and accepts when enough samples agree with its first answer.

    `samples` counts the first answer: 2 means one extra call. `agree(first, other)` overrides how
    two answers are compared (the default compares final answers; `min_similarity` is its word-overlap
    bar for free text). `temperature`, when set, is used for the extra samples. A failed extra call
    counts as a disagreement (the gate cannot vouch for the answer), never as an error.
    """

    name = "self-consistency"

    def __init__(
        self,
        samples: int = 2,
        *,
        agree: AgreeFn | None = None,
        min_agreement: float = 1.0,
        min_similarity: float = 0.5,
        temperature: float | None = None,
    ) -> None:
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
            raise ValueError(
                f"samples must be an integer >= 2 (the first answer and one more), got {samples!r}"
            )
        if not 0.0 < min_agreement <= 1.0:
            raise ValueError(f"min_agreement must be in (0, 1], got {min_agreement}")
        self.samples = samples
        self.min_agreement = min_agreement
        self.min_similarity = min_similarity
        self.temperature = temperature
        self._agree = agree

    def __repr__(self) -> str:
        return f"SelfConsistencyGate(samples={self.samples}, min_agreement={self.min_agreement})"

    def agree(self, first: ChatResponse, other: ChatResponse) -> bool:
        """Whether `other` reaches the same conclusion as `first`."""
        if self._agree is not None:
            return self._agree(first, other)
        return agree_on_answer(first, other, min_similarity=self.min_similarity)

    async def _sample(self, answer: AnswerCheck) -> ChatResponse | None:
        request = answer.request
        if self.temperature is not None:
            request = dataclasses.replace(request, temperature=self.temperature)
        try:
            return await answer.ask(answer.response.model_id, request)
        except (ProviderError, AllModelsFailed, RoutingError):
            return None

    async def check(self, answer: AnswerCheck) -> Verdict:
        """Ask for the extra samples and count how many agree with the answer."""
        extra = await asyncio.gather(*(self._sample(answer) for _ in range(self.samples - 1)))
        agreeing = sum(1 for other in extra if other is not None and self.agree(answer.response, other))
        failed = sum(1 for other in extra if other is None)
        share = agreeing / len(extra)
        if share >= self.min_agreement:
            return Verdict(True, self.name, confidence=share)
        model = answer.response.model_id
        if len(extra) == 1:
            reason = (
                f"a second answer from {model} could not be had"
                if failed
                else f"a second answer from {model} reached a different conclusion"
            )
        else:
            reason = f"only {agreeing} of {len(extra)} more answers from {model} agreed with the first"
            if failed:
                reason += f" ({failed} could not be had)"
        return Verdict(False, self.name, reason, share)
