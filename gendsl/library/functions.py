"""Functions usable in expressions: `concat(z, onehot(y))`, `bce(D(x), 1)`, `mean(E(x))`.

A rule takes the argument types (tensors as TensorType, literals as NumberType, networks as
NetType) and constant options, and returns a `Fn`: the result type and a code template whose
`{0}`, `{1}`, ... are the generated code of the tensor arguments.

Every function means what it does to one sample (docs/semantics.md). At run time a batched
operand has leading batch dims and a shared one (a model `tensor`, a value computed from tensors
only) has none, so each rule emits the code that gives the per-sample meaning for the operands it
was given: per-sample axes counted from the end, singleton dims inserted after the batch dims of
a lower-rank operand, shared operands expanded to the batch where the implementation needs one.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from gendsl.library.entries import ELEMENTWISE, Order, Registry, require
from gendsl.library.layers import ACTIVATIONS
from gendsl.library.signature import Count
from gendsl.types import LOSS_VALUE, NetType, NumberType, TensorType, Type, broadcast_shapes

FUNCTIONS = Registry("function")
function = FUNCTIONS.register

Operand = TensorType | NumberType


@dataclass(frozen=True)
class Fn:
    """What a function call becomes: its type and the code that computes it."""

    out: Type
    code: str                        # format template over argument code: {0}, {1}, ...
    helpers: tuple[str, ...] = ()    # helper functions of gendsl/codegen/helpers/ it calls
    differentiable: bool = True      # False: gradients do not flow through the result
    order: Order = Order()           # what it does to an autoregressive order (default: anything)
    reduces_batch: bool = False      # one number for the whole batch: allowed in losses only
    no_gradient: tuple[int, ...] = ()  # operands no gradient flows back to (they are detached)
    draws: int = 0                   # k > 0: the operand is evaluated for k independent draws of the latents


# ---- operand code: per-sample meaning for batched and shared operands ----

def is_batched(x: Type) -> bool:
    return isinstance(x, TensorType) and x.batched


def align(code: str, have: int, want: int) -> str:
    """A batched value of per-sample rank `have` seen with rank `want`: singleton dims inserted
    right after the batch dims (`s[..., None]`: one number per sample against a vector)."""
    if want <= have:
        return code
    return code + "[" + ", ".join(["...", *["None"] * (want - have), *[":"] * have]) + "]"


def aligned(i: int, x: Type, rank: int) -> str:
    """Operand i's template, aligned to per-sample `rank` when it is batched."""
    return align("{%d}" % i, x.rank, rank) if is_batched(x) else "{%d}" % i


def expanded(i: int, x: TensorType, batch: int) -> str:
    """Shared operand i repeated over the batch of batched operand `batch` (a view, no copy)."""
    return "{%d}.expand(len({%d}), %s)" % (i, batch, ", ".join(["-1"] * x.rank)) if x.rank \
        else "{%d}.expand(len({%d}))" % (i, batch)


def batch_first_call(name: str, xs: tuple[Type, ...], tail: str = "", per_sample: bool = True) -> str:
    """`name({0}, {1}, ...)` for an implementation that takes every tensor operand with one leading
    batch dim: shared operands are expanded to the batch of the first batched one; when none is
    batched the call runs on a batch of one (and its per-sample result is taken back out)."""
    first = next((i for i, x in enumerate(xs) if is_batched(x)), None)
    if first is None:
        args = ["{%d}[None]" % i if isinstance(x, TensorType) else "{%d}" % i for i, x in enumerate(xs)]
        return f"{name}({', '.join(args)}{tail})" + ("[0]" if per_sample else "")
    args = [expanded(i, x, first) if isinstance(x, TensorType) and not x.batched else "{%d}" % i
            for i, x in enumerate(xs)]
    return f"{name}({', '.join(args)}{tail})"


def tensor(x: Type, fn: str, what: str = "its argument") -> TensorType:
    require(isinstance(x, TensorType), f"{fn} needs a tensor as {what}, got {x.describe()}")
    return x


def numeric(x: Type, fn: str, what: str = "its argument") -> TensorType:
    """A tensor of numbers: labels are categories, not values."""
    tensor(x, fn, what)
    require(x.kind != "cat", f"{fn} cannot take a category label ({x.describe()})",
            "turn labels into vectors first: onehot(y) or y |> Embedding(16)")
    return x


