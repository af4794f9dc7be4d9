"""Layers: the stages of a pipeline (`x |> Linear(256) |> relu`).

Each entry's rule takes the input type and the stage's arguments and returns a `Built`: the
output type, the parameter count and the nn.Module constructor the code generator emits.
Adding a layer is adding one function here.
"""

from __future__ import annotations

import importlib

from math import prod
from typing import Literal

from gendsl.library.entries import ELEMENTWISE, Built, Order, Registry, features, image, not_a_label, require
from gendsl.library.signature import Count, Size
from gendsl.types import TensorType

LAYERS = Registry("layer")
layer = LAYERS.register

# Elementwise activations: name -> (module code, functional code, doc). Each is both a stage
# (`|> relu`) and a function (`relu(x)`, see functions.py); one row here defines both.
ACTIVATIONS: dict[str, tuple[str, str, str]] = {
    "relu": ("nn.ReLU()", "torch.relu({x})", "max(x, 0)"),
    "tanh": ("nn.Tanh()", "torch.tanh({x})", "hyperbolic tangent"),
    "sigmoid": ("nn.Sigmoid()", "torch.sigmoid({x})", "logistic function"),
    "softplus": ("nn.Softplus()", "F.softplus({x})", "log(1 + exp(x)), a smooth positive map"),
    "silu": ("nn.SiLU()", "F.silu({x})", "x * sigmoid(x)"),
    "swish": ("nn.SiLU()", "F.silu({x})", "x * sigmoid(x) (same as silu)"),
    "gelu": ("nn.GELU()", "F.gelu({x})", "Gaussian error linear unit"),
    "elu": ("nn.ELU()", "F.elu({x})", "exponential linear unit"),
    "exp": ("Exp()", "torch.exp({x})", "exponential"),
    "abs": ("Abs()", "torch.abs({x})", "absolute value"),
    "sqrt": ("Sqrt()", "torch.sqrt({x})", "square root"),
    "sin": ("Sin()", "torch.sin({x})", "sine"),
    "cos": ("Cos()", "torch.cos({x})", "cosine"),
    "identity": ("nn.Identity()", "{x}", "the input unchanged"),
}


def torch_name(module_code: str) -> tuple[str, ...]:
    """`ReLU` for `nn.ReLU()`: the name a PyTorch user may write for an activation."""
    return (module_code[3:-2],) if module_code.startswith("nn.") else ()


def _activation(name: str, module_code: str):
    helper = () if module_code.startswith("nn.") else (module_code[:-2],)

    def rule(x: TensorType) -> Built:
        not_a_label(x, name)
        return Built(out=x.as_real(), code=module_code, helpers=helper, order=ELEMENTWISE)
    return rule


for _name, (_module, _functional, _doc) in ACTIVATIONS.items():
    layer(_name, _doc, tags=("activation",), aliases=torch_name(_module))(_activation(_name, _module))


@layer("leaky_relu", "max(x, slope * x)", tags=("activation",), shown=("slope",), aliases=("LeakyReLU",))
def leaky_relu(x: TensorType, slope: float = 0.01) -> Built:
    not_a_label(x, "leaky_relu")
    return Built(out=x.as_real(), code=f"nn.LeakyReLU({slope})", order=ELEMENTWISE)


@layer("softmax", "normalized exponentials over the last dimension", tags=("activation",))
def softmax(x: TensorType) -> Built:
    features(x, "softmax")
    return Built(out=x.as_real(), code="nn.Softmax(dim=-1)", order=Order("mixes", (-1,)))


@layer("Linear", "affine map over the last dimension: y = x W + b", shown=("out",), aliases=("Dense", "linear"))
def linear(x: TensorType, out: Count, bias: bool = True) -> Built:
    n = features(x, "Linear")
    require(out > 0, f"Linear needs a positive width, got {out}")
    return Built(out=TensorType(shape=x.shape[:-1] + (out,)), params=n * out + (out if bias else 0),
                 code=f"nn.Linear({n}, {out}, bias={bias})", order=Order("mixes", (-1,)))


