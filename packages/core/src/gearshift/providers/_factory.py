"""Provider objects built from a `GearshiftConfig`, and the API keys and SDKs the config still lacks.

The adapters are imported inside the functions: this module is imported by the CLI before it knows
which kinds a config uses, and the adapters pull in their SDK support code.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ._base import Provider

if TYPE_CHECKING:
    from .._models import ModelSpec
    from ..config._config import GearshiftConfig, ProviderConfig

__all__ = ["build_providers", "keys_wanted", "missing_keys", "missing_sdks", "required_keys"]


def build_providers(config: GearshiftConfig) -> dict[str, Provider]:
    """One provider per provider configuration that serves at least one of the config's models.

    Building one is cheap and offline: keys are read and SDK clients made on the first call.
    """
    used = _used(config)
    return {name: _build(name, settings) for name, settings in config.providers.items() if name in used}


def required_keys(config: GearshiftConfig) -> dict[str, str]:
    """Provider name -> the environment variable holding its API key, for every provider the models
    need (their own and their deployments'), whether the key is set or not.

    Keyless providers (`require_key = false`) never appear; neither do providers no model uses.
    """
    used = _used(config)
    return {
        name: settings.api_key_env
        for name, settings in sorted(config.providers.items())
        if name in used and settings.require_key and settings.api_key_env
    }


def missing_keys(config: GearshiftConfig) -> dict[str, str]:
    """Provider name -> the environment variable to set, for providers the models need whose key is unset.

    Keyless providers (`require_key = false`) never appear; neither do providers no model uses.
    """
    return {name: env for name, env in required_keys(config).items() if not os.environ.get(env)}


def keys_wanted(config: GearshiftConfig, models: Iterable[ModelSpec]) -> dict[str, str]:
    """Provider name -> the environment variable to set, when no provider serving any of `models`
    (on its own or as a deployment) can be called for want of its key; empty when one can.

    A command checks a decision's chain with it before calling anything, to name the key to set.
    """
    serving = {name for spec in models for name in spec.served_by()}
    missing = missing_keys(config)
    if not serving or not serving <= missing.keys():
        return {}
    return {name: missing[name] for name in sorted(serving)}


def missing_sdks(config: GearshiftConfig) -> dict[str, str]:
    """Provider name -> the `gearshift[...]` extra to install, for the needed providers without their SDK.

    A provider's kind names both its SDK's module and the extra that installs it. Checked without
    importing the SDK (that takes seconds), so a command can say it once before it calls any model.
    """
    used = _used(config)
    return {
        name: settings.kind
        for name, settings in sorted(config.providers.items())
        if name in used and importlib.util.find_spec(settings.kind) is None
    }


def _used(config: GearshiftConfig) -> set[str]:
    return {name for model in config.models for name in model.served_by()}


def _build(name: str, settings: ProviderConfig) -> Provider:
    headers = settings.headers or None
    if settings.kind == "openai":
        from ._openai import OpenAIProvider

        return OpenAIProvider(
            name,
            api_key_env=settings.api_key_env,
            base_url=settings.base_url,
            timeout=settings.timeout,
            require_key=settings.require_key,
            # Unset in the config, the provider picks the field its server takes.
            max_tokens_field=settings.max_tokens_field
            if "max_tokens_field" in settings.model_fields_set
            else None,
            default_headers=headers,
            http_client=settings.http_client or "httpx",
        )
    from ._anthropic import AnthropicProvider

    return AnthropicProvider(
        name,
        api_key_env=settings.api_key_env,
        base_url=settings.base_url,
        timeout=settings.timeout,
        default_headers=headers,
        http_client=settings.http_client or "httpx",
    )
