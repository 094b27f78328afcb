"""A provider that answers from an outcome table, so the whole router pipeline runs offline.

`ReplayProvider` serves the models of an `OutcomeTable`: a `ModelSpec` whose `provider` is the replay
provider's name and whose `model` is the table's model key. For each request it finds the row by the
prompt and returns that model's recorded response, with the recorded score in the response metadata
and the recorded tokens and cost as usage and cost. No network, no clock, no randomness: the same
request always gets the same answer.

The prompt is the text of the first user message for rows whose prompt is a string, or the user
messages joined by blank lines for rows whose prompt is a conversation; both are compared up to
whitespace. Tools, `max_tokens`, `stop` and sampling settings are ignored: a replay can only say what
was recorded.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from .._errors import ProviderError
from .._messages import ChatRequest, ChatResponse, Message, StreamDone, StreamEvent, TextDelta, Usage
from .._models import ModelSpec
from ..datasets._outcomes import Outcome, OutcomeRow, OutcomeTable, normalize_prompt
from ..signals._tokens import estimate_tokens

__all__ = ["ReplayProvider"]

# A chunk is a word with the whitespace after it (or leading whitespace alone), so the chunks of a
# stream join back into exactly the recorded text.
_CHUNKS = re.compile(r"\S+\s*|\s+")
_PREFIX_CHARS = 60


def _prefix(text: str) -> str:
    text = normalize_prompt(text)
    return text if len(text) <= _PREFIX_CHARS else text[: _PREFIX_CHARS - 1] + "…"


class ReplayProvider:
    """Answers chat calls with the responses recorded in an outcome table.

    `name` is the provider name the models' `ModelSpec.provider` refers to. An unknown prompt, or a
    model the prompt's row has no outcome for, raises `ProviderError(kind="bad_request")`, which the
    router does not fall back on: a missing record is a setup mistake to fix, not an outage to route
    around.
    """

    name: str
    """The provider configuration's name, as `ModelSpec.provider` refers to it."""

    def __init__(self, table: OutcomeTable, name: str = "replay") -> None:
        self.table = table
        """The outcomes this provider answers from."""
        self.name = name
        # Build the table's prompt index now rather than inside the first (async) call.
        table.by_prompt("")

    def __repr__(self) -> str:
        return f"ReplayProvider(name={self.name!r}, table={self.table!r})"

    def _find(self, model: ModelSpec, request: ChatRequest) -> tuple[OutcomeRow, Outcome]:
        users = [m.text for m in request.messages if m.role == "user"]
        row = None
        if users:
            first = self.table.by_prompt(users[0])
            if first is not None and isinstance(first.prompt, str):
                row = first
            else:
                whole = self.table.by_prompt("\n\n".join(users))
                if whole is not None and not isinstance(whole.prompt, str):
                    row = whole
        if row is None:
            shown = _prefix(users[0]) if users else "(no user message)"
            raise ProviderError(
                f"the outcome table has no row for the prompt {shown!r}",
                model_id=model.id,
                kind="bad_request",
            )
        outcome = row.outcomes.get(model.model)
        if outcome is None:
            raise ProviderError(
                f"row '{row.id}' (prompt {_prefix(row.prompt_text)!r}) has no outcome for model "
                f"'{model.model}'; it has: {', '.join(row.outcomes)}",
                model_id=model.id,
                kind="bad_request",
            )
        return row, outcome

    def _response(self, model: ModelSpec, row: OutcomeRow, outcome: Outcome) -> ChatResponse:
        text = outcome.response or ""
        input_tokens, output_tokens = outcome.input_tokens, outcome.output_tokens
        usage = Usage(
            input_tokens=estimate_tokens(row.prompt_text) if input_tokens is None else input_tokens,
            output_tokens=estimate_tokens(text) if output_tokens is None else output_tokens,
        )
        return ChatResponse(
            message=Message.assistant(text),
            model_id=model.id,
            provider_model=model.model,
            usage=usage,
            finish_reason="stop",
            cost_usd=outcome.cost_usd if outcome.cost_usd is not None else model.cost(usage),
            metadata={"score": outcome.score, "outcome_id": row.id, "task": row.task},
        )

    async def complete(self, model: ModelSpec, request: ChatRequest) -> ChatResponse:
        """The recorded answer of `model` to the request's prompt."""
        row, outcome = self._find(model, request)
        return self._response(model, row, outcome)

    async def stream(self, model: ModelSpec, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """The recorded answer as word-sized `TextDelta`s, then `StreamDone` with the full response.

        An unknown prompt raises `ProviderError` from the first `__anext__`, before any delta.
        """
        row, outcome = self._find(model, request)
        response = self._response(model, row, outcome)
        for chunk in _CHUNKS.findall(response.text):
            yield TextDelta(chunk)
        yield StreamDone(response)
