"""LlamaIndex integration for gearshift (the routed LLM lands in its own issue)."""

__all__: list[str] = []
