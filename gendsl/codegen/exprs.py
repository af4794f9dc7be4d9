"""Typed IR -> Python expression text, with operator precedence kept minimal but correct.

`Writer` handles the parts common to network bodies and model methods; subclasses say how names,
pipelines, network calls and density terms are reached, and may hoist sub-expressions into
named statements (`lines`) that precede the expression.

Every expression means what it does to one sample (docs/semantics.md). A batched value has batch
dims before its per-sample dims; a shared one (`type.batched` False) has none. So the code counts
per-sample axes from the end (`h[..., 0]`), inserts singleton dims after the batch dims where
operands of different per-sample rank meet (`s[..., None] * h`), and leaves code that is already
per sample as it is.
"""

from __future__ import annotations

import re

from gendsl.graph import ir
from gendsl.library.functions import align
from gendsl.types import NumberType, TensorType, Type

ATOM, CALL, POW, UNARY, MUL, ADD = 100, 90, 80, 70, 60, 50
BINARY = {"+": (ADD, "+"), "-": (ADD, "-"), "*": (MUL, "*"), "/": (MUL, "/"), "^": (POW, "**")}


def literal(value) -> str:
    """A Python literal for a constant."""
    return repr(value)


def paren(code: str, prec: int, needed: int) -> str:
    return f"({code})" if prec < needed else code


def rank(t: Type) -> int:
    return t.rank if isinstance(t, TensorType) else 0


def batched(t: Type) -> bool:
    return isinstance(t, TensorType) and t.batched


def aligned(code: str, prec: int, t: Type, want: int) -> tuple[str, int]:
    """A value seen with per-sample rank `want`: a batched one of lower rank gets singleton dims
    after its batch dims (a shared one broadcasts from the right as it is)."""
    if not batched(t) or t.rank >= want:
        return code, prec
    return align(paren(code, prec, CALL), t.rank, want), CALL


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
        # a term multiplied by a zero constant (a param set to 0, e.g. --set gamma=0) is not computed,
        # as long as what stays has the result's per-sample shape
        if e.op in ("+", "-") and _is_zero_term(e.right) and _same_shape(e.left, e):
            return self.emit(e.left)
        if e.op in ("+", "-") and _is_zero_term(e.left) and _same_shape(e.right, e):
            return self.emit(e.right) if e.op == "+" else self.emit(
                ir.Unary(span=e.span, type=e.right.type, op="-", operand=e.right))
        # -a + b -> b - a and a + -b -> a - b: one op instead of two (training is op-bound on small nets)
        if e.op == "+" and _is_negation(e.left):
            return self.emit(e.model_copy(update={"op": "-", "left": e.right, "right": e.left.operand}))
        if e.op in ("+", "-") and _is_negation(e.right):
            return self.emit(e.model_copy(update={"op": "-" if e.op == "+" else "+", "right": e.right.operand}))
        if e.op == "*" and _is_one(e.left) and _same_shape(e.right, e):
            return self.emit(e.right)
        if e.op in ("*", "/") and _is_one(e.right) and _same_shape(e.left, e):
            return self.emit(e.left)
        prec, op = BINARY[e.op]
        want = rank(e.type)
        left, lp = aligned(*self.emit(e.left), e.left.type, want)
        right, rp = aligned(*self.emit(e.right), e.right.type, want)
        if e.op == "^":  # right-associative, binds tighter than unary minus on its left
            return f"{paren(left, lp, CALL)} ** {paren(right, rp, UNARY)}", POW
        return f"{paren(left, lp, prec)} {op} {paren(right, rp, prec + 1)}", prec

    def w_Apply(self, e: ir.Apply):
        if e.draws:  # logmeanexp(w, k): w over k draws of its latents (losses only, where latents are drawn)
            from gendsl.codegen.draws import over_draws

            return over_draws(self, e)
        args = [self.emit(a) for a in e.args]
        if e.code == "{0}":  # the value as it is (identity, a reshape to the same shape)
            return args[0]
        return fill(e.code, args, self), CALL

    def w_Index(self, e: ir.Index):
        """Ints and slices pick per-sample positions (`h[..., 0]` when batched, `mu[0]` when shared);
        a label picks each sample's own position (`mu[c]`), by a gather when the target is batched."""
        target, prec = self.emit(e.target)
        t: TensorType = e.target.type
        items: list[str] = []
        label, before = None, 0   # the label's code, and the axes kept before it
        for item in e.indices:
            if isinstance(item, ir.Slice):
                items.append(item.describe() or ":")
                before += label is None
            elif isinstance(item.type, NumberType):
                items.append(str(item.value))
            else:
                label = self.code(item)
                items.append(":")
        code = paren(target, prec, CALL)
        if any(i != ":" for i in items):  # ints and slices first; the label's axis stays whole
            code += "[" + ", ".join(["...", *items, *[":"] * (t.rank - len(items))] if t.batched else items) + "]"
        if label is None:
            return code, CALL
        if not t.batched:  # a shared table: the label's batch dims come first
            return (code if before == 0 else f"{code}.movedim({before}, 0)") + f"[{label}]", CALL
        left = t.rank - sum(1 for i in e.indices if isinstance(i.type, NumberType))  # per-sample rank now
        dim = before - left
        picked = f"torch.take_along_dim({code}, {align(paren(label, ATOM, CALL), 0, left)}, dim={dim})"
        return picked + "[" + ", ".join(["...", "0", *[":"] * (-dim - 1)]) + "]", CALL

    def w_Dist(self, e: ir.Dist):
        return dist_code(e, {name: self.emit(value) for name, value in e.params.items()}), CALL

    def hoist(self, code: str, base: str) -> str:
        """Name a value once (subclasses with statements override); default: inline it."""
        return code


