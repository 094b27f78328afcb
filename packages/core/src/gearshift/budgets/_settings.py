"""The `[budgets]` section of `gearshift.toml`.

```toml
[budgets]
store = "sqlite:///budgets.db"   # memory://, sqlite:///path (relative to this file, in a folder that
                                 # exists), redis://host:port/db
reservation_ttl_seconds = 600    # 1..86400; a crashed call's reservation is forgotten after this long
wait_seconds = 30                # 0..3600; how long a call held off only by other calls' reservations
                                 # waits for them to settle before it is refused
fail_open = false                # true: let calls through unaccounted while the store is down
timezone = "Europe/Paris"        # where calendar windows (day, month) start at midnight
expected_steps = 20              # default run length for budget pacing (callers may say otherwise)
default_agent = "anonymous"      # calls that name no agent are charged to agent:anonymous

[[budgets.limits]]
key = "run:*"
usd = 1.0
mode = "downgrade"
```

Every bad value is a `ConfigError` naming the file and the dotted key (`budgets.limits[1].usd`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .._errors import ConfigError
from ..config._config_errors import KeyedError, config_error
from ..config._config_file import locate_config, read_config
from ._limits import BudgetLimit, repeated_name, time_zone
from ._open import check_store_folder, parse_store_url, safe_url

__all__ = [
    "DEFAULT_WAIT_SECONDS",
    "MAX_RESERVATION_TTL",
    "MAX_WAIT_SECONDS",
    "MIN_RESERVATION_TTL",
    "BudgetsConfig",
    "default_store_url",
    "load_budgets_config",
]

MIN_RESERVATION_TTL = 1.0
"""Seconds; a shorter ttl would leave a running call's heartbeat (a renewal within every 0.6 ttl)
too little time to land."""
MAX_RESERVATION_TTL = 86_400.0
"""Seconds (a day); a crashed process's reservations would block budget longer than anyone waits."""
DEFAULT_WAIT_SECONDS = 30.0
"""Seconds a call held off only by other calls' reservations waits for them: about one slow model call."""
MAX_WAIT_SECONDS = 3_600.0
"""Seconds; no caller waits an hour for a model call to start."""


def default_store_url() -> str:
    """`sqlite:///` + `budgets.db` in `$GEARSHIFT_HOME`, else the user's data folder."""
    from ..config._data_dir import data_dir

    return f"sqlite:///{data_dir() / 'budgets.db'}"


class BudgetsConfig(BaseModel):
    """Where spend is kept, how the ledger behaves, and the limits it enforces."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str = Field(
        default_factory=default_store_url,
        description="memory://, sqlite:///path (relative paths start at the config file's folder; the "
        "file's folder must exist, gearshift's own data folder is created) or redis://host:port/db. "
        "Default: budgets.db in the user's data folder.",
    )
    reservation_ttl_seconds: float = Field(
        default=600.0,
        ge=MIN_RESERVATION_TTL,
        le=MAX_RESERVATION_TTL,
        allow_inf_nan=False,
        strict=True,
        description="How long a reservation lives after its last renewal (1 to 86,400 seconds): a "
        "running call renews its own, and a crashed process's reservations stop counting this long "
        "after it died.",
    )
    wait_seconds: float = Field(
        default=DEFAULT_WAIT_SECONDS,
        ge=0.0,
        le=MAX_WAIT_SECONDS,
        allow_inf_nan=False,
        strict=True,
        description="How long a call that a limit refuses only because of what other running calls "
        "hold (their spend and its own would fit) waits for them to settle, then is planned again; 0 "
        "refuses it at once.",
    )
    fail_open: bool = Field(
        default=False,
        strict=True,
        description="When the store cannot be reached: false refuses calls (LedgerUnavailable); true "
        "lets them through unaccounted and logs the fault.",
    )
    timezone: str = Field(
        default="UTC", description="IANA time zone in which calendar windows (day, month) start."
    )
    expected_steps: int | None = Field(
        default=None,
        gt=0,
        strict=True,
        description="How many model calls a run is expected to take, for budget pacing; callers may "
        "give their own per run.",
    )
    default_agent: str = Field(
        default="anonymous",
        min_length=1,
        max_length=200,
        strict=True,
        description="The agent a call that names none is charged to (`agent:<default_agent>`), so "
        'catch-all limits (`key = "*"`, `agent:*`) apply to every call.',
    )
    limits: tuple[BudgetLimit, ...] = Field(default=(), description="The limits, as [[budgets.limits]].")

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # A Redis URL may carry a password, and reprs end up in logs.
        for name, value in super().__repr_args__():
            yield name, safe_url(value) if name == "store" else value

    @field_validator("store")
    @classmethod
    def _check_store(cls, value: str, info: ValidationInfo) -> str:
        parsed = parse_store_url(value)
        if parsed.kind != "sqlite" or parsed.target == ":memory:":
            return value.strip()
        path = Path(parsed.target).expanduser()
        base_dir = (info.context or {}).get("base_dir")
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        return f"sqlite:///{path}"

    @field_validator("default_agent")
    @classmethod
    def _check_default_agent(cls, value: str) -> str:
        if value != "".join(value.split()):
            raise ValueError(f"must be an agent id with no spaces, got {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        time_zone(value)
        return value

    @model_validator(mode="after")
    def _check_names(self) -> BudgetsConfig:
        repeated = repeated_name(self.limits)
        if repeated is not None:
            first, second = repeated
            raise KeyedError(
                ("limits", second, "name"),
                f"limits[{first}] is already named {self.limits[first].name!r}; give each limit a "
                "distinct name",
            )
        return self

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, source: str = "<python>", base_dir: str | Path | None = None
    ) -> BudgetsConfig:
        """Validate a `[budgets]` table; errors are `ConfigError`s naming `source` and `budgets.<key>`."""
        try:
            section = _Section.model_validate({"budgets": dict(data)}, context={"base_dir": base_dir})
        except ValidationError as exc:
            raise config_error(exc, source, schema=_Section) from None
        return section.budgets


class _Section(BaseModel):
    """The file's view of the section, so errors carry the `budgets.` prefix."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    budgets: BudgetsConfig


def load_budgets_config(path: str | Path | None = None) -> tuple[BudgetsConfig, str]:
    """The `[budgets]` section of the config file `load_config` would read, and that file's name.

    Only this section is validated here (`gearshift budget` checks the whole file with `load_config`
    first). Without a file, or without the section: the defaults (the SQLite store in the user's data
    folder). A SQLite store in a folder that does not exist is refused here, with its line
    (`check_store_folder`).
    """
    file = locate_config(path)
    if file is None:
        return BudgetsConfig(), "<defaults>"
    read = read_config(file)
    table = read.data.get("budgets", {})
    if not isinstance(table, Mapping):
        raise read.located(ConfigError("must be a table ([budgets])", source=read.source, key="budgets"))
    try:
        config = BudgetsConfig.from_dict(table, source=read.source, base_dir=read.base_dir)
        check_store_folder(config.store, source=read.source)  # with its line, unlike the ledger's check
        return config, read.source
    except ConfigError as exc:
        raise read.located(exc) from None
