"""Compile-time evaluation: params, literals, lists and arithmetic on them.

Layer arguments, dims, optimizer settings and the like must be known before any tensor exists;
this module folds them to Python values. Bare unknown names become `Symbol`s (e.g. `mask=A`),
calls become `EntryCall`s for the registry that expects them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from gendsl import ast
from gendsl.diagnostics import Diagnostic, error
from gendsl.library.signature import Symbol

TRUE_FALSE = {"true": True, "false": False, "none": None}


@dataclass(frozen=True)
class EntryCall:
    """`Adam(lr=1e-3)` or `linear(1e-4, 0.02)` as a value: resolved by the registry that reads it."""

    name: str
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]
    node: ast.Call = field(compare=False, repr=False)


class NotConstant(Exception):
    def __init__(self, node: ast.Node, why: str):
        super().__init__(why)
        self.node, self.why = node, why


LIMIT = 10 ** 15  # no size, count or setting of a spec is larger; beyond, arithmetic could hang


def bounded(value: Any, node: ast.Node) -> Any:
    """Reject results that no spec needs and that would overflow or hang later stages."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise NotConstant(node, "the value is not a finite number")
    if abs(value) > LIMIT:
        raise NotConstant(node, "the value is too large (above 10^15)")
    return value


def evaluate(expr: ast.Expr, params: dict[str, Any], symbols: bool = True) -> Any:
    """The value of a constant expression; raises NotConstant with the offending node."""
    if isinstance(expr, ast.Number):
        return bounded(expr.value, expr)
    if isinstance(expr, ast.String):
        return expr.value
    if isinstance(expr, ast.Name):
        if expr.id in params:
            return params[expr.id]
        if expr.id in TRUE_FALSE:
            return TRUE_FALSE[expr.id]
        if symbols:
            return Symbol(expr.id)
        raise NotConstant(expr, f"'{expr.id}' is not a param")
    if isinstance(expr, (ast.ListExpr, ast.TupleExpr)):
        items = [evaluate(i, params, symbols) for i in expr.items]
        return items if isinstance(expr, ast.ListExpr) else tuple(items)
    if isinstance(expr, ast.Unary) and expr.op == "-":
        return -_number(evaluate(expr.operand, params, symbols), expr.operand)
    if isinstance(expr, ast.Unary) and expr.op == "log":
        value = _number(evaluate(expr.operand, params, symbols), expr.operand)
        if value <= 0:
            raise NotConstant(expr, f"log of {value}")
        return math.log(value)
    if isinstance(expr, ast.Binary):
        return bounded(_binary(expr, evaluate(expr.left, params, symbols), evaluate(expr.right, params, symbols)),
                       expr)
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and not expr.has_bar:
        return EntryCall(expr.func.id, tuple(evaluate(a, params, symbols) for a in expr.args),
                         tuple((k.name, evaluate(k.value, params, symbols)) for k in expr.kwargs), expr)
    raise NotConstant(expr, "a value known before training (a number, a param, a list) is needed here")


def _number(value: Any, node: ast.Node) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise NotConstant(node, f"expected a number, got {value!r}")
    return value


def _binary(expr: ast.Binary, left: Any, right: Any) -> Any:
    a, b = _number(left, expr.left), _number(right, expr.right)
    if expr.op == "+":
        return a + b
    if expr.op == "-":
        return a - b
    if expr.op == "*":
        return a * b
    if expr.op == "/":
        if b == 0:
            raise NotConstant(expr, "division by zero")
        return a // b if isinstance(a, int) and isinstance(b, int) and a % b == 0 else a / b
    if abs(a) > 1 and b > 0 and b * math.log10(abs(a)) > 15:
        raise NotConstant(expr, "the value is too large (above 10^15)")  # before computing it
    try:
        return a ** b
    except (OverflowError, ZeroDivisionError) as exc:
        raise NotConstant(expr, str(exc)) from None


def evaluate_or_report(expr: ast.Expr, params: dict[str, Any], diagnostics: list[Diagnostic],
                       what: str, symbols: bool = True) -> tuple[bool, Any]:
    """Evaluate, turning failure into an E206 diagnostic: (ok, value)."""
    try:
        return True, evaluate(expr, params, symbols)
    except NotConstant as exc:
        diagnostics.append(error("E206", f"{what} must be known before training: {exc.why}", exc.node.span,
                                 label="not a constant",
                                 hint="use numbers, params and arithmetic on them here"))
        return False, None


MAX_DIM = 2 ** 31


def as_int_dim(value: Any) -> int | None:
    """A dimension: a positive integer (a float, even 4.0, is a mistake in the spec's types)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 < value <= MAX_DIM else None
