"""What the CLI tests share: a gearshift.toml for one model on a local server, a port nobody serves."""

from __future__ import annotations

import socket


def closed_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
