"""`[providers.<name>]`: how to reach one provider, and the two that exist without being declared.

A provider table names the SDK that speaks to the server (`kind`), where it is (`base_url`), and the
environment variable that holds its key (`api_key_env`): the key itself never appears in the file,
and nothing under `[providers]` is ever echoed in an error, since a key pasted into the wrong field
or a secret header may sit there.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterator, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from .._url_secrets import ENCODE_HINT, mask_url, unencoded_userinfo
from ._config_errors import INLINE_KEY_REFUSAL, KeyedError

__all__ = ["BUILTIN_PROVIDERS", "ProviderConfig"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
        "models need `max_completion_tokens`; compatible servers mostly expect `max_tokens`. Unset: "
        "`max_completion_tokens` for OpenAI's own API (no `base_url`, or api.openai.com), `max_tokens` "
        "for any other server.",
    )
    http_client: Literal["httpx", "aiohttp"] | None = Field(
        default=None,
        description="The HTTP client of plain calls: `httpx` (the SDK's default) or `aiohttp`, which "
        "costs less CPU per call; streams always use httpx. Unset: httpx, except under `gearshift serve`, "
        "which uses aiohttp.",
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
        if value is not None:
            _check_host_and_port(value)
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


def _check_host_and_port(url: str) -> None:
    """Refuse now what the SDK would only report as a connection error on the first call: a URL with
    no host, or a port that is no number from 0 to 65535. The URL is never repeated (it may hold a
    password)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError("has no host: write it as http://HOST:PORT/PATH")
    try:
        parts.port  # noqa: B018 - reading it is the check: it raises on a port out of range or not a number
    except ValueError:
        raise ValueError("has a port the URL cannot carry: the port must be 0 to 65535") from None


BUILTIN_PROVIDERS: Mapping[str, ProviderConfig] = types.MappingProxyType(
    {
        "openai": ProviderConfig(
            kind="openai", api_key_env="OPENAI_API_KEY", max_tokens_field="max_completion_tokens"
        ),
        "anthropic": ProviderConfig(kind="anthropic", api_key_env="ANTHROPIC_API_KEY"),
    }
)
"""Providers that exist without being declared; a `[providers.openai]` table overrides single fields."""
