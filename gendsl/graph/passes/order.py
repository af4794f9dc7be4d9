"""The autoregressive order: in an `autoregressive` block, the distribution's parameters at each
position depend only on the data at earlier positions, on any graph of layers.

A dataflow analysis of the block's typed program. Each value (an expression, or the output of one
layer of a pipeline) gets a `State` relative to the order of the drawn data x, and each construct
transforms it as its registry entry declares (`Order` on a layer's `Built`): masked layers, per-
position and elementwise layers, sums and products (a join), concatenations, locals, parallel
paths. Positions are the features of a vector, the rows of a sequence [T, C] and the pixels of an
image [C, H, W] in raster order (the channels of one position go together), as the sampler draws
them; a vector of P * C values holds C per position, row by row (a flattened [P, C]). Whatever
the analysis cannot prove is refused (E306; E307 when a masked layer that keeps the current
position lets it through). The same analysis tells codegen/masks.py which MaskedLinear layers are
outputs and what degrees each value has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import networkx as nx

from gendsl.diagnostics import Diagnostic, Note, error
from gendsl.graph import ir
from gendsl.library.entries import ELEMENTWISE, Order
from gendsl.source import Span
from gendsl.types import TensorType

UNITS = {0: "value", 1: "features", 2: "positions", 3: "pixels"}  # what the positions of a rank are
POSITION_AXES = {0: (), 1: (0,), 2: (0,), 3: (1, 2)}
HINTS = {0: "the distribution of a single value cannot depend on the value itself",
         1: "MADE: mix features with MaskedLinear only; elementwise layers and functions keep the order",
         2: "mix positions with a recurrent layer (RNN, GRU, LSTM; not bidirectional) or SelfAttention(causal=true "
            "or causal=strict), after `shift` where they see the current position; Linear, LayerNorm and "
            "elementwise layers act on each position's channels",
         3: "mix pixels with MaskedConv2d (mask=A first, then mask=B) or SelfAttention(causal=...); "
            "1x1 Conv2d and elementwise layers act on each pixel"}
STRICT_HINT = {1: "end each path from x with MaskedLinear, which sees only earlier features",
               2: "shift the data one position on each path from x (`x |> shift |> LSTM(64)`), or put "
                  "SelfAttention(causal=strict) on it: position t then sees only earlier positions",
               3: "put MaskedConv2d(mask=A) (or SelfAttention(causal=strict)) first on each path from x: "
                  "it hides the current pixel"}


@dataclass(frozen=True)
class Witness:
    """Why a value sees the data at its own position: the first construct of the path that lets it
    through, either the data itself (`layer` None) or a masked layer that keeps the position."""

    span: Span
    layer: ir.LayerUse | None = None


@dataclass(frozen=True)
class State:
    """free: depends on no data; ordered: arranged by the data's positions, each seeing only earlier
    positions (strict) or also its own; degrees: MADE units of a vector, each seeing positions
    below its degree; broken: already reported. `stacks`: an ordered image that is the two stacks of
    a GatedMaskedConv2d, its vertical half seeing only rows above (lost by any other construct)."""

    kind: Literal["free", "ordered", "degrees", "broken"]
    strict: bool = True
    witness: Witness | None = None
    stacks: bool = False


FREE, DEGREES, BROKEN = State("free"), State("degrees"), State("broken")


@dataclass
class Value:
    """One value of the block's dataflow: an expression, or the output of one layer of a pipeline."""

    op: Literal["data", "free", "join", "concat", "apply", "layer", "call", "opaque"]
    inputs: tuple[int, ...]
    span: Span
    type: object
    order: Order = ELEMENTWISE
    layer: ir.LayerUse | None = None
    pipeline: ir.Layers | None = None   # for a layer: its pipeline and place in it
    index: int = 0
    what: str = ""                      # how a message names the construct


