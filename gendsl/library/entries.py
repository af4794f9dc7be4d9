"""The shape of a registry entry and the registries' common machinery (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from gendsl.library.signature import EntryError, describe_signature
from gendsl.types import TensorType


@dataclass(frozen=True)
class Built:
    """What a layer becomes for one concrete input: output type, size and PyTorch code."""

    out: TensorType
    params: int = 0
    code: str = ""                       # an nn.Module constructor expression
    helpers: tuple[str, ...] = ()        # classes of gendsl/codegen/helpers.py the code needs
    mixes: frozenset[str] = frozenset()  # "features" and/or "space": for autoregressive checks
    mask: str | None = None              # "A"/"B" (PixelCNN) or "made" (MADE)
    invertible: bool = False


@dataclass(frozen=True)
class Entry:
    """One registry entry: a name, a rule whose Python signature is the DSL signature, a doc line."""

    name: str
    rule: Callable[..., Any]
    doc: str
    skip: int = 1                         # leading rule arguments supplied by the compiler
    tags: frozenset[str] = field(default_factory=frozenset)
    shown: tuple[str, ...] = ()           # arguments a diagram shows: the first always, others when not default

    @property
    def signature(self) -> str:
        return describe_signature(self.name, self.rule, self.skip)


class Registry(dict):
    """name -> Entry, filled by the `register` decorator of each registry module."""

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def register(self, name: str, doc: str, *, skip: int = 1, tags: tuple[str, ...] = (),
                 shown: tuple[str, ...] = ()):
        def decorate(rule):
            if name in self:
                raise ValueError(f"{self.what} {name} registered twice")
            self[name] = Entry(name=name, rule=rule, doc=doc, skip=skip, tags=frozenset(tags), shown=shown)
            return rule
        return decorate


def require(condition: bool, message: str, hint: str = "") -> None:
    """Raise an EntryError unless `condition` holds."""
    if not condition:
        raise EntryError(message, hint)


def features(x: TensorType, layer: str) -> int:
    """The feature width of a tensor a layer acts on (its last dimension)."""
    require(x.kind != "cat", f"{layer} cannot take a category label ({x.describe()})",
            "turn labels into vectors first: `onehot(y)` or `y |> Embedding(16)`")
    require(x.rank >= 1, f"{layer} needs a tensor with a feature dimension, got {x.describe()}",
            "a per-sample scalar has no features; use it in arithmetic instead")
    return x.shape[-1]


def image(x: TensorType, layer: str) -> tuple[int, int, int]:
    """(channels, height, width) of an image-shaped input."""
    require(x.kind != "cat", f"{layer} cannot take a category label ({x.describe()})")
    require(x.rank == 3, f"{layer} expects an image real[C, H, W], got {x.describe()}",
            "reshape flat data first, e.g. `x |> reshape(1, 28, 28)`, or declare the data "
            "as `real[1, 28, 28]`")
    c, h, w = x.shape
    return c, h, w
