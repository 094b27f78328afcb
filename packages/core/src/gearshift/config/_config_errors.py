"""Turning pydantic's `ValidationError` into a `ConfigError` that a person can act on.

A config error names the file, the dotted key (`models[2].tier`, `providers.local.base_url`) and
what is wrong, in the words of the TOML file rather than pydantic's: "must be an integer, got
\"a\"", "unknown key 'teir'; did you mean 'tier'?". It never echoes a value found under
`[providers]`, where a pasted API key or a secret header may sit.

This module knows no gearshift section: the schema's validators raise `KeyedError` to point below
the key pydantic reports, and `config_error` is given the root model to walk for known keys, so
`_config` imports this module and never the other way round.
"""

from __future__ import annotations

import difflib
import json
import re
import types
from collections.abc import Mapping, Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .._errors import ConfigError
from .._spelling import did_you_mean
from ._key_lines import key_lines, line_of

__all__ = [
    "INLINE_KEY_REFUSAL",
    "KeyedError",
    "config_error",
    "problem_wording",
    "settings_error",
    "show_value",
    "suggestion",
    "with_lines",
]

INLINE_KEY_REFUSAL = (
    "API keys are never read from the config file; put the key in an environment variable and "
    'name it with api_key_env = "MY_PROVIDER_API_KEY"'
)
"""The answer to an `api_key` key anywhere in the file."""

_KEY_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}


class KeyedError(ValueError):
    """A validator's complaint about a key below the one pydantic reports it at."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def settings_error(
    exc: ValidationError, schema: type[BaseModel], *, source: str, key: str, noun: str
) -> ConfigError:
    """The `ConfigError` listing every problem of a settings table validated on its own (`key` is where
    the table sits in the file, `noun` what the table configures: "the classifier")."""
    problems = []
    for err in exc.errors():
        path = "".join(f".{part}" for part in err["loc"] if part != "[key]")
        message = problem_wording(err)
        if err["type"] == "extra_forbidden":
            message = f"unknown setting; {noun} accepts: {', '.join(schema.model_fields)}"
        problems.append(ConfigError(message, source=source, key=f"{key}{path}"))
    return ConfigError.listing(problems)


def config_error(exc: ValidationError, source: str, *, schema: type[BaseModel], key: str = "") -> ConfigError:
    """The `ConfigError` listing every problem in `exc`, each with its key (`with_lines` adds lines).

    `schema` is the model that was validated; unknown keys are matched against its fields. `key` is
    where the validated table sits in the file (`routing.rules[2]`), empty for the whole file.
    """
    errors = exc.errors(include_url=False)
    problems = []
    for error in errors:
        if _misspelt(error, errors):
            continue
        loc = tuple(error["loc"])
        reason = error.get("ctx", {}).get("error")
        if isinstance(reason, KeyedError):
            loc += reason.loc
        message = _describe(error, loc, schema)
        problems.append(ConfigError(message, source=source, key=_dotted(loc, key)))
    return ConfigError.listing(problems)


def with_lines(error: ConfigError, text: str, *, source: str | None = None) -> ConfigError:
    """`error` with the line of each of its problems' keys in `text`, the file the problems are in (only
    the problems naming `source`, when given: a problem in another file keeps no line from this one),
    its problems listed in the order of their lines."""
    if source is not None and all(p.source != source for p in error.problems):
        return error
    lines = key_lines(text)
    problems = []
    for p in error.problems:
        if p.line is None and p.key and (source is None or p.source == source):
            p = ConfigError(p.reason, source=p.source, key=p.key, line=line_of(lines, _path(p.key)))
        problems.append(p)
    problems.sort(key=lambda p: (p.line is None, p.line or 0))  # in the order the file reads
    return ConfigError.listing(problems)


def _path(key: str) -> tuple[str | int, ...]:
    """`models[2].tier` as `("models", 2, "tier")`."""
    return tuple(int(index) if index else name for name, index in _KEY_PART.findall(key))


def _misspelt(error: ErrorDetails, errors: Sequence[ErrorDetails]) -> bool:
    """Whether `error` is a required key reported missing only because an unknown key beside it is
    its misspelling: the unknown key, with its suggested spelling, is the one that helps."""
    if error["type"] != "missing":
        return False
    parent, name = tuple(error["loc"][:-1]), str(error["loc"][-1])
    return any(
        other["type"] == "extra_forbidden"
        and tuple(other["loc"][:-1]) == parent
        and difflib.get_close_matches(str(other["loc"][-1]), [name], n=1)
        for other in errors
    )


def show_value(value: Any) -> str:
    """`value` as the TOML file spells it, shortened; tables and arrays by kind only."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:  # 1e300: not 301 digits
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "an array"
    return type(value).__name__


