"""`LLMJudgeGate`: a configured model grades the answer, and a low grade escalates.

The judge is asked, through `AnswerCheck.ask` (so its call is recorded, budgeted and costed like any
other attempt), to grade the answer from 1 to 10 and to reply with a JSON object
`{"score": <1-10>, "reason": "..."}`; the request carries that JSON schema as its `response_schema`
so providers that support structured output enforce it. The gate's confidence is `score / 10`, and
the answer is accepted when the confidence reaches `threshold` (0.7: a 7 out of 10).

A judge that cannot grade, because its reply holds no usable score (not JSON, no `score`, a score
outside 1-10) or because its call failed (provider errors, every model failed, a budget refusal),
never crashes the routed call: `on_failure` decides. `"reject"` (the default) escalates, the safe
choice when the judge is there to protect quality; `"accept"` keeps the cheap answer, for a judge that
is only a cost saver. Either way the verdict's reason says what went wrong.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from .._errors import AllModelsFailed, GearshiftError, ProviderError, RoutingError
from .._messages import ChatRequest, ChatResponse, Message
from ._final_answer import parse_json_answer
from ._gate import AnswerCheck, Verdict

__all__ = [
    "DEFAULT_JUDGE_PROMPT",
    "GRADE_SCHEMA",
    "LLMJudgeGate",
    "NoGrade",
    "judge_request",
    "parse_grade",
]

DEFAULT_JUDGE_PROMPT = (
    "You are a strict grader of answers written by an AI assistant. You are shown a conversation "
    "and the assistant's answer to its last message. Judge whether the answer is correct, complete "
    "and directly useful to the user; check every claim and every calculation yourself.\n"
    "Grade from 1 to 10: 10 = fully correct and complete; 7 = correct with minor gaps; 4 = partly "
    "wrong or incomplete; 1 = wrong, empty, evasive or a refusal.\n"
    'Reply with only a JSON object: {"score": <integer 1-10>, "reason": "<one short sentence>"}.'
)
"""The judge's instructions (its system message)."""

GRADE_SCHEMA: Mapping[str, Any] = {
    "title": "grade",
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 10},
        "reason": {"type": "string"},
    },
    "required": ["score", "reason"],
    "additionalProperties": False,
}
"""The JSON schema the judge's reply must match."""

# A judge needs the question and the answer, not a whole agent history: long messages are clipped to
# their head and tail, and only the latest messages are shown.
_MESSAGE_CHARS = 4000
_TRANSCRIPT_MESSAGES = 12
_REPLY_TOKENS = 200
_EMBEDDED_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def _clip(text: str, limit: int = _MESSAGE_CHARS) -> str:
    if len(text) <= limit:
        return text
    head = limit * 3 // 4
    return f"{text[:head]}\n[... {len(text) - limit} characters left out ...]\n{text[-(limit - head) :]}"


def _render(message: Message) -> str:
    parts = [message.text]
    for call in message.tool_calls:
        parts.append(f"(calls tool {call.name} with arguments {call.arguments})")
    label = message.role if message.role != "tool" else f"tool result{' (error)' if message.is_error else ''}"
    return f"<{label}>\n{_clip(chr(10).join(p for p in parts if p))}\n</{label}>"


def judge_request(
    request: ChatRequest, response: ChatResponse, *, prompt: str, structured: bool
) -> ChatRequest:
    """The request that asks the judge to grade `response` as an answer to `request`."""
    shown = request.messages[-_TRANSCRIPT_MESSAGES:]
    skipped = len(request.messages) - len(shown)
    transcript = "\n".join(_render(m) for m in shown)
    if skipped:
        transcript = f"[{skipped} earlier messages left out]\n{transcript}"
    answer = _render(Message.assistant(response.text, response.tool_calls))
    if request.response_schema is not None:
        answer += (
            "\n(The user asked for JSON matching this schema: " + json.dumps(request.response_schema) + ")"
        )
    user = f"## Conversation\n{transcript}\n\n## Answer to grade\n{answer}\n\nGrade the answer."
    return ChatRequest(
        messages=(Message.system(prompt), Message.user(user)),
        temperature=0.0,
        max_tokens=_REPLY_TOKENS,
        response_schema=GRADE_SCHEMA if structured else None,
    )


