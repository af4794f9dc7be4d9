"""The abstract syntax tree: frozen pydantic nodes, each carrying the span it came from.

The parser is the only producer, so it builds nodes with `model_construct` (no re-validation);
everything downstream treats the tree as immutable data.
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict

from gendsl.source import Span


class Node(BaseModel):
    """Base of every AST node: immutable, with a source span."""

    # schemas are built on first validation, never at import: the parser constructs nodes directly
    model_config = ConfigDict(frozen=True, defer_build=True)
    span: Span


class Ident(Node):
    """A name at a place: declarations and name lists keep where each name was written."""

    name: str


# ---- expressions ----

class Number(Node):
    value: float
    is_int: bool


class String(Node):
    value: str


class Name(Node):
    id: str


class Unary(Node):
    op: Literal["-", "log"]
    operand: "Expr"


class Binary(Node):
    op: Literal["+", "-", "*", "/", "^"]
    left: "Expr"
    right: "Expr"


class Kwarg(Node):
    name: str
    value: "Expr"


class Call(Node):
    """f(a, k=v) or a density term p(x | z): `given` holds what follows the bar."""

    func: "Expr"
    args: tuple["Expr", ...] = ()
    kwargs: tuple[Kwarg, ...] = ()
    given: tuple["Expr", ...] = ()
    has_bar: bool = False
    bad_args: bool = False   # a syntax error in the arguments was reported (E024)


class Slice(Node):
    """`start:stop:step` inside an index, each part optional: `h[1:3]`, `x[:, 1]`."""

    start: "Expr | None" = None
    stop: "Expr | None" = None
    step: "Expr | None" = None


class Index(Node):
    """`h[0]`, `mu[c]`, `x[0, 2:5]`: one item per per-sample axis, from the first."""

    target: "Expr"
    indices: tuple["Expr | Slice", ...]


class Attr(Node):
    target: "Expr"
    name: str


class TupleExpr(Node):
    items: tuple["Expr", ...]


class ListExpr(Node):
    items: tuple["Expr", ...]


class Stage(Node):
    """One step of a layer pipeline: `relu`, `Linear(256)`, or `repeat n { ... }`."""

    name: str
    args: tuple["Expr", ...] = ()
    kwargs: tuple[Kwarg, ...] = ()
    has_parens: bool = False
    repeat: "Expr | None" = None
    body: tuple["Stage", ...] = ()
    bad_args: bool = False

    @property
    def is_repeat(self) -> bool:
        return self.repeat is not None


class Pipe(Node):
    """`input |> stage`: the input flows through one stage (chains nest to the left)."""

    input: "Expr"
    stage: Stage


Expr = Union[Number, String, Name, Unary, Binary, Call, Index, Attr, TupleExpr, ListExpr, Pipe]


class TypeExpr(Node):
    """A type as written: `real[latent]`, `cat[10]`, `step`, `logit`."""

    name: str
    dims: tuple[Expr, ...] = ()


# ---- network bodies ----

class Assign(Node):
    target: Ident
    value: Expr


class Draw(Node):
    """`z ~ Normal(...)` inside an encoder, decoder or autoregressive block."""

    target: Ident
    dist: Expr


class Result(Node):
    value: Expr


NetStmt = Union[Assign, Draw, Result]


# ---- model statements ----

class ParamDecl(Node):
    name: Ident
    type_name: Ident
    default: Expr


class DataVar(Node):
    name: Ident
    type: TypeExpr


class DataDecl(Node):
    vars: tuple[DataVar, ...]
    source: Expr


class LatentDecl(Node):
    name: Ident
    type: TypeExpr
    prior: Expr


class TensorDecl(Node):
    name: Ident
    type: TypeExpr
    init: Expr


class ObserveDecl(Node):
    name: Ident
    dist: Expr


class NetParam(Node):
    name: Ident
    type: TypeExpr | None = None


class NetDecl(Node):
    """generator / discriminator / critic / energy / denoiser / net."""

    role: str
    name: Ident
    params: tuple[NetParam, ...]
    returns: TypeExpr | None
    body: tuple[NetStmt, ...]
    pack: Expr | None = None   # `pack N` (PacGAN): N samples seen at once, see graph/passes/packing.py


class DensityDecl(Node):
    """encoder q(z | x) / decoder p(x | z) / autoregressive p(x): a conditional density."""

    role: str
    name: Ident
    vars: tuple[Ident, ...]
    given: tuple[Ident, ...]
    body: tuple[NetStmt, ...]


class FlowDecl(Node):
    """flow f(x) <-> z, or f(x | y) <-> z: a conditional flow whose couplings also see y."""

    name: Ident
    param: NetParam
    given: tuple[Ident, ...] = ()
    latent: Ident
    stages: tuple[Stage, ...]


class DiffusionDecl(Node):
    name: Ident
    var: Ident
    process: Expr


class SamplerDecl(Node):
    name: Ident
    sampler: Expr


class LossDecl(Node):
    name: Ident
    value: Expr


class TrainStep(Node):
    """`step gen: minimize g_loss over G with Adam(...) repeat 1` (or the one-step shorthand)."""

    name: Ident
    loss: Ident
    over: tuple[Ident, ...] = ()
    optimizer: Expr | None = None
    repeat: Expr | None = None
    shorthand: bool = False


class TrainSetting(Node):
    """`batch 100`, `optimizer Adam(lr=1e-3)`, `ema 0.999`: a named schedule setting."""

    name: Ident
    value: Expr


class TrainBlock(Node):
    steps: tuple[TrainStep, ...]
    settings: tuple[TrainSetting, ...]


class SampleDecl(Node):
    name: Ident
    op: Literal["=", "~"]
    value: Expr


class Metric(Node):
    alias: Ident | None
    name: Ident
    args: tuple[Expr, ...] = ()
    kwargs: tuple[Kwarg, ...] = ()


class EvaluateBlock(Node):
    metrics: tuple[Metric, ...]


Stmt = Union[ParamDecl, DataDecl, LatentDecl, TensorDecl, ObserveDecl, NetDecl, DensityDecl,
             FlowDecl, DiffusionDecl, SamplerDecl, LossDecl, TrainBlock, SampleDecl, EvaluateBlock]


# ---- top level ----

class Import(Node):
    path: String


class BlockParam(Node):
    name: Ident
    type_name: Ident
    default: Expr | None = None


class BlockDef(Node):
    """A reusable layer pipeline with parameters, expanded where it is used."""

    name: Ident
    params: tuple[BlockParam, ...]
    stages: tuple[Stage, ...]


class ModelDef(Node):
    name: Ident
    extends: Ident | None
    body: tuple[Stmt, ...]


class Module(Node):
    """One parsed file."""

    imports: tuple[Import, ...]
    blocks: tuple[BlockDef, ...]
    models: tuple[ModelDef, ...]


# No eager model_rebuild: the parser builds nodes without validation, so `gendsl check` never needs
# their schemas; pydantic builds one (resolving names in this module) where a node is validated.


def hint_text(e: Node) -> str:
    """A short rendering of an expression for hints."""
    if isinstance(e, Name):
        return e.id
    if isinstance(e, Number):
        return str(e.value)
    if isinstance(e, Attr):
        return f"{hint_text(e.target)}.{e.name}"
    if isinstance(e, Call):
        args = [hint_text(a) for a in e.args] + [f"{k.name}={hint_text(k.value)}" for k in e.kwargs]
        given = f" | {', '.join(hint_text(g) for g in e.given)}" if e.given else ""
        return f"{hint_text(e.func)}({', '.join(args)}{given})"
    return "..."

