#!/usr/bin/env bash
# The MCP Inspector CLI against the stdio server: list the tools, then call `route`. Fails if either
# call fails or answers with an error (the Inspector exits 0 on a tool's error result, so its JSON
# output is checked too). Needs Node (npx); the Inspector comes from npm on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

INSPECTOR="@modelcontextprotocol/inspector@0.15.0"
server="$(uv run --no-sync python -c 'import shutil; print(shutil.which("gearshift-mcp") or "")')"
if [ -z "$server" ]; then
    echo "mcp inspector check: gearshift-mcp is not installed (run uv sync first)" >&2
    exit 1
fi
inspect() {
    timeout 300 npx -y "$INSPECTOR" --cli "$server" "$@"
}

echo "-- tools/list"
tools="$(inspect --method tools/list)"
names="$(printf '%s' "$tools" | uv run --no-sync python -c 'import json, sys; print(" ".join(sorted(t["name"] for t in json.load(sys.stdin)["tools"])))')"
echo "tools: $names"
[ "$names" = "budget_status escalate feedback route" ] || { echo "unexpected tools: $names" >&2; exit 1; }

echo "-- tools/call route"
answer="$(inspect --method tools/call --tool-name route \
    --tool-arg 'prompt=Prove that the square root of 2 is irrational' --tool-arg step_type=plan)"
printf '%s' "$answer" | uv run --no-sync python -c '
import json, sys
result = json.load(sys.stdin)
if result.get("isError") or "model" not in result.get("structuredContent", {}):
    sys.exit(f"route failed: {json.dumps(result)}")
decision = result["structuredContent"]
print("route ->", decision["model"], "tier", decision["tier"], "|", decision["reasons"][-1])
'

# Optional arguments: the Inspector converts a value by its property's `type` (an `anyOf [integer,
# null]` has none, and "2" reached the server as a string it refused).
echo "-- tools/call route, optional arguments"
answer="$(inspect --method tools/call --tool-name route --tool-arg 'prompt=Fix the failing test' \
    --tool-arg step_type=recover --tool-arg step_index=2 --tool-arg 'constraints={"max_tier": 2}')"
printf '%s' "$answer" | uv run --no-sync python -c '
import json, sys
result = json.load(sys.stdin)
if result.get("isError") or result.get("structuredContent", {}).get("tier", 99) > 2:
    sys.exit(f"route with optional arguments failed: {json.dumps(result)}")
print("route ->", result["structuredContent"]["model"], "tier", result["structuredContent"]["tier"])
'
