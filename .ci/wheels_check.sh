#!/usr/bin/env bash
# Install as a user, not a contributor: build every wheel, pip-install them into a clean venv made with
# the machine's python (dependencies from PyPI), check what a bare `pip install gearshift` says, install
# the README's "Install" lines, then run each README quick start offline against local model servers.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
started=$SECONDS
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python="${WHEELS_PYTHON:-python3}"
run() {
    local step_started=$SECONDS
    echo "+ $*"
    "$@"
    echo "   ($((SECONDS - step_started)) s)"
}

run uv build --all-packages --wheel --quiet --out-dir "$work/dist"
run "$python" -m venv "$work/venv"
bin="$work/venv/bin"
# --no-compile: byte-compiling every installed module is most of pip's time here; imports compile what they use.
pip=("$bin/python" -m pip install --quiet --disable-pip-version-check --no-compile --find-links "$work/dist")

# The wheels by path, so that a same-named project on PyPI can never stand in for them; later
# `pip install gearshift[...]` lines find gearshift installed and only add the extras' packages.
run "${pip[@]}" "$work"/dist/*.whl

# What a bare install says: route works; demo and chat name the extra they lack, in one line.
cd "$work"
run "$bin/gearshift" route "What is the capital of France?"
expect_one_line() {  # expect_one_line <text the line must contain> <command...>
    local want="$1" out
    shift
    echo "+ $* (expects one line naming $want)"
    if out="$("$@" 2>&1)"; then
        echo "wheels check: '$*' succeeded without its extra" >&2
        exit 1
    fi
    out="$(printf '%s\n' "$out" | grep -v '^[[:space:]]*$')"  # a progress bar may leave an empty line
    echo "   $out"
    if [ "$(printf '%s\n' "$out" | wc -l)" -ne 1 ] || [[ "$out" != *"$want"* ]]; then
        echo "wheels check: '$*' should say, in one line, to install $want" >&2
        exit 1
    fi
}
expect_one_line "'gearshift[train]'" "$bin/gearshift" demo --limit 50
OPENAI_API_KEY=unused ANTHROPIC_API_KEY=unused \
    expect_one_line "'gearshift[anthropic,openai]'" "$bin/gearshift" chat "hello"
cd "$repo"

# Every `pip install` line of the README's Install section, in one resolve.
mapfile -t requirements < <("$bin/python" .ci/wheels_quickstarts.py requirements README.md)
[ "${#requirements[@]}" -gt 0 ] || exit 1
run "${pip[@]}" "${requirements[@]}"

run "$bin/python" .ci/wheels_quickstarts.py run README.md packages/*/README.md
echo "wheels check: done in $((SECONDS - started)) s"
