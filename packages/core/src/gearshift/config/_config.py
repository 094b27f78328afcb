"""`gearshift.toml`: the whole config file's schema, and `load_config`.

```toml
[providers.<name>]   # how to reach one provider; `openai` and `anthropic` exist undeclared
[[models]]           # the registry (fields of ModelSpec); none listed: the built-in ladder
[routing]            # the policy and the router's knobs
[log]                # the decision log
[budgets]            # the budget ledger: store, limits, pacing (absent: no budgets)
```

Each section is one field of `GearshiftConfig`, so a new section (budgets) is one more field; the
larger sections have their own module (`_provider_config`, `_routing_config`, `budgets._settings`),
and finding and reading the file is `_config_file`'s. Every model is frozen and forbids unknown keys;
a validator that faults a key below its own raises `KeyedError`, and `_config_errors` turns pydantic's
errors into one `ConfigError` listing every problem with the file, the line, the dotted key
(`models[2].tier`) and what is wrong. Prices and context windows missing from `[[models]]` are filled
from `genai-prices` while the file is validated, so a loaded config is complete.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .._errors import ConfigError
from .._models import ModelRegistry, ModelSpec
from ..budgets._settings import BudgetsConfig
from ._config_errors import KeyedError, config_error, suggestion, with_lines
from ._config_file import CONFIG_ENV, locate_config, read_config
from ._defaults import default_models
from ._pricing import lookup_model
from ._provider_config import BUILTIN_PROVIDERS, ProviderConfig
from ._routing_config import RoutingConfig

__all__ = [
    "BUILTIN_PROVIDERS",
    "CONFIG_ENV",
    "GearshiftConfig",
    "LogConfig",
    "ProviderConfig",
    "RoutingConfig",
    "load_config",
]

_DEFAULTS_SOURCE = "<defaults>"
_LOG_SUFFIXES = (".jsonl", ".db", ".sqlite", ".sqlite3")


class LogConfig(BaseModel):
    """The decision log: one record per routing decision and per attempt."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path | None = Field(
        default=None,
        description="JSONL file (*.jsonl) or SQLite database (*.db, *.sqlite); relative paths start "
        "at the config file's folder, which must exist (gearshift's own data folder is created). "
        "Unset: no log.",
    )
    include_prompts: bool = Field(
        default=False,
        description="Also record prompts and answers: each decision record gets the request's last user "
        "message (and the caller's task label), each answered attempt record the answer's text and "
        "tool calls, and OpenTelemetry spans the whole conversation.",
    )
    max_age_days: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="Delete records older than this many days (on opening the log, then hourly). "
        "Unset: keep every record.",
    )

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        if value.suffix.lower() not in _LOG_SUFFIXES:
            raise ValueError(f"must end in {', '.join(_LOG_SUFFIXES)} (that picks the format)")
        base_dir = (info.context or {}).get("base_dir")
        value = value.expanduser()
        return value if value.is_absolute() or base_dir is None else Path(base_dir) / value


