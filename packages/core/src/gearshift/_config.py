"""`gearshift.toml`: the schema of the config file, where it is found, and errors that name the key.

```toml
[providers.<name>]   # how to reach one provider; `openai` and `anthropic` exist undeclared
[[models]]           # the registry (fields of ModelSpec); none listed: the built-in ladder
[routing]            # the policy and the router's knobs
[log]                # the decision log
```

Each section is one field of `GearshiftConfig`, so a new section (budgets) is one more field. Every
model is frozen and forbids unknown keys; `load_config` turns pydantic's errors into a `ConfigError`
that names the file, the dotted key (`models[2].tier`) and what is wrong, and never echoes what
could be a secret. Prices and context windows missing from `[[models]]` are filled from
`genai-prices` while the file is validated, so a loaded config is complete.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

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
from pydantic_core import ErrorDetails

from ._defaults import default_models
from ._errors import ConfigError
from ._models import ModelRegistry, ModelSpec
from ._pricing import lookup_model

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = [
    "BUILTIN_PROVIDERS",
    "CONFIG_ENV",
    "GearshiftConfig",
    "LogConfig",
    "ProviderConfig",
    "RoutingConfig",
    "load_config",
]

CONFIG_ENV = "GEARSHIFT_CONFIG"
"""Environment variable naming the config file when `load_config` is given no path."""

_DEFAULTS_SOURCE = "<defaults>"
_CONFIG_NAME = "gearshift.toml"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOG_SUFFIXES = (".jsonl", ".db", ".sqlite", ".sqlite3")
_INLINE_KEY = (
    "API keys are never read from the config file; put the key in an environment variable and "
    'name it with api_key_env = "MY_PROVIDER_API_KEY"'
)


class _KeyedError(ValueError):
    """A validator's complaint about a key below the one pydantic reports it at."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class ProviderConfig(BaseModel):
    """How to reach one provider: which SDK speaks to it, where, and with which key."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    kind: Literal["openai", "anthropic"] = Field(
        description="The SDK that speaks to it. `openai` also serves every OpenAI-compatible server "
        "(Ollama, vLLM, LM Studio, llama.cpp, Groq...) through `base_url`."
    )
    base_url: str | None = Field(default=None, description="API base URL; unset: the vendor's public API.")
    api_key_env: str | None = Field(
        default=None,
        description="Name of the environment variable holding the API key; the key itself never "
        "appears in the file.",
    )
    require_key: bool = Field(
        default=True,
        description="Whether a key is needed; false for keyless local servers (kind `openai` only).",
    )
    timeout: float = Field(default=60.0, gt=0, description="Seconds before a call gives up and falls back.")
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = Field(
        default="max_tokens",
        description="Kind `openai` only: the request field carrying the output cap. OpenAI's reasoning "
        "models need `max_completion_tokens`; compatible servers mostly expect `max_tokens`.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        repr=False,  # a gateway's auth header may sit here; reprs end up in logs
        description="Extra HTTP headers for every call.",
    )

    @model_validator(mode="before")
    @classmethod
    def _refuse_inline_key(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "api_key" in data:
            raise _KeyedError(("api_key",), _INLINE_KEY)
        return data

    @field_validator("api_key_env")
    @classmethod
    def _check_env_name(cls, value: str | None) -> str | None:
        # The classic slip is pasting the key itself here, so the message must not repeat the value.
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(
                "must be the name of an environment variable (letters, digits and '_'), not the key itself"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _check_kind(self) -> ProviderConfig:
        if self.kind == "anthropic" and "max_tokens_field" in self.model_fields_set:
            raise _KeyedError(("max_tokens_field",), "applies to kind = 'openai' only")
        if self.kind == "anthropic" and not self.require_key:
            raise _KeyedError(("require_key",), "keyless servers need kind = 'openai'")
        if self.require_key and self.api_key_env is None:
            raise _KeyedError(
                ("api_key_env",),
                'is required when require_key is true: set api_key_env = "NAME_OF_THE_VARIABLE", '
                "or require_key = false for a keyless local server",
            )
        return self


BUILTIN_PROVIDERS: Mapping[str, ProviderConfig] = types.MappingProxyType(
    {
        "openai": ProviderConfig(
            kind="openai", api_key_env="OPENAI_API_KEY", max_tokens_field="max_completion_tokens"
        ),
        "anthropic": ProviderConfig(kind="anthropic", api_key_env="ANTHROPIC_API_KEY"),
    }
)
"""Providers that exist without being declared; a `[providers.openai]` table overrides single fields."""


class RoutingConfig(BaseModel):
    """How requests are routed and how the router reacts to failures."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    policy: Literal["scorer", "rules"] = Field(
        default="scorer",
        description="`scorer`: the zero-training scorer over the request's signals; `rules`: the "
        "declarative `rules` below.",
    )
    default_output_tokens: int = Field(
        default=512, gt=0, description="Expected output tokens when a request sets no max_tokens (estimates)."
    )
    rules: tuple[dict[str, Any], ...] = Field(
        default=(), description="The rules of the `rules` policy, in order; validated by that policy."
    )
    scorer: dict[str, Any] = Field(
        default_factory=dict, description="Settings of the scorer policy; validated by that policy."
    )
    cooldown_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long a failed model is skipped when the provider gave no retry-after; "
        "doubles with each consecutive failure.",
    )
    max_cooldown_seconds: float = Field(default=300.0, ge=0, description="The longest cooldown.")
    fallback_to_lower_tiers: bool = Field(
        default=False,
        description="When every model at or above the chosen tier failed, also try weaker ones.",
    )

    @model_validator(mode="after")
    def _check(self) -> RoutingConfig:
        if self.policy == "rules" and not self.rules:
            raise _KeyedError(("rules",), "policy = 'rules' needs at least one [[routing.rules]] table")
        if self.max_cooldown_seconds < self.cooldown_seconds:
            raise _KeyedError(
                ("max_cooldown_seconds",),
                f"must be >= cooldown_seconds ({_show(self.cooldown_seconds)}), "
                f"got {_show(self.max_cooldown_seconds)}",
            )
        return self


