"""Typing of indexing and slicing (`h[0]`, `x[0, 2:5]`, `mu[c]`): one item per per-sample axis,
from the first; the batch is never indexed (docs/semantics.md, "Indexing")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gendsl import ast
from gendsl.ast import hint_text
from gendsl.graph import ir
from gendsl.graph.constants import NotConstant, evaluate
from gendsl.types import UNKNOWN, ListType, NumberType, TensorType

if TYPE_CHECKING:
    from gendsl.graph.passes.expressions import Scope


class IndexTyper:
    """Mixed into ExprTyper (graph/passes/expressions.py): `expr`, `report` and `params` come from there."""

    def t_Index(self, e: ast.Index, scope: Scope) -> ir.Expr:
        """One item per per-sample axis, from the first: an int picks a position (the axis goes), a
        slice keeps some positions, a label cat[K] picks each sample's own position."""
        target = self.expr(e.target, scope)
        items = [self.index_item(i, scope) for i in e.indices]
        t = target.type
        if t is UNKNOWN or any(i is None or i.type is UNKNOWN for i in items):
            return ir.Const(span=e.span, type=UNKNOWN, value=None)
        if not isinstance(t, TensorType) or t.kind in ("cat", "step") or t.rank == 0:
            return self.report("E227", f"cannot index {t.describe()}", e.target.span,
                               label="no dimension to index" if isinstance(t, TensorType) else t.describe(),
                               hint="index a per-sample dimension of a tensor, e.g. h[0] of h: real[4] or mu[c] "
                                    "of `tensor mu: real[K, 2]`; the batch is never indexed")
        if len(items) > t.rank:
            return self.report("E227", f"{len(items)} indices for {t.describe()}, which has {t.rank} "
                               f"dimension{'s' if t.rank > 1 else ''}", e.span,
                               hint="one index per per-sample dimension at most; the batch is never indexed")
        shape: list[int] = []
        labels = 0
        for axis, (node, item) in enumerate(zip(e.indices, items)):
            size = t.shape[axis]
            if isinstance(item, ir.Slice):
                kept = self.check_slice(item, size, node)
                if kept is None:
                    return ir.Const(span=e.span, type=UNKNOWN, value=None)
                shape.append(kept)
            elif isinstance(item.type, NumberType):
                if not -size <= item.value < size:
                    return self.report("E227", f"index {item.value} is out of range for {t.describe()}", node.span,
                                       label=f"dimension {axis} has {size} entries",
                                       hint=f"indices of this dimension go from 0 to {size - 1} (or -{size} to -1 "
                                            "from the end)")
            elif labels:
                return self.report("E227", "an index takes one label at most", node.span,
                                   hint="pick with one label, e.g. mu[c], and the other axes with numbers or slices")
            else:
                labels += 1
                if item.type.shape and (axis != 0 or t.batched):  # a sequence of labels picks rows of a table
                    return self.report("E227", f"a sequence of labels {item.type.describe()} can only pick rows of a "
                                       "shared tensor", node.span, hint="index a tensor's first dimension, e.g. "
                                       "E[z] of `tensor E: real[K, V]`: one row per position of z")
                shape += item.type.shape  # each position of a sequence picks its own row
                if item.type.classes != size:
                    rows = f"{hint_text(e.target)} has {size} rows" if axis == 0 else \
                        f"dimension {axis} of {hint_text(e.target)} has {size} entries"
                    return self.report("E227", f"{rows} but the label has {item.type.classes} categories", e.span,
                                       hint="the first dimension must equal the number of categories" if axis == 0
                                       else "the indexed dimension must equal the number of categories")
        shape += t.shape[len(items):]
        out = TensorType(kind=t.kind, shape=tuple(shape), batched=t.batched or labels > 0)
        return ir.Index(span=e.span, type=out, target=target, indices=tuple(items))

    def index_item(self, node, scope: Scope) -> ir.Expr | None:
        """A typed index item (a Slice, an int constant or a per-sample label), or None after reporting."""
        if isinstance(node, ast.Slice):
            bounds = []
            for part in (node.start, node.stop, node.step):
                if part is None:
                    bounds.append(None)
                    continue
                try:
                    value = evaluate(part, self.params, symbols=False)
                except NotConstant as exc:
                    self.report("E227", f"a slice bound must be a constant int: {exc.why}", exc.node.span,
                                label="not a constant", hint="write numbers or int params, e.g. h[1:3] or h[0:half]")
                    return None
                if isinstance(value, bool) or not isinstance(value, int):
                    self.report("E227", f"a slice bound must be an int, got {value!r}", part.span, label="not an int",
                                hint="write numbers or int params, e.g. h[1:3] or h[0:half]")
                    return None
                bounds.append(value)
            start, stop, step = bounds
            return ir.Slice(span=node.span, type=ListType(items=tuple(NumberType(kind="int", value=b) for b in bounds
                                                                  if b is not None)),
                         value=None, start=start, stop=stop, step=step)
        item = self.expr(node, scope)
        it = item.type
        if it is UNKNOWN:
            return item
        if isinstance(it, NumberType) and it.kind == "int":
            return item
        if isinstance(it, TensorType) and it.kind == "cat":
            if not it.batched:
                self.report("E227", f"a label index must hold one label per sample, got {it.describe()}", node.span,
                            hint="index by a data or latent label, e.g. mu[c] with `latent c: cat[K]`")
                return None
            return item
        self.report("E227", f"an index must be a label cat[K], an int or a slice, got {it.describe()}", node.span,
                    hint="write h[0], h[1:3] or mu[c] (c: cat[K]); values computed per sample cannot index")
        return None

    def check_slice(self, item: ir.Slice, size: int, node: ast.Slice) -> int | None:
        """The number of positions a slice keeps on an axis of `size`, or None after reporting."""
        if item.step is not None and item.step < 1:
            self.report("E227", f"a slice step must be a positive int, got {item.step}", node.span,
                        hint="slices run forwards: h[0:4:2]")
            return None
        for bound in (item.start, item.stop):
            if bound is not None and not -size <= bound <= size:
                self.report("E227", f"slice bound {bound} is out of range for a dimension of size {size}", node.span,
                            label=f"this dimension has {size} entries",
                            hint=f"bounds go from 0 to {size} (or -{size} from the end)")
                return None
        kept = len(item.positions(size))
        if kept == 0:
            self.report("E227", f"the slice {item.describe()} of a dimension of size {size} is empty", node.span,
                        hint="a slice keeps at least one position: start below stop")
            return None
        return kept
