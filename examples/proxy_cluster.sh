#!/usr/bin/env bash
# Scale-out: Redis plus three `gearshift serve` processes on loopback, sharing one budget.
#
# The proxies keep no state of their own: spend lives in Redis, so any number of them (on any
# number of hosts, behind any load balancer) enforce one limit together. Runs offline: the model is
# the local stand-in server from gearshift.testing (point base_url at a real provider in production).
# Sends requests round-robin until the shared budget refuses them, prints the spend, stops by itself.
#
#   bash examples/proxy_cluster.sh
#
# PYTHON (default: uv run python) is the interpreter that has gearshift[serve] installed.
set -euo pipefail

PYTHON=${PYTHON:-"uv run python"}
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { $PYTHON -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {  # wait_for URL: until it answers 200, at most 60 s
    for _ in $(seq 600); do
        curl -fs "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    return 1
}

# 1. Redis, the shared ledger (no persistence: a demo).
redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no >"$work/redis.log" &
pids+=($!)

# 2. A local OpenAI-compatible model server (a deterministic stand-in, no network, no key).
$PYTHON -c '
import sys, time
from gearshift.testing import LocalOpenAIServer
server = LocalOpenAIServer(models=("small", "large"))
open(sys.argv[1], "w").write(server.base_url)
time.sleep(3600)
' "$work/model_url" &
pids+=($!)
for _ in $(seq 600); do [ -s "$work/model_url" ] && break; sleep 0.1; done
model_url=$(cat "$work/model_url")

# 3. One gearshift.toml for every proxy: the models, and a hard $0.002 limit on team:demo in Redis.
cat >"$work/gearshift.toml" <<TOML
[providers.local]
kind = "openai"
base_url = "$model_url"
require_key = false

[[models]]
id = "small"
provider = "local"
model = "small"
tier = 1
prices = { input = 1.0, output = 4.0 }

[[models]]
id = "large"
provider = "local"
model = "large"
tier = 2
prices = { input = 10.0, output = 40.0 }

[budgets]
store = "redis://127.0.0.1:$redis_port/0"

[[budgets.limits]]
key = "team:demo"
usd = 0.002
mode = "hard"
TOML

# 4. Three proxies.
ports=()
for i in 1 2 3; do
    port=$(free_port)
    ports+=("$port")
    $PYTHON -m gearshift.cli serve --config "$work/gearshift.toml" --port "$port" 2>"$work/proxy$i.log" &
    pids+=($!)
done
for port in "${ports[@]}"; do wait_for "http://127.0.0.1:$port/ready"; done
echo "three proxies up on ports ${ports[*]}, sharing redis://127.0.0.1:$redis_port"

# 5. Requests round-robin, as a load balancer would send them, until the shared budget says no.
answered=0
for n in $(seq 200); do
    port=${ports[$((n % 3))]}
    status=$(curl -s -o "$work/answer.json" -w '%{http_code}' "http://127.0.0.1:$port/v1/chat/completions" \
        -H 'content-type: application/json' -H 'x-gearshift-budget-keys: team:demo' \
        -d '{"model": "auto", "messages": [{"role": "user", "content": "Name three rivers of Europe."}]}')
    if [ "$status" = 429 ]; then
        echo "request $n refused by proxy :$port with 429:"
        $PYTHON -c 'import json, sys; print("  " + json.load(open(sys.argv[1]))["error"]["message"])' "$work/answer.json"
        break
    fi
    [ "$status" = 200 ] || { echo "unexpected HTTP $status" >&2; cat "$work/answer.json" >&2; exit 1; }
    answered=$((answered + 1))
done
echo "answered $answered requests across three proxies before the shared limit refused"
$PYTHON -m gearshift.cli budget show --key team:demo --config "$work/gearshift.toml"
