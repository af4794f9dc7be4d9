"""Mask set-up of autoregressive networks: the `__init__` lines that fix which inputs each
MaskedLinear may see, so that the distribution at position i depends only on data before i.

The lines are a short degree program (MADE, Germain et al. 2015) that mirrors the block's
dataflow as the order analysis (graph/passes/order.py) sees it: each value that feeds a
MaskedLinear gets degrees (a unit of degree d sees positions below d), and each MaskedLinear
gets its mask from the degrees of the value it is actually given. A MaskedLinear that reaches
the distribution with no masked layer in between is an output layer (unit k predicts position k);
the others are hidden layers with random degrees drawn from one seeded generator, in dataflow
order, so a plain stack gets the masks it always had. Outside an autoregressive block the order
is that of the block's first input (graph/passes/order.py, `analyze_network`).

A mask ensemble (`MaskedLinear(n, masks=K, order=random)`, graph/passes/ensembles.py) runs the same
program on degrees [K, units]: each MaskedLinear holds K masks, the block keeps the K orders as its
`ranks` buffer (saved with the weights), and its forward makes one component active.
"""

from __future__ import annotations

from gendsl.graph import ir
from gendsl.graph.passes.ensembles import ensemble_of
from gendsl.graph.passes.order import Analysis, analyze_network


def mask_lines(program: ir.Program, sequences: list[tuple[str, ir.Layers]], helpers: set[str]) -> list[str]:
    """`__init__` lines (without indentation) that set the masks of a network's MaskedLinear
    layers; adds the helpers they call to `helpers`."""
    made = {(id(layers), i) for _, layers in sequences for i, use in enumerate(layers.layers)
            if use.order.kind == "made"}
    if not made:
        return []
    analysis = analyze_network(program)
    if analysis.diagnostics:  # the checker refuses such a program
        raise ValueError(f"internal error: an autoregressive block that breaks the order: {analysis.diagnostics}")
    writer = DegreeWriter(analysis, {id(layers): attr for attr, layers in sequences})
    for v, value in enumerate(analysis.values):
        if value.op == "layer" and value.order.kind == "made" and (id(value.pipeline), value.index) in made:
            writer.set_mask(v)
            made.discard((id(value.pipeline), value.index))
    if made:
        raise ValueError("internal error: a MaskedLinear missing from the order analysis")
    if not writer.lines:
        return []  # no MaskedLinear sees the ordered data: every mask stays all ones
    helpers.add("MadeDegrees")
    ensemble = ensemble_of(program)
    if ensemble.single:
        header = f"made = MadeDegrees({analysis.positions})  # MADE: output i sees only {analysis.var} before i"
        return [header, *writer.lines]
    header = (f'made = MadeDegrees({analysis.positions}, masks={ensemble.masks}, order="{ensemble.order}")  '
              f"# MADE ensemble: component k's output i sees only {analysis.var} before i in order k")
    ranks = 'self.register_buffer("ranks", made.ranks)  # order k draws position i ranks[k, i]-th'
    return [header, *writer.lines, ranks]


def component_lines(program: ir.Program, helpers: set[str]) -> list[str]:
    """The first lines of a MADE ensemble's forward: one component's masks are active."""
    ensemble = ensemble_of(program)
    if ensemble.masks == 1:
        return []
    helpers.add("mask_component")
    return [f"mask_component(self)  # one of the {ensemble.masks} components: drawn uniformly unless a caller "
            "holds one"]


class DegreeWriter:
    """The degree program: `made.hidden(layer, d_in)` and `made.output(layer, d_in)` calls, with the
    degrees of each input written as an expression over earlier degrees."""

    def __init__(self, analysis: Analysis, attrs: dict[int, str]):
        self.analysis = analysis
        self.attrs = attrs
        self.lines: list[str] = []
        self.memo: dict[int, str] = {}

    def layer(self, v: int) -> str:
        value = self.analysis.values[v]
        return f"self.{self.attrs[id(value.pipeline)]}[{value.index}]"

    def set_mask(self, v: int) -> None:
        """The mask of MaskedLinear value v (nothing to do when its input depends on no data)."""
        value = self.analysis.values[v]
        if self.analysis.states[value.inputs[0]].kind == "free":
            return  # every connection is allowed: the mask stays all ones
        if v in self.analysis.outputs:
            per = self.per_position(v)
            self.lines.append(f"made.output({self.layer(v)}, {self.degrees(value.inputs[0])}"
                              + (f", per={per})" if per > 1 else ")"))
        else:
            self.degrees(v)

    def per_position(self, v: int) -> int:
        """How many values of the vector v each position has (an ordered vector, or an output layer of
        an autoregressive block: C of P * C); 1 for a lenient output, whose unit k is position k mod P."""
        value = self.analysis.values[v]
        if self.analysis.lenient and v in self.analysis.outputs:
            return 1
        return value.type.shape[0] // self.analysis.positions

    def degrees(self, v: int) -> str:
        """An expression for the degrees of value v (a vector), emitting the masks it needs."""
        if v not in self.memo:
            self.memo[v] = self._degrees(v)
        return self.memo[v]

    def _degrees(self, v: int) -> str:
        value, state = self.analysis.values[v], self.analysis.states[v]
        if state.kind == "free":
            return f"made.constant({value.type.shape[0]})"
        if state.kind == "broken":  # outside an autoregressive block: what the analysis cannot follow sees all
            return f"made.constant({value.type.shape[0]}, {self.analysis.positions})"
        if state.kind == "ordered":
            degrees = "made.earlier()" if state.strict else "made.data()"
            per = self.per_position(v)  # a flat [P * C]: each position's degree for its C values
            return f"{degrees}.repeat_interleave({per}, -1)" if per > 1 else degrees
        if v in self.analysis.outputs:  # an output layer of other width than the positions (lenient)
            return f"made.earlier({value.type.shape[0]})"
        if value.op == "layer" and value.order.kind == "made":
            name = f"d_{self.attrs[id(value.pipeline)]}_{value.index}"
            self.lines.append(f"{name} = made.hidden({self.layer(v)}, {self.degrees(value.inputs[0])})")
            return name
        if value.op == "concat":
            return f"torch.cat([{', '.join(self.degrees(i) for i in value.inputs)}], -1)"
        # elementwise layers, functions and arithmetic: a unit sees what its operands see
        live = [self.degrees(i) for i in value.inputs if self.analysis.states[i].kind != "free"]
        if len(live) == 1:
            return live[0]
        result = live[0]
        for other in live[1:]:
            result = f"torch.maximum({result}, {other})"
        return result
