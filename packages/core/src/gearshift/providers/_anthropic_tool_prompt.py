"""The system prompt Anthropic's API adds to a request that sends tools, and bills as input.

Whenever a request has `tools`, the Messages API puts a tool-use system prompt of its own before the
caller's, counted in the answer's `input_tokens` though no part of the request shows it. Anthropic's
tool use docs give its size per model and tool choice ("Tool use system prompt token count",
https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/overview#pricing): 346 tokens with
`auto` or `none` and 313 with `any` or a named `tool` on Claude Opus 4.x, Sonnet 4.x, Sonnet 3.7 and
Haiku 4.5; Claude 3 and 3.5 Haiku, Claude 3 Sonnet and Claude 3 Opus have counts of their own. A
model the table does not list is given the current models' counts. Pure.
"""

from __future__ import annotations

from .._messages import ChatRequest

__all__ = ["system_prompt_tokens", "tool_prompt_tokens"]

# (auto or none, any or tool), as the docs' table lists them.
_CURRENT = (346, 313)  # Claude Opus 4.x, Sonnet 4.x, Sonnet 3.7, Haiku 4.5
_OLDER = (
    ("claude-3-opus", (530, 281)),
    ("claude-3-sonnet", (159, 235)),
    ("claude-3-haiku", (264, 340)),
    ("claude-3-5-haiku", (264, 340)),
)


def tool_prompt_tokens(model: str, request: ChatRequest) -> int:
    """Tokens of the tool-use system prompt Anthropic adds when `request` goes to `model` (the
    provider's model name, a Bedrock or Vertex id included): 0 unless it sends tools (the caller's,
    or the forced answer tool of a `response_schema`)."""
    if not request.tools and request.response_schema is None:
        return 0
    # A response schema forces a tool (`any`, or the answer tool by name), as `required` and a named
    # choice do; the caller's tools alone go with `auto` or `none`.
    forced = request.response_schema is not None or request.tool_choice not in (None, "auto", "none")
    return system_prompt_tokens(model, forced=forced)


def system_prompt_tokens(model: str, *, forced: bool) -> int:
    """The docs' count for `model` with a tool choice of `any` or `tool` (`forced`), else of `auto`
    or `none`."""
    counts = next((counts for family, counts in _OLDER if family in model), _CURRENT)
    return counts[1] if forced else counts[0]
