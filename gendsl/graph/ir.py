"""Typed expressions: what the type pass makes of the AST, and what code generation reads.

Every node carries its type and the span it came from. Pipelines are flattened and blocks and
`repeat` are expanded, so each `LayerUse` is one concrete nn.Module of the generated code.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict

from gendsl.library.entries import Order
from gendsl.source import Span
from gendsl.types import TensorType, Type


class IR(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)  # schemas built on first use
    span: Span
    type: Type


class Const(IR):
    value: Any


class Slice(Const):
    """`start:stop:step`, an item of an Index: constant ints or None, as written (a constant, whose
    type is that of its bounds)."""

    start: int | None = None
    stop: int | None = None
    step: int | None = None

    def positions(self, size: int) -> range:
        """The positions it picks on an axis of `size` (Python's slice semantics)."""
        return range(*slice(self.start, self.stop, self.step).indices(size))

    def describe(self) -> str:
        parts = ["" if v is None else str(v) for v in (self.start, self.stop, self.step)]
        return ":".join(parts if self.step is not None else parts[:2])


class Ref(IR):
    """A name: where it comes from decides how code generation reads it."""

    name: str
    scope: Literal["data", "latent", "tensor", "input", "local", "loss", "net"]


class Unary(IR):
    op: Literal["-", "log"]
    operand: "Expr"


class Binary(IR):
    op: Literal["+", "-", "*", "/", "^"]
    left: "Expr"
    right: "Expr"


class Apply(IR):
    """A library function (functions.py); `code` is its template over the arguments' code."""

    fn: str
    args: tuple["Expr", ...]
    code: str
    helpers: tuple[str, ...] = ()
    differentiable: bool = True
    order: Order = Order()           # what it does to an autoregressive order (graph/passes/order.py)
    draws: int = 0                   # k > 0: its argument is evaluated for k independent draws of the latents


class LayerUse(BaseModel):
    """One concrete layer of a pipeline."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    span: Span
    entry: str
    args: dict[str, Any]
    input: TensorType
    output: TensorType
    params: int
    code: str
    helpers: tuple[str, ...] = ()
    order: Order = Order()
    batch_statistics: bool = False
    invertible: bool = False
    context_units: int = 0

    def describe(self) -> str:
        """`Conv2d(64, kernel=4, stride=2)`: the main arguments, leaving out defaults."""
        return _describe_layer(self)


class Layers(IR):
    """`input |> layer |> layer ...`: a flattened pipeline (an nn.Sequential)."""

    input: "Expr"
    layers: tuple[LayerUse, ...]


class CallNet(IR):
    net: str
    args: tuple["Expr", ...]


class Index(IR):
    """`mu[c]`: rows of a shared tensor picked per sample by a label (or a constant index)."""

    target: "Expr"
    indices: tuple["Expr", ...]


class Dist(IR):
    """A distribution constructor, e.g. Normal(loc = ..., scale = ...): type is a DistType."""

    family: str
    params: dict[str, "Expr"]
    code: str
    position: str | None = None  # the constructor of one position's values (library/distributions.py)


class DensityTerm(BaseModel):
    """`p(x | z)`: a factor (or marginal) of a density, by variables."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    density: str
    vars: tuple[str, ...]
    given: tuple[str, ...] = ()

    def describe(self) -> str:
        given = f" | {', '.join(self.given)}" if self.given else ""
        return f"{self.density}({', '.join(self.vars)}{given})"


class LogDensity(IR):
    """`log p(x | z)`: per-sample log-density, summed over the event dimensions."""

    term: DensityTerm
    how: Literal["factor", "prior", "marginal_enumerate", "flow", "autoregressive"]
    source: str  # the graph node that defines it


class KL(IR):
    q: DensityTerm
    p: DensityTerm
    q_source: str
    p_source: str


class DrawDensity(IR):
    """`sample x ~ p(x)` or `~ p(x | z)`: ancestral sampling of a density term."""

    term: DensityTerm


class Method(IR):
    """`f.inverse(z)`, `q.loss(eps)`, `q.reverse(eps)`: an operation of a model object."""

    obj: str
    kind: Literal["flow", "diffusion"]
    method: str
    args: tuple["Expr", ...]
    names: tuple[str, ...] = ()      # the parameter of the method's entry each argument binds to


class SamplerDraw(IR):
    """A batch of samples from a sampler (Langevin); carries no gradient."""

    sampler: str


def _describe_layer(use: "LayerUse") -> str:
    """`Conv2d(64, kernel=4, stride=2)`: the main arguments, leaving out defaults."""
    import inspect

    from gendsl.library.layers import LAYERS
    from gendsl.library.signature import format_value, parameters

    entry = LAYERS[use.entry]
    params = {p.name: p for p in parameters(entry.rule, 1)}
    shown = []
    for i, key in enumerate(entry.shown):
        value = use.args.get(key)
        if params[key].kind is inspect.Parameter.VAR_POSITIONAL:
            shown += [format_value(v) for v in value]
        elif value is not None and (i == 0 or params[key].default != value):
            text = value if isinstance(value, str) else format_value(value)
            shown.append(text if i == 0 else f"{key}={text}")
    return f"{use.entry}({', '.join(shown)})" if shown else use.entry


Expr = Union[Const, Ref, Unary, Binary, Apply, Layers, CallNet, Index, Dist, LogDensity, KL,
             DrawDensity, Method, SamplerDraw]


class Assign(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)
    span: Span
    name: str
    value: Expr


class Draw(BaseModel):
    """`z ~ Normal(...)` in an encoder or decoder: the distribution the block defines."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    span: Span
    name: str
    dist: Dist


class Program(BaseModel):
    """The typed body of a network or density block."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    inputs: tuple[tuple[str, Type], ...]
    stmts: tuple[Assign | Draw, ...]
    result: Expr | None = None

    def layers(self) -> list[LayerUse]:
        """Every concrete layer, in order of appearance."""
        return [use for node in walk_program(self) if isinstance(node, Layers) for use in node.layers]


def children(node: IR) -> list[IR]:
    """The direct sub-expressions of a node."""
    if isinstance(node, (Unary,)):
        return [node.operand]
    if isinstance(node, Binary):
        return [node.left, node.right]
    if isinstance(node, (Apply, CallNet, Method)):
        return list(node.args)
    if isinstance(node, Layers):
        return [node.input]
    if isinstance(node, Index):
        return [node.target, *node.indices]
    if isinstance(node, Dist):
        return list(node.params.values())
    return []


def walk(node: IR):
    """Pre-order traversal of an expression."""
    yield node
    for child in children(node):
        yield from walk(child)


def walk_program(program: Program):
    """Pre-order traversal of every expression of a program."""
    for stmt in program.stmts:
        yield from walk(stmt.value if isinstance(stmt, Assign) else stmt.dist)
    if program.result is not None:
        yield from walk(program.result)


for _cls in list(globals().values()):
    if isinstance(_cls, type) and issubclass(_cls, BaseModel) and _cls is not BaseModel:
        _cls.model_rebuild()