def per_sample_pair(a: Type, b: Type, fn: str) -> tuple[int, ...]:
    """The per-sample shape two compared arguments broadcast to."""
    if isinstance(b, TensorType):
        numeric(b, fn, "its second argument")
    else:
        require(isinstance(b, NumberType) and b.kind in ("int", "float"),
                f"{fn} compares with a tensor or a number, got {b.describe()}", f"e.g. {fn}(D(x), 1)")
    shape = broadcast_shapes(a.shape, b.shape if isinstance(b, TensorType) else ())
    require(shape is not None, f"{fn} compares {a.describe()} with {b.describe()}: the shapes differ",
            "both sides must have the same per-sample shape (or sizes of 1 that stretch)")
    return shape


def axes(dim: int | list[int], x: TensorType, fn: str) -> tuple[int, ...]:
    """Per-sample axes (negative ones count from the end), checked and sorted."""
    given = [dim] if isinstance(dim, int) else list(dim)
    require(bool(given), f"{fn}: dim lists no dimension", "give an axis, e.g. dim=0, or a list dim=[0, 1]")
    require(all(-x.rank <= d < x.rank for d in given), f"{fn}: dim {dim} is out of range for "
            f"{x.describe()}", f"per-sample axes of {x.describe()} are 0 to {x.rank - 1}" if x.rank
            else f"{x.describe()} has no axes to reduce")
    found = sorted({d % x.rank for d in given})
    require(len(found) == len(given), f"{fn}: dim {dim} names an axis twice")
    return tuple(found)


# ---- elementwise: the same function of each value ----

def _elementwise(functional: str):
    def rule(x: TensorType) -> Fn:
        numeric(x, "this function")
        return Fn(out=x.as_real(), code=functional.replace("{x}", "{0}"), order=ELEMENTWISE)
    return rule


for _name, (_module, _functional, _doc) in ACTIVATIONS.items():
    function(_name, _doc, skip=0)(_elementwise(_functional))


@function("leaky_relu", "max(x, slope * x)", skip=0)
def leaky_relu(x: TensorType, slope: float = 0.01) -> Fn:
    numeric(x, "leaky_relu")
    return Fn(out=x.as_real(), code=f"F.leaky_relu({{0}}, {slope})", order=ELEMENTWISE)


@function("softmax", "normalized exponentials over the last dimension", skip=0)
def softmax(x: TensorType) -> Fn:
    numeric(x, "softmax")
    require(x.rank >= 1, f"softmax normalizes over the last dimension, but {x.describe()} has none",
            "softmax of one number is 1; apply it to a vector, e.g. real[K]")
    return Fn(out=x.as_real(), code="torch.softmax({0}, dim=-1)", order=Order("mixes", (-1,)))


# ---- shapes ----

@function("concat", "joins tensors along a per-sample dimension (the last by default)", skip=0,
          aliases=("cat", "concatenate"))
def concat(*xs: TensorType, dim: int = -1) -> Fn:
    require(len(xs) >= 2, "concat needs at least two tensors")
    for x in xs:
        numeric(x, "concat", "each argument")
    rank = xs[0].rank
    require(all(x.rank == rank for x in xs),
            "concat needs tensors of the same rank, got " + ", ".join(x.describe() for x in xs))
    require(rank >= 1, "concat joins along a dimension, but " + ", ".join(x.describe() for x in xs)
            + " have none", "give each one number per sample a dimension first, e.g. concat(a, b) of real[1]s")
    axis = dim if dim >= 0 else rank + dim
    require(0 <= axis < rank, f"concat dim {dim} is out of range for rank {rank}")
    others = {x.shape[:axis] + x.shape[axis + 1:] for x in xs}
    require(len(others) == 1, f"concat joins along dimension {dim}, so the other dimensions must be equal; got "
            + " and ".join(x.describe() for x in xs),
            "resize one input (e.g. a stride or an Upsample) or join along another dim")
    shape = list(xs[0].shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    batched = any(x.batched for x in xs)
    # a dim counted from the end is the same for batched and shared values; a dim counted from the
    # start skips the batch dim when there is one
    torch_dim = dim if dim < 0 else axis + (1 if batched else 0)
    first = next((i for i, x in enumerate(xs) if x.batched), None)
    joined = ", ".join(expanded(i, x, first) if batched and not x.batched else "{%d}" % i
                       for i, x in enumerate(xs))
    return Fn(out=TensorType(shape=tuple(shape), batched=batched), code=f"torch.cat([{joined}], dim={torch_dim})",
              order=Order("concat"))


@function("reshape", "a new per-sample shape with the same number of values", skip=0)
def reshape(x: TensorType, *dims: int) -> Fn:
    numeric(x, "reshape")
    shape = tuple(d.value if isinstance(d, NumberType) else d for d in dims)
    require(all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape),
            "reshape needs positive integer dimensions, e.g. reshape(h, 2, 3)")
    require(prod(shape) == x.numel, f"cannot reshape {x.describe()} ({x.numel} values) to "
            f"[{', '.join(map(str, shape))}] ({prod(shape)} values)", "the number of values must stay the same")
    # the last dims of a value are one sample's, whatever the batch dims before them
    code = "{0}" if x.rank else "{0}[..., None]"
    if x.rank > 1:
        code += f".flatten({-x.rank})"
    if len(shape) == 0:
        code += "[..., 0]"
    elif len(shape) > 1:
        code += f".unflatten(-1, {shape})"
    return Fn(out=TensorType(kind=x.kind, shape=shape, batched=x.batched), code=code)


