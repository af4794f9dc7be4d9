"""Distributions, all emitted as torch.distributions objects.

A rule takes the parameter types and returns the distribution's type; `code` is the
constructor, `support` the kind of value it draws, `reparameterized` whether samples carry
gradients (rsample).
"""

from __future__ import annotations

from dataclasses import dataclass

from gendsl.library.entries import Registry, require
from gendsl.types import NumberType, TensorType, Type, broadcast_shapes

DISTRIBUTIONS = Registry("distribution")
distribution = DISTRIBUTIONS.register

Operand = TensorType | NumberType


@dataclass(frozen=True)
class Family:
    event: TensorType          # the type of one draw (shape () for scalar constants: broadcast later)
    code: str                  # constructor over the keyword parameters: "D.Normal({loc}, {scale})"
    reparameterized: bool


def _shape(x: Type) -> tuple[int, ...]:
    return x.shape if isinstance(x, TensorType) else ()


def _batched(*xs: Type) -> bool:
    return any(isinstance(x, TensorType) and x.batched for x in xs)


def location_scale(name: str, first: Operand, a: str, second: Operand, b: str) -> Family:
    """Location-scale families: the event shape is the broadcast of the two parameters."""
    shape = broadcast_shapes(_shape(first), _shape(second))
    require(shape is not None, f"{name}: {a} {first.describe()} and {b} {second.describe()} "
            "do not broadcast")
    for value, what in ((first, a), (second, b)):
        require(not (isinstance(value, TensorType) and value.kind == "cat"),
                f"{name}'s {what} cannot be a category label")
    return Family(event=TensorType(shape=shape, batched=_batched(first, second)),
                  code=f"D.{name}({{{a}}}, {{{b}}})", reparameterized=True)


@distribution("Normal", "Gaussian with mean loc and standard deviation scale", skip=0)
def normal(loc: Operand, scale: Operand) -> Family:
    return location_scale("Normal", loc, "loc", scale, "scale")


@distribution("Laplace", "Laplace with location loc and scale", skip=0)
def laplace(loc: Operand, scale: Operand) -> Family:
    return location_scale("Laplace", loc, "loc", scale, "scale")


@distribution("Uniform", "uniform on [low, high)", skip=0)
def uniform(low: Operand, high: Operand) -> Family:
    return location_scale("Uniform", low, "low", high, "high")


def _one_of(name: str, logits: Type | None, probs: Type | None) -> tuple[str, Type]:
    require((logits is None) != (probs is None), f"{name} takes exactly one of logits= or probs=",
            f"write {name}(logits = ...)")
    return ("logits", logits) if logits is not None else ("probs", probs)


@distribution("Bernoulli", "binary values with probability sigmoid(logits) (or probs)", skip=0)
def bernoulli(logits: Operand | None = None, probs: Operand | None = None) -> Family:
    key, value = _one_of("Bernoulli", logits, probs)
    return Family(event=TensorType(kind="bin", shape=_shape(value), batched=_batched(value)),
                  code=f"D.Bernoulli({key}={{{key}}})", reparameterized=False)


@distribution("Categorical", "one of K categories with probabilities softmax(logits) (or probs)", skip=0)
def categorical(logits: Operand | None = None, probs: Operand | None = None) -> Family:
    key, value = _one_of("Categorical", logits, probs)
    shape = _shape(value)
    require(len(shape) >= 1, f"Categorical's {key} need a last dimension of K categories, "
            f"got {value.describe()}")
    return Family(event=TensorType(kind="cat", shape=shape[:-1], classes=shape[-1],
                                   batched=_batched(value)),
                  code=f"D.Categorical({key}={{{key}}})", reparameterized=False)
