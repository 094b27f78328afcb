#!/usr/bin/env bash
# The README's test command (`uv run pytest`) on the oldest and the newest supported Python, each in its
# own environment synced from the lock (.venv-3.10, .venv-3.13). uv may not download interpreters here
# (UV_PYTHON_DOWNLOADS=never), so they come from pyenv or the PATH. A missing one is said, with the one
# tested instead: the oldest (for 3.10) or newest (for 3.13) other interpreter >= 3.10 on the machine.
# PYTHONS_PYTEST_ARGS narrows the run (e.g. "tests/core -x"); by default the whole suite runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never
root="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")"

runs() { "$1" -c 'import sys; assert sys.version_info >= (3, 10)' >/dev/null 2>&1; }
python_for() {  # python_for 3.10 -> the newest 3.10.x interpreter found, or nothing
    local found
    found="$(ls -d "$root/versions/$1".*/bin/python 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$found" ] && runs "$found"; then echo "$found"; return; fi
    found="$(command -v "python$1" || true)"
    if [ -n "$found" ] && runs "$found"; then echo "$found"; fi
}
available() {  # every interpreter >= 3.10 found, oldest first, one per minor version
    local minor
    for minor in 3.10 3.11 3.12 3.13 3.14 3.15; do python_for "$minor"; done
}
version_of() { "$1" -c 'import platform; print(platform.python_version())'; }

# Each run gets a network namespace of its own where the machine allows it (root, unshare, ip): only a
# loopback, so a port its tests pick free (bound, released, then served by a subprocess) can never be
# taken meanwhile by a suite running beside it (.ci/run runs this beside the main suite); uv is offline
# in there, the environment being synced outside.
own_network=()
if unshare --net -- ip link set lo up >/dev/null 2>&1; then
    own_network=(unshare --net -- bash -c 'ip link set lo up && exec env UV_OFFLINE=1 "$@"' own-network)
    echo "== each run in a network namespace of its own (a loopback only)"
else
    echo "== no network namespace of their own here (unshare --net or ip failed): the runs share the ports"
fi

tested=""
for wanted in 3.10 3.13; do
    python="$(python_for "$wanted")"
    if [ -z "$python" ]; then
        # Read whole: `available | head` would end it with SIGPIPE, which pipefail turns into an exit.
        mapfile -t others < <(available)
        if [ "${#others[@]}" -eq 0 ]; then
            python=""
        elif [ "$wanted" = 3.10 ]; then
            python="${others[0]}"
        else
            python="${others[-1]}"
        fi
        if [ -z "$python" ]; then
            echo "== python $wanted: NOT FOUND (pyenv root $root, PATH), and no other Python >= 3.10 either" >&2
            exit 1
        fi
        echo "== python $wanted: NOT FOUND (pyenv root $root, PATH); testing $(version_of "$python") ($python) instead"
    fi
    version="$(version_of "$python")"
    minor="${version%.*}"
    if [[ " $tested " == *" $minor "* ]]; then
        echo "== python $wanted: its stand-in $version was tested above; not run twice"
        continue
    fi
    tested="$tested $minor"
    echo "== tests on python $version ($python): UV_PROJECT_ENVIRONMENT=.venv-$minor uv run pytest ${PYTHONS_PYTEST_ARGS:-}"
    started=$SECONDS
    UV_PROJECT_ENVIRONMENT=".venv-$minor" uv sync --locked --quiet --python "$python"
    echo "== python $version: synced in $((SECONDS - started)) s"
    # shellcheck disable=SC2086  # the extra arguments are words on purpose
    UV_PROJECT_ENVIRONMENT=".venv-$minor" "${own_network[@]}" uv run --locked --python "$python" pytest ${PYTHONS_PYTEST_ARGS:-}
    echo "== python $version: done in $((SECONDS - started)) s"
done
