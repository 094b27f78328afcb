"""Serving over stdio: the SDK's transport, plus the JSON-RPC error replies it leaves out.

The SDK's stdio transport hands a line it cannot read (not JSON, JSON nested too deeply to parse, or
JSON that is no JSON-RPC message) to the server as an exception, and the server drops it: the client
never hears back and may wait forever. JSON-RPC 2.0 requires an answer: `-32700 Parse error` for a
line that is not JSON, `-32600 Invalid Request` for JSON that is no request; both with `id: null`
unless the request's id can be read. Between the transport and the server, `answer_unreadable`
turns each such exception into that reply and passes every readable message on; the server keeps
serving. Nothing of the unreadable line is echoed back (it may be huge, or deep enough to break
whatever formats it). A line whose only fault is a lone UTF-16 surrogate escape is JSON all the
same, and is read as such.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from anyio.abc import ObjectReceiveStream, ObjectSendStream
    from mcp.server.mcpserver import MCPServer
    from mcp.shared.message import SessionMessage

__all__ = ["answer_unreadable", "end_process", "run_stdio", "unreadable_reply"]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600


async def run_stdio(server: MCPServer[Any]) -> None:
    """Serve `server` over stdin and stdout until stdin closes, answering unreadable lines."""
    import anyio
    from mcp.server.stdio import stdio_server
    from mcp.shared.message import SessionMessage

    # What MCPServer.run_stdio_async does, with `answer_unreadable` between transport and server;
    # the SDK offers no public way to reach its low-level server for that.
    lowlevel = server._lowlevel_server
    async with stdio_server() as (read_stream, write_stream):
        feed, readable = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(answer_unreadable, read_stream, feed, write_stream)
            await lowlevel.run(readable, write_stream, lowlevel.create_initialization_options())
            tasks.cancel_scope.cancel()


def end_process(code: int) -> NoReturn:
    """End the process now with `code`, once a stop signal has cancelled the server's work.

    The SDK reads stdin in a worker thread, blocked in a read that only the client closing stdin
    ends; after SIGTERM (or Ctrl-C) the interpreter would wait for that thread forever, a server
    that never exits until the client kills it. Everything else is settled by then.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def answer_unreadable(
    incoming: ObjectReceiveStream[SessionMessage | Exception],
    readable: ObjectSendStream[SessionMessage | Exception],
    replies: ObjectSendStream[SessionMessage],
) -> None:
    """Pass readable messages from `incoming` to `readable`; answer each unreadable one on `replies`."""
    from mcp.shared.message import SessionMessage

    async with readable:
        async for item in incoming:
            if isinstance(item, Exception):
                try:
                    item = SessionMessage(_read_with_lone_surrogates(item))
                except Exception as unreadable:
                    await replies.send(SessionMessage(unreadable_reply(unreadable)))
                    continue
            await readable.send(item)


def _read_with_lone_surrogates(error: Exception) -> Any:
    """The message of a line the SDK's JSON parser refused for holding a lone UTF-16 surrogate
    escape (`"\\ud800"`, half of an emoji a client cut in two), which is JSON all the same; raises
    `error` for a line that is not JSON, and a `ValidationError` for JSON that is no message.

    Answered as a parse error, with no id, such a call was never answered: the client waited until
    it timed out. Read here, the tool it calls refuses the text and says where it is.
    """
    import mcp_types as types
    from pydantic import ValidationError

    details = error.errors(include_url=False) if isinstance(error, ValidationError) else []
    line = details[0]["input"] if len(details) == 1 and details[0]["type"] == "json_invalid" else None
    if not isinstance(line, str):
        raise error
    try:
        parsed = json.loads(line)
    except (ValueError, RecursionError):
        raise error from None
    return types.jsonrpc_message_adapter.validate_python(parsed, by_name=False)


def unreadable_reply(error: Exception) -> Any:
    """The JSON-RPC error answering a line the transport could not read as a message."""
    import mcp_types as types
    from pydantic import ValidationError

    details = error.errors(include_url=False) if isinstance(error, ValidationError) else []
    if not details or any(detail["type"] == "json_invalid" for detail in details):
        code, message, request_id = PARSE_ERROR, "Parse error", None
    else:
        code, message, request_id = INVALID_REQUEST, "Invalid Request", _request_id(details)
    return types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=message))


def _request_id(details: list[Any]) -> str | int | None:
    """The id of the JSON object that failed validation, when it has a usable one."""
    for detail in details:
        candidate = detail.get("input")
        if isinstance(candidate, dict):
            value = candidate.get("id")
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                return value
    return None
