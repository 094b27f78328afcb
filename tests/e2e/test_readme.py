"""Every Python block of the README runs, against local stand-ins for the OpenAI and Anthropic APIs.

The blocks use the built-in model ladder and real SDK clients; the official SDKs read
OPENAI_BASE_URL and ANTHROPIC_BASE_URL, which point them at servers on 127.0.0.1 here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gearshift import default_models
from gearshift.testing import LocalAnthropicServer, LocalOpenAIServer

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_python_examples() -> None:
    assert BLOCKS


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.splitlines()[0][:40])
def test_readme_python_block_runs(block: str, tmp_path: Path) -> None:
    ladder = default_models()
    openai_models = [m.model for m in ladder if m.provider == "openai"]
    anthropic_models = [m.model for m in ladder if m.provider == "anthropic"]
    with (
        LocalOpenAIServer(models=openai_models, api_key="sk-readme") as openai_server,
        LocalAnthropicServer(models=anthropic_models, api_key="sk-ant-readme") as anthropic_server,
    ):
        env = {
            **{k: v for k, v in os.environ.items() if k != "GEARSHIFT_CONFIG"},
            "OPENAI_API_KEY": "sk-readme",
            "OPENAI_BASE_URL": openai_server.base_url,
            "ANTHROPIC_API_KEY": "sk-ant-readme",
            "ANTHROPIC_BASE_URL": anthropic_server.url,
        }
        result = subprocess.run(
            [sys.executable, "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
    assert result.returncode == 0, result.stderr
