"""The HTTP client the proxy's providers use: aiohttp, unless a provider's config names one.

On aiohttp a plain call costs less CPU than on the SDK's default httpx client, and nearly all of the
proxy's CPU is on each call's critical path; streams stay on httpx whatever is set (`SDKProvider`).
A provider table that sets `http_client` keeps its choice; without aiohttp installed the SDK's default
stays.
"""

from __future__ import annotations

import importlib.util

from ..config._config import GearshiftConfig

__all__ = ["on_proxy_http_client"]


def on_proxy_http_client(config: GearshiftConfig) -> GearshiftConfig:
    """`config` with `http_client = "aiohttp"` on every provider that does not set `http_client`."""
    if importlib.util.find_spec("aiohttp") is None:
        return config
    providers = {
        name: settings
        if settings.http_client is not None
        else settings.model_copy(update={"http_client": "aiohttp"})
        for name, settings in config.providers.items()
    }
    return config.model_copy(update={"providers": providers})
