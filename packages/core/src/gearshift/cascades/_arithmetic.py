"""Checking the arithmetic an answer shows: `3 x 60 = 180` is right, `15 + 25 = 45` is not.

Math answers show their working as equations; a model that miscalculates on the way rarely reaches
the right final answer. `wrong_equations` finds every `<expression> = <number>` whose expression is
plain arithmetic (numbers, `+ - * / x × ÷`, parentheses; `$` and thousands separators allowed),
works the expression out and returns the equations that do not hold. GSM8K-style calculator notes
(`<<3*60=180>>`) are equations too.

Only what can be checked is checked: an expression with a word, a variable or a percent sign is
skipped, and a result may be rounded to the decimals it shows (`10 / 3 = 3.33` holds). Expressions
are evaluated by walking their syntax tree with the four operations only, never with `eval`.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["WrongEquation", "wrong_equations"]

# An arithmetic run, then "=", then a number that does not itself start the next expression
# ("22 + 4 x 12 = 22 + 48 = 70" is the equation "22 + 48 = 70", not "22 + 4 x 12 = 22").
_EQUATION = re.compile(
    r"(?<![\w.,])((?:\$?\d[\d,]*(?:\.\d+)?|[()+\-*/x×÷ \t])+?)\s*=\s*\$?(-?\d[\d,]*(?:\.\d+)?)"
    r"(?![\d.,]*\w)(?![\d.,]*\s*[-+*/x×÷(])"
)
_HAS_OPERATION = re.compile(r"\d\s*[-+*/x×÷]\s*[\d($]|\)\s*[-+*/x×÷]")
_TIMES_X = re.compile(r"(?<=[\d)\s])x(?=[\s\d($])")
_MAX_EXPRESSION = 200
_OPERATIONS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


@dataclass(frozen=True, slots=True)
class WrongEquation:
    """One equation of an answer that does not hold: what it says, and what the expression makes."""

    expression: str
    stated: str
    actual: float

    def __str__(self) -> str:
        return f"{self.expression.strip()} = {self.stated} (it is {self.actual:g})"


def _value(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _value(node.body)
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    ):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATIONS:
        return _OPERATIONS[type(node.op)](_value(node.left), _value(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _value(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    raise ValueError("not plain arithmetic")


def _evaluate(expression: str) -> float | None:
    text = expression.replace("$", "").replace(",", "").replace("×", "*").replace("÷", "/")
    text = _TIMES_X.sub("*", text).strip()
    if not text or len(text) > _MAX_EXPRESSION:
        return None
    try:
        return _value(ast.parse(text, mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return None


def _holds(actual: float, stated: str) -> bool:
    value = float(stated.replace(",", ""))
    decimals = len(stated.split(".")[1]) if "." in stated else 0
    # Rounded to the decimals shown (10 / 3 = 3.33), or within a hundredth of a percent.
    return abs(actual - value) <= 0.5 * 10**-decimals + 1e-9 or abs(actual - value) <= 1e-4 * abs(actual)


def wrong_equations(text: str) -> list[WrongEquation]:
    """The equations of `text` whose plain-arithmetic left side does not make the number on the right."""
    errors = []
    # Markdown escapes the multiplication sign ("17 \\* 4"); read it as the sign.
    for match in _EQUATION.finditer(text.replace("\\*", "*")):
        expression, stated = match.group(1), match.group(2)
        if not _HAS_OPERATION.search(expression):
            continue  # "x = 5", "2019 = year": nothing to work out
        actual = _evaluate(expression)
        if actual is not None and not _holds(actual, stated):
            errors.append(WrongEquation(expression, stated, actual))
    return errors
