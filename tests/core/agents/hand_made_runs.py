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
) -> dict[str, Any]:
    """One task: the cheap model `w` and the strong model `s`, each (score, messages).

    Each task has its own opening prompt; `trial` makes the row another trial of task `task` (the same
    prompt, its own id)."""
    prompt = [PROMPT[0], {"role": "user", "content": f"{PROMPT[1]['content']} Ticket {task}."}]
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
