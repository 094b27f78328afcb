"""Small hand-made agent outcome tables whose replayed figures can be worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROMPT = [
    {"role": "system", "content": "You are a shop agent."},
    {"role": "user", "content": "Refund order 7."},
]


def assistant(
    cost: float, call: str | None = None, args: str = "{}", text: str | None = None
) -> dict[str, Any]:
    """An assistant turn costing `cost`, calling tool `call` (id `call`) when given."""
    turn: dict[str, Any] = {"role": "assistant", "content": text, "cost_usd": cost}
    if call is not None:
        turn["tool_calls"] = [{"id": call, "name": call.split("#")[0], "arguments": args}]
    return turn


def tool(call: str, content: str, is_error: bool | None = None) -> dict[str, Any]:
    """The result of tool call `call`."""
    result: dict[str, Any] = {
        "role": "tool",
        "tool_call_id": call,
        "name": call.split("#")[0],
        "content": content,
    }
    if is_error is not None:
        result["is_error"] = is_error
    return result


def failing_run(errors: int, step_cost: float) -> list[dict[str, Any]]:
    """A cheap run that calls a failing tool `errors` times with the same arguments, then gives up."""
    messages: list[dict[str, Any]] = []
    for i in range(errors):
        messages.append(assistant(step_cost, f"lookup#{i}", '{"order": 7}'))
        messages.append(tool(f"lookup#{i}", "Error: order not found"))
    messages.append(assistant(step_cost, text="Sorry, I cannot help."))
    return messages


def smooth_run(steps: int, step_cost: float) -> list[dict[str, Any]]:
    """A run whose tools all succeed, with different arguments each time, then answers."""
    messages: list[dict[str, Any]] = []
    for i in range(steps - 1):
        messages.append(assistant(step_cost, f"lookup#{i}", json.dumps({"order": i})))
        messages.append(tool(f"lookup#{i}", f"order {i}: delivered"))
    messages.append(assistant(step_cost, text="Done: refunded."))
    return messages


def row(
    task: int,
    weak: tuple[float, list[dict[str, Any]]],
    strong: tuple[float, list[dict[str, Any]]],
    trial: int | None = None,
    request: str | None = None,
) -> dict[str, Any]:
    """One task: the cheap model `w` and the strong model `s`, each (score, messages).

    Each task has its own opening prompt (`request` replaces the user's words); `trial` makes the row
    another trial of task `task` (the same prompt, its own id)."""
    words = request if request is not None else PROMPT[1]["content"]
    prompt = [PROMPT[0], {"role": "user", "content": f"{words} Ticket {task}."}]
    return {
        "id": f"t{task}" if trial is None else f"t{task}-trial{trial}",
        "task": "shop",
        "prompt": prompt,
        "outcomes": {
            "w": {"score": weak[0], "messages": weak[1]},
            "s": {"score": strong[0], "messages": strong[1]},
        },
    }


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write rows as JSONL."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def looping_table(path: Path, tasks: int = 24) -> Path:
    """Half the tasks: the cheap model loops on a failing tool and fails where the strong one succeeds;
    the other half: both succeed on clean runs. Errors are what tell them apart."""
    rows = []
    for i in range(tasks):
        if i % 2:
            rows.append(row(i, (0.0, failing_run(3 + i % 3, 0.001)), (1.0, smooth_run(3, 0.01))))
        else:
            rows.append(row(i, (1.0, smooth_run(3 + i % 4, 0.001)), (1.0, smooth_run(3, 0.01))))
    return write(path, rows)


def repeated_trials_table(path: Path) -> Path:
    """Eight tasks run twice by each model (the same prompt, two ids). The cheap model's two trials
    disagree on tasks 0 and 1 (one fails on a looping tool, one succeeds); the strong model's never do."""
    rows = []
    for task in range(8):
        for trial in range(2):
            flaky = task < 2 and trial == 1
            weak = (0.0, failing_run(3, 0.001)) if flaky else (1.0, smooth_run(3, 0.001))
            rows.append(row(task, weak, (1.0, smooth_run(3, 0.01)), trial=trial))
    return write(path, rows)


HARD = "Exchange the damaged international bundle across three orders with partial credit."
EASY = "Refund order 7."


def greeting_only(row: dict[str, Any]) -> dict[str, Any]:
    """The row with the same `prompt` as every other (the system message and a greeting): each run
    starts with the user's actual request."""
    system, *request = row["prompt"]
    outcomes = {
        model: {**outcome, "messages": [*request, *outcome["messages"]]}
        for model, outcome in row["outcomes"].items()
    }
    return {**row, "prompt": [system, {"role": "user", "content": "Hello."}], "outcomes": outcomes}


def prompted_table(path: Path, tasks: int = 48, *, request_in_runs: bool = False) -> Path:
    """Every run is clean, but on the odd tasks (a long multi-order request) the cheap model fails and the
    strong one succeeds: only the opening prompt, the task prior, tells them apart. `request_in_runs`
    gives every row the same greeting as `prompt` and starts each run with the request."""
    rows = []
    for i in range(tasks):
        weak_score = 0.0 if i % 2 else 1.0
        request = HARD if i % 2 else EASY
        made = row(i, (weak_score, smooth_run(3, 0.001)), (1.0, smooth_run(3, 0.01)), request=request)
        rows.append(greeting_only(made) if request_in_runs else made)
    return write(path, rows)
