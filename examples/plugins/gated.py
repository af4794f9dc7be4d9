"""A gendsl plugin: a gated linear layer, a periodic activation and the Gumbel distribution.

gendsl runs a plugin only when told to, by name:

    gendsl check examples/plugins/gated_vae.gen --plugin examples/plugins/gated.py

This file holds the rules: what each entry accepts, the type it returns and the code it emits,
registered with the same decorators as gendsl's own entries. It never imports torch (`gendsl
check` does not load torch). The PyTorch classes and functions the code calls live in the
IMPLEMENTATION file; the code generator copies the ones a model uses into its generated file,
which therefore still runs with torch alone.
"""

from __future__ import annotations

from gendsl.library.distributions import Family, Support, distribution, location_scale
from gendsl.library.entries import ELEMENTWISE, Built, Order, features, require
from gendsl.library.functions import Fn, function, numeric
from gendsl.library.layers import layer
from gendsl.library.signature import Count, Positive
from gendsl.types import NumberType, TensorType

IMPLEMENTATION = "gated_torch.py"


@layer("GatedLinear", "gated linear unit over the last dimension: (x W + b) * sigmoid(x V + c)",
       shown=("out",), aliases=("GLU",))
def gated_linear(x: TensorType, out: Count) -> Built:
    n = features(x, "GatedLinear")
    return Built(out=TensorType(shape=x.shape[:-1] + (out,)), params=2 * (n * out + out),
                 code=f"GatedLinear({n}, {out})", helpers=("GatedLinear",), order=Order("mixes", (-1,)))


# snake is both a pipeline stage (`h |> snake`) and a function (`snake(h, freq=2.0)`), as gendsl's
# own activations are: one entry in each registry.
SNAKE = "x + sin(freq * x)^2 / freq: a periodic activation (Ziyin et al. 2020)"


@layer("snake", SNAKE, tags=("activation",), shown=("freq",))
def snake_layer(x: TensorType, freq: Positive = 1.0) -> Built:
    numeric(x, "snake")
    return Built(out=x.as_real(), code=f"Snake({freq!r})", helpers=("Snake",), order=ELEMENTWISE)


@function("snake", SNAKE, skip=0)
def snake(x: TensorType, freq: Positive = 1.0) -> Fn:
    numeric(x, "snake")
    return Fn(out=x.as_real(), code=f"snake({{0}}, {freq!r})", helpers=("snake",), order=ELEMENTWISE)


@distribution("Gumbel", "Gumbel (type I extreme value) with location loc and scale",
              Support("real", ("real",), everywhere=True))
def gumbel(loc: TensorType | NumberType, scale: TensorType | NumberType) -> Family:
    if isinstance(scale, NumberType) and scale.kind in ("int", "float"):
        require(scale.value > 0, f"Gumbel's scale must be > 0, got {scale.value}",
                "use a positive number, or softplus(...) of a network's output")
    return location_scale("Gumbel", loc, "loc", scale, "scale")  # code: D.Gumbel({loc}, {scale})
