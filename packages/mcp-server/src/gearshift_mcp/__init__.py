"""MCP server for gearshift (the `route` and `escalate` tools land in their own issue)."""

__all__: list[str] = []
