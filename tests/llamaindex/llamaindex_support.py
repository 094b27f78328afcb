"""Shared pieces of the LlamaIndex adapter's tests: the model registry and what a test observed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gearshift import JSONLDecisionLog, ModelPrices, ModelRegistry, ModelSpec, Router, Usage, read_records
from gearshift.testing import LocalOpenAIServer

KEY = "sk-llamaindex-test-5e2b71"

REGISTRY = ModelRegistry(
    [
        ModelSpec(
            id="small",
            provider="local",
            model="small",
            tier=1,
            prices=ModelPrices(input=0.1, output=0.4),
            context_window=16_000,
        ),
        ModelSpec(
            id="large", provider="local", model="large", tier=2, prices=ModelPrices(input=2.0, output=8.0)
        ),
    ]
)

MakeRouter = Callable[..., Router]


def local_config(base_url: str) -> str:
    """A gearshift.toml routing to a keyless local server's `small` (tier 1) and `large` (tier 2)."""
    return f"""
[providers.local]
kind = "openai"
base_url = "{base_url}"
require_key = false

[[models]]
id = "small"
provider = "local"
model = "small"
tier = 1
prices = {{ input = 0.15, output = 0.6 }}

[[models]]
id = "large"
provider = "local"
model = "large"
tier = 2
prices = {{ input = 2.5, output = 10.0 }}
"""


class Observed:
    """What the server received and the decision log recorded during a test."""

    def __init__(self, server: LocalOpenAIServer, log: JSONLDecisionLog) -> None:
        self.server = server
        self.log = log

    def served(self) -> list[str | None]:
        """Which model served each request the server received, in order."""
        return [r.model for r in self.server.requests]

    def tools(self, index: int) -> list[str]:
        """The names of the tools sent with one request."""
        body = self.server.requests[index].body
        return [t["function"]["name"] for t in body.get("tools", [])]

    def body(self, index: int) -> dict[str, Any]:
        """The JSON body of one request."""
        body: dict[str, Any] = self.server.requests[index].body
        return body

    def records(self, kind: str) -> list[dict[str, Any]]:
        """The decision log's records of one kind, in order."""
        self.log.flush()
        return [r for r in read_records(self.log.path) if r["kind"] == kind]

    def spent(self) -> float:
        """What every successful attempt cost, priced from the usage the server reported."""
        total = 0.0
        for record in self.records("attempt"):
            spec = REGISTRY[record["model"]]
            total += spec.cost(Usage(record["input_tokens"], record["output_tokens"]))
        return total
