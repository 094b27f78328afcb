#!/usr/bin/env bash
# Makes the side environment tests/core/serve/test_llamaindex_through_proxy.py runs LlamaIndex in:
# .venvs/llamaindex-openai-like, from the pinned tests/core/serve/llamaindex-openai-like.txt (the
# registry, through uv). LlamaIndex's OpenAI LLM pins openai<3, which the workspace cannot hold.
# Does nothing when the venv already matches the pins.
set -euo pipefail
cd "$(dirname "$0")/../../.."
venv=.venvs/llamaindex-openai-like
requirements=tests/core/serve/llamaindex-openai-like.txt
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" = "$want" ]; then
    exit 0
fi
rm -rf "$venv"
uv venv --quiet "$venv"
uv pip install --quiet --python "$venv/bin/python" -r "$requirements"
echo "$want" > "$venv/.requirements.sha256"
