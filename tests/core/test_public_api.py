"""The public surface: every exported name exists, and the adapters install with their frameworks."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import pathlib
import re
import subprocess
import sys
import typing

import pytest

import gearshift
import gearshift.budgets
import gearshift.datasets
import gearshift.escalation
import gearshift.policies
import gearshift.providers
import gearshift.reporting
import gearshift.serve
import gearshift.testing

PACKAGES = [
    gearshift,
    gearshift.budgets,
    gearshift.datasets,
    gearshift.escalation,
    gearshift.policies,
    gearshift.providers,
    gearshift.reporting,
    gearshift.serve,
    gearshift.testing,
]


@pytest.mark.parametrize("module", PACKAGES, ids=lambda m: m.__name__)
def test_every_exported_name_exists_and_is_documented(module: object) -> None:
    names = module.__all__  # type: ignore[attr-defined]
    assert len(set(names)) == len(names)
    for name in names:
        value = getattr(module, name)
        # A type alias such as `AskModel` is no class, though inspect.isclass says so on Python 3.10.
        if typing.get_origin(value) is None and (inspect.isclass(value) or inspect.isfunction(value)):
            assert getattr(value, "__doc__", None), f"{module.__name__}.{name} has no docstring"  # type: ignore[attr-defined]


def test_the_core_api() -> None:
    for name in (
        "Router",
        "Decision",
        "StepContext",
        "ModelSpec",
        "ChatRequest",
        "Message",
        "ToolSpec",
        "GearshiftError",
        "ConfigError",
        "BudgetExceeded",
        "ProviderError",
        "AllModelsFailed",
        "did_you_mean",
        "REASONING_EFFORTS",
        "SAMPLING_SETTINGS",
    ):
        assert name in gearshift.__all__


def test_every_gearshift_name_a_config_setting_points_to_is_exported() -> None:
    # A setting's description sends the reader to `gearshift.TASKS` and the like: the name must be there.
    from gearshift.policies._rule_conditions import RuleConditions

    pointed = {
        name
        for model in (gearshift.RoutingConfig, gearshift.ScorerConfig, RuleConditions, gearshift.ShadowConfig)
        for field in model.model_fields.values()
        for name in re.findall(r"`gearshift\.(\w+)`", field.description or "")
    }
    assert "TASKS" in pointed
    assert sorted(name for name in pointed if name not in gearshift.__all__) == []
    assert "code" in gearshift.TASKS


@pytest.mark.parametrize(
    ("distribution", "module", "framework"),
    [
        ("gearshift-langchain", "gearshift_langchain", "langchain-core"),
        ("gearshift-llamaindex", "gearshift_llamaindex", "llama-index-core"),
        ("gearshift-mcp", "gearshift_mcp", "mcp"),
    ],
)
def test_adapters_depend_on_the_core_and_their_framework(
    distribution: str, module: str, framework: str
) -> None:
    importlib.import_module(module)
    requires = importlib.metadata.requires(distribution) or []
    assert any(r.startswith("gearshift") for r in requires)
    assert any(r.startswith(framework) for r in requires)


def test_importing_gearshift_loads_no_sdk_and_no_framework() -> None:
    # Optional SDKs import lazily, and the core never imports an adapter's framework.
    code = (
        "import sys, gearshift, gearshift.providers, gearshift.cli; "
        "gearshift.cli._parser(); "
        "bad = [m for m in ('openai', 'anthropic', 'langchain_core', 'llama_index', 'mcp', 'genai_prices', "
        "'starlette', 'uvicorn', 'prometheus_client') "
        "if m in sys.modules]; print(bad)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


ADAPTER_SOURCES = [
    "langchain/src/gearshift_langchain",
    "llamaindex/src/gearshift_llamaindex",
    "mcp-server/src/gearshift_mcp",
]


@pytest.mark.parametrize("source", ADAPTER_SOURCES)
def test_adapters_import_only_public_core_names(source: str) -> None:
    # An adapter is a user of the core like any other: a private name it needs is a public name missing.
    root = pathlib.Path(__file__).parents[2] / "packages" / source
    private = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for module in modules:
                parts = module.split(".")
                if parts[0] == "gearshift" and any(part.startswith("_") for part in parts[1:]):
                    private.append(f"{path.relative_to(root)}:{node.lineno}: {module}")
    assert private == []


@pytest.mark.parametrize("folder", ["config", "routing", "signals"])
def test_the_core_folders_group_private_modules_and_export_nothing(folder: str) -> None:
    # They show the architecture; every public name they hold is exported from `gearshift` itself.
    module = importlib.import_module(f"gearshift.{folder}")
    assert module.__all__ == []
    assert module.__doc__ and "exported from `gearshift`" in module.__doc__
    root = pathlib.Path(module.__file__).parent  # type: ignore[arg-type]
    assert all(p.name.startswith("_") for p in root.glob("*.py"))


def test_a_users_strictly_typed_code_gets_the_documented_types(tmp_path: pathlib.Path) -> None:
    # Users run mypy --strict on their own code, with gearshift installed: a missing py.typed, an `Any`
    # where a type was documented, an overload that loses it, or a parameter narrower than the README's
    # own usage fails their check. `typed_usage.py` is such code; it is checked from outside the
    # repository, so without its mypy settings. The cache outlives the test: a cold check takes a minute.
    sample = pathlib.Path(__file__).with_name("typed_usage.py")
    # One cache per interpreter: CI runs the suite on three Pythons at once in one checkout.
    cache = pathlib.Path(__file__).parents[2] / ".mypy_cache" / f"typed-usage-{sys.implementation.cache_tag}"
    mypy = [sys.executable, "-m", "mypy", "--strict", "--python-version", "3.10", "--cache-dir", str(cache)]
    result = subprocess.run([*mypy, str(sample)], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_lazily_loaded_names_are_the_exported_and_the_typed_ones() -> None:
    """`gearshift` loads its names on first use: `__all__`, the table `__getattr__` loads them from and
    the imports type checkers read (under `TYPE_CHECKING`) must name the same things, or a name is
    exported but not loadable, loadable but not exported, or untyped."""
    init = pathlib.Path(gearshift.__file__).read_text(encoding="utf-8")
    typed: set[str] = set()
    for node in ast.walk(ast.parse(init)):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom), ast.unparse(statement)
                typed.update(alias.asname or alias.name for alias in statement.names)
    loadable = set(gearshift._PUBLIC)  # type: ignore[attr-defined]
    assert loadable == set(gearshift.__all__)
    assert typed == set(gearshift.__all__)
