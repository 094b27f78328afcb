"""`gearshift serve`: an OpenAI- and Anthropic-compatible proxy over the routing core.

Point any OpenAI or Anthropic SDK at it (change only the base URL) and every call goes through the
core `Router`: the request's `model` picks how to route (`auto`, `tier-N`, or a model id),
`x-gearshift-*` headers give the step context, and the answer comes back in the API's own format.
Needs the `serve` extra (`pip install 'gearshift[serve]'`).

```python
from gearshift.serve import ProxyApp, ServeSettings, create_app

app = create_app(ServeSettings(config=Path("gearshift.toml")))  # any ASGI server can run it
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._access import ProxyKey, ProxyKeys, key_hash
from ._binding import bind_address, is_loopback
from ._settings import ServeSettings

if TYPE_CHECKING:
    from ._app import ProxyApp, create_app

__all__ = [
    "ProxyApp",
    "ProxyKey",
    "ProxyKeys",
    "ServeSettings",
    "bind_address",
    "create_app",
    "is_loopback",
    "key_hash",
]


def __getattr__(name: str) -> Any:
    # The ASGI app needs the `serve` extra (Starlette, prometheus-client); the CLI and the key
    # helpers do not, so `gearshift --help` neither loads nor needs it.
    if name in ("ProxyApp", "create_app"):
        from . import _app

        return getattr(_app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
