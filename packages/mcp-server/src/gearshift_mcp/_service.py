"""What the MCP tools do, over one `Router`: route a step, escalate a problem, report budgets.

Nothing here knows MCP: `_server` registers these methods as tools and turns a `GearshiftError` into
an error result. Keeping the logic apart lets it be read (and changed) without the SDK in view.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gearshift import (
    CallerHints,
    ChatRequest,
    ConfigError,
    Decision,
    EmptyAnswer,
    GearshiftError,
    InvalidRequestError,
    Message,
    ModelRegistry,
    RoutedResponse,
    Router,
    StepContext,
    StepType,
    ToolRecord,
    hash_arguments,
)
from gearshift.cascades import check_empty

from ._recent import RecentDecisions
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

if TYPE_CHECKING:
    from gearshift import GearshiftConfig

__all__ = ["ESCALATION_SYSTEM_PROMPT", "RouterTools", "escalation_request", "registry_document"]

ESCALATION_SYSTEM_PROMPT = (
    "Another AI model working on a task got stuck and handed this problem to you because you are "
    "stronger. It tells you what the problem is, what it already tried and why it is escalating. "
    "Solve the problem itself: give a complete, correct answer it can act on directly, and say "
    "briefly where its attempts went wrong when that helps."
)


def escalation_request(
    problem: str, reason: str, *, tried: str = "", material: str = "", max_tokens: int | None = None
) -> ChatRequest:
    """The request the stronger model receives for an escalated problem."""
    parts = [f"## Problem\n{problem.strip()}"]
    if tried.strip():
        parts.append(f"## What was tried\n{tried.strip()}")
    parts.append(f"## Why it is escalating\n{reason.strip()}")
    if material.strip():
        parts.append(f"## Material\n{material.strip()}")
    return ChatRequest(
        messages=(Message.system(ESCALATION_SYSTEM_PROMPT), Message.user("\n\n".join(parts))),
        max_tokens=max_tokens,
    )


class RouterTools:
    """The logic behind the server's tools, over one router.

    `recent` records what the tools decide (for the recent-decisions resource). `config`, when the
    router was built from one, lets `escalate` say which API key is missing before it calls
    anything. `self_escalation` is passed to the router on `escalate` calls, so a model below the
    top tier may hand the problem on again (None: the router's own setting).
    """

    def __init__(
        self,
        router: Router,
        *,
        recent: RecentDecisions | None = None,
        config: GearshiftConfig | None = None,
        self_escalation: bool | None = True,
    ) -> None:
        self.router = router
        self.recent = recent if recent is not None else RecentDecisions()
        self.config = config
        self.self_escalation = self_escalation

    # -- route ----------------------------------------------------------------------------------

    async def route(
        self,
        prompt: str,
        *,
        step_type: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        step_index: int | None = None,
        tool_history: Sequence[ToolUse] = (),
        turn_start: int = 0,
        constraints: RouteConstraints | None = None,
    ) -> RouteResult:
        """The decision for one step, budget included, calling no model but the router's classifier.

        The caller calls the chosen model itself, so the decision counts as the step's: with the
        router's learned escalation, a hand-over holds the run's later steps (`run_id`). `turn_start`
        is the index in `tool_history` of the first call since the user's latest message; the budget
        is paced over that turn's steps, one per tool call since then (each took a model call).
        """
        _refuse_blank(prompt=prompt)
        # Each tool call in the history took at least one model call before it.
        steps = len(tool_history) if step_index is None else step_index
        context = StepContext(
            agent_id=agent_id,
            run_id=run_id,
            step_type=StepType.parse(step_type or "other", where="step_type"),
            step_index=steps,
            tool_history=tuple(_tool_record(use) for use in tool_history),
            turn_start=turn_start,
            turn_step_index=None if turn_start == 0 else min(steps, len(tool_history) - turn_start),
            hints=self._hints(constraints),
        )
        request = ChatRequest(messages=(Message.user(prompt),))
        decision = await self.router.adecide(request, context, remember=True, classify=True)
        self.recent.add("route", decision, context, prompt=prompt)
        spec = self.router.registry[decision.model]
        return RouteResult(
            model=decision.model,
            provider=spec.provider,
            provider_model=spec.model,
            tier=decision.tier,
            reasons=list(decision.reasons),
            estimated_cost_usd=decision.estimated_cost_usd,
            fallbacks=list(decision.fallbacks),
            policy=decision.policy,
            budget_changed=decision.budget_changed,
            budget_left_usd=await self._budget_left(context),
        )

    # -- escalate -------------------------------------------------------------------------------

    async def escalate(
        self,
        problem: str,
        reason: str,
        *,
        tried: str = "",
        material: str = "",
        agent_id: str | None = None,
        run_id: str | None = None,
        min_tier: int | None = None,
        max_cost_usd: float | None = None,
        max_tokens: int | None = None,
    ) -> EscalateResult:
        """Ask a stronger model (the top tier unless `min_tier` says otherwise) and return its answer.

        Raises `BudgetExceeded` when a hard limit refuses the call (nothing is charged),
        `AllModelsFailed` listing every attempt, `ConfigError` when no model it could ask has its
        API key set, or `EmptyAnswer` when the model answered with nothing (no text, no tool
        call): the empty answer a cascade's gate rejects is no solution to hand back (it is charged).
        """
        _refuse_blank(problem=problem, reason=reason)
        tiers = self.router.registry.tiers
        hints = self._hints(
            RouteConstraints(min_tier=tiers[-1] if min_tier is None else min_tier, max_cost_usd=max_cost_usd)
        )
        context = StepContext(agent_id=agent_id, run_id=run_id, step_type=StepType.REFLECT, hints=hints)
        request = escalation_request(problem, reason, tried=tried, material=material, max_tokens=max_tokens)
        decision = await self.router.adecide(request, context)
        self._check_keys(decision)
        prompt = request.messages[-1].text
        try:
            result = await self.router.acomplete(request, context, self_escalation=self.self_escalation)
        except GearshiftError as error:  # refused by the budget, or every model failed
            self.recent.add("escalate", decision, context, prompt=prompt, outcome={"error": str(error)})
            raise
        except asyncio.CancelledError:  # the client cancelled the call: what it cost is charged
            self.recent.add("escalate", decision, context, prompt=prompt, outcome={"cancelled": True})
            raise
        outcome: dict[str, Any] = {"answered_by": result.model_id, "cost_usd": result.cost_usd}
        empty = _empty_answer(request, result, self.router)
        if empty is not None:  # no answer to give: the agent must not take "" for the solution
            self.recent.add(
                "escalate", result.decision, context, prompt=prompt, outcome={**outcome, "error": str(empty)}
            )
            raise empty
        self.recent.add("escalate", result.decision, context, prompt=prompt, outcome=outcome)
        return _escalate_result(result, self.router, await self._budget_left(context))

    async def feedback(
        self, request_id: str, score: float, *, source: str = "agent", comment: str | None = None
    ) -> FeedbackResult:
        """Record a score for the answer of a routed call (an `escalate` answer's `request_id`).

        The decision log says which ids were answered, so an answer given before the server restarted
        is scored, and an id it holds no call of is refused (see `Router.feedback`). Off the event
        loop: an id from before the restart is looked up in the log's file.
        """
        await asyncio.to_thread(self.router.feedback, request_id, score, source=source, comment=comment)
        return FeedbackResult(request_id=request_id, score=float(score), source=source)

    def _check_keys(self, decision: Decision) -> None:
        if self.config is None:
            return
        from gearshift.providers import keys_wanted

        missing = keys_wanted(self.config, (self.router.registry[m] for m in decision.chain))
        if missing:
            wanted = " or ".join(f"{env} (provider '{p}')" for p, env in missing.items())
            raise ConfigError(
                f"escalate cannot ask a stronger model: no API key is set for the models it would use "
                f"({', '.join(decision.chain)}). Set {wanted} in the server's environment (the `env` "
                "block of the MCP client's config), then restart the server"
            )

    # -- budgets --------------------------------------------------------------------------------

    async def budget_status(
        self, *, agent_id: str | None = None, key: str | None = None
    ) -> BudgetStatusResult:
        """Spend, reservations and limits of an agent, of one spend key, or of every key the ledger knows."""
        ledger = self.router.budgets
        if ledger is None:
            return BudgetStatusResult(budgets_configured=False, keys=[])
        keys = [_spend_key(k) for k in (f"agent:{agent_id}" if agent_id else None, key) if k is not None]
        if not keys:
            keys = list(await ledger.keys())
        views = []
        for spend_key in dict.fromkeys(keys):  # in order, without repeats
            status = await ledger.status((spend_key,))
            views.append(
                KeyBudget(
                    key=spend_key,
                    remaining_usd=status.remaining_usd,
                    limits=[LimitView.model_validate(limit.to_dict()) for limit in status.limits],
                )
            )
        return BudgetStatusResult(budgets_configured=True, keys=views)

    async def budget_document(self, key: str) -> dict[str, Any]:
        """One spend key's budget as a JSON-ready dict; a bare agent id means `agent:<id>`."""
        spend_key = key if ":" in key else f"agent:{key}"
        return (await self.budget_status(key=spend_key)).model_dump(mode="json")

    async def _budget_left(self, context: StepContext) -> float | None:
        ledger = self.router.budgets
        if ledger is None:
            return None
        return (await ledger.status(self.router.spend_keys(context))).remaining_usd

    # -- helpers --------------------------------------------------------------------------------

    def _hints(self, constraints: RouteConstraints | None) -> CallerHints:
        if constraints is None:
            return CallerHints()
        tiers = self.router.registry.tiers
        for name in ("min_tier", "max_tier"):
            tier = getattr(constraints, name)
            if tier is not None and tier not in tiers:
                raise InvalidRequestError(
                    f"{name}: unknown tier {tier}; the models have tiers {', '.join(map(str, tiers))} "
                    "(see the gearshift://models resource)"
                )
        return CallerHints(
            min_tier=constraints.min_tier,
            max_tier=constraints.max_tier,
            max_cost_usd=constraints.max_cost_usd,
        )


def registry_document(registry: ModelRegistry) -> list[dict[str, Any]]:
    """The registry's models as JSON-ready dicts, weakest and cheapest first."""
    return [spec.model_dump(mode="json") for spec in registry]


def _refuse_blank(**texts: str) -> None:
    """A text of only spaces passes `min_length=1` but says nothing to route or answer on."""
    for name, text in texts.items():
        if not text.strip():
            raise InvalidRequestError(f"{name}: is blank; write it out in words")


def _spend_key(key: str) -> str:
    """`key`, refused when it or the id after its `kind:` is blank: `agent:` or `run: ` names no
    agent or run, and its budget would be shown as if one had it all left."""
    if not key.split(":", 1)[-1].strip():
        raise InvalidRequestError(f"budget key {key!r} is blank; name one such as agent:<id> or run:<id>")
    return key


def _tool_record(use: ToolUse) -> ToolRecord:
    return ToolRecord(
        name=use.name, ok=use.ok, args_hash=hash_arguments(use.arguments) if use.arguments is not None else ""
    )


def _empty_answer(request: ChatRequest, result: RoutedResponse, router: Router) -> EmptyAnswer | None:
    """The error for an answer with no text and no tool call, judged as a cascade's gate judges it
    (`check_empty`), or None. It names the model and what the call cost, and what to do instead:
    ask the next tier up when there is one, raise `max_tokens` when the cap cut the answer off."""
    reason = check_empty(request, result.response)
    if reason is None:
        return None
    tier = router.registry[result.model_id].tier
    said = f"{result.model_id} (tier {tier}) answered with nothing: {reason} (no text, no tool call)"
    said += f"; the call cost ${result.cost_usd:.6f}"
    higher = [t for t in router.registry.tiers if t > tier]
    if result.response.finish_reason == "length":
        said += f". max_tokens ({request.max_tokens}) cut it off before it wrote anything: raise it"
    elif higher:
        said += f". To ask a stronger model, call escalate again with min_tier {higher[0]}"
    else:
        said += ". It is the strongest tier: call escalate again, or put the problem another way"
    error = EmptyAnswer(said)
    error.request_id = result.request_id
    return error


def _escalate_result(result: RoutedResponse, router: Router, budget_left: float | None) -> EscalateResult:
    usage = result.usage
    return EscalateResult(
        answer=result.response.text,
        truncated=result.response.finish_reason == "length",
        model=result.model_id,
        tier=router.registry[result.model_id].tier,
        cost_usd=result.cost_usd,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        attempts=[
            AttemptView(
                model=a.model_id,
                provider=a.provider,
                ok=a.ok,
                probe=a.probe,
                cost_usd=a.cost_usd,
                error=str(a.error) if a.error is not None else None,
            )
            for a in result.attempts
        ],
        escalations=[
            EscalationView(from_model=e.from_model, to_model=e.to_model, reason=e.reason)
            for e in result.escalations
        ],
        budget_left_usd=budget_left,
        request_id=result.request_id,
    )
