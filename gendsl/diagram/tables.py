"""HTML-like labels: the layer stack of a network, with repeats folded (`7 x [MaskedConv2d, relu]`)."""

from __future__ import annotations

from html import escape

from gendsl.graph import ir
from gendsl.diagram.mathtext import label, sym
from gendsl.types import TensorType

MAX_PERIOD = 6
def shape_text(t) -> str:
    if not isinstance(t, TensorType):
        return ""
    if t.kind == "cat":
        return t.as_batched(True).describe()  # cat[K], or cat[K, T] for a sequence of labels
    return "[" + ", ".join(map(str, t.shape)) + "]" if t.shape else ("step" if t.kind == "step" else "scalar")


def layer_text(use: ir.LayerUse) -> str:
    return use.describe()


def _key(use: ir.LayerUse) -> tuple:
    return (layer_text(use), shape_text(use.output))


def _best_repeat(keys: list[tuple], i: int) -> tuple[int, int]:
    """(count, period) of the longest run of a repeated block starting at i."""
    best = (1, 1)
    for period in range(1, MAX_PERIOD + 1):
        block = keys[i:i + period]
        if len(block) < period:
            break
        count = 1
        while keys[i + count * period: i + (count + 1) * period] == block:
            count += 1
        if count > 1 and count * period > best[0] * best[1]:
            best = (count, period)
    return best


def fold(layers: list[ir.LayerUse]) -> list[tuple[int, list[ir.LayerUse]]]:
    """Group consecutive repeats: [(count, block), ...], greedily taking the longest saving.

    A run that starts with an activation is shifted by one when that covers as much, so a stack
    reads `7 x [MaskedConv2d, relu]` rather than `7 x [relu, MaskedConv2d]`.
    """
    from gendsl.library.layers import LAYERS

    out: list[tuple[int, list[ir.LayerUse]]] = []
    i = 0
    keys = [_key(u) for u in layers]
    while i < len(layers):
        count, period = _best_repeat(keys, i)
        if count > 1 and "activation" in LAYERS[layers[i].entry].tags and i + 1 < len(layers):
            later = _best_repeat(keys, i + 1)
            if later[0] > 1 and later[0] * later[1] >= count * period - 1:
                count, period = 1, 1
        out.append((count, layers[i:i + period]))
        i += count * period
    return out


def _row(left: str, right: str = "", *, italic: bool = False, bold: bool = False, html: bool = False) -> str:
    text = left if html else escape(left)
    if italic:
        text = f"<I>{text}</I>"
    if bold:
        text = f"<B>{text}</B>"
    shape = f'<FONT COLOR="#666666" POINT-SIZE="9">{escape(right)}</FONT>' if right else " "
    return f'<TR><TD ALIGN="LEFT">{text}</TD><TD ALIGN="RIGHT">{shape}</TD></TR>'


def layer_rows(layers: list[ir.LayerUse], indent: str = "") -> list[str]:
    rows = []
    for count, block in fold(layers):
        if count == 1:
            rows += [_row(indent + layer_text(u), shape_text(u.output)) for u in block]
        else:
            inner = ", ".join(layer_text(u) for u in block)
            rows.append(_row(f"{indent}{count} \u00d7 [{inner}]", shape_text(block[-1].output)))
    return rows


EM = "\u2003"
PARAM_SYMBOLS = {"loc": "<I>\u03bc</I>", "scale": "<I>\u03c3</I>"}  # Normal(loc, scale) reads N(mu, sigma) in papers
PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "^": 4}