@function("onehot", "a category label cat[K] as a one-hot vector real[K]", skip=0, aliases=("one_hot",))
def onehot(y: TensorType) -> Fn:
    tensor(y, "onehot")
    require(y.kind == "cat", f"onehot takes a category label cat[K], got {y.describe()}")
    # cat[K, T]: T one-hot vectors, each at its label's position (an autoregressive order keeps)
    return Fn(out=TensorType(shape=(*y.shape, y.classes), batched=y.batched),
              code=f"F.one_hot({{0}}, {y.classes}).float()", order=Order("mixes", ()))


@function("sinusoidal", "the sinusoidal embedding of a time step (Vaswani et al. 2017)", skip=0)
def sinusoidal(t: TensorType, dim: int) -> Fn:
    tensor(t, "sinusoidal")
    require(t.rank == 0 and t.kind != "cat", f"sinusoidal embeds one number per sample, got {t.describe()}")
    require(dim % 2 == 0 and dim > 0, f"sinusoidal needs an even positive dim, got {dim}")
    return Fn(out=TensorType(shape=(dim,), batched=t.batched), code=batch_first_call("sinusoidal", (t,), f", {dim}"),
              helpers=("sinusoidal",))


# ---- reductions ----

def _reduction(name: str, torch_name: str):
    def rule(x: Operand, dim: int | list[int] | None = None) -> Fn:
        numeric(x, name)
        if dim is None:
            return Fn(out=LOSS_VALUE, code=f"{{0}}.{torch_name}()", reduces_batch=True)
        found = axes(dim, x, name)
        shape = tuple(size for axis, size in enumerate(x.shape) if axis not in found)
        dims = tuple(axis - x.rank for axis in found)  # from the end: batched and shared alike
        return Fn(out=TensorType(shape=shape, batched=x.batched),
                  code=f"{{0}}.{torch_name}({dims[0] if len(dims) == 1 else dims})")
    return rule


function("mean", "the mean over the batch and every dimension (one number, in losses); with dim: the "
         "mean over those per-sample dimensions", skip=0)(_reduction("mean", "mean"))
function("sum", "the sum over the batch and every dimension (one number, in losses); with dim: the "
         "sum over those per-sample dimensions", skip=0)(_reduction("sum", "sum"))


# ---- losses ----

def _pair_loss(name: str, helper: str):
    def rule(a: Operand, b: Operand) -> Fn:
        numeric(a, name, "its first argument")
        shape = per_sample_pair(a, b, name)
        return Fn(out=TensorType(batched=is_batched(a) or is_batched(b)), code=pair_code(helper, a, b, shape),
                  helpers=(helper,))
    return rule


def pair_code(helper: str, a: TensorType, b: Operand, shape: tuple[int, ...]) -> str:
    """`mse({0}, {1})` when the first operand already has the batch and the full per-sample shape
    (the helper stretches the second to it); else both are broadcast per sample first."""
    rank = len(shape)
    if not (is_batched(a) or is_batched(b)):  # one value for the whole batch: a batch of one
        second = "{1}[None]" if isinstance(b, TensorType) else "{1}"
        if a.shape == shape:
            return f"{helper}({{0}}[None], {second})[0]"
        return f"{helper}(*torch.broadcast_tensors({{0}}[None], {second}))[0]"
    first, second = aligned(0, a, rank), aligned(1, b, rank)
    if a.batched and a.shape == shape:
        return f"{helper}({first}, {second})"
    return f"{helper}(*torch.broadcast_tensors({first}, {second}))"


function("bce", "binary cross-entropy of logits against targets (a number or a tensor), "
         "averaged per sample", skip=0,
         aliases=("binary_cross_entropy", "bce_with_logits", "binary_crossentropy"))(_pair_loss("bce", "bce"))
