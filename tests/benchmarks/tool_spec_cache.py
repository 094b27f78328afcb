"""What a LangChain agent step pays to turn its bound tool dicts into gearshift `ToolSpec`s.

An agent binds the same tools on every step, and `bind_tools` writes their OpenAI-format dicts anew
each time; `RoutedChatModel` keeps each tool's spec while its dict stays the same (`ToolSpecCache`).
A hit compares the dict with a copy of the one parsed and checks the exact type of its numbers and
booleans (`1`, `True` and `1.0` are equal in Python, not in the JSON a provider is sent). Timed per
tool on a hit, for a tool whose schema has numeric and boolean defaults and for one of strings only,
and for a miss (a full parse), each the best of five rounds of `--n` calls:

    uv run python tests/benchmarks/tool_spec_cache.py [--n 100000] [--json]

Prints a JSON object last: `hit_numeric_us`, `hit_strings_us`, `miss_us` (microseconds per tool), `n`.
"""

from __future__ import annotations

import argparse
import json
import timeit
from collections.abc import Callable
from typing import Literal

from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool

from gearshift_langchain._convert import ToolSpecCache


@tool
def search(
    query: str, max_results: int = 5, region: Literal["us", "eu", "asia"] = "us", safe: bool = True
) -> str:
    """Search the web for a query and return the results."""
    return query


@tool
def read_file(path: str, encoding: str = "utf-8") -> str:
    """Read a text file."""
    return path


def _per_tool_us(call: Callable[[], object], n: int) -> float:
    return round(min(timeit.repeat(call, number=n, repeat=5)) / n * 1e6, 3)


def measure(n: int) -> dict[str, float]:
    """Microseconds per tool for a hit (numeric schema, strings-only schema) and for a miss."""
    cache = ToolSpecCache()
    numeric, strings = [convert_to_openai_tool(search)], [convert_to_openai_tool(read_file)]
    cache.specs(numeric)
    cache.specs(strings)
    return {
        "hit_numeric_us": _per_tool_us(lambda: cache.specs(numeric), n),
        "hit_strings_us": _per_tool_us(lambda: cache.specs(strings), n),
        "miss_us": _per_tool_us(lambda: ToolSpecCache().specs(numeric), max(n // 20, 1)),
        "n": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="print only the JSON figures")
    args = parser.parse_args()
    figures = measure(args.n)
    if not args.json:
        for key in ("hit_numeric_us", "hit_strings_us", "miss_us"):
            print(f"{key}: {figures[key]} us per tool")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
