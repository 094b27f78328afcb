"""What the MCP tests share: the models of the local server, a router over them, result readers.

Three models on one `LocalOpenAIServer` (127.0.0.1): `small` (tier 1) and two tier-2 models, so that
routing really chooses and an escalation to the top tier can fall back inside it. The router reaches
them through the real `openai` SDK.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from mcp.types import CallToolResult, TextContent

from gearshift import ModelPrices, ModelRegistry, ModelSpec, Router, ScorerConfig, SignalScorer
from gearshift.providers import OpenAIProvider
from gearshift.testing import LocalOpenAIServer

LOCAL_KEY = "sk-mcp-local-3c9e51d2a7"
"""The local server's API key: it must never show up in anything a client sees."""

MODELS = ("small", "large", "large-b")

EASY = "What is the capital of France?"
HARD = (
    "Prove rigorously that there are infinitely many primes p with p = 3 mod 4, then derive an explicit "
    "bound on the n-th such prime. Reason step by step, justify every lemma, and check each inequality "
    "carefully: compute the integral of log(x)/x and analyze the asymptotic complexity of the sieve "
    "you use, with a formal proof of correctness for each step of the algorithm."
)


def spec(model_id: str, tier: int, price: float) -> ModelSpec:
    """A registry entry for one of the local server's models."""
    return ModelSpec(
        id=model_id,
        provider="local",
        model=model_id,
        tier=tier,
        prices=ModelPrices(input=price, output=price * 4),
    )


REGISTRY = ModelRegistry([spec("small", 1, 0.1), spec("large", 2, 2.0), spec("large-b", 2, 3.0)])


# The scorer weighing math and reasoning markers (off by default), so that the hard proofs of these
# tests go to the top tier: they check the adapter, not the policy.
MARKERS = ScorerConfig(math_weight=0.6, reasoning_weight=0.6)


def local_router(llm_server: LocalOpenAIServer, **options: Any) -> Router:
    """A router over `REGISTRY`, reaching the local server through the real `openai` SDK."""
    return Router(
        REGISTRY,
        policy=SignalScorer(MARKERS),
        providers=[OpenAIProvider("local", api_key=LOCAL_KEY, base_url=llm_server.base_url, timeout=5.0)],
        **options,
    )


def structured(result: CallToolResult) -> dict[str, Any]:
    """The structured content of a successful tool result."""
    assert not result.is_error, error_text(result)
    assert result.structured_content is not None
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    """The text of a tool result (for an error result, what went wrong)."""
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def resource_json(contents: Any) -> Any:
    """The JSON document of a `read_resource` result."""
    (item,) = contents.contents
    return json.loads(item.text)


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
"""A raw JSON-RPC `initialize` request, for tests that speak to the server without the SDK's client."""

KEY_ENV = "GEARSHIFT_MCP_TEST_KEY"
"""The variable the written config reads the local server's key from."""


def write_config(folder: Path, llm_server: LocalOpenAIServer, *, extra: str = "") -> Path:
    """A gearshift.toml for the local server's models, its key read from `KEY_ENV`; `extra` is appended."""
    rows = "".join(
        f'\n[[models]]\nid = "{m.id}"\nprovider = "local"\nmodel = "{m.model}"\ntier = {m.tier}\n'
        f"prices = {{ input = {m.prices.input}, output = {m.prices.output} }}\n"
        for m in REGISTRY
    )
    path = folder / "gearshift.toml"
    path.write_text(
        f'[providers.local]\nkind = "openai"\nbase_url = "{llm_server.base_url}"\napi_key_env = "{KEY_ENV}"\n'
        + rows
        + extra
    )
    return path


def gearshift_mcp_command() -> str:
    """The installed `gearshift-mcp` console script (next to this interpreter)."""
    script = Path(sys.executable).with_name("gearshift-mcp")
    found = str(script) if script.exists() else shutil.which("gearshift-mcp")
    assert found, "the gearshift-mcp script is not installed: run `uv sync`"
    return found


def server_env(**extra: str) -> dict[str, str]:
    """This process's environment without the test key or a config override, plus `extra`."""
    env = {
        k: v for k, v in os.environ.items() if k not in (KEY_ENV, "GEARSHIFT_CONFIG", "GEARSHIFT_MCP_TOKEN")
    }
    return {**env, **extra}