function("mse", "squared error averaged per sample", skip=0,
         aliases=("mean_squared_error", "mse_loss"))(_pair_loss("mse", "mse"))
function("l1", "absolute error averaged per sample", skip=0, aliases=("l1_loss", "mae"))(_pair_loss("l1", "l1"))


@function("cross_entropy", "-log softmax(logits)[y] for a label y: cat[K], or -sum_k y_k log softmax(logits)_k "
          "for class probabilities y: real[K] (a classifier's loss; InfoGAN's -log Q(c | x))", skip=0,
          aliases=("ce", "nll_loss", "categorical_crossentropy", "sparse_categorical_crossentropy"))
def cross_entropy(logits: TensorType, y: TensorType) -> Fn:
    numeric(logits, "cross_entropy", "its logits")
    tensor(y, "cross_entropy", "its target")
    require(logits.rank == 1, f"cross_entropy takes a vector of K logits, got {logits.describe()}",
            "end the network with Linear(K)")
    if y.kind == "cat":
        require(not y.shape, f"cross_entropy takes one label per sample, got a sequence {y.describe()}",
                "score a sequence with `observe y ~ Categorical(logits = ...)` and -log p(y | ...)")
        require(logits.shape == (y.classes,), f"cross_entropy needs {y.classes} logits for {y.describe()}, got "
                f"{logits.describe()}", f"end the network with Linear({y.classes})")
    else:
        require(y.shape == logits.shape, f"cross_entropy compares {logits.describe()} logits with class "
                f"probabilities {y.describe()}: the shapes differ", "give one probability per class, or a label cat[K]")
    # torch's cross_entropy takes a batch: a shared side is expanded to the other's batch
    code = batch_first_call("F.cross_entropy", (logits, y), ', reduction="none"')
    return Fn(out=TensorType(batched=logits.batched or y.batched), code=code)


@function("each_label", "[F(x, 0), ..., F(x, K-1)]: a network F(x, y: cat[K]) of one number at every label, "
          "so that -each_label(F, x) are a classifier's logits (Grathwohl et al. 2020)", skip=0)
def each_label(net: NetType, x: TensorType) -> Fn:
    require(isinstance(net, NetType), "each_label's first argument is a network F(x, y: cat[K])")
    tensor(x, "each_label", "its second argument")
    label = net.inputs[1] if len(net.inputs) == 2 else None
    require(isinstance(label, TensorType) and label.kind == "cat",
            f"each_label needs a network of (x, y: cat[K]), got {net.describe()}",
            f"declare e.g. `energy {net.name}(x: {x.describe()}, y: cat[10]) -> real`")
    require(isinstance(net.inputs[0], TensorType) and net.inputs[0].shape == x.shape,
            f"{net.name} takes {net.inputs[0].describe()} first, got {x.describe()}")
    require(isinstance(net.output, TensorType) and net.output.shape == (),
            f"each_label needs a network of one number per sample, but {net.name} gives {net.output.describe()}",
            "end it with Linear(1) and declare it `-> real`")
    code = batch_first_call("each_label", (net, x), f", {label.classes}")
    return Fn(out=TensorType(shape=(label.classes,), batched=x.batched), code=code, helpers=("each_label",))


# ---- elementwise, with options ----

@function("clamp", "limits values to [min, max]", skip=0)
def clamp(x: TensorType, min: float, max: float) -> Fn:
    numeric(x, "clamp")
    require(min <= max, f"clamp needs min <= max, got [{min}, {max}]")
    return Fn(out=x.as_real(), code=f"{{0}}.clamp({min}, {max})", order=ELEMENTWISE)


@function("detach", "the value without its gradient (an explicit stop-gradient)", skip=0)
def detach(x: TensorType) -> Fn:
    tensor(x, "detach")
    return Fn(out=x, code="{0}.detach()", differentiable=False, order=ELEMENTWISE)


@function("add_noise", "adds Gaussian noise of the given std (a denoising autoencoder's corruption)",
          skip=0)
def add_noise(x: TensorType, std: float = 0.3) -> Fn:
    numeric(x, "add_noise")
    require(std >= 0, f"add_noise needs std >= 0, got {std}")
    return Fn(out=x.as_real(), code=f"({{0}} + {std} * torch.randn_like({{0}}))", order=ELEMENTWISE)


@function("drop", "zeroes each value with probability p (masking noise), also at evaluation", skip=0)
def drop(x: TensorType, p: float = 0.3) -> Fn:
    numeric(x, "drop")
    require(0 <= p < 1, f"drop needs p in [0, 1), got {p}")
    return Fn(out=x.as_real(), code=f"({{0}} * (torch.rand_like({{0}}) >= {p}).float())", order=ELEMENTWISE)


