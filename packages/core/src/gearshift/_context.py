"""What step of which agent a request belongs to.

Adapters fill a `StepContext` from their framework (LangGraph metadata, LlamaIndex agent history, MCP
tool arguments); callers may also build one explicitly. Policies read it; nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ._argument_texts import ArgumentTexts
from ._errors import InvalidRequestError

__all__ = ["CallerHints", "StepContext", "StepType", "ToolRecord", "hash_arguments"]


class StepType(str, Enum):
    """The kind of step an agent is on."""

    PLAN = "plan"
    ACT = "act"
    OBSERVE = "observe"
    REFLECT = "reflect"
    RESPOND = "respond"
    SUMMARIZE = "summarize"
    OTHER = "other"

    @classmethod
    def parse(cls, value: str | StepType, *, where: str = "step type") -> StepType:
        """Parse a step type, or one of its other words (`recover`, the step after a failing tool, is
        `reflect`); an unknown one is an error that lists the known ones. Every entry point (the CLI,
        the adapters' settings and metadata, the MCP tools, the proxy's headers, the rules) reads
        step types through it, so each takes the same words."""
        if isinstance(value, StepType):
            return value
        word = value.strip().lower()
        try:
            return cls(_STEP_ALIASES.get(word, word))
        except ValueError:
            known = ", ".join(s.value for s in cls)
            aliases = ", ".join(f"{alias} (taken as {step})" for alias, step in _STEP_ALIASES.items())
            raise InvalidRequestError(
                f"{where}: unknown step type {value!r}; use one of {known}, or {aliases}"
            ) from None


_STEP_ALIASES = {"recover": "reflect"}
"""Other words for step types: `recover` (the step after a failing tool) is `reflect`."""


# `json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)`, with the encoder built once:
# adapters hash every tool call of the history on every step.
_canonical_json = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode


def _hash_value(value: object) -> str:
    return hashlib.sha256(_canonical_json(value).encode()).hexdigest()[:16]


# Every earlier call of the history is hashed again on every step: flat arguments are hashed once.
_hash_flat = ArgumentTexts(_hash_value)


def hash_arguments(arguments: str | Mapping[str, Any]) -> str:
    """A short stable hash of tool-call arguments (key order and whitespace do not matter)."""
    if isinstance(arguments, str):
        try:
            value = json.loads(arguments or "{}")
        except json.JSONDecodeError:
            return hashlib.sha256(arguments.encode()).hexdigest()[:16]
        return _hash_value(value)
    return _hash_flat(arguments)


@dataclass(frozen=True, slots=True)
class ToolRecord:
    """One tool call an agent made so far: its name, whether it succeeded, its arguments' hash."""

    name: str
    ok: bool = True
    args_hash: str = ""


@dataclass(frozen=True, slots=True)
class CallerHints:
    """What the caller demands of the decision: a forced model, a tier range, a cost cap."""

    force_model: str | None = None
    min_tier: int | None = None
    max_tier: int | None = None
    max_cost_usd: float | None = None

    def __post_init__(self) -> None:
        if self.min_tier is not None and self.max_tier is not None and self.min_tier > self.max_tier:
            raise InvalidRequestError(
                f"caller hints: min_tier {self.min_tier} is above max_tier {self.max_tier}"
            )
        if self.max_cost_usd is not None and self.max_cost_usd < 0:
            raise InvalidRequestError(f"caller hints: max_cost_usd must be >= 0, got {self.max_cost_usd}")