def arrangement(shape: tuple[int, ...], positions: int) -> tuple[int, bool] | None:
    """(values per position, channel-major) of a shape that holds the data's positions, channel-
    major meaning [C, H, W]; None when the shape does not hold them. Equal arrangements put every
    value at the same position, so a reshape between them keeps the order."""
    rank = len(shape)
    if rank == 0:
        return (1, False) if positions == 1 else None
    if rank == 1 and shape[0] % positions == 0:  # [P * C]: position p's C values at p*C .. p*C + C - 1
        return (shape[0] // positions, False)
    if rank == 2 and shape[0] == positions:
        return (shape[1], False)
    if rank == 3 and shape[1] * shape[2] == positions:
        return (shape[0], shape[0] > 1)
    return None


def _shape(t) -> tuple[int, ...] | None:
    return t.shape if isinstance(t, TensorType) else None


def _is_zero(e: ir.Expr) -> bool:
    return isinstance(e, ir.Const) and isinstance(e.value, (int, float)) and not isinstance(e.value, bool) \
        and e.value == 0


@dataclass
class Analysis:
    """The dataflow of one autoregressive block and the order state of each of its values."""

    var: str
    data: TensorType
    positions: int
    # a network outside an autoregressive block: its MaskedLinear layers follow the order of its first
    # input, but it promises no order, so nothing is reported and what the analysis cannot follow
    # counts as seeing every position
    lenient: bool = False
    values: list[Value] = field(default_factory=list)
    states: list[State] = field(default_factory=list)
    params: list[tuple[str, int]] = field(default_factory=list)   # what must keep the order (the draw's parameters)
    outputs: set[int] = field(default_factory=set)                # MaskedLinear values that are outputs
    diagnostics: list[Diagnostic] = field(default_factory=list)
    locals: dict[str, int] = field(default_factory=dict)

    # ---- the dataflow graph ----
    def add(self, value: Value) -> int:
        self.values.append(value)
        return len(self.values) - 1

    def value(self, e: ir.Expr) -> int:
        """The value of an expression (its sub-values first, so values are in topological order)."""
        if isinstance(e, ir.Ref) and e.scope == "input" and e.name == self.var:
            return self.add(Value("data", (), e.span, e.type))
        if isinstance(e, ir.Const) or (isinstance(e, ir.Ref) and e.scope in ("tensor", "net", "input")):
            return self.add(Value("free", (), e.span, e.type))  # other inputs do not carry the order
        if isinstance(e, ir.Ref) and e.scope == "local" and e.name in self.locals:
            return self.locals[e.name]
        if isinstance(e, ir.Unary):
            return self.add(Value("apply", (self.value(e.operand),), e.span, e.type, what=e.op))
        if isinstance(e, ir.Binary):
            if (e.op == "*" and (_is_zero(e.left) or _is_zero(e.right))) or (e.op == "/" and _is_zero(e.left)):
                return self.add(Value("free", (), e.span, e.type))  # 0 for any operand; not computed
            return self.add(Value("join", (self.value(e.left), self.value(e.right)), e.span, e.type))
        if isinstance(e, ir.Apply):
            args = tuple(self.value(a) for a in e.args)
            if e.order.kind == "concat":
                return self.add(Value("concat", args, e.span, e.type, what="concat"))
            return self.add(Value("apply", args, e.span, e.type, order=e.order,
                                  what=f"{e.fn}(...)"))
        if isinstance(e, ir.Layers):
            current = self.value(e.input)
            for i, use in enumerate(e.layers):
                current = self.add(Value("layer", (current,), use.span, use.output, order=use.order,
                                         layer=use, pipeline=e, index=i, what=use.entry))
            return current
        if isinstance(e, (ir.CallNet, ir.Index)):
            parts = e.args if isinstance(e, ir.CallNet) else (e.target, *e.indices)
            what = f"the network {e.net}" if isinstance(e, ir.CallNet) else "indexing"
            return self.add(Value("call", tuple(self.value(p) for p in parts), e.span, e.type, what=what))
        return self.add(Value("opaque", (), e.span, e.type, what=type(e).__name__))

    def build(self, program: ir.Program) -> None:
        for stmt in program.stmts:
            if isinstance(stmt, ir.Assign):
                self.locals[stmt.name] = self.value(stmt.value)
            elif stmt.name == self.var or self.lenient:
                self.params += [(name, self.value(e)) for name, e in stmt.dist.params.items()]
        if program.result is not None:
            result = self.value(program.result)
            if self.lenient:
                self.params.append(("output", result))

    def find_outputs(self) -> None:
        """A MaskedLinear whose value reaches the parameters with no masked layer in between, through
        constructs that keep each value at its position, is an output layer: its unit k predicts
        position k. The others are hidden layers."""
        seen: set[int] = set()
        stack = [v for _, v in self.params]
        while stack:
            v = stack.pop()
            if v in seen:
                continue
            seen.add(v)
            value = self.values[v]
            if value.op == "layer" and value.order.kind in ("made", "causal", "stacks"):
                if value.order.kind == "made":
                    self.outputs.add(v)
            elif self.keeps_positions(value):
                stack += value.inputs

    def keeps_positions(self, value: Value) -> bool:
        """Does each value of the result come from values at the same position of its inputs?"""
        rank = len(_shape(value.type) or ())
        if value.op == "join":
            return True
        if value.op == "concat":
            return rank > 1  # along the channels (concat along positions is refused or makes MADE units)
        if value.op not in ("apply", "layer"):
            return False
        axes = {a % rank for a in value.order.axes} if rank else set()
        return value.order.kind in ("elementwise", "reshape") or (
            value.order.kind == "mixes" and not axes & set(POSITION_AXES.get(rank, ())))

    # ---- the order states ----
    def run(self) -> None:
        self.find_outputs()
        for v, value in enumerate(self.values):
            self.states.append(self.transfer(v, value, [self.states[i] for i in value.inputs]))
        if not self.lenient:
            for name, v in self.params:
                self.check_param(name, v)

    def report(self, code: str, message: str, span: Span, **kw) -> State:
        if not self.lenient:
            self.diagnostics.append(error(code, message, span, **kw))
        return BROKEN

    def transfer(self, v: int, value: Value, inputs: list[State]) -> State:
        if value.op == "data":
            return State("ordered", strict=False, witness=Witness(value.span))
        if value.op == "free":
            return FREE
        if value.op == "opaque":
            return self.report("E306", f"the autoregressive order cannot be proven through this {value.what}",
                               value.span, label="not analysed",
                               hint="write the distribution's parameters with layers, arithmetic and concat")
        if any(s.kind == "broken" for s in inputs) or not isinstance(value.type, TensorType):
            return BROKEN  # reported already (a value whose type failed is not a tensor)
        if all(s.kind == "free" for s in inputs):
            return FREE
        if value.op == "call":
            return self.report("E306", f"the autoregressive order cannot be proven through {value.what}, "
                               f"which is given a value that depends on {self.var}", value.span,
                               label="not analysed", hint="write its layers inside the autoregressive block")
        if value.op == "join":
            return self.join(value, [(self.values[i], s) for i, s in zip(value.inputs, inputs)])
        if value.op == "concat":
            return self.concat(value, inputs)
        return self.apply_order(v, value, inputs)

    def join(self, value: Value, operands: list[tuple[Value, State]]) -> State:
        """Elementwise arithmetic: each result value sees what its operands see at its place."""
        shape = _shape(value.type)
        live = [(o, s) for o, s in operands if s.kind != "free"]
        for operand, s in live:
            have = _shape(operand.type)
            # an ordered value keeps its positions when only its channels broadcast; MADE units do not broadcast
            if shape is None or have is None or len(have) != len(shape) or (s.kind == "degrees" and have != shape) \
                    or (s.kind == "ordered" and arrangement(shape, self.positions) is None):
                return self.report("E306", f"broadcasting a value that depends on {self.var} to "
                                   f"{value.type.describe()} moves its values to other positions", value.span,
                                   label="broadcast", hint="combine values of the same shape")
        states = [s for _, s in live]
        if any(s.kind == "degrees" for s in states):
            return DEGREES
        leak = next((s.witness for s in states if not s.strict), None)
        return State("ordered", strict=leak is None, witness=leak)

    def concat(self, value: Value, inputs: list[State]) -> State:
        shape = _shape(value.type)
        first = _shape(self.values[value.inputs[0]].type)
        axis = next((a for a, (m, n) in enumerate(zip(shape, first)) if m != n), 0) if shape and first else 0
        if shape is not None and len(shape) == 1:
            return DEGREES  # MADE units with the degrees of their parts
        if shape is None or axis in POSITION_AXES.get(len(shape), ()):
            return self.report("E306", f"concat along the {UNITS.get(len(shape or ()), 'positions')} of "
                               f"{self.var} moves values to other positions", value.span,
                               label="joins positions", hint="concatenate along the channels (dim=0 of an "
                               "image, the last dim of a sequence)")
        return self.join(value, [(self.values[i], s) for i, s in zip(value.inputs, inputs)])

    def apply_order(self, v: int, value: Value, inputs: list[State]) -> State:
        """A layer or function, as its Order says."""
        order = value.order
        if order.kind == "elementwise":
            return self.join(value, [(self.values[i], st) for i, st in zip(value.inputs, inputs)])
        i, s = next((i, st) for i, st in zip(value.inputs, inputs) if st.kind != "free")
        rank = len(_shape(self.values[i].type) or ())
        if len(inputs) > 1 or order.kind == "any":
            return self.mixing(value, s, rank)
        if order.kind == "mixes":
            axes = {a % rank for a in order.axes} if rank else set()
            if s.kind == "degrees" or axes & set(POSITION_AXES[rank]):
                return self.mixing(value, s, rank)
            return s if arrangement(_shape(value.type), self.positions) else self.mixing(value, s, rank)
        if order.kind == "reshape":
            return self.reshape(value, s)
        if order.kind == "made":
            return self.made(v, value, s)
        if order.kind == "stacks":
            return self.stacks(value, s, rank)
        return self.causal(value, s, rank)

    def mixing(self, value: Value, s: State, rank: int) -> State:
        units = "MADE's hidden units" if s.kind == "degrees" else f"the {UNITS.get(rank, 'values')} of {self.var}"
        message = f"{value.what} mixes {units} without a mask, breaking the autoregressive order"
        return self.report("E306", message, value.span, label="unmasked", hint=HINTS.get(rank, ""))

    def reshape(self, value: Value, s: State) -> State:
        before, after = _shape(self.values[value.inputs[0]].type), _shape(value.type)
        if s.kind == "degrees" and before == after:
            return s
        if s.kind == "ordered" and arrangement(before, self.positions) == arrangement(after, self.positions) \
                and arrangement(after, self.positions) is not None:
            return s
        return self.report("E306", f"{value.layer.describe()} moves the values of {self.var} to other positions",
                           value.span, label="reorders",
                           hint="the order survives a reshape that keeps every position's values together in "
                                "raster order (e.g. flattening a one-channel image); declare the data in the "
                                "shape the layers need")

    def made(self, v: int, value: Value, s: State) -> State:
        """A hidden layer gives MADE units; an output layer the positions, C units each (position-major,
        as reshape(P, C) reads them)."""
        if v not in self.outputs:
            return DEGREES
        out = value.layer.output.shape[0]
        if out != self.positions and self.lenient:
            return DEGREES  # unit k predicts position k mod positions
        if out % self.positions:
            return self.report("E306", f"{value.layer.describe()} gives the distribution of {self.var} directly, "
                               f"so it needs one output per position ({self.positions}), or C each "
                               f"({self.positions} * C)", value.span, label=f"{out} output{'s' if out != 1 else ''}",
                               hint=f"write MaskedLinear({self.positions}) (or {self.positions} * C units, "
                                    f"then reshape({self.positions}, C)), or put a masked layer after it")
        return State("ordered")

    def causal(self, value: Value, s: State, rank: int) -> State:
        if s.kind != "ordered" or tuple(a % rank for a in value.order.axes) != POSITION_AXES[rank]:
            return self.mixing(value, s, rank)
        if value.order.strict or s.strict:
            return State("ordered")
        # the first masked layer of the path that keeps the current position is the one to blame
        witness = s.witness if s.witness.layer is not None else Witness(value.span, value.layer)
        return State("ordered", strict=False, witness=witness)

    def stacks(self, value: Value, s: State, rank: int) -> State:
        """Gated PixelCNN: mask A starts the two stacks from any ordered image; mask B's vertical
        convolution reads the current row and the pixels right of the current one, which is strict
        only on the vertical stack of a GatedMaskedConv2d (it sees only rows above)."""
        if s.kind != "ordered" or rank != 3:
            return self.mixing(value, s, rank)
        if not value.order.strict and not s.stacks:
            return self.report("E306", f"{value.layer.describe()} reads its input's vertical stack at the current "
                               f"row, which is causal only if it is the output of a GatedMaskedConv2d: here pixel i "
                               f"would see later pixels of {self.var}", value.span, label="not the two stacks",
                               hint="start the stacks with GatedMaskedConv2d(mask=A) and chain the gated layers "
                                    "directly (their gate is the activation); last=true ends them")
        return State("ordered", stacks=not value.order.ends)

    def check_param(self, name: str, v: int) -> None:
        s, value = self.states[v], self.values[v]
        rank = len(self.data.shape) + (self.data.kind == "cat")  # labels' logits add a last dim of K
        where = Note(message=f"it reaches the {name} of {self.var} here", span=value.span)
        if s.kind == "degrees" or (s.kind == "ordered" and (
                _shape(value.type) is None or len(_shape(value.type)) != rank
                or arrangement(_shape(value.type), self.positions) is None)):
            self.report("E306", f"the {name} of {self.var} are not arranged by {self.var}'s positions",
                        value.span, label="not one value per position",
                        hint=f"end the path with a layer that gives {self.data.describe()}")
        elif s.kind == "ordered" and not s.strict:
            self.blame(name, s.witness, where)

    def blame(self, name: str, witness: Witness, where: Note) -> None:
        rank = len(self.data.shape)
        unit = {1: "feature", 3: "pixel"}.get(rank, "position")
        if witness.layer is None:
            self.report("E306", f"{self.var} reaches the {name} of its own distribution with no masked layer "
                        f"on the way, so {unit} i would see {self.var}_i", witness.span,
                        label="unmasked path", hint=STRICT_HINT.get(rank, HINTS[0]), notes=[where])
        else:
            self.report("E307", f"{witness.layer.describe()} lets each {unit} see itself, and its input already "
                        f"depends on {self.var} there, so the {name} at {unit} i would see {self.var}_i", witness.span,
                        label=f"sees the current {unit}", hint=self.shift_hint(witness.layer, rank), notes=[where])

    def shift_hint(self, layer: ir.LayerUse, rank: int) -> str:
        """How to make a layer that keeps the current position strict: on a sequence, shift its input
        one position (teacher forcing, as for a recurrent layer); on an image, a mask-A layer first."""
        if rank != 2:
            return STRICT_HINT.get(rank, HINTS[0])
        return (f"shift its input one position first (`|> shift |> {layer.describe()}`): position t then sees "
                f"only positions before t; or put SelfAttention(causal=strict) on each path from {self.var}")


def drawn_input(program: ir.Program) -> tuple[str, TensorType] | None:
    """The variable an autoregressive block draws and conditions on: (name, type)."""
    inputs = dict(program.inputs)
    draw = next((s for s in program.stmts if isinstance(s, ir.Draw) and s.name in inputs), None)
    data = inputs.get(draw.name) if draw is not None else None
    return (draw.name, data) if isinstance(data, TensorType) else None


def analyze(program: ir.Program) -> Analysis | None:
    """The order analysis of a block that draws one of its own inputs (an autoregressive block);
    None for any other program, one whose types failed, or data with no order."""
    drawn = drawn_input(program)
    if drawn is None or drawn[1].rank not in POSITION_AXES:
        return None
    return _run(Analysis(var=drawn[0], data=drawn[1], positions=_positions(drawn[1])), program)


def analyze_network(program: ir.Program) -> Analysis:
    """The analysis of any block with MaskedLinear layers: that of an autoregressive block, else a
    lenient one whose order is that of the block's first input (none if it has no order)."""
    strict = analyze(program)
    if strict is not None:
        return strict
    first = program.inputs[0] if program.inputs else None
    if first is not None and isinstance(first[1], TensorType) and first[1].rank in POSITION_AXES:
        analysis = Analysis(var=first[0], data=first[1], positions=_positions(first[1]), lenient=True)
    else:
        analysis = Analysis(var="", data=TensorType(), positions=1, lenient=True)  # every value is free
    return _run(analysis, program)


def _positions(data: TensorType) -> int:
    return data.shape[0] if data.rank in (1, 2) else data.shape[1] * data.shape[2] if data.rank == 3 else 1


def _run(analysis: Analysis, program: ir.Program) -> Analysis:
    analysis.build(program)
    analysis.run()
    return analysis


def check_autoregressive(graph: nx.DiGraph, diagnostics: list[Diagnostic]) -> None:
    """Every autoregressive block keeps the order of its data."""
    for _, data in graph.nodes(data=True):
        node = data["data"]
        if node.kind == "factor" and node.role == "autoregressive" and node.program is not None:
            check_block(node, node.program, diagnostics)


def check_block(node, program: ir.Program, diagnostics: list[Diagnostic]) -> None:
    drawn = drawn_input(program)
    if drawn is not None and drawn[1].rank not in POSITION_AXES:
        diagnostics.append(error("E306", f"an autoregressive order is defined on vectors, sequences [T, C] and "
                                 f"images [C, H, W], not on {drawn[1].describe()}", node.span,
                                 hint="declare the data with at most three dims"))
        return
    analysis = analyze(program)
    if analysis is not None:
        diagnostics += analysis.diagnostics
