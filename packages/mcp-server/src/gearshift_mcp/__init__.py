"""gearshift's MCP server: `route`, `escalate`, `budget_status` and `feedback` tools over one `Router`.

```python
from gearshift_mcp import build_server

server = build_server("gearshift.toml")  # an mcp.server.mcpserver.MCPServer
server.run()  # stdio; or run the `gearshift-mcp` command
```

Clients see four tools: `route` (which model should take a step: free, calls nothing), `escalate`
(a stuck model hands its problem to a stronger one, charged to the agent's budget), `budget_status`
and `feedback` (a score for an `escalate` answer); and three resources: `gearshift://models`,
`gearshift://decisions/recent` and `gearshift://budgets/{key}`.
"""

from typing import TYPE_CHECKING, Any

from ._cli import claude_desktop_config, main
from ._http import TOKEN_ENV
from ._schemas import (
    AttemptView,
    BudgetStatusResult,
    EscalateResult,
    EscalationView,
    FeedbackResult,
    KeyBudget,
    LimitView,
    RouteConstraints,
    RouteResult,
    ToolUse,
)
from ._service import RouterTools

if TYPE_CHECKING:
    from ._server import build_server

__all__ = [
    "TOKEN_ENV",
    "AttemptView",
    "BudgetStatusResult",
    "EscalateResult",
    "EscalationView",
    "FeedbackResult",
    "KeyBudget",
    "LimitView",
    "RouteConstraints",
    "RouteResult",
    "RouterTools",
    "ToolUse",
    "build_server",
    "claude_desktop_config",
    "main",
]


def __getattr__(name: str) -> Any:
    # The MCP SDK takes seconds to import; `gearshift-mcp config ...` and a refused bind need none of it.
    if name == "build_server":
        from ._server import build_server

        return build_server
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