@dataclass(frozen=True, slots=True)
class StepContext:
    """Where a request stands in an agent's run.

    `step_index` counts model calls in the run so far (0 for the first). `tool_history` lists the
    run's tool calls in order; `turn_start` is the index in it of the first call made since the user's
    latest message, when the run is a conversation of several user turns (a LangGraph thread): a
    tool error streak or a repeated call is read from there on, since a user turn breaks both.
    `turn_step_index` counts the model calls made since the user's latest message (None: the run is
    one user turn, so it is `step_index`): budget pacing spreads what is left over the steps of the
    current turn, not of the whole thread (see `gearshift.budgets._pacing`).
    `budget_left_share` is the share of the run's budget still unspent (None when no budget applies);
    the router fills it from the ledger when one is configured.

    Spend is charged to `agent:<agent_id>`, `run:<run_id>` and every key of `budget_keys` (for
    example `team:search`), so a run's spend also counts against its agent's and team's limits.
    `expected_steps` is how many model calls the caller expects the run to take, each user turn of
    it when it holds several; budget pacing divides what is left of the budget by the steps still to
    come in this turn.
    """

    agent_id: str | None = None
    run_id: str | None = None
    step_type: StepType = StepType.OTHER
    step_index: int = 0
    tool_history: tuple[ToolRecord, ...] = ()
    hints: CallerHints = field(default_factory=CallerHints)
    budget_left_share: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    budget_keys: tuple[str, ...] = ()
    expected_steps: int | None = None
    turn_start: int = 0
    turn_step_index: int | None = None

    def __post_init__(self) -> None:
        for name in ("agent_id", "run_id"):
            value = getattr(self, name)
            # "" names no one (as None does); spaces alone would be charged to a key such as
            # `agent: `, which no per-agent limit, figure or report of that agent ever reads.
            if isinstance(value, str) and value and not value.strip():
                raise InvalidRequestError(f"{name}: is blank; name the {name[:-3]} or leave it out")
        if not isinstance(self.step_type, StepType):
            object.__setattr__(self, "step_type", StepType.parse(self.step_type))
        if self.step_index < 0:
            raise InvalidRequestError(f"step_index must be >= 0, got {self.step_index}")
        if not 0 <= self.turn_start <= len(self.tool_history):
            raise InvalidRequestError(
                f"turn_start must be between 0 and the {len(self.tool_history)} tool calls, "
                f"got {self.turn_start}"
            )
        if self.turn_step_index is not None and not 0 <= self.turn_step_index <= self.step_index:
            raise InvalidRequestError(
                f"turn_step_index must be between 0 and step_index ({self.step_index}), "
                f"got {self.turn_step_index}"
            )
        if self.expected_steps is not None and self.expected_steps <= 0:
            raise InvalidRequestError(f"expected_steps must be positive, got {self.expected_steps}")
        if isinstance(self.budget_keys, str):
            raise InvalidRequestError("budget_keys must be a sequence of keys, not one string")
        object.__setattr__(self, "budget_keys", tuple(self.budget_keys))

    def describe(self, *, node: str | None = None) -> str:
        """The step in words, for messages: `agent 'researcher' in thread 't-1' at step 3 (node 'model')`.

        `node` names the part of the agent the call came from (a LangGraph node), when there is one."""
        where = [f"agent '{self.agent_id}'" if self.agent_id else "a model call"]
        if self.run_id:
            where.append(f"in thread '{self.run_id}'")
        where.append(f"at step {self.step_index + 1}" + (f" (node '{node}')" if node else ""))
        return " ".join(where)

    @property
    def step_in_turn(self) -> int:
        """The model calls made since the user's latest message: what budget pacing counts."""
        return self.step_index if self.turn_step_index is None else self.turn_step_index

    @property
    def spend_keys(self) -> tuple[str, ...]:
        """The ledger keys this step's spend counts against: agent, run, then the caller's keys."""
        keys = [f"agent:{self.agent_id}"] if self.agent_id else []
        if self.run_id:
            keys.append(f"run:{self.run_id}")
        keys.extend(k for k in self.budget_keys if k not in keys)
        return tuple(keys)

    def charged_keys(self, default_agent: str) -> tuple[str, ...]:
        """`spend_keys`, led by `agent:<default_agent>` when the step names no agent: every call is then
        charged to at least one key a catch-all limit (`key = "*"`, `agent:*`) matches."""
        keys = self.spend_keys
        return keys if self.agent_id else (f"agent:{default_agent}", *keys)

    @property
    def consecutive_tool_errors(self) -> int:
        """How many of the most recent tool calls (of this user turn) failed in a row."""
        count = 0
        for record in reversed(self.tool_history[self.turn_start :]):
            if record.ok:
                break
            count += 1
        return count

    @property
    def repeated_tool_calls(self) -> int:
        """How many times the latest tool call repeats the one before it with the same arguments.

        0 means the last call was new; 2 means the same call (name and arguments) ran three times in a
        row. Only this user turn's calls count (`turn_start`).
        """
        history = self.tool_history[self.turn_start :]
        if not history:
            return 0
        last = history[-1]
        count = 0
        for record in reversed(history[:-1]):
            if (record.name, record.args_hash) != (last.name, last.args_hash):
                break
            count += 1
        return count