class GearshiftConfig(BaseModel):
    """A whole gearshift configuration: providers, models, routing and the decision log.

    Build it with `load_config()` (from a file, or the built-in defaults) or `from_dict()`; both
    raise `ConfigError`. Models listed without prices or context window get them from `genai-prices`
    during validation; no models at all means the built-in ladder (`gearshift.config._defaults`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    providers: dict[str, ProviderConfig] = Field(
        default_factory=dict,
        validate_default=True,
        description="Provider configurations by name; `openai` and `anthropic` are always there.",
    )
    models: tuple[ModelSpec, ...] = Field(
        default=(),
        validate_default=True,
        description="The models to route between; empty: the built-in ladder.",
    )
    routing: RoutingConfig = Field(default_factory=RoutingConfig, description="Policy and router settings.")
    log: LogConfig = Field(default_factory=LogConfig, description="The decision log.")
    budgets: BudgetsConfig | None = Field(
        default=None, description="The budget ledger and its limits; absent: calls are not budgeted."
    )

    _source: str = PrivateAttr(default="<python>")
    _text: str | None = PrivateAttr(default=None)
    _file: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> str:
        """Where this config came from: a file path, `<defaults>`, or `<python>`."""
        return self._source

    @property
    def file(self) -> Path | None:
        """The absolute path of the file `load_config` read this config from, given or found by the
        search (None: the built-in defaults, or a config made in Python). A copy of something built
        from this config (a pickled chat model or LLM) reads this file again, whatever its folder."""
        return self._file

    def located(self, error: ConfigError) -> ConfigError:
        """`error`, raised while building something from this config (a policy from its table), with
        the line of each of its problems in the file the config was read from, when it was read from one."""
        return error if self._text is None else with_lines(error, self._text, source=self._source)

    def registry(self) -> ModelRegistry:
        """The model registry, prices resolved."""
        return ModelRegistry(self.models)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, source: str = "<python>", base_dir: str | Path | None = None
    ) -> GearshiftConfig:
        """Validate a config (as parsed from TOML); errors raise `ConfigError` naming `source` and the key.

        `base_dir` anchors relative paths (the config file's folder).
        """
        try:
            config = cls.model_validate(dict(data), context={"base_dir": base_dir})
        except ValidationError as exc:
            raise config_error(exc, source, schema=GearshiftConfig) from None
        config._source = source
        return config

    @field_validator("providers", mode="before")
    @classmethod
    def _with_builtins(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        merged: dict[str, Any] = dict(BUILTIN_PROVIDERS)
        for name, table in value.items():
            builtin = BUILTIN_PROVIDERS.get(name)
            # A table naming a built-in changes only the fields it sets, unless it switches the kind.
            if builtin and isinstance(table, Mapping) and table.get("kind", builtin.kind) == builtin.kind:
                merged[name] = {**builtin.model_dump(exclude_unset=True), **table}
            else:
                merged[name] = table
        return merged

    @field_validator("models", mode="before")
    @classmethod
    def _complete_models(cls, value: Any, info: ValidationInfo) -> Any:
        providers = info.data.get("providers")
        if providers is None:  # the providers' own error is the one to report
            return value
        if isinstance(value, Sequence) and not isinstance(value, str):
            if not value:
                return default_models()
            return [_complete_model(row, index, providers) for index, row in enumerate(value)]
        return value

    @model_validator(mode="after")
    def _check_models(self) -> GearshiftConfig:
        first: dict[str, int] = {}
        for index, spec in enumerate(self.models):
            if spec.provider not in self.providers:  # rows from TOML were checked before pricing
                raise KeyedError(("models", index, "provider"), _undeclared(spec.provider, self.providers))
            for number, deployment in enumerate(spec.deployments):
                if deployment.provider not in self.providers:
                    raise KeyedError(
                        ("models", index, "deployments", number, "provider"),
                        _undeclared(deployment.provider, self.providers),
                    )
            if spec.id in first:
                raise KeyedError(
                    ("models", index, "id"),
                    f"model id '{spec.id}' is already used by models[{first[spec.id]}]; ids must be unique",
                )
            first[spec.id] = index
        return self


def _complete_model(row: Any, index: int, providers: Mapping[str, ProviderConfig]) -> Any:
    """The `[[models]]` row with prices and context window from genai-prices when it leaves them out."""
    if not isinstance(row, Mapping):
        return row
    provider_name, model = row.get("provider"), row.get("model")
    if not isinstance(provider_name, str) or not isinstance(model, str):
        return row  # pydantic reports the missing or mistyped field
    provider = providers.get(provider_name)
    if provider is None:
        raise KeyedError((index, "provider"), _undeclared(provider_name, providers))
    if "prices" in row and "context_window" in row:
        return row
    known = lookup_model(provider.kind, model, base_url=provider.base_url)
    if known is None:
        if "prices" in row:
            return row
        raise KeyedError(
            (index, "prices"),
            f"genai-prices has no price for model '{model}' of provider '{provider_name}'; "
            f"set models[{index}].prices = {{input = .., output = ..}} (dollars per million tokens)",
        )
    filled = dict(row)
    filled.setdefault("prices", known.prices)
    if known.context_window:
        filled.setdefault("context_window", known.context_window)
    return filled


def _undeclared(provider: str, providers: Mapping[str, ProviderConfig]) -> str:
    return (
        f"provider '{provider}' is not declared; add a [providers.{provider}] table"
        f"{suggestion(provider, providers)}"
    )


def load_config(path: str | Path | None = None) -> GearshiftConfig:
    """Load the configuration, never touching the network.

    The file is `path` when given, else `$GEARSHIFT_CONFIG`, else `./gearshift.toml` when it exists;
    without any, the built-in defaults (providers `openai` and `anthropic`, the built-in ladder).
    Raises `ConfigError` listing every problem, each with the file, the line, the key and what is wrong.
    """
    file = locate_config(path)
    if file is None:
        return GearshiftConfig.from_dict({}, source=_DEFAULTS_SOURCE)
    read = read_config(file)
    try:
        config = GearshiftConfig.from_dict(read.data, source=read.source, base_dir=read.base_dir)
    except ConfigError as exc:
        raise read.located(exc) from None
    config._text = read.text
    config._file = file.resolve()
    return config
