"""Local, offline stand-ins for the OpenAI and Anthropic APIs, for tests and examples.

`LocalOpenAIServer` and `LocalAnthropicServer` are real HTTP servers on 127.0.0.1 that speak each
API's wire format, so the official SDKs (and gearshift's providers) run unchanged against them. The
model behind them is a deterministic simulation, not a language model: it calls tools with arguments
generated from their JSON schemas, answers JSON from a response schema, summarizes tool results, and
otherwise echoes the start of the last user message, naming the model that answered.

```python
from gearshift.testing import Fail, LocalOpenAIServer, Reply

with LocalOpenAIServer(models=("small", "large")) as server:
    server.script("small", Fail(status=429, retry_after=2.0), Reply(text="hello"))
    ...  # point OpenAIProvider(base_url=server.base_url, require_key=False) at it
```
"""

from ._actions import Action, CutStream, Delay, Drip, Fail, RecordedRequest, Reply
from ._anthropic_server import LocalAnthropicServer
from ._http import LocalServer
from ._openai_server import LocalOpenAIServer
from ._redis import LocalRedisServer, RedisServerMissing
from ._schema_values import example_from_schema

__all__ = [
    "Action",
    "CutStream",
    "Delay",
    "Drip",
    "Fail",
    "LocalAnthropicServer",
    "LocalOpenAIServer",
    "LocalRedisServer",
    "LocalServer",
    "RecordedRequest",
    "RedisServerMissing",
    "Reply",
    "example_from_schema",
]
