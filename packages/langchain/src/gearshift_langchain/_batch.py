"""`RoutedChatModel.batch` / `abatch` through the router's batched cascade (`Router.abatch`).

With `batch_cascade=True` a LangChain batch becomes one gearshift batch: the bottom tier answers every
input (at most `max_concurrency` at a time, rate limits waited out), the cascade gate (the router's
own, else the no-cost heuristic gate) checks every answer, and only the rejected ones go to the top
tier. Each answer is the `AIMessage` `invoke` would give, and its `response_metadata["gearshift"]`
also says which stage answered (`batch_stage`) and, for a top-tier answer, why the cheap one was
rejected (`batch_rejected`). LangChain's per-call callbacks do not run for these calls; the router's
decision log and traces record them as for any call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import get_config_list

from gearshift import BatchItem, BatchResult, RoutingError

from ._output import chat_result

if TYPE_CHECKING:
    from gearshift import ChatRequest, ModelRegistry, Router, StepContext

__all__ = ["cascade_batch"]

_DEFAULT_CONCURRENCY = 8


async def cascade_batch(
    router: Router,
    inputs: Sequence[LanguageModelInput],
    config: RunnableConfig | Sequence[RunnableConfig] | None,
    step: Callable[[LanguageModelInput, dict[str, Any]], tuple[ChatRequest, StepContext]],
    *,
    return_exceptions: bool,
) -> list[AIMessage | Exception]:
    """The answers of `inputs`, in their order, from one cascaded `Router.abatch` run.

    `step` builds one call's request and context from its input and run metadata, as `invoke`
    does. A failed input raises `RoutingError` naming it, or stands as that error in the list with
    `return_exceptions`.
    """
    configs = get_config_list(config, len(inputs))
    items = []
    refused: dict[int, Exception] = {}
    for index, (value, settings) in enumerate(zip(inputs, configs, strict=True)):
        try:
            request, context = step(value, dict(settings.get("metadata") or {}))
        except Exception as exc:
            # As in LangChain's own batch, an input that cannot be sent is that input's error: the
            # others are still answered when the caller asked for errors in place.
            if not return_exceptions:
                raise
            refused[index] = exc
            continue
        items.append(BatchItem(str(index), request, context))
    concurrency = configs[0].get("max_concurrency") if configs else None
    results = await router.abatch(items, concurrency=concurrency or _DEFAULT_CONCURRENCY, cascade=True)
    stages: dict[str, list[BatchResult]] = {}
    for result in results:
        stages.setdefault(result.id, []).append(result)
    answers: list[AIMessage | Exception] = []
    for index in range(len(inputs)):
        if index in refused:
            answers.append(refused[index])
            continue
        answer = _answer(router.registry, index, stages.get(str(index), []))
        if isinstance(answer, Exception) and not return_exceptions:
            raise answer
        answers.append(answer)
    return answers


def _answer(registry: ModelRegistry, index: int, stages: list[BatchResult]) -> AIMessage | Exception:
    final = stages[-1] if stages else None
    if final is None or final.response is None:
        why = final.error if final is not None else "no answer"
        return RoutingError(f"batch input {index} got no answer: {why}")
    routed = final.response
    tier = registry[routed.model_id].tier if routed.model_id in registry else None
    message = chat_result(routed, tier).generations[0].message
    assert isinstance(message, AIMessage)
    record = message.response_metadata["gearshift"]
    record["batch_stage"] = final.stage
    rejected = [stage.reason for stage in stages if stage.stage == "cheap" and not stage.accepted]
    if rejected:
        record["batch_rejected"] = rejected[-1]
    return message
