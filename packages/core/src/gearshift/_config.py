"""`gearshift.toml`: the schema of the config file, and where it is found and how it is read.

```toml
[providers.<name>]   # how to reach one provider; `openai` and `anthropic` exist undeclared
[[models]]           # the registry (fields of ModelSpec); none listed: the built-in ladder
[routing]            # the policy and the router's knobs
[log]                # the decision log
[budgets]            # the budget ledger: store, limits, pacing (absent: no budgets)
```

Each section is one field of `GearshiftConfig`, so a new section (budgets) is one more field. Every
model is frozen and forbids unknown keys; a validator that faults a key below its own raises
`KeyedError`, and `_config_errors` turns pydantic's errors into a `ConfigError` that names the file,
the dotted key (`models[2].tier`) and what is wrong. Prices and context windows missing from
`[[models]]` are filled from `genai-prices` while the file is validated, so a loaded config is
complete.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ._config_errors import INLINE_KEY_REFUSAL, KeyedError, config_error, show_value, suggestion
from ._config_file import CONFIG_ENV, locate_config, read_config
from ._defaults import default_models
from ._errors import ConfigError
from ._models import ModelRegistry, ModelSpec
from ._pricing import lookup_model
from ._signals import TASKS
from ._url_secrets import ENCODE_HINT, mask_url, unencoded_userinfo
from .budgets._settings import BudgetsConfig

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
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOG_SUFFIXES = (".jsonl", ".db", ".sqlite", ".sqlite3")
_ANTHROPIC_CACHE_WRITE_FACTOR = 1.25
"""Anthropic bills a prompt-cache write (5-minute cache) at 1.25x the input price."""


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
    timeout: float = Field(
        default=60.0,
        gt=0,
        allow_inf_nan=False,
        description="Seconds a call may take before it gives up and falls back: the whole answer, or "
        "for a stream its start and each gap between its events.",
    )
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

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # A base URL may carry user:password (a gateway's basic auth), and reprs end up in logs.
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name == "base_url" and isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _refuse_inline_key(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "api_key" in data:
            raise KeyedError(("api_key",), INLINE_KEY_REFUSAL)
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
        if value is not None and unencoded_userinfo(value):
            raise ValueError(f"does not parse as a URL: {ENCODE_HINT}")
        return value

    @model_validator(mode="after")
    def _check_kind(self) -> ProviderConfig:
        if self.kind == "anthropic" and "max_tokens_field" in self.model_fields_set:
            raise KeyedError(("max_tokens_field",), "applies to kind = 'openai' only")
        if self.kind == "anthropic" and not self.require_key:
            raise KeyedError(("require_key",), "keyless servers need kind = 'openai'")
        if self.require_key and self.api_key_env is None:
            raise KeyedError(
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

    policy: Literal["default", "scorer", "rules", "learned", "classifier", "cheapest"] = Field(
        default="default",
        description="`default`: the learned difficulty estimate shipped with gearshift plus the step "
        "signals; `scorer`: the zero-training scorer over the request's signals; `rules`: the "
        "declarative `rules` below (the default policy decides what no rule matches); `learned`: a "
        "router trained on your outcomes (`learned` below); `classifier`: a small model names the tier "
        "(`classifier` below); `cheapest`: always the cheapest model, for the learned `escalation` "
        "alone to move steps up.",
    )
    upper_share: float = Field(
        default=0.3,  # gearshift.learning.DEFAULT_UPPER_SHARE; not imported: the config loads no policy
        gt=0,
        lt=1,
        description="The default policy: the share of plain requests sent above the cheapest tier "
        "(the hardest-looking ones); step biases and escalations move single steps on top of it.",
    )
    default_output_tokens: int = Field(
        default=512,
        gt=0,
        description="Expected output tokens when a request sets no max_tokens (estimates); under a "
        "budget limit that refuses, also the output cap sent to the model.",
    )
    rules: tuple[dict[str, Any], ...] = Field(
        default=(), description="The rules of the `rules` policy, in order; validated by that policy."
    )
    tasks: dict[str, StrictStr | StrictInt] = Field(
        default_factory=dict,
        description='Task label -> model id (or tier number): `code = "model-a"` routes requests the '
        "signals label `code` there, as rules tried before `rules` and the policy (see `gearshift.TASKS`).",
    )
    scorer: dict[str, Any] = Field(
        default_factory=dict, description="Settings of the scorer policy; validated by that policy."
    )
    cooldown_seconds: float = Field(
        default=30.0,
        ge=0,
        allow_inf_nan=False,
        description="How long a failed model is skipped when the provider gave no retry-after; "
        "doubles with each consecutive failure.",
    )
    max_cooldown_seconds: float = Field(
        default=300.0, ge=0, allow_inf_nan=False, description="The longest cooldown."
    )
    fallback_to_lower_tiers: bool = Field(
        default=False,
        description="When every model at or above the chosen tier failed, also try weaker ones.",
    )
    self_escalation: bool = Field(
        default=False,
        description="Offer models below the top tier an `escalate` tool that hands the step to a "
        "stronger model; the caller sees one answer.",
    )
    max_escalations: int = Field(
        default=2, ge=0, description="The most hand-overs to stronger models in one call."
    )
    prefer: Literal["cost", "latency"] = Field(
        default="cost",
        description="Among models of the tier the policy chose: `cost` takes the cheapest, `latency` "
        "the one that has answered fastest so far.",
    )
    breaker_failures: int = Field(
        default=3,
        ge=1,
        description="Failures in a row after which a deployment of a model with several is tripped "
        "(skipped, then probed before it gets traffic again).",
    )
    breaker_open_seconds: float = Field(
        default=30.0,
        gt=0,
        allow_inf_nan=False,
        description="How long a tripped deployment is skipped before its probe; doubles with each "
        "failed probe, up to max_cooldown_seconds.",
    )
    learned: dict[str, Any] | None = Field(
        default=None,
        description="The learned policy: its artifact `path` and operating point; validated by "
        "`gearshift.learning.LearnedConfig`.",
    )
    escalation: dict[str, Any] | None = Field(
        default=None,
        description="The learned escalation applied on every step of a run: its artifact `path`, "
        "threshold and stickiness; validated by `gearshift.escalation.EscalationConfig`.",
    )
    classifier: dict[str, Any] | None = Field(
        default=None,
        description="The classifier policy: its `model`, prompt, labels, timeout and cache; validated by "
        "`gearshift.policies.ClassifierConfig`.",
    )
    cascade: dict[str, Any] | None = Field(
        default=None,
        description="A cascade: quality gates that check cheaper models' answers and escalate the "
        "ones that fail; validated by `gearshift.cascades.CascadeConfig`.",
    )
    shadow: dict[str, Any] | None = Field(
        default=None,
        description="Shadow evaluation: a sampled share of calls also answered by a reference model in "
        "the background and judged; validated by `gearshift.ShadowConfig`.",
    )

    @field_validator("tasks")
    @classmethod
    def _check_tasks(cls, value: dict[str, str | int]) -> dict[str, str | int]:
        for task in value:
            if task not in TASKS:
                raise KeyedError((task,), f"unknown task {task!r}; use one of {', '.join(TASKS)}")
        return value

    @model_validator(mode="after")
    def _check(self) -> RoutingConfig:
        if self.policy == "rules" and not self.rules and not self.tasks:
            raise KeyedError(("rules",), "policy = 'rules' needs at least one [[routing.rules]] table")
        if self.policy == "learned" and self.learned is None:
            raise KeyedError(
                ("learned",),
                "policy = 'learned' needs a [routing.learned] table with the `path` of a trained router "
                "(gearshift train --data OUTCOMES.jsonl --out ROUTER.json)",
            )
        if self.policy == "classifier" and self.classifier is None:
            raise KeyedError(
                ("classifier",), "policy = 'classifier' needs a [routing.classifier] table naming its `model`"
            )
        if self.max_cooldown_seconds < self.cooldown_seconds:
            raise KeyedError(
                ("max_cooldown_seconds",),
                f"must be >= cooldown_seconds ({show_value(self.cooldown_seconds)}), "
                f"got {show_value(self.max_cooldown_seconds)}",
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
    budgets: BudgetsConfig | None = Field(
        default=None, description="The budget ledger and its limits; absent: calls are not budgeted."
    )

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
    row = _anthropic_cache_writes(row, provider)
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


def _anthropic_cache_writes(row: Mapping[str, Any], provider: ProviderConfig) -> Mapping[str, Any]:
    """Configured Anthropic prices without `cache_write` bill writes as Anthropic does: 1.25x input."""
    prices = row.get("prices")
    if provider.kind != "anthropic" or not isinstance(prices, Mapping) or "cache_write" in prices:
        return row
    price = prices.get("input")
    if not isinstance(price, (int, float)) or isinstance(price, bool):
        return row  # pydantic reports the missing or mistyped price
    return {**row, "prices": {**prices, "cache_write": price * _ANTHROPIC_CACHE_WRITE_FACTOR}}


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
        return GearshiftConfig.from_dict(read.data, source=read.source, base_dir=read.base_dir)
    except ConfigError as exc:
        raise read.located(exc) from None