@layer("MaskedLinear", "MADE's masked affine map: output i sees only inputs earlier in the order; masks=K: "
       "the block is the mixture of K mask sets, each in its own random order with order=random",
       shown=("out", "masks", "order"))
def masked_linear(x: TensorType, out: Count, masks: Count = 1,
                  order: Literal["natural", "random"] = "natural") -> Built:
    n = features(x, "MaskedLinear")
    require(x.rank == 1, f"MaskedLinear expects a vector, got {x.describe()}",
            "flatten images first, or use MaskedConv2d")
    code = f"MaskedLinear({n}, {out})" if masks == 1 else f"MaskedLinear({n}, {out}, masks={masks})"
    return Built(out=TensorType(shape=(out,)), params=n * out + out,
                 code=code, helpers=("MaskedLinear",), order=Order("made"))


def _conv_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


@layer("Conv2d", "2-D convolution; padding defaults to kernel // 2 (same size at stride 1)", aliases=("conv2d", "Conv"),
       shown=("out", "kernel", "stride"))
def conv2d(x: TensorType, out: Count, kernel: Count = 3, stride: Count = 1, padding: Size | None = None,
           bias: bool = True) -> Built:
    c, h, w = image(x, "Conv2d")
    pad = kernel // 2 if padding is None else padding
    oh, ow = _conv_size(h, kernel, stride, pad), _conv_size(w, kernel, stride, pad)
    require(oh > 0 and ow > 0, f"Conv2d(kernel={kernel}, stride={stride}) shrinks {h}x{w} to nothing",
            "use a smaller kernel or stride, or more padding")
    per_pixel = kernel == 1 and stride == 1 and pad == 0  # mixes the channels of each pixel only
    return Built(out=TensorType(shape=(out, oh, ow)), params=c * out * kernel * kernel + (out if bias else 0),
                 code=f"nn.Conv2d({c}, {out}, {kernel}, stride={stride}, padding={pad}, bias={bias})",
                 order=Order("mixes", (0,)) if per_pixel else Order("any"))


@layer("ConvTranspose2d", "transposed 2-D convolution (upsampling); defaults double the size",
       shown=("out", "kernel", "stride"))
def conv_transpose2d(x: TensorType, out: Count, kernel: Count = 4, stride: Count = 2, padding: Size = 1,
                     output_padding: Size = 0) -> Built:
    c, h, w = image(x, "ConvTranspose2d")
    require(output_padding < stride, f"ConvTranspose2d needs output_padding < stride, got output_padding="
            f"{output_padding} with stride={stride}", "output_padding adds the rows a stride > 1 leaves out")
    oh = (h - 1) * stride - 2 * padding + kernel + output_padding
    ow = (w - 1) * stride - 2 * padding + kernel + output_padding
    require(oh > 0 and ow > 0, f"ConvTranspose2d gives an empty output from {h}x{w}")
    return Built(out=TensorType(shape=(out, oh, ow)), params=c * out * kernel * kernel + out,
                 code=(f"nn.ConvTranspose2d({c}, {out}, {kernel}, stride={stride}, padding={padding}, "
                       f"output_padding={output_padding})"))


@layer("MaskedConv2d", "PixelCNN's masked convolution: mask A excludes the centre pixel, B keeps it",
       shown=("out", "kernel", "mask"))
