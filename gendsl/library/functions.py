"""Functions usable in expressions: `concat(z, onehot(y))`, `bce(D(x), 1)`, `mean(E(x))`.

A rule takes the argument types (tensors as TensorType, literals as NumberType, networks as
NetType) and constant options, and returns a `Fn`: the result type and a code template whose
`{0}`, `{1}`, ... are the generated code of the tensor arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from gendsl.library.entries import Registry, require
from gendsl.library.layers import ACTIVATIONS
from gendsl.types import LOSS_VALUE, NetType, NumberType, TensorType, Type, broadcast_shapes

FUNCTIONS = Registry("function")
function = FUNCTIONS.register

Operand = TensorType | NumberType


@dataclass(frozen=True)
class Fn:
    out: Type
    code: str                        # format template over argument code: {0}, {1}, ...
    helpers: tuple[str, ...] = ()    # helper functions of gendsl/codegen/helpers.py it calls
    differentiable: bool = True      # False: gradients do not flow through the result


def tensor(x: Type, fn: str, what: str = "its argument") -> TensorType:
    require(isinstance(x, TensorType), f"{fn} needs a tensor as {what}, got {x.describe()}")
    return x


def per_sample_pair(a: Type, b: Type, fn: str) -> None:
    """Check that two arguments of a per-sample comparison have compatible shapes."""
    if isinstance(a, TensorType) and isinstance(b, TensorType):
        require(broadcast_shapes(a.shape, b.shape) is not None,
                f"{fn} compares {a.describe()} with {b.describe()}: the shapes differ",
                "both sides must have the same per-sample shape")


def _elementwise(functional: str):
    def rule(x: TensorType) -> Fn:
        tensor(x, "this function")
        return Fn(out=x.as_real(), code=functional.replace("{x}", "{0}"))
    return rule


for _name, (_module, _functional, _doc) in ACTIVATIONS.items():
    function(_name, _doc, skip=0)(_elementwise(_functional))


@function("leaky_relu", "max(x, slope * x)", skip=0)
def leaky_relu(x: TensorType, slope: float = 0.01) -> Fn:
    return Fn(out=x.as_real(), code=f"F.leaky_relu({{0}}, {slope})")


@function("softmax", "normalized exponentials over the last dimension", skip=0)
def softmax(x: TensorType) -> Fn:
    tensor(x, "softmax")
    return Fn(out=x.as_real(), code="torch.softmax({0}, dim=-1)")


@function("concat", "joins tensors along a per-sample dimension (the last by default)", skip=0)
def concat(*xs: TensorType, dim: int = -1) -> Fn:
    require(len(xs) >= 2, "concat needs at least two tensors")
    for x in xs:
        tensor(x, "concat", "each argument")
        require(x.kind != "cat", f"concat cannot join a category label ({x.describe()})",
                "turn labels into vectors first: onehot(y) or y |> Embedding(16)")
    rank = xs[0].rank
    require(all(x.rank == rank for x in xs),
            "concat needs tensors of the same rank, got " + ", ".join(x.describe() for x in xs))
    axis = dim if dim >= 0 else rank + dim
    require(0 <= axis < rank, f"concat dim {dim} is out of range for rank {rank}")
    others = {x.shape[:axis] + x.shape[axis + 1:] for x in xs}
    require(len(others) == 1, f"concat joins along dimension {dim}, so the other dimensions must be equal; got "
            + " and ".join(x.describe() for x in xs),
            "resize one input (e.g. a stride or an Upsample) or join along another dim")
    shape = list(xs[0].shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    torch_dim = dim if dim < 0 else dim + 1
    joined = ", ".join("{%d}" % i for i in range(len(xs)))
    return Fn(out=TensorType(shape=tuple(shape), batched=any(x.batched for x in xs)),
              code=f"torch.cat([{joined}], dim={torch_dim})")


@function("onehot", "a category label cat[K] as a one-hot vector real[K]", skip=0)
def onehot(y: TensorType) -> Fn:
    require(y.kind == "cat", f"onehot takes a category label cat[K], got {y.describe()}")
    return Fn(out=TensorType(shape=(y.classes,)), code=f"F.one_hot({{0}}, {y.classes}).float()")


@function("sinusoidal", "the sinusoidal embedding of a time step (Vaswani et al. 2017)", skip=0)
def sinusoidal(t: TensorType, dim: int) -> Fn:
    require(t.rank == 0 and t.kind != "cat", f"sinusoidal embeds one number per sample, got {t.describe()}")
    require(dim % 2 == 0 and dim > 0, f"sinusoidal needs an even positive dim, got {dim}")
    return Fn(out=TensorType(shape=(dim,)), code=f"sinusoidal({{0}}, {dim})", helpers=("sinusoidal",))


def _reduction(name: str, torch_name: str):
    def rule(x: Operand) -> Fn:
        tensor(x, name)
        return Fn(out=LOSS_VALUE, code=f"{{0}}.{torch_name}()")
    return rule


function("mean", "the mean over the batch and every dimension: one number", skip=0)(_reduction("mean", "mean"))
function("sum", "the sum over the batch and every dimension: one number", skip=0)(_reduction("sum", "sum"))


def _pair_loss(name: str, helper: str):
    def rule(a: Operand, b: Operand) -> Fn:
        tensor(a, name, "its first argument")
        per_sample_pair(a, b, name)
        return Fn(out=TensorType(), code=f"{helper}({{0}}, {{1}})", helpers=(helper,))
    return rule


function("bce", "binary cross-entropy of logits against targets (a number or a tensor), "
         "averaged per sample", skip=0)(_pair_loss("bce", "bce"))
function("mse", "squared error averaged per sample", skip=0)(_pair_loss("mse", "mse"))
function("l1", "absolute error averaged per sample", skip=0)(_pair_loss("l1", "l1"))


@function("clamp", "limits values to [min, max]", skip=0)
def clamp(x: TensorType, min: float, max: float) -> Fn:
    return Fn(out=x.as_real(), code=f"{{0}}.clamp({min}, {max})")


@function("detach", "the value without its gradient (an explicit stop-gradient)", skip=0)
def detach(x: TensorType) -> Fn:
    return Fn(out=x, code="{0}.detach()", differentiable=False)


@function("add_noise", "adds Gaussian noise of the given std (a denoising autoencoder's corruption)",
          skip=0)
def add_noise(x: TensorType, std: float = 0.3) -> Fn:
    require(std >= 0, f"add_noise needs std >= 0, got {std}")
    return Fn(out=x.as_real(), code=f"({{0}} + {std} * torch.randn_like({{0}}))")


@function("drop", "zeroes each value with probability p (masking noise), also at evaluation", skip=0)
def drop(x: TensorType, p: float = 0.3) -> Fn:
    require(0 <= p < 1, f"drop needs p in [0, 1), got {p}")
    return Fn(out=x.as_real(), code=f"({{0}} * (torch.rand_like({{0}}) >= {p}).float())")


@function("gradient_penalty", "WGAN-GP: mean (|grad D| - 1)^2 at points between real and fake",
          skip=0)
def gradient_penalty(critic: NetType, real: TensorType, fake: TensorType) -> Fn:
    require(isinstance(critic, NetType), "gradient_penalty's first argument is the critic network")
    per_sample_pair(real, fake, "gradient_penalty")
    return Fn(out=LOSS_VALUE, code="gradient_penalty({0}, {1}, {2})", helpers=("gradient_penalty",))


@function("r1_penalty", "R1 regularizer (Mescheder et al. 2018): mean |grad D(x)|^2 at real data",
          skip=0)
def r1_penalty(critic: NetType, real: TensorType) -> Fn:
    require(isinstance(critic, NetType), "r1_penalty's first argument is the discriminator network")
    return Fn(out=LOSS_VALUE, code="r1_penalty({0}, {1})", helpers=("r1_penalty",))


def _attention(name: str, helper: str, differentiable: bool):
    def rule(query: TensorType, keys: TensorType, values: TensorType) -> Fn:
        for what, t in (("query", query), ("keys", keys), ("values", values)):
            tensor(t, name, what)
        require(query.rank in (1, 2) and keys.rank == 2 and values.rank == 2,
                f"{name} takes query real[C] or real[Tq, C], keys real[T, C], values real[T, V]; got "
                f"{query.describe()}, {keys.describe()}, {values.describe()}")
        require(query.shape[-1] == keys.shape[-1], f"{name}: query width {query.shape[-1]} differs "
                f"from key width {keys.shape[-1]}", "project one side with Linear to match")
        require(keys.shape[0] == values.shape[0], f"{name}: {keys.shape[0]} keys but "
                f"{values.shape[0]} values")
        shape = query.shape[:-1] + (values.shape[-1],)
        return Fn(out=TensorType(shape=shape), code=f"{helper}({{0}}, {{1}}, {{2}})", helpers=(helper,),
                  differentiable=differentiable)
    return rule


function("attend", "soft attention: softmax(q k / sqrt(C)) v (Bahdanau / Vaswani)", skip=0)(
    _attention("attend", "soft_attention", True))
function("hard_attend", "hard attention: the value of the best-matching key (argmax, no gradient "
         "through the choice)", skip=0)(_attention("hard_attend", "hard_attention", True))
