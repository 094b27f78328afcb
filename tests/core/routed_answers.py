"""The router's answer to one request, taken whole (`acomplete`) or from the end of its stream
(`astream`), for tests that check both paths charge alike."""

from __future__ import annotations

from gearshift import ChatRequest, RoutedResponse, Router, StepContext, StreamDone


async def routed(
    router: Router, request: ChatRequest, context: StepContext, *, streamed: bool
) -> RoutedResponse:
    """`router`'s answer to `request`: from `acomplete`, or, `streamed`, from `astream` once its
    `StreamDone` has come."""
    if not streamed:
        return await router.acomplete(request, context)
    stream = router.astream(request, context)
    events = [event async for event in stream]
    assert isinstance(events[-1], StreamDone) and stream.result is not None
    return stream.result