class BodyMath:
    """A network body as math: each pipeline `x |> layers` is a function f(x) whose layers are
    listed under the line that uses it (f1, f2, ... when a body has several); a pipeline of plain
    activations reads as the function itself, `sigmoid(...)`."""

    def __init__(self, program: ir.Program):
        count = sum(1 for e in ir.walk_program(program) if isinstance(e, ir.Layers) and not _plain(e))
        self.numbered = count > 1
        self.names: list[str] = []
        self.pending: list[tuple[str, list[ir.LayerUse]]] = []

    def pipeline(self, layers: list[ir.LayerUse]) -> str:
        name = f"<I>f</I><SUB>{len(self.names) + 1}</SUB>" if self.numbered else "<I>f</I>"
        self.names.append(name)
        self.pending.append((name, layers))
        return name

    def take(self) -> list[tuple[str, list[ir.LayerUse]]]:
        pending, self.pending = self.pending, []
        return pending

    def expr(self, e: ir.Expr, outer: int = 0) -> str:
        if isinstance(e, ir.Slice):
            return escape(e.describe())
        if isinstance(e, ir.Const):
            return _number(e.value)
        if isinstance(e, ir.Ref):
            return sym(e.name)
        if isinstance(e, ir.Unary):
            inner = self.expr(e.operand, 3)
            text = f"\u2212{inner}" if e.op == "-" else f"log {inner}"
            return f"({text})" if outer > 2 else text
        if isinstance(e, ir.Binary):
            mine = PRECEDENCE[e.op]
            left = self.expr(e.left, mine)
            right = self.expr(e.right, mine + (e.op in "-/^"))
            if e.op == "^":
                return f"{left}<SUP>{right}</SUP>"
            op = {"-": " \u2212 ", "*": " \u00b7 ", "/": "/", "+": " + "}[e.op]
            text = f"{left}{op}{right}"
            return f"({text})" if mine < outer else text
        if isinstance(e, ir.Apply):
            return escape(e.fn) + "(" + ", ".join(self.expr(a) for a in e.args) + ")"
        if isinstance(e, ir.CallNet):
            return sym(e.net) + "(" + ", ".join(self.expr(a) for a in e.args) + ")"
        if isinstance(e, ir.Index):
            return self.expr(e.target, 9) + "[" + ", ".join(self.expr(i) for i in e.indices) + "]"
        if isinstance(e, ir.Layers):
            inner = self.expr(e.input)
            if _plain(e):
                for use in e.layers:
                    inner = f"{escape(use.entry)}({inner})"
                return inner
            return f"{self.pipeline(list(e.layers))}({inner})"
        return "\u2026"


def _plain(e: ir.Layers) -> bool:
    """Only parameter-free activations without options (sigmoid, exp, tanh): drawn as functions."""
    from gendsl.library.layers import LAYERS

    return all("activation" in LAYERS[u.entry].tags and u.params == 0 and "(" not in u.describe()
               for u in e.layers)


def _number(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return escape(str(value))
    return f"{value:g}".replace("-", "\u2212")


def program_rows(program: ir.Program, head: str) -> list[str]:
    """Rows for a network body (`head` is its call, `G(z)`, as HTML): each statement as math with
    the layers of its pipelines under it, draws with their parameters."""
    body = BodyMath(program)
    rows: list[str] = []

    def line(text: str, shape: str = "", bold: bool = False, depth: int = 0) -> None:
        rows.append(_row(EM * depth + text, shape, bold=bold, html=True))
        pending = body.take()
        for name, layers in pending:  # the layers under the line that uses them, indented
            if len(pending) > 1:
                rows.append(_row(f"{EM * (depth + 1)}{name}:", html=True))
            rows.extend(layer_rows(layers, EM * (depth + 1 + (len(pending) > 1))))

    for stmt in program.stmts:
        if isinstance(stmt, ir.Assign):
            line(f"{sym(stmt.name)} = {body.expr(stmt.value)}")
        else:
            line(f"{sym(stmt.name)} ~ {escape(stmt.dist.family)}", shape_text(stmt.dist.type.event), bold=True)
            for name, value in stmt.dist.params.items():
                shown = PARAM_SYMBOLS.get(name) or sym(name)
                line(f"{shown} = {body.expr(value)}", depth=1)
    if program.result is not None:
        plain = isinstance(program.result, ir.Layers) and isinstance(program.result.input, ir.Ref)
        if program.stmts or not plain:  # say how the pipelines combine (a residual, a sum, ...)
            line(f"{head} = {body.expr(program.result)}")
        else:
            rows += layer_rows(list(program.result.layers))
    return rows


def table(rows: list[str]) -> str:
    body = "".join(rows) or _row("(no layers)", italic=True)
    return label(f'<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2">{body}</TABLE>')
