"""Fixtures: the local model server, a router over it, and an in-process MCP client of the server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from mcp.server.mcpserver import MCPServer
from mcp_testbed import LOCAL_KEY, MODELS, local_router

from gearshift import Router
from gearshift.testing import LocalOpenAIServer
from gearshift_mcp import RouterTools, build_server


@pytest.fixture
def llm_server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(models=MODELS, api_key=LOCAL_KEY) as server:
        yield server


@pytest.fixture
async def router(llm_server: LocalOpenAIServer) -> AsyncIterator[Router]:
    routed = local_router(llm_server)
    yield routed
    await routed.aclose()


@pytest.fixture
def server(router: Router) -> MCPServer[RouterTools]:
    """The MCP server over `router`; tests connect with `async with Client(server) as client`.

    (Not a client fixture: the client's task group must be entered and left in the test's own task.)
    """
    return build_server(router=router)
