"""LangChain and LangGraph integration for gearshift (the routed chat model lands in its own issue)."""

__all__: list[str] = []
