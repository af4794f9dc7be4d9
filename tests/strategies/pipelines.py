"""Layers of the registry drawn for a per-sample input type, and pipelines of them."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from gendsl.library.layers import ACTIVATIONS, LAYERS
from gendsl.library.signature import EntryError, bind, call_rule, parameters
from gendsl.types import TensorType
from tests.strategies.builder import Builder, Value
from tests.strategies.entry_options import option_value, pool
from tests.strategies.gen_text import literal
from tests.strategies.picker import Picker


# ---- layers and pipelines ---------------------------------------------------------------------

# exp and sqrt overflow or take negatives in a random pipeline (a NaN loss, E406, tests nothing):
# they are drawn as functions on safe arguments instead (`exp(-h ^ 2)`, `sqrt(h ^ 2 + 1)`).
GENERAL_LAYERS = sorted(name for name, e in LAYERS.items()
                        if "invertible" not in e.tags and name not in ("MaskedLinear", "MaskedConv2d", "exp", "sqrt"))
INVERTIBLE_LAYERS = sorted(name for name, e in LAYERS.items() if "invertible" in e.tags)
# How often each layer is tried, by the rank of its input (others: 1); a layer that cannot take
# the input is skipped by its own rule, so these only shape the mix.
LAYER_WEIGHTS = {
    1: {"Linear": 8, "LayerNorm": 2, "BatchNorm": 2},
    2: {"Linear": 6, "SelfAttention": 4, "LayerNorm": 3},
    3: {"Conv2d": 8, "ConvTranspose2d": 3, "MaxPool2d": 3, "AvgPool2d": 3, "Upsample": 2, "GroupNorm": 4,
        "BatchNorm": 2, "SelfAttention": 2, "Linear": 2},
}
MAX_VALUES = 1024  # per-sample values of any intermediate tensor: keep every case tiny
WIDTHS = [1, 2, 3, 4, 6, 8]


@dataclass(frozen=True)
class Stage:
    text: str
    out: TensorType
    params: int


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def layer_pool(name: str, param: inspect.Parameter, x: TensorType) -> list:
    """Candidate option values of a layer for input `x`."""
    channels = x.shape[0] if x.rank == 3 else x.shape[-1] if x.rank else 1
    table = {
        "out": WIDTHS, "dim": WIDTHS, "stride": [1, 2], "output_padding": [0, 1],
        "kernel": [1, 3, 5] if name == "MaskedConv2d" else [1, 2, 3, 5] if name.startswith("Conv") else [1, 2],
        "padding": [None, 0, 1, 2] if name == "Conv2d" else [0, 1],
        "groups": divisors(channels), "heads": divisors(channels)[:4], "scale": [1, 2],
        "p": [0.0, 0.1, 0.5], "slope": [0.01, 0.2], "bias": [True, False], "causal": [False, True],
        "hidden": [[4], [4, 4], [3], []] if "list" in str(param.annotation) else WIDTHS,  # couplings' lists, RNN widths
        "bins": [2, 3, 5], "bound": [1.0, 3.0],
    }
    return table.get(param.name, pool(name, param))


def factorizations(n: int) -> list[tuple[int, ...]]:
    """Per-sample shapes with n values (up to rank 3)."""
    out = [(n,)]
    for a in divisors(n):
        if 1 < a < n:
            out.append((a, n // a))
            for b in divisors(n // a):
                if 1 < b < n // a:
                    out.append((a, b, n // a // b))
    out.append((1, n))
    return out


def layer_stage(pick: Picker, b: Builder, name: str, x: TensorType, optional: int = 35) -> Stage | None:
    """`name(options)` applied to `x`, with options drawn for this input (all of them on a second
    try, when a default does not fit: GroupNorm's 8 groups); None if it cannot take x."""
    return draw_layer(pick, b, name, x, optional) or draw_layer(pick, b, name, x, 100)


def draw_layer(pick: Picker, b: Builder, name: str, x: TensorType, optional: int) -> Stage | None:
    entry = LAYERS[name]
    if name == "reshape":
        dims = pick.choice(factorizations(x.numel))
        values, text = {"dims": list(dims)}, f"reshape({', '.join(map(str, dims))})"
    else:
        values, parts = {}, []
        for p in parameters(entry.rule, 1):
            required = p.default is inspect.Parameter.empty
            if required or pick.chance(optional):
                candidates = layer_pool(name, p, x)
                if candidates:
                    values[p.name] = option_value(pick, candidates, p.annotation)
        for i, (key, value) in enumerate(values.items()):
            annotation = next(p.annotation for p in parameters(entry.rule, 1) if p.name == key)
            shown = b.width(value) if key in ("out", "dim") else literal(value, annotation)
            parts.append(shown if i == 0 and pick.chance(50) and key == next(iter(values)) and
                         key == parameters(entry.rule, 1)[0].name else f"{key}={shown}")
        text = f"{name}({', '.join(parts)})" if parts or pick.chance(40) else name
    try:
        bound, problems = bind(name, entry.rule, values.pop("dims", []), values, 1)
        if problems:
            return None
        built = call_rule(entry.rule, [x], bound, 1)
    except EntryError:
        return None
    except Exception:  # the rule's own bug: keep the stage (type unknown), so that check meets it too
        b.tag("edge:rule_crash")
        return Stage(text, x, 0)
    if built.out.numel > MAX_VALUES or any(d > 64 for d in built.out.shape):
        return None
    b.tag(f"layer:{name}")
    return Stage(text, built.out, built.params)


def draw_stage(pick: Picker, b: Builder, x: TensorType, names: list[str] | None = None) -> Stage | None:
    """A random layer that accepts `x` (up to a few tries)."""
    names = names or GENERAL_LAYERS
    favoured = LAYER_WEIGHTS.get(x.rank, {})
    weights = {n: favoured.get(n, 1) for n in names}
    for _ in range(6):
        stage = layer_stage(pick, b, pick.weighted(weights), x)
        if stage is not None:
            return stage
    return None


def pipe(v: Value, stages: list[Stage]) -> Value:
    if not stages:
        return v
    return Value(f"{v.atom} |> " + " |> ".join(s.text for s in stages), stages[-1].out, simple=False)


def draw_pipeline(pick: Picker, b: Builder, v: Value, lo: int = 1, hi: int = 3) -> Value:
    stages, x = [], v.type
    for _ in range(pick.integer(lo, hi)):
        stage = draw_stage(pick, b, x)
        if stage is None:
            break
        stages.append(stage)
        x = stage.out
    return pipe(v, stages)


def fixed(name: str, text: str, x: TensorType, b: Builder | None = None, **options) -> Stage:
    """A layer with given options (the type still comes from the entry's rule)."""
    entry = LAYERS[name]
    dims = options.pop("dims", [])
    bound, problems = bind(name, entry.rule, dims, options, 1)
    assert not problems, (name, options, problems)
    built = call_rule(entry.rule, [x], bound, 1)
    if b is not None:
        b.tag(f"layer:{name}")
    return Stage(text, built.out, built.params)


def linear(b: Builder, x: TensorType, out: int, hidden: bool = False) -> Stage:
    text = f"Linear({b.width(out) if hidden else out})"
    return fixed("Linear", text, x, b, out=out)


def conv(pick: Picker, b: Builder, x: TensorType, out: int) -> Stage:
    """A same-size convolution to `out` channels (kernel 1 or 3)."""
    kernel = pick.choice([1, 3])
    text = f"Conv2d({out})" if kernel == 3 else f"Conv2d({out}, kernel=1)"
    return fixed("Conv2d", text, x, b, out=out, kernel=kernel)


def activation(pick: Picker, b: Builder, x: TensorType) -> Stage:
    name = pick.choice(sorted(ACTIVATIONS) + ["leaky_relu"])
    if name in ("exp", "sqrt"):  # unbounded or undefined on negatives: keep training finite
        name = "tanh"
    text = f"leaky_relu({pick.choice([0.01, 0.2])})" if name == "leaky_relu" else name
    return fixed(name, text, x, b, **({"slope": 0.2} if name == "leaky_relu" else {}))


def flatten(b: Builder, x: TensorType) -> list[Stage]:
    return [] if x.rank == 1 else [fixed("flatten", "flatten", x, b)]


def adapt(pick: Picker, b: Builder, v: Value, target: TensorType) -> Value:
    """`v` through layers to a real tensor of `target`'s shape, ending with a parametric layer."""
    x = v.type
    if x.rank == 3 and target.rank == 3 and x.shape[1:] == target.shape[1:]:
        return pipe(v, [conv(pick, b, x, target.shape[0])])
    if x.rank >= 1 and target.rank == x.rank and x.shape[:-1] == target.shape[:-1]:
        return pipe(v, [linear(b, x, target.shape[-1])])
    stages = flatten(b, x)
    width = target.numel if target.rank else 1
    stages.append(linear(b, stages[-1].out if stages else x, width))
    if target.rank >= 2:
        dims = list(target.shape)
        stages.append(fixed("reshape", f"reshape({', '.join(map(str, dims))})", stages[-1].out, b, dims=dims))
    return pipe(v, stages)


def shape_keeping(pick: Picker, b: Builder, x: TensorType) -> list[Stage]:
    """A short parametric pipeline whose output has the shape of `x` (residuals, repeats)."""
    if x.rank == 3:
        first = conv(pick, b, x, pick.choice([2, 4]))
        act = activation(pick, b, first.out)
        return [first, act, conv(pick, b, act.out, x.shape[0])]
    first = linear(b, x, pick.choice(WIDTHS), hidden=True)
    act = activation(pick, b, first.out)
    return [first, act, linear(b, act.out, x.shape[-1])]
