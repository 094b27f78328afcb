"""gearshift.toml texts the CLI tests write: one model on a local OpenAI-compatible server."""

from __future__ import annotations


def local_config(url: str, extra: str = "") -> str:
    """A config routing to the model `tiny` of the server at `url` (no key), plus `extra` TOML."""
    return f"""
[providers.local]
kind = "openai"
base_url = "{url}"
require_key = false

[[models]]
id = "tiny"
provider = "local"
model = "tiny"
tier = 1
prices = {{ input = 0.1, output = 0.2 }}
{extra}"""
