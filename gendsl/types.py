"""Types shared by the graph, the library and code generation.

A tensor type describes one sample: `real[1, 28, 28]` is the type of each image of a batch.
`batched=False` marks values shared by the whole batch (model tensors, values computed from them
only, reduced losses): at run time a batched value has the batch as its leading dimension and a
shared one has none (docs/semantics.md).
All dims are integers: params are resolved (after `--set`) before any type is built.
"""

from __future__ import annotations

from math import prod
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

TensorKind = Literal["real", "bin", "int", "cat", "step"]


class Type(BaseModel):
    """Base of all types; `describe` is how diagnostics and diagrams write it."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    def describe(self) -> str:
        raise NotImplementedError


class UnknownType(Type):
    """The type of something already reported as an error: silences follow-up errors."""

    def describe(self) -> str:
        return "?"


UNKNOWN = UnknownType()


class TensorType(Type):
    kind: TensorKind = "real"          # step: a diffusion time, one integer per sample
    shape: tuple[int, ...] = ()
    classes: int = 0
    batched: bool = True

    def describe(self) -> str:
        if self.kind == "cat":
            text = f"cat[{', '.join(map(str, (self.classes, *self.shape)))}]"
        elif self.kind == "step":
            text = "step"
        else:
            text = f"{self.kind}[{', '.join(map(str, self.shape))}]" if self.shape else self.kind
        return text if self.batched else f"{text} (shared)"

    @property
    def numel(self) -> int:
        return prod(self.shape)

    @property
    def rank(self) -> int:
        return len(self.shape)

    def with_shape(self, shape: tuple[int, ...]) -> "TensorType":
        return self.model_copy(update={"shape": tuple(shape)})

    def as_batched(self, batched: bool) -> "TensorType":
        """The same per-sample type, batched or shared."""
        return self if self.batched == batched else self.model_copy(update={"batched": batched})

    def as_real(self) -> "TensorType":
        """The same shape as a real tensor (bin/int data used in arithmetic or layers)."""
        return TensorType(kind="real", shape=self.shape, batched=self.batched)


def real(*shape: int, batched: bool = True) -> TensorType:
    return TensorType(kind="real", shape=tuple(shape), batched=batched)


SCALAR = real()                      # one number per sample
LOSS_VALUE = real(batched=False)     # one number per batch


class NumberType(Type):
    """A compile-time constant: params, literals and arithmetic on them."""

    kind: Literal["int", "float", "bool", "str"]
    value: Any = None

    def describe(self) -> str:
        return self.kind


class ListType(Type):
    items: tuple[Type, ...] = ()

    def describe(self) -> str:
        return "[" + ", ".join(i.describe() for i in self.items) + "]"


class DistType(Type):
    """A distribution over one sample of `event`."""

    family: str
    event: TensorType
    reparameterized: bool = True

    def describe(self) -> str:
        return f"{self.family} over {self.event.describe()}"


class NetType(Type):
    name: str
    role: str
    inputs: tuple[Type, ...]
    output: Type
    pack: int = 1            # `pack N`: one output per group of N samples (graph/passes/packing.py)

    def describe(self) -> str:
        ins = ", ".join(i.describe() for i in self.inputs)
        packed = f", pack {self.pack}" if self.pack > 1 else ""
        return f"{self.role} ({ins}) -> {self.output.describe()}{packed}"


class ObjectType(Type):
    """Model objects used through their methods: flows, diffusions, samplers, densities."""

    kind: Literal["flow", "diffusion", "sampler", "density", "layer", "function", "optimizer"]
    name: str
    value: TensorType | None = None
    steps: int | None = None     # a diffusion's number of steps T (DDIM's `steps` may not exceed it)
    learned: bool = False        # a diffusion whose denoiser also outputs the reverse variances
    given: tuple[TensorType, ...] = ()   # what a conditional flow is given

    def describe(self) -> str:
        return f"{self.kind} {self.name}"


def context_width(t: TensorType) -> int:
    """The features a conditioning value gives a network: one-hot for a category, else its numbers."""
    return t.classes * t.numel if t.kind == "cat" else t.numel


def broadcast_shapes(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """Numpy-style broadcast of two per-sample shapes, or None when they do not broadcast."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x != y and 1 not in (x, y):
            return None
        out.append(max(x, y) if 1 in (x, y) else x)
    return tuple(reversed(out))


def compatible(found: Type, expected: Type) -> bool:
    """Can a value of type `found` be passed where `expected` is declared (batched or shared alike)?"""
    if not isinstance(found, TensorType) or not isinstance(expected, TensorType):
        return isinstance(found, NumberType) and isinstance(expected, TensorType) and expected.shape == () \
            and expected.kind != "cat"
    if expected.kind == "cat" or found.kind == "cat":
        return found.kind == expected.kind and found.classes == expected.classes and found.shape == expected.shape
    if "step" in (expected.kind, found.kind):
        return found.kind == expected.kind
    if found.shape != expected.shape:
        return expected.shape == () and found.shape == (1,) or found.shape == () and expected.shape == (1,)
    return expected.kind == "real" or found.kind == expected.kind
