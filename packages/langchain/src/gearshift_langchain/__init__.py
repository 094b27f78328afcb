"""gearshift for LangChain and LangGraph: a routed chat model and decision-driven branches.

```python
from langchain.agents import create_agent
from gearshift_langchain import RoutedChatModel

agent = create_agent(model=RoutedChatModel(agent_id="researcher"), tools=[search])
agent.invoke({"messages": [("user", "...")]}, {"configurable": {"thread_id": "t-1"}})
```

Every call of the agent is routed by gearshift to the cheapest model that will do the step; tool
errors and loops move steps up a tier, weaker models may hand a step up themselves, and budgets are
kept per agent and per thread.
"""

from ._branch import routed_branch
from ._chat_model import RoutedChatModel

__all__ = ["RoutedChatModel", "routed_branch"]
