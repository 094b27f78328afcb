"""The MCP server: gearshift's `route`, `escalate`, `budget_status` and `feedback` tools, and its
resources.

`build_server` wires an `MCPServer` over one `Router`. The router reaches the tools through the
server's lifespan context (a `RouterTools`), never through a global: a router built from config is
opened when the server starts and closed when it stops; a router passed in belongs to the caller.

Resources: `gearshift://models` (the registry), `gearshift://decisions/recent` (what the tools
decided lately, prompt text only when `log.include_prompts` allows it) and `gearshift://budgets/{key}`
(one agent's or spend key's budget).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.types import ToolAnnotations
from pydantic import Field, ValidationError, create_model, model_validator

from gearshift import GearshiftConfig, GearshiftError, ModelRegistry, Router

from ._argument_errors import argument_problems
from ._input_schema import plain_optionals
from ._numeric_text import numbers_from_text
from ._recent import RecentDecisions
from ._schemas import (
    AgentId,
    BudgetStatusResult,
    EscalateResult,
    FeedbackResult,
    RouteConstraints,
    RouteResult,
    RunId,
    StepTypeName,
    ToolUse,
)
from ._service import RouterTools, registry_document

__all__ = ["SERVER_INSTRUCTIONS", "build_server"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

SERVER_INSTRUCTIONS = (
    "gearshift routes LLM calls to the cheapest model that will do the job and keeps agents inside "
    "their budgets. Call `route` before a step to learn which model should take it (it calls no model "
    "and costs nothing). When you are stuck (a step failed, you keep repeating the same failing tool "
    "call, or it needs more reasoning than you can give) call `escalate` with the problem, what you "
    "tried and why: a stronger model answers, charged to your agent's budget. `budget_status` shows "
    "what an agent has spent and has left. Once you know whether an `escalate` answer was right, "
    "score it with `feedback` and its `request_id`. The resource gearshift://models lists the models "
    "and tiers."
)

_JSON = "application/json"


def build_server(
    config: GearshiftConfig | str | Path | None = None,
    *,
    router: Router | None = None,
    self_escalation: bool | None = True,
    recent_decisions: int = 100,
    bearer_token: str | None = None,
) -> MCPServer[RouterTools]:
    """An MCP server over a router built from `config` (a `GearshiftConfig` or a gearshift.toml path;
    None: `$GEARSHIFT_CONFIG`, then `./gearshift.toml`, then the built-in models), or over `router`.

    The config is loaded and checked here (`Router.check_config`), so a bad file or table fails at once
    with a `ConfigError`; the router itself is built when the server starts. `self_escalation` lets
    the model that answers an `escalate` call hand it on to an even stronger one (None: the router's
    own `self_escalation` setting).
    `recent_decisions` is how many decisions the `gearshift://decisions/recent` resource keeps.
    `bearer_token`, when set, is required from every HTTP client (`Authorization: Bearer <token>`);
    it has no effect over stdio.
    """
    loaded: GearshiftConfig | None = None
    if router is None:
        loaded = _load(config)
        registry = loaded.registry()
    elif config is not None:
        raise TypeError("pass either config or router, not both")
    else:
        registry = router.registry
    recent = RecentDecisions(recent_decisions, include_prompts=_include_prompts(loaded, router))

    @asynccontextmanager
    async def lifespan(_: MCPServer[RouterTools]) -> AsyncIterator[RouterTools]:
        if router is not None:
            yield RouterTools(router, recent=recent, self_escalation=self_escalation)
            return
        owned = Router.from_config(loaded)
        try:
            yield RouterTools(owned, recent=recent, config=loaded, self_escalation=self_escalation)
        finally:
            await owned.aclose()

    auth: dict[str, Any] = {}
    if bearer_token is not None:
        from ._http import bearer_auth

        auth = bearer_auth(bearer_token)
    server: MCPServer[RouterTools] = MCPServer(
        "gearshift",
        title="gearshift",
        instructions=SERVER_INSTRUCTIONS,
        version=_version(),
        lifespan=lifespan,
        log_level="WARNING",
        tools=_tools(),
        **auth,
    )
    _add_resources(server, registry, recent)
    return server


def _load(config: GearshiftConfig | str | Path | None) -> GearshiftConfig:
    # The router is built when the server starts serving, where a ConfigError would end the server
    # with a traceback; everything that building it checks is checked now.
    return Router.check_config(config)


def _include_prompts(config: GearshiftConfig | None, router: Router | None) -> bool:
    if config is not None:
        return config.log.include_prompts
    log = router.decision_log if router is not None else None
    return log is not None and log.include_prompts


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gearshift-mcp")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
        return "0"


async def _answer(work: Awaitable[T]) -> T:
    """Await a tool's work; a gearshift error becomes an error result the calling model can read."""
    try:
        return await work
    except GearshiftError as error:
        named = "" if error.request_id is None else f" (request id {error.request_id} in the decision log)"
        raise ToolError(f"{error}{named}") from None


