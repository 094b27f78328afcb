"""LlamaIndex integration for gearshift: `RoutedLLM`, a function-calling LLM routed by gearshift.

```python
from llama_index.core.agent.workflow import FunctionAgent
from gearshift_llamaindex import RoutedLLM, run_scope

llm = RoutedLLM(config="gearshift.toml", agent_id="researcher")
agent = FunctionAgent(tools=[search], llm=llm)
with run_scope(run_id="ticket-42"):
    answer = await agent.run("Find the latest release notes")
```
"""

from ._calls import run_scope
from ._llm import RoutedLLM

__all__ = ["RoutedLLM", "run_scope"]
