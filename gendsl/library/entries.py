"""The shape of a registry entry and the registries' common machinery (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict

from gendsl.library.signature import EntryError, describe_signature
from gendsl.types import TensorType


@dataclass(frozen=True)
class Order:
    """What a layer (or function) does to the order of an autoregressive block's data, read by the
    order analysis (graph/passes/order.py). Axes are the input's per-sample axes, negative ones
    counted from the end; positions are features of a vector, rows of a sequence [T, C] and pixels
    of an image [C, H, W] in raster order.

    - elementwise: output value i depends on input value i only (activations, dropout);
    - mixes: values along `axes` are mixed, the other axes map one to one (Linear and LayerNorm mix
      the last axis, a 1x1 Conv2d the channels of a pixel);
    - reshape: the same values in another shape (flatten, reshape);
    - made: MADE's masked map of a vector (MaskedLinear): its mask follows its input's degrees;
    - causal: mixes the positions along `axes` and the values of each position so that position t
      sees positions before t, and t itself unless `strict` (MaskedConv2d, causal SelfAttention);
    - concat: its operands side by side (concat): per position when joined along the channels;
    - stacks: Gated PixelCNN's vertical and horizontal stacks (GatedMaskedConv2d), which hold more
      than a raster order says (the vertical stack sees only rows above): `strict` starts them from
      any ordered image (mask A), otherwise the input must be the stacks of the layer before; the
      output is the stacks, or with `ends` the horizontal stack alone, strict either way;
    - any: any output value may depend on any input value (the default: refused on ordered data).

    `rows`, for a causal or stacks layer of images: how many rows above its own an output pixel
    reads at most (None: no bound, as for attention). An image sampler computes only the rows the
    pixel it draws reads (codegen/sampling.py).
    """

    kind: Literal["elementwise", "mixes", "reshape", "made", "causal", "concat", "stacks", "any"] = "any"
    axes: tuple[int, ...] = ()
    strict: bool = False
    ends: bool = False
    rows: int | None = None


ELEMENTWISE = Order("elementwise")


@dataclass(frozen=True)
class Built:
    """What a layer becomes for one concrete input: output type, size and PyTorch code."""

    out: TensorType
    params: int = 0
    code: str = ""                       # an nn.Module constructor expression
    helpers: tuple[str, ...] = ()        # classes of gendsl/codegen/helpers/ the code needs
    order: Order = Order()               # what it does to an autoregressive order
    batch_statistics: bool = False       # normalizes over the batch (BatchNorm): not for shared values
    invertible: bool = False
    context_units: int = 0               # units of a coupling's conditioner that also read a conditional
                                         # flow's context: each context feature adds this many weights


@dataclass(frozen=True)
class Entry:
    """One registry entry: a name, a rule whose Python signature is the DSL signature, a doc line."""

    name: str
    rule: Callable[..., Any]
    doc: str
    skip: int = 1                         # leading rule arguments supplied by the compiler
    tags: frozenset[str] = field(default_factory=frozenset)
    shown: tuple[str, ...] = ()           # arguments a diagram shows: the first always, others when not default
    aliases: tuple[str, ...] = ()         # what other libraries call it: hints for an unknown name
    runtime: str = ""                     # "module:name" of a run-time implementation, imported when used
    density: str = ""                     # data sources with a known density: "module:name" of their modes

    @property
    def signature(self) -> str:
        return describe_signature(self.name, self.rule, self.skip)


class Registry(dict):
    """name -> Entry, filled by the `register` decorator of each registry module."""

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def register(self, name: str, doc: str, *, skip: int = 1, tags: tuple[str, ...] = (),
                 shown: tuple[str, ...] = (), aliases: tuple[str, ...] = (), runtime: str = "", density: str = ""):
        def decorate(rule):
            if name in self:
                raise ValueError(f"{self.what} {name} registered twice")
            self[name] = Entry(name=name, rule=rule, doc=doc, skip=skip, tags=frozenset(tags), shown=shown,
                               aliases=aliases, runtime=runtime, density=density)
            return rule
        return decorate


class Configured(BaseModel):
    """A registry entry as a spec chose it, with its checked option values (defaults filled in):
    `Adam(lr=0.001)` is Configured(entry="Adam", options={"lr": 0.001, "betas": ..., ...})."""

    model_config = ConfigDict(frozen=True)
    entry: str
    options: dict[str, Any] = {}

    def describe(self, registry: "Registry") -> str:
        """`Adam(lr=0.0002)`: the options that differ from the entry's defaults."""
        from gendsl.library.signature import format_value, parameters

        known = registry.get(self.entry)
        defaults = {p.name: p.default for p in parameters(known.rule, known.skip)} if known else {}
        args = ", ".join(f"{k}={format_value(v)}" for k, v in self.options.items() if defaults.get(k) != v)
        return f"{self.entry}({args})"


@dataclass(frozen=True)
class Code:
    """What an entry emits into generated code: a Python expression whose `{placeholders}` the
    code generator fills (`{params}` of an optimizer, `{shape}` of an initializer, ...), and the
    helpers of gendsl/codegen/helpers/ it calls."""

    template: str
    helpers: tuple[str, ...] = ()

    def fill(self, **values: str) -> str:
        return self.template.format(**values)


def call_keywords(values: dict[str, Any]) -> str:
    """`lr=0.001, betas=(0.9, 0.999)`: bound option values as Python keyword arguments."""
    return ", ".join(f"{name}={value!r}" for name, value in values.items())


def emitted(registry: "Registry", chosen: Configured, **extra: Any) -> Any:
    """Run an entry's rule again on its checked options (and `extra` arguments the compiler
    supplies), for the code generator; the checker has already reported any problem with them."""
    from gendsl.library.signature import bind, call_rule

    entry = registry[chosen.entry]
    bound, problems = bind(chosen.entry, entry.rule, [], {**chosen.options, **extra}, skip=entry.skip)
    if problems:
        raise ValueError(f"{registry.what} {chosen.entry}: {problems[0][0]}")  # a checked value cannot get here
    return call_rule(entry.rule, [], bound, skip=entry.skip)


def resolve_runtime(path: str) -> Any:
    """The object a `runtime` or `density` path names; imports its module (which may use torch)."""
    import importlib

    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def require(condition: bool, message: str, hint: str = "") -> None:
    """Raise an EntryError unless `condition` holds."""
    if not condition:
        raise EntryError(message, hint)


def not_a_label(x: TensorType, layer: str) -> TensorType:
    """Refuse a category label: layers compute on numbers (labels become vectors first)."""
    require(x.kind != "cat", f"{layer} cannot take a category label ({x.describe()})",
            "turn labels into vectors first: `onehot(y)` or `y |> Embedding(16)`")
    return x


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
