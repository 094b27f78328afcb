"""What a budget limit is: a key (or a key pattern), a cap in dollars and/or tokens, a window, a mode.

```toml
[[budgets.limits]]
key = "agent:*"        # each agent separately; "run:abc" is one run, "*" is every key separately
usd = 5.0              # dollars; `tokens = 200_000` caps tokens; give one or both
window = "day"         # "lifetime", "rolling:1h", "rolling:30m", "rolling:86400s", "day", "month"
mode = "hard"          # hard: refuse; soft: alert and go on; downgrade: cheaper models as it runs down
```

Calendar windows (`day`, `month`) start at local midnight in the ledger's time zone; a rolling window
covers the last N seconds. Everything here is pure: no clock is read, no store is touched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, field_validator, model_validator
from pydantic_core import core_schema

from ..config._config_errors import KeyedError
from ._store import MAX_USD

__all__ = ["BudgetLimit", "BudgetMode", "Window", "repeated_name", "time_zone"]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_ROLLING = re.compile(r"^rolling:(\d+(?:\.\d+)?)([smhd])$")
_WINDOW_HELP = "use lifetime, day, month or rolling:<number><s|m|h|d> such as rolling:1h"


class BudgetMode(str, Enum):
    """What happens when a limit would be exceeded."""

    HARD = "hard"
    """Refuse the call with `BudgetExceeded`."""
    SOFT = "soft"
    """Call the alert hook, then make the call anyway."""
    DOWNGRADE = "downgrade"
    """Route to cheaper models as the budget runs down; refuse only when even the cheapest does not fit."""

    @property
    def refuses(self) -> bool:
        """Whether a reservation that does not fit this limit is refused (hard and downgrade limits)."""
        return self is not BudgetMode.SOFT


@dataclass(frozen=True, slots=True)
class Window:
    """The stretch of time a limit sums spend over.

    `kind` is `lifetime`, `rolling` (the last `seconds`), `day` or `month` (calendar, from local
    midnight of the day or of the month's first day in the ledger's time zone).
    """

    kind: Literal["lifetime", "rolling", "day", "month"]
    seconds: float | None = None

    @classmethod
    def parse(cls, text: str | Window) -> Window:
        """Parse `lifetime`, `day`, `month` or `rolling:<n><s|m|h|d>`; anything else is a `ValueError`."""
        if isinstance(text, Window):
            return text
        if not isinstance(text, str):
            raise ValueError(f"must be a string; {_WINDOW_HELP}")
        spelled = text.strip().lower()
        if spelled in ("lifetime", "day", "month"):
            return cls(spelled)  # type: ignore[arg-type]
        match = _ROLLING.match(spelled)
        if match is None:
            raise ValueError(f"unknown window {text!r}; {_WINDOW_HELP}")
        seconds = float(match[1]) * _UNITS[match[2]]
        if seconds <= 0:
            raise ValueError(f"a rolling window must be longer than 0 seconds, got {text!r}")
        return cls("rolling", seconds)

    def start(self, now: float, tz: tzinfo | str = "UTC") -> float:
        """The Unix time the window that contains `now` starts at (0.0 for a lifetime window)."""
        if self.kind == "lifetime":
            return 0.0
        if self.kind == "rolling":
            assert self.seconds is not None
            return now - self.seconds
        local = datetime.fromtimestamp(now, time_zone(tz) if isinstance(tz, str) else tz)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.kind == "month":
            midnight = midnight.replace(day=1)
        # Where a DST jump skips midnight, fold=0 reads it with the offset before the jump, which is
        # the instant of the jump itself: the first moment of the new local day.
        return midnight.timestamp()

    def __str__(self) -> str:
        if self.kind != "rolling":
            return self.kind
        assert self.seconds is not None
        for unit in ("d", "h", "m"):
            amount = self.seconds / _UNITS[unit]
            if amount >= 1 and amount.is_integer():
                return f"rolling:{int(amount)}{unit}"
        return f"rolling:{self.seconds:g}s"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.parse,
            serialization=core_schema.plain_serializer_function_ser_schema(str),
            json_schema_input_schema=core_schema.str_schema(),
        )


def time_zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` (`UTC`, `Europe/Paris`); an unknown one is a `ValueError`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as 'UTC' or 'Europe/Paris'"
        ) from None


class BudgetLimit(BaseModel):
    """One budget limit: which spend it caps (`key`), by how much, over which window, and how.

    `key` is an exact spend key (`agent:researcher`, `run:42`, `team:search`) or a pattern ending
    in `*` that applies to each matching key separately: `agent:*` gives every agent its own
    limit, `*` every key. `usd` and `tokens` cap dollars and tokens (give one or both).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(
        default="",
        description="How errors, alerts and `gearshift budget show` call the limit; default: "
        "'<key> <window> <mode>'. Must be unique.",
    )
    key: str = Field(
        min_length=1,
        description="An exact spend key (`agent:researcher`, `run:42`, `team:search`) or a pattern "
        "ending in `*` (`agent:*`: each agent separately; `*`: every key separately).",
    )
    usd: float | None = Field(
        default=None,
        ge=0,
        le=MAX_USD,
        allow_inf_nan=False,
        strict=True,
        description="The cap in US dollars (at most 1e9).",
    )
    tokens: int | None = Field(
        default=None, ge=0, strict=True, description="The cap in tokens (input plus output)."
    )
    window: Window = Field(
        default="lifetime",  # parsed into a Window (validate_default)
        validate_default=True,
        description="lifetime, day, month (calendar, in `budgets.timezone`) or rolling:<n><s|m|h|d>.",
    )
    mode: BudgetMode = Field(
        default=BudgetMode.HARD,
        description="hard: refuse; soft: alert, then go on; downgrade: cheaper models as it runs down.",
    )

    if TYPE_CHECKING:
        # What the constructor takes, as a config file spells it: a type checker reading the fields alone
        # would refuse `window="day"` and `mode="hard"`, which the validators parse.
        def __init__(
            self,
            *,
            key: str,
            name: str = "",
            usd: float | None = None,
            tokens: int | None = None,
            window: Window | str = "lifetime",
            mode: BudgetMode | Literal["hard", "soft", "downgrade"] = BudgetMode.HARD,
        ) -> None: ...

    @field_validator("key")
    @classmethod
    def _check_key(cls, value: str) -> str:
        if value != value.strip() or any(c.isspace() for c in value):
            raise ValueError(f"must not contain spaces, got {value!r}")
        if "*" in value[:-1]:
            raise ValueError(f"'*' may only end a key pattern (as in 'agent:*'), got {value!r}")
        for kind in ("agent", "run"):  # a call without an agent or run id is never charged to one
            if value == f"{kind}:":
                raise ValueError(
                    f"'{value}' matches no call: use '{value}*' for each {kind}, or '{value}NAME' for one"
                )
        return value

    @field_validator("mode", mode="before")
    @classmethod
    def _check_mode(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in {m.value for m in BudgetMode}:
            return value.strip().lower()
        if isinstance(value, BudgetMode):
            return value
        raise ValueError(f"unknown mode {value!r}; use hard, soft or downgrade")

    @model_validator(mode="before")
    @classmethod
    def _need_a_cap(cls, data: Any) -> Any:
        # With a key it does not know (`usdd = 5`), the cap is likely misspelt: that error names it.
        known = isinstance(data, Mapping) and data.keys() <= cls.model_fields.keys()
        if known and data.get("usd") is None and data.get("tokens") is None:
            raise KeyedError((), "a limit needs usd, tokens or both")
        return data

    @model_validator(mode="after")
    def _default_name(self) -> BudgetLimit:
        if not self.name.strip():
            object.__setattr__(self, "name", f"{self.key} {self.window} {self.mode.value}")
        return self

    @property
    def is_pattern(self) -> bool:
        """Whether `key` is a pattern (ends in `*`) rather than one exact key."""
        return self.key.endswith("*")

    def matches(self, key: str) -> bool:
        """Whether spend charged to `key` counts against this limit."""
        return key.startswith(self.key[:-1]) if self.is_pattern else key == self.key


def repeated_name(limits: Sequence[BudgetLimit]) -> tuple[int, int] | None:
    """(first, second) positions of two limits with the same name, or None when all names differ."""
    seen: dict[str, int] = {}
    for index, limit in enumerate(limits):
        if limit.name in seen:
            return seen[limit.name], index
        seen[limit.name] = index
    return None
