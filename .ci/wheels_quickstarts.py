"""Run the README's quick starts, unchanged, in a venv that holds only the built wheels.

Run by `.ci/wheels_check.sh` with the clean venv's python, from outside the source tree, so every
import comes from the installed wheels. The models are the local OpenAI and Anthropic stand-ins of
`gearshift.testing` on 127.0.0.1; the quick starts reach them through the variables the README tells
users to set (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`) plus the SDKs' own base URL variables.

Usage: python wheels_quickstarts.py requirements README.md   (the Install section's pip arguments)
       python wheels_quickstarts.py run README.md [packages/*/README.md ...]
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from importlib.metadata import metadata
from pathlib import Path

# Each quick start is the README's Python block that contains its marker.
PYTHON_QUICK_STARTS = {
    "python quick start": "router.complete(",
    "langchain agent": "create_agent(",
    "llamaindex agent": "FunctionAgent(",
}
CLI_QUICK_STARTS = ("demo", "route", "chat")
MCP_TOOLS = {"route", "escalate", "budget_status"}
PROVIDERS = ("openai", "anthropic")
TIMEOUT_S = 240


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


def install_requirements(readme: str) -> list[str]:
    """The arguments of every `pip install` line of the README's Install section."""
    section = re.search(r"^## Install\n(.*?)^## ", readme, flags=re.S | re.M)
    if section is None:
        sys.exit("README.md has no '## Install' section")
    lines = [shlex.split(line, comments=True) for line in section.group(1).splitlines()]
    requirements = [word for words in lines if words[:2] == ["pip", "install"] for word in words[2:]]
    if not requirements:
        sys.exit("README.md's Install section has no `pip install` line")
    return requirements


def check_extras(requirements: list[str]) -> None:
    """pip only warns about an extra a package lacks; a README line naming one is a mistake."""
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[(.*)\])?", requirement)
        if match is None:
            sys.exit(f"README.md's Install section: cannot read the requirement {requirement!r}")
        name, extras = match[1], {e.strip() for e in (match[2] or "").split(",") if e.strip()}
        provided = set(metadata(name).get_all("Provides-Extra") or [])
        if extras - provided:
            sys.exit(f"README.md installs {requirement}, but {name} has no extra {sorted(extras - provided)}")
    print(f"-- every extra of the README's Install lines exists: {' '.join(requirements)}")


def quick_start_block(blocks: list[str], marker: str) -> str:
    found = [block for block in blocks if marker in block]
    if not found:
        sys.exit(f"README.md has no Python block containing {marker!r}")
    return found[0]


def cli_command(readme: str, name: str) -> list[str]:
    """The README's first `uv run gearshift <name> ...` line, as a user without uv types it."""
    for line in readme.splitlines():
        words = shlex.split(line, comments=True)
        if words[:4] == ["uv", "run", "gearshift", name]:
            return words[2:]
    sys.exit(f"README.md has no `uv run gearshift {name}` line")


def run(title: str, argv: list[str], env: dict[str, str], cwd: Path, shown: str | None = None) -> str:
    print(f"-- {title}: {shown or shlex.join(argv)}")
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S)
    elapsed = time.perf_counter() - started
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        print(output)
        sys.exit(f"{title} failed (exit {result.returncode}) after {elapsed:.1f} s")
    tail = "\n".join("   " + line for line in output.splitlines()[-4:])
    print(f"{tail}\n   ok in {elapsed:.1f} s")
    return output


async def mcp_tools(server: str, env: dict[str, str], cwd: Path) -> set[str]:
    """tools/list, then tools/call route, through the MCP SDK's stdio client."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=server, args=[], env=env, cwd=cwd)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        names = {tool.name for tool in (await session.list_tools()).tools}
        routed = await session.call_tool("route", {"prompt": "Prove that the square root of 2 is irrational"})
        decision = routed.structured_content
        if routed.is_error or not decision or "model" not in decision:
            sys.exit(f"gearshift-mcp route failed: {routed}")
        print(f"   route -> {decision['model']}")
    return names


def run_quick_starts(readme_path: str, *package_readmes: str) -> None:
    from gearshift import default_models
    from gearshift.testing import LocalAnthropicServer, LocalOpenAIServer

    readme = Path(readme_path).read_text()
    check_extras(install_requirements(readme))
    blocks = python_blocks(readme)
    # What PyPI shows must be what runs here: each package page's Python blocks are the README's.
    for page in package_readmes:
        for block in python_blocks(Path(page).read_text()):
            if block not in blocks:
                sys.exit(f"{page} has a Python block that README.md does not (keep them identical):\n{block}")
    bin_dir = Path(sys.executable).parent
    # The built-in registry's models, each served by the stand-in for its provider's API.
    served = {kind: [m.model for m in default_models() if m.provider == kind] for kind in PROVIDERS}
    with (
        LocalOpenAIServer(models=served["openai"], api_key="sk-wheels") as openai_server,
        LocalAnthropicServer(models=served["anthropic"], api_key="sk-ant-wheels") as anthropic_server,
        tempfile.TemporaryDirectory(prefix="gearshift-wheels-") as home,
    ):
        cwd = Path(home)
        env = {
            **{k: v for k, v in os.environ.items() if k != "GEARSHIFT_CONFIG"},
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "XDG_DATA_HOME": str(cwd / "data"),  # the demo's decision log stays in the temp folder
            "OPENAI_API_KEY": "sk-wheels",
            "OPENAI_BASE_URL": openai_server.base_url,
            "ANTHROPIC_API_KEY": "sk-ant-wheels",
            "ANTHROPIC_BASE_URL": anthropic_server.url,
        }
        for name in CLI_QUICK_STARTS:
            run(f"gearshift {name}", cli_command(readme, name), env, cwd)
        for title, marker in PYTHON_QUICK_STARTS.items():
            block = quick_start_block(blocks, marker)
            shown = f"python -c <the README block with {marker!r}>"
            run(title, [sys.executable, "-c", block], env, cwd, shown)
        print("-- gearshift-mcp (stdio): tools/list, tools/call route")
        names = asyncio.run(mcp_tools(str(bin_dir / "gearshift-mcp"), env, cwd))
        print(f"   tools: {', '.join(sorted(names))}")
        if not names >= MCP_TOOLS:
            sys.exit(f"gearshift-mcp lacks the tools {sorted(MCP_TOOLS - names)}")
        answered = {r.model for r in openai_server.requests} | {r.model for r in anthropic_server.requests}
    if not answered:
        sys.exit("no quick start reached the local model servers")
    print(f"-- the local servers answered {', '.join(sorted(m for m in answered if m))}")


if __name__ == "__main__":
    command, *paths = sys.argv[1:]
    if command == "requirements":
        print("\n".join(install_requirements(Path(paths[0]).read_text())))
    else:
        run_quick_starts(*paths)