class LogConfig(BaseModel):
    """The decision log: one record per routing decision and per attempt."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path | None = Field(
        default=None,
        description="JSONL file (*.jsonl) or SQLite database (*.db, *.sqlite); relative paths start "
        "at the config file's folder. Unset: no log.",
    )
    include_prompts: bool = Field(default=False, description="Also record prompts and answers.")

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
    during validation; no models at all means the built-in ladder (`gearshift._defaults`).
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

    _source: str = PrivateAttr(default="<python>")

    @property
    def source(self) -> str:
        """Where this config came from: a file path, `<defaults>`, or `<python>`."""
        return self._source

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
            raise _config_error(exc, source) from None
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
                raise _KeyedError(("models", index, "provider"), _undeclared(spec.provider, self.providers))
            if spec.id in first:
                raise _KeyedError(
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
        raise _KeyedError((index, "provider"), _undeclared(provider_name, providers))
    if "prices" in row and "context_window" in row:
        return row
    known = lookup_model(provider.kind, model, base_url=provider.base_url)
    if known is None:
        if "prices" in row:
            return row
        raise _KeyedError(
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
        f"{_suggest(provider, providers)}"
    )


def load_config(path: str | Path | None = None) -> GearshiftConfig:
    """Load the configuration, never touching the network.

    The file is `path` when given, else `$GEARSHIFT_CONFIG`, else `./gearshift.toml` when it exists;
    without any, the built-in defaults (providers `openai` and `anthropic`, the built-in ladder).
    Raises `ConfigError` naming the file, the key and the problem.
    """
    file = _locate(path)
    if file is None:
        return GearshiftConfig.from_dict({}, source=_DEFAULTS_SOURCE)
    return GearshiftConfig.from_dict(_read_toml(file), source=str(file), base_dir=file.resolve().parent)


def _locate(path: str | Path | None) -> Path | None:
    if path is not None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise ConfigError("no such config file", source=str(file))
        return file
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        file = Path(from_env).expanduser()
        if not file.is_file():
            raise ConfigError(f"no such config file (named by ${CONFIG_ENV})", source=str(file))
        return file
    local = Path(_CONFIG_NAME)
    return local if local.is_file() else None


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as stream:
            data: dict[str, Any] = tomllib.load(stream)
    except tomllib.TOMLDecodeError as exc:  # its message ends with "(at line L, column C)"
        raise ConfigError(f"not valid TOML: {exc}", source=str(file)) from None
    except UnicodeDecodeError:
        raise ConfigError("not valid TOML: the file is not UTF-8 text", source=str(file)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror}", source=str(file)) from None
    return data


# -- turning pydantic's errors into ConfigError ----------------------------------------------------


def _config_error(exc: ValidationError, source: str) -> ConfigError:
    errors = exc.errors(include_url=False)
    # A misspelt key is reported both as unknown and as a missing required field: the unknown key,
    # with its suggested spelling, is the one that helps.
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(error["loc"])
    reason = error.get("ctx", {}).get("error")
    if isinstance(reason, _KeyedError):
        loc += reason.loc
    message = _describe(error, loc)
    if len(errors) > 1:
        more = len(errors) - 1
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ConfigError(message, source=source, key=_dotted(loc))


def _describe(error: ErrorDetails, loc: tuple[str | int, ...]) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "extra_forbidden":
        name = str(loc[-1])
        return _INLINE_KEY if name == "api_key" else f"unknown key '{name}'{_suggest(name, _known(loc[:-1]))}"
    if kind == "missing":
        return "is required"
    if kind == "value_error":
        return str(ctx["error"])
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        what = f"must be {bounds[kind]} {_show(limit)}"
    elif kind.startswith("int_"):
        what = "must be an integer"
    elif kind.startswith("float_"):
        what = "must be a number"
    elif kind.startswith("bool_"):
        what = "must be true or false"
    elif kind == "string_type":
        what = "must be a string"
    elif kind == "string_too_short":
        return "must not be empty"
    elif kind == "literal_error":
        what = f"must be one of {ctx['expected']}"
    elif kind in ("dict_type", "model_type", "model_attributes_type"):
        what = "must be a table"
    elif kind in ("list_type", "tuple_type"):
        what = "must be an array"
    else:
        what = error["msg"]
    return f"{what}, got {_show(error['input'])}" if _echo_safe(loc) else what


def _echo_safe(loc: tuple[str | int, ...]) -> bool:
    # Any value under [providers] may be a key pasted into the wrong field, or a secret header.
    return loc[:1] != ("providers",)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "an array"
    return type(value).__name__


def _dotted(loc: tuple[str | int, ...]) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else str(part)
    return key


def _suggest(name: str, known: Sequence[str] | Mapping[str, Any]) -> str:
    names = list(known)
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f" (known: {', '.join(names)})" if names else ""


def _known(loc: tuple[str | int, ...]) -> list[str]:
    """The keys allowed at `loc`, found by walking the schema from `GearshiftConfig`."""
    node: Any = GearshiftConfig
    for part in loc:
        node = _model_in(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(str(part))
            if field is None:
                return []
            node = field.annotation
        elif get_origin(node) is dict:
            node = get_args(node)[1]
        elif get_origin(node) in (tuple, list):
            node = get_args(node)[0]
        else:
            return []
    node = _model_in(node)
    return list(node.model_fields) if isinstance(node, type) and issubclass(node, BaseModel) else []


def _model_in(annotation: Any) -> Any:
    """`X` out of `X | None`; anything else unchanged."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        return members[0] if len(members) == 1 else annotation
    return annotation