class _KnownArguments(ArgModelBase):
    """Refuses argument names the tool does not take: a misspelt `agentId` must not be ignored (the
    call would then go uncharged to the agent it meant), so the error lists the names it knows.

    A null for an optional argument means "not given": models send `"tried": null` for what they
    leave out, and an argument whose default is not null (`tried = ""`, `turn_start = 0`) refused it.
    A number written as text (`"score": "0.5"`) is read as that number (`_numeric_text`).
    """

    @model_validator(mode="before")
    @classmethod
    def _known_only(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            fields = {field.alias or name: field for name, field in cls.model_fields.items()}
            unknown = [str(name) for name in data if name not in fields]
            if unknown:
                plural = "s" if len(unknown) > 1 else ""
                raise ValueError(
                    f"unknown argument{plural} {', '.join(map(repr, unknown))}; the known arguments "
                    f"are {', '.join(fields)}"
                )
            given = {
                name: value for name, value in data.items() if value is not None or fields[name].is_required()
            }
            return numbers_from_text(cls, given)
        return data


class _ArgumentCheckedTool(Tool):
    """A tool whose refused arguments are reported in plain words (`argument_problems`)."""

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        try:
            return await super().run(arguments, context, convert_result)
        except ToolError as error:
            # Only the arguments' validation raises a ToolError caused by a ValidationError: the
            # SDK reports any other ValidationError (in the tool, or its result) as a crash.
            if not isinstance(error.__cause__, ValidationError):
                raise
            problems = argument_problems(error.__cause__)
            raise ToolError(f"Error executing tool {self.name}: {problems}") from None


def _strict(tool: Tool) -> Tool:
    """`tool`, refusing unknown argument names (and saying so in its input schema), its optional
    arguments advertised with their own type."""
    metadata = tool.fn_metadata
    base = metadata.arg_model
    metadata.arg_model = create_model(base.__name__, __base__=(base, _KnownArguments))
    tool.parameters["additionalProperties"] = False
    plain_optionals(tool.parameters)
    return tool


def _tools() -> list[Tool]:
    """The server's tools: `route`, `escalate`, `budget_status` and `feedback`, each refusing unknown
    arguments."""
    registered: list[Tool] = []

    def tool(*, title: str, annotations: ToolAnnotations) -> Callable[[F], F]:
        def register(fn: F) -> F:
            # Cleaned as Python 3.13 cleans every docstring: before it, the source's indentation stays.
            description = inspect.cleandoc(fn.__doc__ or "")
            made = _ArgumentCheckedTool.from_function(
                fn, title=title, description=description, annotations=annotations
            )
            registered.append(_strict(made))
            return fn

        return register

    @tool(
        title="Pick the model for a step",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    async def route(
        prompt: Annotated[
            str,
            Field(min_length=1, description="The step's task description, or the prompt a model would get."),
        ],
        ctx: Context[RouterTools],
        step_type: Annotated[
            StepTypeName | None, Field(description="The kind of step the agent is on; default other.")
        ] = None,
        agent_id: AgentId = None,
        run_id: RunId = None,
        step_index: Annotated[
            int | None,
            Field(
                ge=0,
                strict=True,
                description="Model calls made in this run so far (default: the tool_history length).",
            ),
        ] = None,
        tool_history: Annotated[
            tuple[ToolUse, ...],
            Field(description="The run's tool calls so far, oldest first, with whether each failed."),
        ] = (),
        turn_start: Annotated[
            int,
            Field(
                ge=0,
                strict=True,
                description="Index in tool_history of the first call made since the user's latest "
                "message: a user turn ends an error streak or a loop, so they are read from there on, "
                "and the budget is paced over the turn's steps, not the run's "
                "(default 0: the whole tool_history).",
            ),
        ] = 0,
        constraints: Annotated[
            RouteConstraints | None, Field(description="Cost cap and tier range the choice must respect.")
        ] = None,
    ) -> RouteResult:
        """Pick the cheapest model that will do a step well, without calling any model (free; a server
        set up with an LLM classifier asks it once per new prompt, charged to the step's budget).

        Describe the step, or paste the prompt, in `prompt`. Say where the agent stands: `step_type`,
        `agent_id` and `run_id` (so its budget is taken into account), and `tool_history` (the tool
        calls so far and whether they failed: failures or identical calls in a row move the step to a
        stronger tier; `turn_start` says where the user's latest turn starts in it). `constraints`
        caps the cost or bounds the tier. Returns the model, its tier, the reasons, the estimated
        cost, the fallbacks and the budget left.
        """
        tools = ctx.request_context.lifespan_context
        return await _answer(
            tools.route(
                prompt,
                step_type=step_type,
                agent_id=agent_id,
                run_id=run_id,
                step_index=step_index,
                tool_history=tool_history,
                turn_start=turn_start,
                constraints=constraints,
            )
        )

    @tool(
        title="Ask a stronger model",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True),
    )
    async def escalate(
        problem: Annotated[
            str, Field(min_length=1, description="The problem you are stuck on, stated fully.")
        ],
        reason: Annotated[
            str, Field(min_length=1, description="Why you are escalating, in a sentence or two.")
        ],
        ctx: Context[RouterTools],
        tried: Annotated[
            str, Field(description="What you already tried and how each attempt failed (error messages).")
        ] = "",
        material: Annotated[
            str,
            Field(description="Code, data, documents or tool output the stronger model needs to solve it."),
        ] = "",
        agent_id: AgentId = None,
        run_id: RunId = None,
        min_tier: Annotated[
            int | None,
            Field(
                ge=0,
                strict=True,
                description="Weakest tier that may answer; default: the strongest tier configured.",
            ),
        ] = None,
        max_cost_usd: Annotated[
            float | None,
            Field(ge=0, strict=True, description="Refuse models whose estimated cost is above this (USD)."),
        ] = None,
        max_tokens: Annotated[
            int | None, Field(gt=0, strict=True, description="Cap on the answer's length in tokens.")
        ] = None,
    ) -> EscalateResult:
        """Hand a problem you are stuck on to a stronger model and get its answer.

        Use it when a step failed, you keep repeating the same failing tool call, or the step needs
        more reasoning or knowledge than you have. Give the `problem`, what you `tried`, and the
        `reason`; put everything the stronger model needs in `material`, since it sees nothing else
        of your conversation. The call is charged to `agent_id`'s budget (without one, to the
        server's default agent) and refused, at no cost, when that budget cannot cover it. Returns
        the answer, the model that gave it, its cost and the budget left.
        """
        tools = ctx.request_context.lifespan_context
        return await _answer(
            tools.escalate(
                problem,
                reason,
                tried=tried,
                material=material,
                agent_id=agent_id,
                run_id=run_id,
                min_tier=min_tier,
                max_cost_usd=max_cost_usd,
                max_tokens=max_tokens,
            )
        )

    @tool(
        title="Budget status",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    async def budget_status(
        ctx: Context[RouterTools],
        agent_id: Annotated[
            str | None, Field(min_length=1, description="An agent's id: its `agent:<id>` key is shown.")
        ] = None,
        key: Annotated[
            str | None,
            Field(min_length=1, description="A spend key such as run:<id> or team:search."),
        ] = None,
    ) -> BudgetStatusResult:
        """Show spend, reservations and limits of an agent (`agent_id`), of one spend key (`key`), or,
        with neither, of every key the budget ledger has seen.

        Each limit gives its cap, what was spent and reserved in its window, and what is left.
        """
        tools = ctx.request_context.lifespan_context
        return await _answer(tools.budget_status(agent_id=agent_id, key=key))

    @tool(
        title="Score an answer",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False),
    )
    async def feedback(
        request_id: Annotated[
            str,
            Field(min_length=1, max_length=200, description="The `request_id` of an `escalate` answer."),
        ],
        score: Annotated[
            float,
            Field(
                ge=0,
                le=1,
                strict=True,
                description="How good the answer was: 0 wrong or useless, 1 fully right.",
            ),
        ],
        ctx: Context[RouterTools],
        source: Annotated[
            str,
            Field(
                min_length=1, max_length=100, description="Who scored: agent (default), user, a check's name."
            ),
        ] = "agent",
        comment: Annotated[
            str | None, Field(max_length=2000, description="Why, in a few words (optional).")
        ] = None,
    ) -> FeedbackResult:
        """Score an answer gearshift gave (by its `request_id`) once you know how good it was, e.g.
        after a test ran or the user replied. Scores teach gearshift which model each kind of step needs.
        A later score from the same `source` replaces its earlier one (to correct a score, send it again).
        """
        tools = ctx.request_context.lifespan_context
        return await _answer(tools.feedback(request_id, score, source=source, comment=comment))

    return registered


def _add_resources(server: MCPServer[RouterTools], registry: ModelRegistry, recent: RecentDecisions) -> None:
    # Static resources get no Context from the SDK, so these two read values fixed when the server
    # was built (the registry, and the decision record the lifespan's RouterTools also writes to).
    @server.resource(
        "gearshift://models",
        name="models",
        title="Model registry",
        description="The models gearshift routes between: tier, prices ($ per million tokens), "
        "context window and capabilities, weakest and cheapest first.",
        mime_type=_JSON,
    )
    def models() -> str:
        return json.dumps(registry_document(registry), indent=2)

    @server.resource(
        "gearshift://decisions/recent",
        name="recent-decisions",
        title="Recent decisions",
        description="The latest decisions of the route and escalate tools, oldest first (prompt text "
        "only when the config's log.include_prompts allows it).",
        mime_type=_JSON,
    )
    def recent_decisions() -> str:
        return json.dumps(recent.snapshot(), indent=2)

    @server.resource(
        "gearshift://budgets/{key}",
        name="budget",
        title="Budget of an agent or spend key",
        description="Spend, reservations and limits of one spend key (agent:<id>, run:<id>, ...); a bare "
        "agent id means agent:<id>.",
        mime_type=_JSON,
    )
    async def budget(key: str, ctx: Context[RouterTools]) -> str:
        tools = ctx.request_context.lifespan_context
        try:
            document = await tools.budget_document(key)
        except GearshiftError as error:
            raise ResourceError(str(error)) from None
        return json.dumps(document, indent=2)