def parse_grade(text: str) -> tuple[float, str] | None:
    """(score in [1, 10], reason) from a judge's reply, or None when it holds no usable grade.

    The reply must be a JSON object with a numeric `score` (a number written as a string is taken);
    a code fence around it, or prose around one `{...}` object, is tolerated.
    """
    ok, value = parse_json_answer(text)
    if not ok:
        embedded = _EMBEDDED_OBJECT.search(text)
        if embedded is None:
            return None
        ok, value = parse_json_answer(embedded.group(0))
    if not ok or not isinstance(value, dict):
        return None
    score = value.get("score")
    if isinstance(score, str):
        try:
            score = float(score.strip())
        except ValueError:
            return None
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        return None
    if not 1 <= score <= 10:
        return None
    reason = value.get("reason")
    return float(score), reason.strip() if isinstance(reason, str) else ""


class NoGrade(GearshiftError):
    """The judge gave no usable grade: its call failed, or its reply holds no score in 1-10."""


class LLMJudgeGate:
    """Asks `model_id` to grade the answer 1-10; accepts when `score / 10 >= threshold`.

    `prompt` replaces the judge's instructions (keep the reply format: a JSON object with `score`).
    `on_failure` says what a judge that gives no usable grade means: `"reject"` (escalate) or
    `"accept"`. `structured=False` leaves the JSON schema out of the judge's request, for judge
    models that cannot be asked for structured output.
    """

    name = "llm-judge"

    def __init__(
        self,
        model_id: str,
        *,
        threshold: float = 0.7,
        prompt: str = DEFAULT_JUDGE_PROMPT,
        on_failure: Literal["reject", "accept"] = "reject",
        structured: bool = True,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1] (a share of the top grade), got {threshold}")
        if on_failure not in ("reject", "accept"):
            raise ValueError(f"on_failure must be 'reject' or 'accept', got {on_failure!r}")
        if not prompt.strip():
            raise ValueError("the judge prompt is empty")
        self.model_id = model_id
        self.threshold = threshold
        self.prompt = prompt
        self.on_failure = on_failure
        self.structured = structured

    def __repr__(self) -> str:
        return f"LLMJudgeGate({self.model_id!r}, threshold={self.threshold}, on_failure={self.on_failure!r})"

    def _failed(self, why: str) -> Verdict:
        accept = self.on_failure == "accept"
        action = "keeping the answer" if accept else "escalating"
        return Verdict(accept, self.name, f"{why}; {action}")

    async def grade(self, answer: AnswerCheck) -> tuple[float, str]:
        """The judge's (score in [1, 10], reason) for the answer.

        Raises `NoGrade` when the judge's call failed or its reply holds no usable grade: a caller
        that must not make up a score (shadow evaluation) skips the answer; `check` follows
        `on_failure`.
        """
        request = judge_request(
            answer.request, answer.response, prompt=self.prompt, structured=self.structured
        )
        try:
            reply = await answer.ask(self.model_id, request)
        except (ProviderError, AllModelsFailed, RoutingError) as exc:
            raise NoGrade(f"the judge ({self.model_id}) could not be asked: {exc}") from exc
        grade = parse_grade(reply.text)
        if grade is None:
            shown = " ".join(reply.text.split())[:80] or "an empty reply"
            raise NoGrade(f"the judge ({self.model_id}) gave no usable grade ({shown!r})")
        return grade

    async def check(self, answer: AnswerCheck) -> Verdict:
        """Have the judge grade the answer; a failed or unreadable judge follows `on_failure`."""
        try:
            score, why = await self.grade(answer)
        except NoGrade as exc:
            return self._failed(str(exc))
        confidence = score / 10.0
        if confidence >= self.threshold:
            return Verdict(True, self.name, confidence=confidence)
        because = f": {why}" if why else ""
        shown_score = f"{score:g}"
        return Verdict(
            False,
            self.name,
            f"the judge ({self.model_id}) graded the answer {shown_score}/10, below "
            f"{self.threshold * 10:g}{because}",
            confidence,
        )
