"""HTML-like labels: the layer stack of a network, with repeats folded (`7 x [MaskedConv2d, relu]`)."""

from __future__ import annotations

from html import escape

from gendsl.graph import ir
from gendsl.types import TensorType

MAX_PERIOD = 6
def shape_text(t) -> str:
    if not isinstance(t, TensorType):
        return ""
    if t.kind == "cat":
        return f"cat[{t.classes}]"
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


def _row(left: str, right: str = "", *, italic: bool = False, bold: bool = False) -> str:
    text = escape(left)
    if italic:
        text = f"<I>{text}</I>"
    if bold:
        text = f"<B>{text}</B>"
    shape = f'<FONT COLOR="#666666" POINT-SIZE="9">{escape(right)}</FONT>' if right else " "
    return f'<TR><TD ALIGN="LEFT">{text}</TD><TD ALIGN="RIGHT">{shape}</TD></TR>'


def layer_rows(layers: list[ir.LayerUse]) -> list[str]:
    rows = []
    for count, block in fold(layers):
        if count == 1:
            rows += [_row(layer_text(u), shape_text(u.output)) for u in block]
        else:
            inner = ", ".join(layer_text(u) for u in block)
            rows.append(_row(f"{count} \u00d7 [{inner}]", shape_text(block[-1].output)))
    return rows


def program_rows(program: ir.Program, describe) -> list[str]:
    """Rows for a network body: each statement's pipeline, draws with their parameters."""
    rows: list[str] = []
    for stmt in program.stmts:
        if isinstance(stmt, ir.Assign):
            rows.append(_row(f"{stmt.name} = {describe(stmt.value)}", italic=True))
            rows += layer_rows(_layers(stmt.value))
        else:
            rows.append(_row(f"{stmt.name} ~ {stmt.dist.family}", shape_text(stmt.dist.type.event), bold=True))
            for name, value in stmt.dist.params.items():
                rows.append(_row(f"  {name} = {describe(value)}", italic=True))
                rows += layer_rows(_layers(value))
    if program.result is not None:
        plain = isinstance(program.result, ir.Layers) and isinstance(program.result.input, ir.Ref)
        if program.stmts or not plain:  # say how the pipelines combine (a residual, a sum, ...)
            rows.append(_row(f"out = {describe(program.result)}", italic=True))
        rows += layer_rows(_layers(program.result))
    return rows


def _layers(expr: ir.Expr) -> list[ir.LayerUse]:
    """The layers of every pipeline in an expression, in the order they run (a residual
    `x + (x |> ...)` or `(... ) |> sigmoid` shows all of its layers)."""
    if isinstance(expr, ir.Layers):
        return _layers(expr.input) + list(expr.layers)
    children = {ir.Unary: lambda e: [e.operand], ir.Binary: lambda e: [e.left, e.right],
                ir.Apply: lambda e: e.args, ir.CallNet: lambda e: e.args,
                ir.Index: lambda e: [e.target, *e.indices]}.get(type(expr), lambda e: [])
    return [use for child in children(expr) for use in _layers(child)]


def table(rows: list[str]) -> str:
    body = "".join(rows) or _row("(no layers)", italic=True)
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2">{body}</TABLE>>'