# ---- penalties: means over the batch, in losses ----

@function("gradient_penalty", "WGAN-GP: mean (|grad D| - 1)^2 at points between real and fake",
          skip=0)
def gradient_penalty(critic: NetType, real: TensorType, fake: TensorType) -> Fn:
    require(isinstance(critic, NetType), "gradient_penalty's first argument is the critic network")
    numeric(real, "gradient_penalty", "real")
    per_sample_pair(real, fake, "gradient_penalty")
    return Fn(out=LOSS_VALUE, code=batch_first_call("gradient_penalty", (critic, real, fake), per_sample=False),
              helpers=("gradient_penalty",), reduces_batch=True)


@function("r1_penalty", "R1 regularizer (Mescheder et al. 2018): mean |grad D(x)|^2 at real data",
          skip=0)
def r1_penalty(critic: NetType, real: TensorType) -> Fn:
    require(isinstance(critic, NetType), "r1_penalty's first argument is the discriminator network")
    numeric(real, "r1_penalty", "real")
    return Fn(out=LOSS_VALUE, code=batch_first_call("r1_penalty", (critic, real), per_sample=False),
              helpers=("r1_penalty",), reduces_batch=True)


# ---- attention ----

def _attention(name: str, helper: str, soft: bool):
    def rule(query: TensorType, keys: TensorType, values: TensorType) -> Fn:
        for what, t in (("query", query), ("keys", keys), ("values", values)):
            numeric(t, name, what)
        require(query.rank in (1, 2) and keys.rank == 2 and values.rank == 2,
                f"{name} takes query real[C] or real[Tq, C], keys real[T, C], values real[T, V]; got "
                f"{query.describe()}, {keys.describe()}, {values.describe()}")
        require(query.shape[-1] == keys.shape[-1], f"{name}: query width {query.shape[-1]} differs "
                f"from key width {keys.shape[-1]}", "project one side with Linear to match")
        require(keys.shape[0] == values.shape[0], f"{name}: {keys.shape[0]} keys but "
                f"{values.shape[0]} values")
        shape = query.shape[:-1] + (values.shape[-1],)
        operands = (query, keys, values)
        return Fn(out=TensorType(shape=shape, batched=any(x.batched for x in operands)),
                  code=batch_first_call(helper, operands), helpers=(helper,),
                  no_gradient=() if soft else (0, 1))
    return rule


function("attend", "soft attention: softmax(q k / sqrt(C)) v (Bahdanau / Vaswani)", skip=0)(
    _attention("attend", "soft_attention", soft=True))
# the choice is an argmax: no gradient reaches the query or the keys, only the chosen values
function("hard_attend", "hard attention: the value of the best-matching key (argmax, no gradient "
         "through the choice)", skip=0)(_attention("hard_attend", "hard_attention", soft=False))


# ---- importance sampling: k draws of the latents (Burda et al. 2016) ----

def _over_draws(name: str, mean: bool):
    """`logmeanexp(w, k)`: `w` is evaluated for k independent draws of the latents it uses (the
    code generator lays them out k-major on a batch of k * n, gendsl/codegen/draws.py); the
    result is log (1/k) sum_j exp(w_j) per sample (log sum_j exp(w_j) for logsumexp)."""
    def rule(x: TensorType, k: Count) -> Fn:
        numeric(x, name)
        require(x.rank == 0, f"{name} averages one number per sample over draws, got {x.describe()}",
                f"reduce it first, e.g. {name}(sum(h, dim=0), k={k})")
        require(x.batched, f"{name} takes a per-sample value (its latents are drawn k times), "
                f"got {x.describe()}", "a shared value is the same for every draw")
        code = f"torch.logsumexp({{0}}.view({k}, -1), dim=0)"
        code = f"({code} - math.log({k}))" if mean and k > 1 else code
        return Fn(out=x.as_real(), code=code, draws=k)
    return rule


function("logmeanexp", "log of the mean of exp(value) over k independent draws of its latents: "
         "-logmeanexp(log p(x | z) + log p(z) - log q(z | x), k=5) is the IWAE loss", skip=0,
         aliases=("iwae", "log_mean_exp", "importance_weighted"))(_over_draws("logmeanexp", mean=True))
function("logsumexp", "log of the sum of exp(value) over k independent draws of its latents "
         "(logmeanexp plus log k)", skip=0, aliases=("log_sum_exp",))(_over_draws("logsumexp", mean=False))