def dist_code(dist: ir.Dist, parts: dict[str, tuple[str, int]], batch: str | None = None) -> str:
    """The torch.distributions constructor, with batched parameters aligned to the event's rank
    (a per-sample scale beside a vector loc) and the event dims made independent. With `batch`
    (a per-sample value of the block), shared parameters are expanded to its batch: each sample
    draws its own value."""
    event = dist.type.event
    want = rank(event) if isinstance(event, TensorType) and event.kind != "cat" else 0
    values = {name: aligned(*part, dist.params[name].type, want)[0] for name, part in parts.items()}
    if batch is not None and isinstance(event, TensorType) and not event.batched:
        for name, (code, prec) in parts.items():
            t = dist.params[name].type
            if isinstance(t, TensorType):
                values[name] = f"{paren(code, prec, CALL)}.expand(len({batch}){''.join(', -1' for _ in t.shape)})"
    code = dist.code.format(**values)
    return f"D.Independent({code}, {want})" if want else code


def network_arguments(args: list[ir.Expr], emitted: list[tuple[str, int]], writer: Writer) -> tuple[list[str], bool]:
    """The arguments of a network call (a network runs on a batch): shared ones expanded to the batch
    of the first batched one; when none is batched, each as a batch of one. Returns the argument
    code and whether the call runs on a batch of one (then its result is `[0]`)."""
    first = next((i for i, a in enumerate(args) if batched(a.type)), None)
    if first is None:
        return [f"{paren(code, prec, CALL)}[None]" for code, prec in emitted], bool(emitted)
    out = [code for code, _ in emitted]
    if any(not batched(a.type) for a in args) and not out[first].isidentifier():
        out[first] = writer.hoist(out[first], "batch_of")
    for i, a in enumerate(args):
        if not batched(a.type):
            dims = "".join(", -1" for _ in range(rank(a.type)))
            out[i] = f"{paren(*emitted[i], CALL)}.expand(len({out[first]}){dims})"
    return out, False


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


def _same_shape(part: ir.Expr, whole: ir.Expr) -> bool:
    """Does `part` alone have the per-sample shape and batching of `whole`?"""
    a, b = part.type, whole.type
    if isinstance(a, TensorType) and isinstance(b, TensorType):
        return a.shape == b.shape and a.batched == b.batched
    return isinstance(a, NumberType) and isinstance(b, NumberType)


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
