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

from ._access import ProxyKey, ProxyKeys, key_hash
from ._app import ProxyApp, create_app
from ._settings import ServeSettings

__all__ = ["ProxyApp", "ProxyKey", "ProxyKeys", "ServeSettings", "create_app", "key_hash"]
