"""Numbers a calling model wrote as text (`"0.5"`, `"3"`), read as the numbers they spell.

The tools take numbers strictly, so that `true` is not read as 1; that also refused `"score": "0.5"`,
which models (and clients that send every argument as a string) write often enough. A string that
is a plain decimal number becomes that number before validation: an integer for `"3"`, a float for
`"0.5"` or `"1e-3"`. Anything else (`"true"`, `"NaN"`, `"3 tokens"`) is left for the field to refuse.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

__all__ = ["numbers_from_text"]

_DECIMAL = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
_NUMBERS = (int, float)


def numbers_from_text(model: type[BaseModel], data: Any) -> Any:
    """`data` (a model's input) with each numeric field's plain decimal text turned into its number."""
    if not isinstance(data, Mapping):
        return data
    fields = {field.alias or name: field for name, field in model.model_fields.items()}
    read = dict(data)
    for name, value in data.items():
        field = fields.get(name)
        if isinstance(value, str) and field is not None and _numeric(field.annotation):
            text = value.strip()
            if _DECIMAL.fullmatch(text):
                read[name] = int(text) if text.lstrip("-").isdigit() else float(text)
    return read


def _numeric(annotation: Any) -> bool:
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_numeric(arg) for arg in get_args(annotation) if arg is not type(None))
    return annotation in _NUMBERS
