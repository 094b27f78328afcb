"""What a test can script a local server to do, and what the server records.

`server.script(model, *actions)` queues actions for one model; each request for that model consumes
one. Unscripted requests get the simulated model's default answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Action", "CutStream", "Delay", "Drip", "Fail", "RecordedRequest", "Reply"]


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer with this text and these tool calls, given as `(tool name, arguments dict)` pairs."""

    text: str = ""
    tool_calls: Sequence[tuple[str, Mapping[str, Any]]] = ()

    def __post_init__(self) -> None:
        # Freeze what the caller passed as lists, so a queued reply cannot change under the server.
        object.__setattr__(self, "tool_calls", tuple((name, dict(args)) for name, args in self.tool_calls))


@dataclass(frozen=True, slots=True)
class Fail:
    """Answer with an HTTP error in the provider's error shape.

    `retry_after` (seconds) is sent as the `retry-after` header; `body` replaces the default error
    body (a mapping is sent as JSON, a string as is). Any status works: `Fail(200, body=...)` sends a
    raw response, to mimic a compatible server that strays from the API.
    """

    status: int = 500
    retry_after: float | None = None
    body: Mapping[str, Any] | str | None = None


@dataclass(frozen=True, slots=True)
class Delay:
    """Wait this many seconds, then answer normally (or with `then`): lets a test provoke a client
    timeout, or give a scripted reply a latency."""

    seconds: float
    then: Reply | None = None


@dataclass(frozen=True, slots=True)
class Drip:
    """Answer normally, but trickle the body out one byte every `interval` seconds.

    The status line and headers go at once; then each byte of the JSON body (or of every event of a
    stream) is written and flushed on its own. A client whose timeout is per read never times out on
    such a server: it lets a test check that a call's timeout is a deadline.
    """

    interval: float = 1.0


@dataclass(frozen=True, slots=True)
class CutStream:
    """Drop the connection after `after_chunks` content chunks, with no end of stream.

    For a non-streamed request the connection drops before any response is sent.
    """

    after_chunks: int = 1


Action = Reply | Fail | Delay | Drip | CutStream


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request a local server received. `headers` are lower-cased and never include credentials."""

    method: str
    path: str
    model: str | None
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