def masked_conv2d(x: TensorType, out: Count, kernel: Count = 3, mask: Literal["A", "B"] = "B") -> Built:
    c, h, w = image(x, "MaskedConv2d")
    require(kernel % 2 == 1, f"MaskedConv2d needs an odd kernel, got {kernel}")
    return Built(out=TensorType(shape=(out, h, w)), params=c * out * kernel * kernel + out,
                 code=f'MaskedConv2d({c}, {out}, {kernel}, mask="{mask}")',
                 helpers=("MaskedConv2d",), order=Order("causal", (1, 2), strict=mask == "A", rows=kernel // 2))


@layer("GatedMaskedConv2d", "Gated PixelCNN layer (van den Oord et al. 2016): vertical and horizontal stacks "
       "side by side ([2*out, H, W]), gated tanh * sigmoid, a residual on the horizontal one; mask A starts them "
       "from any image, mask B continues the stacks of the layer before; last=true gives the horizontal stack "
       "alone ([out, H, W])", shown=("out", "kernel", "mask", "last"))
def gated_masked_conv2d(x: TensorType, out: Count, kernel: Count = 3, mask: Literal["A", "B"] = "B",
                        last: bool = False) -> Built:
    c, h, w = image(x, "GatedMaskedConv2d")
    require(kernel % 2 == 1, f"GatedMaskedConv2d needs an odd kernel, got {kernel}")
    require(mask == "A" or c == 2 * out,
            f"GatedMaskedConv2d(mask=B) continues two stacks of {out} channels each, so it needs "
            f"{2 * out} input channels, got {c}",
            f"give it the width of the GatedMaskedConv2d before it, or start the stacks with "
            f"GatedMaskedConv2d({out}, mask=A)")
    reads = c if mask == "A" else out  # mask A reads the whole image into each stack, B its own half
    half = kernel // 2
    params = (reads * 2 * out * (half + 1) * kernel + 2 * out       # vertical: rows above (and its own, B)
              + reads * 2 * out * (half + 1) + 2 * out              # horizontal: pixels to the left (and its own, B)
              + 2 * out * 2 * out + 2 * out                         # link: vertical into horizontal
              + out * out + out)                                    # horizontal 1x1 before the residual
    last_arg = ", last=True" if last else ""
    # the two stacks keep an invariant (the vertical one sees only rows above) that a raster order
    # of the pixels cannot say: Order "stacks" (graph/passes/order.py) follows it. Mask A's vertical
    # stack reads the `half` rows above the row above.
    order = Order("stacks", (1, 2), strict=mask == "A", ends=last, rows=half + (mask == "A"))
    return Built(out=TensorType(shape=(out if last else 2 * out, h, w)), params=params,
                 code=f'GatedMaskedConv2d({c}, {out}, {kernel}, mask="{mask}"{last_arg})',
                 helpers=("GatedMaskedConv2d",), order=order)


def _pool(kind: str):
    def rule(x: TensorType, kernel: Count = 2) -> Built:
        c, h, w = image(x, kind)
        require(h >= kernel and w >= kernel, f"{kind}({kernel}) is larger than the {h}x{w} input")
        return Built(out=TensorType(shape=(c, h // kernel, w // kernel)), code=f"nn.{kind}({kernel})")
    return rule


layer("MaxPool2d", "max over kernel x kernel windows (halves the size by default)",
      shown=("kernel",))(_pool("MaxPool2d"))
layer("AvgPool2d", "mean over kernel x kernel windows (halves the size by default)",
      shown=("kernel",))(_pool("AvgPool2d"))


@layer("Upsample", "nearest-neighbour upsampling by an integer factor", shown=("scale",))
def upsample(x: TensorType, scale: Count = 2) -> Built:
    c, h, w = image(x, "Upsample")
    return Built(out=TensorType(shape=(c, h * scale, w * scale)), code=f"nn.Upsample(scale_factor={scale})")


@layer("BatchNorm", "batch normalization over the channel (images) or feature (vectors) axis",
       aliases=("BatchNorm1d", "BatchNorm2d"))
def batch_norm(x: TensorType) -> Built:
    if x.rank == 3:
        # statistics over the pixels of each channel: in training a pixel sees every other one
        return Built(out=x.as_real(), params=2 * x.shape[0], code=f"nn.BatchNorm2d({x.shape[0]})",
                     batch_statistics=True, order=Order("mixes", (1, 2)))
    n = features(x, "BatchNorm")
    require(x.rank == 1, f"BatchNorm expects a vector or an image, got {x.describe()}")
    # statistics over the batch of each feature: a feature sees the same feature of other samples only
    return Built(out=x.as_real(), params=2 * n, code=f"nn.BatchNorm1d({n})", batch_statistics=True,
                 order=ELEMENTWISE)


@layer("LayerNorm", "layer normalization over the last dimension")
def layer_norm(x: TensorType) -> Built:
    n = features(x, "LayerNorm")
    return Built(out=x.as_real(), params=2 * n, code=f"nn.LayerNorm({n})", order=Order("mixes", (-1,)))


@layer("GroupNorm", "group normalization over the channels of an image", shown=("groups",))
def group_norm(x: TensorType, groups: Count = 8) -> Built:
    c, _, _ = image(x, "GroupNorm")
    require(c % groups == 0, f"GroupNorm({groups}) needs channels divisible by {groups}, got {c}")
    return Built(out=x.as_real(), params=2 * c, code=f"nn.GroupNorm({groups}, {c})")


@layer("Dropout", "zeroes each value with probability p while training", shown=("p",))
def dropout(x: TensorType, p: float = 0.5) -> Built:
    not_a_label(x, "Dropout")
    require(0 <= p < 1, f"Dropout probability must be in [0, 1), got {p}")
    return Built(out=x.as_real(), code=f"nn.Dropout({p})", order=ELEMENTWISE)


@layer("flatten", "one vector per sample", aliases=("Flatten",))
def flatten(x: TensorType) -> Built:
    not_a_label(x, "flatten")
    require(x.rank >= 1, f"flatten needs a tensor with dimensions, got {x.describe()}",
            "one number per sample is already flat; reshape(1) makes it a vector of one")
    return Built(out=TensorType(kind=x.kind, shape=(x.numel,)),
                 code="nn.Flatten()", order=Order("reshape"))


@layer("reshape", "a new per-sample shape with the same number of values", shown=("dims",),
       aliases=("Reshape",))
def reshape(x: TensorType, *dims: int) -> Built:
    not_a_label(x, "reshape")
    require(len(dims) > 0 and all(isinstance(d, int) and d > 0 for d in dims),
            "reshape needs positive integer dimensions, e.g. reshape(1, 28, 28)")
    require(prod(dims) == x.numel, f"cannot reshape {x.describe()} ({x.numel} values) to "
            f"[{', '.join(map(str, dims))}] ({prod(dims)} values)",
            "the number of values per sample must stay the same")
    return Built(out=x.with_shape(tuple(dims)), code=f"nn.Unflatten(1, {tuple(dims)})" if x.rank == 1
                 else f"Reshape({tuple(dims)})", helpers=() if x.rank == 1 else ("Reshape",),
                 order=Order("reshape"))


@layer("Embedding", "a learned vector for each category", shown=("dim",))
def embedding(x: TensorType, dim: Count) -> Built:
    require(x.kind == "cat", f"Embedding takes a category label cat[K], got {x.describe()}",
            "for real inputs use Linear")
    return Built(out=TensorType(shape=(*x.shape, dim)), params=x.classes * dim,  # cat[K, T]: T vectors
                 code=f"nn.Embedding({x.classes}, {dim})")


@layer("SelfAttention", "multi-head self-attention over positions (sequence [T, C] or image [C, H, W] "
       "pixels in raster order); causal=true: position t attends to positions up to t; causal=strict: "
       "position t sees only positions before t (the tokens shifted by one, a zero token first)",
       shown=("heads", "causal"), aliases=("MultiheadAttention",))
def self_attention(x: TensorType, heads: Count = 4, causal: bool | Literal["strict"] = False) -> Built:
    require(x.rank in (2, 3), f"SelfAttention expects a sequence real[T, C] or an image real[C, H, W], "
            f"got {x.describe()}", "reshape a vector into positions first, e.g. reshape(16, 4)")
    channels = x.shape[0] if x.rank == 3 else x.shape[1]
    require(channels % heads == 0, f"SelfAttention(heads={heads}) needs channels divisible by heads, "
            f"got {channels}")
    positions = (1, 2) if x.rank == 3 else (0,)
    order = Order("causal", positions, strict=causal == "strict") if causal else Order("any")
    causal_code = '"strict"' if causal == "strict" else str(bool(causal))
    return Built(out=x.as_real(), params=4 * channels * channels + 4 * channels,
                 code=f"SelfAttention({channels}, heads={heads}, image={x.rank == 3}, causal={causal_code})",
                 helpers=("SelfAttention",), order=order)


# ---- invertible layers: the only stages allowed in a flow ----

def coupling_size(x: TensorType, name: str, hidden: list[int], per_dim: int) -> tuple[int, int, int]:
    """A coupling's width, parameter count and first layer's width: its conditioner MLP maps the
    vector to `per_dim` numbers per dimension (as helpers.Coupling builds it); in a conditional
    flow the first layer also reads the context."""
    n = features(x, name)
    require(x.rank == 1, f"{name} expects a vector, got {x.describe()}")
    require(n >= 2, f"{name} needs at least 2 dimensions to split")
    widths = [n, *hidden, per_dim * n]
    return n, sum(a * b + b for a, b in zip(widths, widths[1:])), widths[1]


@layer("AffineCoupling", "RealNVP affine coupling: half the dims scale and shift the other half",
       tags=("invertible",), shown=("mask",))
def affine_coupling(x: TensorType, mask: Literal["alternate", "even", "odd", "checker"] = "alternate",
                    hidden: list[Count] = [64, 64]) -> Built:
    n, params, first = coupling_size(x, "AffineCoupling", hidden, 2)
    return Built(out=x.as_real(), params=params, code=f'AffineCoupling({n}, {list(hidden)}, mask="{mask}")',
                 helpers=("AffineCoupling",), invertible=True, context_units=first)


@layer("SplineCoupling", "rational-quadratic spline coupling (Durkan et al. 2019): half the dims set a "
       "monotone spline of the other half on [-bound, bound], the identity outside", tags=("invertible",),
       shown=("mask", "bins"))
def spline_coupling(x: TensorType, mask: Literal["alternate", "even", "odd", "checker"] = "alternate",
                    hidden: list[Count] = [64, 64], bins: Count = 8, bound: float = 4.0) -> Built:
    require(bins >= 2, f"SplineCoupling needs at least 2 bins, got {bins}",
            "8 to 16 bins suit most data, e.g. SplineCoupling(bins=8)")
    require(bound > 0, f"SplineCoupling needs a positive bound, got {bound}",
            "the spline acts on [-bound, bound]; after ActNorm, bound=4.0 covers the data")
    n, params, first = coupling_size(x, "SplineCoupling", hidden, 3 * bins - 1)
    return Built(out=x.as_real(), params=params,
                 code=f'SplineCoupling({n}, {list(hidden)}, bins={bins}, bound={float(bound)}, mask="{mask}")',
                 helpers=("SplineCoupling",), invertible=True, context_units=first)


@layer("ActNorm", "Glow's activation normalization: a learned per-dimension scale and shift",
       tags=("invertible",))
def act_norm(x: TensorType) -> Built:
    n = features(x, "ActNorm")
    require(x.rank == 1, f"ActNorm expects a vector, got {x.describe()}", "flows act on vectors: flatten first")
    return Built(out=x.as_real(), params=2 * n, code=f"ActNorm({n})", helpers=("ActNorm",), invertible=True)


@layer("InvertibleLinear", "Glow's invertible 1x1 convolution on vectors: a learned LU-parameterized "
       "invertible matrix that mixes dimensions between couplings", tags=("invertible",))
def invertible_linear(x: TensorType) -> Built:
    n = features(x, "InvertibleLinear")
    require(x.rank == 1, f"InvertibleLinear expects a vector, got {x.describe()}")
    return Built(out=x.as_real(), params=2 * n * n + n, code=f"InvertibleLinear({n})",
                 helpers=("InvertibleLinear",), invertible=True)


@layer("Reverse", "reverses the order of the dimensions (a fixed permutation)", tags=("invertible",))
def reverse(x: TensorType) -> Built:
    features(x, "Reverse")
    require(x.rank == 1, f"Reverse expects a vector, got {x.describe()}", "flows act on vectors: flatten first")
    return Built(out=x.as_real(), code="Reverse()", helpers=("Reverse",), invertible=True)


# more layers register themselves in LAYERS from their own modules (imported last: they use `layer`)
for _module in ("layers_recurrent",):
    importlib.import_module(f"gendsl.library.{_module}")
