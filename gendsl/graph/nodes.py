"""Node data of the typed graph: one pydantic model per kind of declaration.

`build` creates each node with its declaration (`decl`); the passes return copies with their
annotations filled in (types, programs, parameter counts). Node keys are the declared names,
except steps (`step:NAME`), density factors (`factor:p(x|z)`), samples and metrics.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from gendsl import ast
from gendsl.graph.ir import DensityTerm, Expr, Program
from gendsl.library.entries import Configured
from gendsl.spec import Train
from gendsl.source import Span
from gendsl.types import TensorType, Type

TRAINABLE = ("net", "factor", "flow", "tensor")


class NodeData(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, defer_build=True)
    kind: str
    name: str
    span: Span
    decl: Any = None  # the AST statement, for passes and diagnostics

    def annotate(self, **fields) -> "NodeData":
        """A copy with pass results filled in."""
        return self.model_copy(update=fields)


class ParamNode(NodeData):
    kind: Literal["param"] = "param"
    type_name: str = ""
    value: Any = None
    overridden: bool = False


class DataNode(NodeData):
    kind: Literal["data"] = "data"
    group: int = 0            # variables of one `data` line come from one source, paired
    position: int = 0         # which array of the source
    source: str = ""
    source_args: dict[str, Any] = {}
    type: TensorType | None = None


class LatentNode(NodeData):
    kind: Literal["latent"] = "latent"
    type: TensorType | None = None
    prior: Expr | None = None
    encoder: str | None = None   # the factor that infers it (an encoder), if any
    prior_factor: str | None = None  # `latent z1 ~ p(z1 | z2)`: the factor that is its prior (then prior is None)


class TensorNode(NodeData):
    kind: Literal["tensor"] = "tensor"
    type: TensorType | None = None
    init: Configured = Configured(entry="zeros")
    params: int = 0


class NetNode(NodeData):
    kind: Literal["net"] = "net"
    role: str = "net"
    type: Type | None = None           # NetType once typed
    program: Program | None = None
    params: int = 0
    output_origin: Span | None = None  # the layer that fixed the output shape (for notes)
    pack: int = 1                      # `pack N`: N samples per output (graph/passes/packing.py)


class FactorNode(NodeData):
    """A factor of a density: encoder q(z | x), decoder p(x | z), autoregressive p(x), observe."""

    kind: Literal["factor"] = "factor"
    role: str = "decoder"
    density: str = "p"
    term: DensityTerm | None = None
    program: Program | None = None
    params: int = 0


class FlowNode(NodeData):
    kind: Literal["flow"] = "flow"
    var: str = ""
    latent: str = ""
    given: tuple[str, ...] = ()    # a conditional flow's context: data its couplings also see
    program: Program | None = None
    params: int = 0


class DiffusionNode(NodeData):
    kind: Literal["diffusion"] = "diffusion"
    var: str = ""
    process: Configured | None = None
    betas: Configured | None = None   # its noise schedule


class SamplerNode(NodeData):
    kind: Literal["sampler"] = "sampler"
    sampler: str = ""
    target: str = ""     # the energy network
    options: dict[str, Any] = {}
    type: TensorType | None = None
    given: str = ""      # the data a conditional sampler draws x given (`given=y`)


class LossNode(NodeData):
    kind: Literal["loss"] = "loss"
    expr: Expr | None = None


class StepNode(NodeData):
    kind: Literal["step"] = "step"
    loss: str = ""
    over: tuple[str, ...] = ()
    optimizer: Configured | None = None   # else the train block's
    repeat: int = 1


class SampleNode(NodeData):
    kind: Literal["sample"] = "sample"
    op: str = "="
    expr: Expr | None = None


class MetricNode(NodeData):
    kind: Literal["metric"] = "metric"
    metric: str = ""
    options: dict[str, Any] = {}


class TrainConfig(Train):
    """The settings of the train block, resolved to values: the runtime's `Train` (gendsl/spec.py),
    plus where the block is and the optimizer and schedule the generated model builds."""

    model_config = ConfigDict(frozen=True, defer_build=True, arbitrary_types_allowed=True)
    span: Span | None = None
    batch: int = 64
    optimizer: Configured = Configured(entry="Adam", options={"lr": 1e-3})
    schedule: Configured = Configured(entry="constant")


def program_of(node: NodeData | None) -> Program | None:
    """The typed body of a node that has one (a net, factor or flow), else None. Read from the
    fields: getattr(node, "program", None) on the other kinds raises and catches two exceptions
    in pydantic's __getattr__, and the passes ask it of every node."""
    return None if node is None else node.__dict__.get("program")


def decl_name(decl: Any) -> str:
    """The declared name of an AST statement (for statements that have one)."""
    name = getattr(decl, "name", None)
    return name.name if isinstance(name, ast.Ident) else ""
