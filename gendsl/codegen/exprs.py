"""Typed IR -> Python expression text, with operator precedence kept minimal but correct.

`Writer` handles the parts common to network bodies and model methods; subclasses say how names,
pipelines, network calls and density terms are reached, and may hoist sub-expressions into
named statements (`lines`) that precede the expression.
"""

from __future__ import annotations

import re

from gendsl.graph import ir
from gendsl.types import NumberType, TensorType

ATOM, CALL, POW, UNARY, MUL, ADD = 100, 90, 80, 70, 60, 50
BINARY = {"+": (ADD, "+"), "-": (ADD, "-"), "*": (MUL, "*"), "/": (MUL, "/"), "^": (POW, "**")}


def literal(value) -> str:
    """A Python literal for a constant."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return repr(value)
    return repr(value)


def paren(code: str, prec: int, needed: int) -> str:
    return f"({code})" if prec < needed else code


class Writer:
    def __init__(self):
        self.lines: list[str] = []

    def code(self, e: ir.Expr) -> str:
        return self.emit(e)[0]

    def emit(self, e: ir.Expr) -> tuple[str, int]:
        return getattr(self, "w_" + type(e).__name__)(e)

    # -- common --
    def w_Const(self, e: ir.Const):
        value = e.value
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            return literal(value), UNARY
        return literal(value), ATOM

    def w_Unary(self, e: ir.Unary):
        operand, prec = self.emit(e.operand)
        if e.op == "log":
            return f"torch.log({operand})", CALL
        return f"-{paren(operand, prec, UNARY)}", UNARY

    def w_Binary(self, e: ir.Binary):
        # a term multiplied by a zero constant (a param set to 0, e.g. --set gamma=0) is not computed
        if e.op in ("+", "-") and _is_zero_term(e.right):
            return self.emit(e.left)
        if e.op in ("+", "-") and _is_zero_term(e.left):
            return self.emit(e.right) if e.op == "+" else self.emit(
                ir.Unary(span=e.span, type=e.right.type, op="-", operand=e.right))
        # -a + b -> b - a and a + -b -> a - b: one op instead of two (training is op-bound on small nets)
        if e.op == "+" and _is_negation(e.left):
            return self.emit(e.model_copy(update={"op": "-", "left": e.right, "right": e.left.operand}))
        if e.op in ("+", "-") and _is_negation(e.right):
            return self.emit(e.model_copy(update={"op": "-" if e.op == "+" else "+", "right": e.right.operand}))
        if e.op == "*" and _is_one(e.left):
            return self.emit(e.right)
        if e.op in ("*", "/") and _is_one(e.right):
            return self.emit(e.left)
        prec, op = BINARY[e.op]
        left, lp = self.emit(e.left)
        right, rp = self.emit(e.right)
        if e.op == "^":  # right-associative, binds tighter than unary minus on its left
            return f"{paren(left, lp, CALL)} ** {paren(right, rp, UNARY)}", POW
        return f"{paren(left, lp, prec)} {op} {paren(right, rp, prec + 1)}", prec

    def w_Apply(self, e: ir.Apply):
        args = [self.emit(a) for a in e.args]
        return fill(e.code, args, self), CALL

    def w_Index(self, e: ir.Index):
        target, prec = self.emit(e.target)
        index = self.code(e.indices[0])
        return f"{paren(target, prec, CALL)}[{index}]", CALL

    def w_Dist(self, e: ir.Dist):
        values = {name: self.code(value) for name, value in e.params.items()}
        code = e.code.format(**values)
        event = e.type.event
        rank = len(event.shape) if isinstance(event, TensorType) and event.kind != "cat" else 0
        return (f"D.Independent({code}, {rank})" if rank else code), CALL

    def hoist(self, code: str, base: str) -> str:
        """Name a value once (subclasses with statements override); default: inline it."""
        return code


def fill(template: str, args: list[tuple[str, int]], writer: Writer) -> str:
    """Substitute argument code into a function template, guarding precedence; an argument the
    template uses twice is named first so that it is computed once."""
    args = [(writer.hoist(code, "arg"), ATOM) if template.count("{%d}" % i) > 1 and not code.isidentifier()
            else (code, prec) for i, (code, prec) in enumerate(args)]

    def replace(match: re.Match) -> str:
        code, prec = args[int(match.group(1))]
        follows = template[match.end():match.end() + 1]
        return paren(code, prec, CALL) if follows in (".", "[") else code
    return re.sub(r"\{(\d+)\}", replace, template)


def _is_zero_term(e: ir.Expr) -> bool:
    """0, or a product with a zero constant factor (its value is 0 for any finite operand)."""
    if isinstance(e, ir.Const):
        return isinstance(e.value, (int, float)) and not isinstance(e.value, bool) and e.value == 0
    return isinstance(e, ir.Binary) and ((e.op == "*" and (_is_zero_term(e.left) or _is_zero_term(e.right)))
                                          or (e.op == "/" and _is_zero_term(e.left)))


def _is_negation(e: ir.Expr) -> bool:
    return isinstance(e, ir.Unary) and e.op == "-"


def _is_one(e: ir.Expr) -> bool:
    return isinstance(e, ir.Const) and isinstance(e.value, (int, float)) and not isinstance(e.value, bool) \
        and e.value == 1


def is_number(e: ir.Expr) -> bool:
    return isinstance(e, ir.Const) and isinstance(e.type, NumberType)
