"""The `gearshift` command line: `route`, `chat`, `demo`, `train`, `eval`, `eval-agents`,
`train-escalation`, `budget`, `batch`, `report`, `export-outcomes` and `serve`.

Each sub-command is a thin shell over the library: it parses arguments, calls the core, and renders
the result. Errors from gearshift become one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .._context import StepContext, StepType
from .._errors import GearshiftError
from ..config._config_file import CONFIG_HELP
from ._output import read_prompt
from ._termination import Terminated, terminate_as_interrupt

__all__ = ["Terminated", "main", "terminate_as_interrupt"]

_STEP_HELP = (
    "the agent step type: plan, act, observe, reflect, respond, summarize, other; "
    "recover (after a failing tool) is taken as reflect"
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gearshift")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gearshift",
        description="Route every LLM call to the cheapest model that will do the job.",
    )
    parser.add_argument("--version", action="version", version=f"gearshift {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    route = commands.add_parser("route", help="print the routing decision for a prompt (no model call)")
    route.add_argument("prompt", help="the prompt to route (- reads it from stdin)")
    route.add_argument("--step", help=_STEP_HELP)
    route.add_argument("--config", type=Path, help=CONFIG_HELP)
    route.add_argument("--json", action="store_true", help="print the decision as one JSON object")

    chat = commands.add_parser("chat", help="route a prompt and stream the chosen model's answer")
    chat.add_argument("prompt", help="the prompt to send (- reads it from stdin)")
    chat.add_argument("--step", help=_STEP_HELP)
    chat.add_argument("--config", type=Path, help=CONFIG_HELP)

    demo = commands.add_parser(
        "demo", help="replay real GSM8K and MMLU outcomes through the router, offline, and report"
    )
    demo.add_argument(
        "--dataset",
        action="append",
        choices=["gsm8k", "mmlu"],
        help="replay only this dataset (repeatable; default: both)",
    )
    demo.add_argument("--limit", type=int, help="replay at most this many prompts per dataset")
    demo.add_argument("--log", type=Path, help="decision log path (.db or .jsonl)")
    demo.add_argument("--json", action="store_true", help="also print the report as one JSON object")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    from ..budgets._cli import add_budget_parser
    from ..evaluation import add_eval_parser
    from ..evaluation._agent_cli import add_agent_parsers
    from ..learning._cli import add_train_parser
    from ..reporting._cli import add_export_parser, add_report_parser
    from ._batch import add_batch_parser

    add_train_parser(commands)
    add_eval_parser(commands)
    add_agent_parsers(commands)
    add_budget_parser(commands)
    add_batch_parser(commands)
    add_report_parser(commands)
    add_export_parser(commands)
    from ..serve._cli import add_serve_parser

    add_serve_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    restore_sigterm = terminate_as_interrupt()
    try:
        # Inside the `try`: building the parser imports every sub-command (a second or more on a busy
        # machine), and a Ctrl-C or SIGTERM then was a traceback, not the exit code of an interrupt.
        args = _parser().parse_args(argv)
        if args.command == "route":
            return _route(args)
        if args.command == "chat":
            return _chat(args)
        if args.command == "train":
            from ..learning._cli import run_train

            return run_train(args)
        if args.command == "eval":
            from ..evaluation import run_eval

            return run_eval(args)
        if args.command in ("eval-agents", "train-escalation"):
            from ..evaluation import _agent_cli

            run = (
                _agent_cli.run_eval_agents
                if args.command == "eval-agents"
                else _agent_cli.run_train_escalation
            )
            return run(args)
        if args.command == "batch":
            from ._batch import run_batch_cli

            return run_batch_cli(args)
        if args.command == "budget":
            from ..budgets._cli import run_budget

            return run_budget(args)
        if args.command == "report":
            from ..reporting._cli import run_report

            return run_report(args)
        if args.command == "export-outcomes":
            from ..reporting._cli import run_export

            return run_export(args)
        if args.command == "serve":
            from ..serve._cli import run_serve

            return run_serve(args)
        from ._demo import run_demo_cli

        return run_demo_cli(
            datasets=tuple(args.dataset or ("gsm8k", "mmlu")),
            limit=args.limit,
            log_path=args.log,
            as_json=args.json,
            progress=not args.no_progress,
        )
    except GearshiftError as error:
        print(f"gearshift: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        return 143 if isinstance(stop, Terminated) else 130
    except BrokenPipeError:
        # The reader went away (`gearshift report | head`): not an error. Point stdout at devnull so
        # that flushing it at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        restore_sigterm()


def _context(step: str | None) -> StepContext:
    if not step:
        return StepContext()
    return StepContext(step_type=StepType.parse(step, where="--step"))


def _route(args: argparse.Namespace) -> int:
    from ..config._config import load_config
    from ..routing._router import Router

    prompt = read_prompt(args.prompt)
    config = load_config(args.config)
    context = _context(args.step)
    # Closed on the way out, so a SQLite decision log is checkpointed and leaves no -wal/-shm files.
    with Router.from_config(config) as router:
        decision = router.decide(prompt, context)
    if args.json:
        print(json.dumps(decision.to_dict(), indent=2))
        return 0
    spec = router.registry[decision.model]
    print(f"model:     {decision.model}  ({spec.provider}:{spec.model}, tier {decision.tier})")
    print(f"est. cost: ${decision.estimated_cost_usd:.6f}")
    print(f"fallbacks: {', '.join(decision.fallbacks) or 'none'}")
    print(f"policy:    {decision.policy}")
    print("why:")
    for reason in decision.reasons:
        print(f"  - {reason}")
    return 0


def _chat(args: argparse.Namespace) -> int:
    from .._messages import StreamDone, TextDelta
    from ..config._config import load_config
    from ..providers._factory import keys_wanted, missing_sdks
    from ..routing._router import Router

    prompt = read_prompt(args.prompt)
    config = load_config(args.config)
    context = _context(args.step)
    with Router.from_config(config) as router:
        decision = router.decide(prompt, context)
        needed = {p for m in decision.chain for p in router.registry[m].served_by()}
        sdkless = missing_sdks(config)
        if needed and needed <= set(sdkless):
            extras = ",".join(sorted({sdkless[p] for p in needed}))
            print(
                "gearshift: the models this prompt routes to need their provider SDKs: "
                f"pip install 'gearshift[{extras}]'",
                file=sys.stderr,
            )
            return 2
        missing = keys_wanted(config, (router.registry[m] for m in decision.chain))
        if missing:
            wanted = " or ".join(f"{env} (provider '{p}')" for p, env in missing.items())
            print(
                f"gearshift: no API key for the models this prompt routes to ({', '.join(decision.chain)}). "
                f"Set {wanted}, or pass --config with a gearshift.toml that points at a local server "
                "(see examples/ollama.toml).",
                file=sys.stderr,
            )
            return 2
        stream = router.stream(prompt, context)
        for event in stream:
            if isinstance(event, TextDelta):
                print(event.text, end="", flush=True)
            elif isinstance(event, StreamDone):
                print()
    result = stream.result
    if result is not None:
        print(
            f"[{result.model_id} · {result.usage.input_tokens} in / {result.usage.output_tokens} out · "
            f"${result.cost_usd:.6f}]",
            file=sys.stderr,
        )
    return 0
