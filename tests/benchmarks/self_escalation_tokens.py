"""What self-escalation costs in input tokens: one prompt with and without the injected `escalate` tool.

    uv run python tests/benchmarks/self_escalation_tokens.py [--prompt "What is 2+2?"] [--json]

One `LocalOpenAIServer` on 127.0.0.1 serves two tiers through the real `openai` SDK; the same router
answers the prompt with `self_escalation` off and on (the prompt goes to the cheap tier, below the top,
so the tool is offered). Reported: the input tokens each call was billed (the local server counts every
message and tool schema with gearshift's own estimate, as a provider counts its tokenizer's), the
difference, and the escalate tool's schema in characters. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json

from _local_pair import REGISTRY

from gearshift import Router, SignalScorer
from gearshift.providers import OpenAIProvider
from gearshift.testing import LocalOpenAIServer


def _input_tokens(server: LocalOpenAIServer, prompt: str, *, self_escalation: bool) -> tuple[int, int]:
    """Input tokens billed for `prompt`, and the characters of the tool schemas sent with it."""
    provider = OpenAIProvider("local", base_url=server.base_url, require_key=False)
    policy = SignalScorer()
    with Router(REGISTRY, policy=policy, providers=[provider], self_escalation=self_escalation) as router:
        before = len(server.requests)
        answer = router.complete(prompt)
    tools = server.requests[before].body.get("tools") or []
    return answer.usage.input_tokens, len(json.dumps(tools))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", default="What is 2+2?")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    with LocalOpenAIServer(models=("small", "large")) as server:
        without, _ = _input_tokens(server, args.prompt, self_escalation=False)
        with_tool, schema_chars = _input_tokens(server, args.prompt, self_escalation=True)
    figures = {
        "prompt": args.prompt,
        "input_tokens_without": without,
        "input_tokens_with_self_escalation": with_tool,
        "added_tokens": with_tool - without,
        "escalate_schema_chars": schema_chars,
    }
    if not args.json:
        print(
            f"{args.prompt!r}: {without} input tokens without self-escalation, {with_tool} with it "
            f"(+{with_tool - without}: the escalate tool's schema, {schema_chars} characters)"
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