def suggestion(name: str, known: Sequence[str] | Mapping[str, Any]) -> str:
    """A tail for a message about `name`: the closest known name, or the list of them."""
    names = list(known)
    hint = did_you_mean(name, names)
    if hint:
        return f"; {hint}"
    return f" (known: {', '.join(names)})" if names else ""


def _describe(error: ErrorDetails, loc: tuple[str | int, ...], schema: type[BaseModel]) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "extra_forbidden":
        name = str(loc[-1])
        if name == "api_key":
            return INLINE_KEY_REFUSAL
        return f"unknown key '{name}'{suggestion(name, _known(schema, loc[:-1]))}"
    if kind == "missing":
        return "is required"
    if kind == "value_error":
        return str(ctx["error"])
    return problem_wording(error, echo=_echo_safe(loc))


def problem_wording(error: ErrorDetails, *, echo: bool = True) -> str:
    """What is wrong with one value, in the words of the TOML file ("must be <= 1, got 7", "must be an
    integer, got \"a\"") rather than pydantic's; with `echo` false, without the value. For the tables
    that are validated on their own (`[routing.scorer]`, `[routing.cascade]`...)."""
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "value_error":
        return error["msg"].removeprefix("Value error, ")
    if kind == "missing":
        return "is required"
    if kind in _BOUNDS:
        limit = next(iter(ctx.values()))
        what = f"must be {_BOUNDS[kind]} {show_value(limit)}"
    elif kind == "finite_number":
        what = "must be a finite number"
    elif kind.startswith("int_"):
        what = "must be an integer"
    elif kind.startswith("float_"):
        what = "must be a number"
    elif kind.startswith("bool_"):
        what = "must be true or false"
    elif kind == "string_type":
        what = "must be a string"
    elif kind == "string_too_short":
        return "must not be empty"
    elif kind == "literal_error":
        what = f"must be one of {ctx['expected']}"
    elif kind in ("dict_type", "model_type", "model_attributes_type"):
        what = "must be a table"
    elif kind in ("list_type", "tuple_type"):
        what = "must be an array"
    else:
        what = error["msg"]
    return f"{what}, got {show_value(error['input'])}" if echo else what


def _echo_safe(loc: tuple[str | int, ...]) -> bool:
    # Any value under [providers] may be a key pasted into the wrong field, or a secret header.
    return loc[:1] != ("providers",)


def _dotted(loc: tuple[str | int, ...], key: str = "") -> str:
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else str(part)
    return key


def _known(schema: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The keys allowed at `loc`, found by walking the schema from the root model."""
    node: Any = schema
    for part in loc:
        node = _model_in(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(str(part))
            if field is None:
                return []
            node = field.annotation
        elif get_origin(node) is dict:
            node = get_args(node)[1]
        elif get_origin(node) in (tuple, list):
            node = get_args(node)[0]
        else:
            return []
    node = _model_in(node)
    return list(node.model_fields) if isinstance(node, type) and issubclass(node, BaseModel) else []


def _model_in(annotation: Any) -> Any:
    """`X` out of `X | None`; anything else unchanged."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        return members[0] if len(members) == 1 else annotation
    return annotation
