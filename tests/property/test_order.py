"""The autoregressive order, proven by the compiled module: for every network that the checker
accepts in an `autoregressive` block, the Jacobian of the distribution's parameters with respect
to the data is zero wherever output position i meets an input at position >= i (issue 10,
reproducers 7 and 8). Networks are drawn by hypothesis: stacks, parallel paths, sums,
concatenations, residuals, locals and direct connections; MaskedLinear on vectors and on
sequences flattened row by row (C output units per position), MaskedConv2d
(mask A and B) and 1x1 convolutions on images, causal and strictly causal SelfAttention on
sequences and images, recurrent layers (RNN, GRU, LSTM) and `shift` on sequences (shift also on
vectors and images). Networks that leak by construction must be refused (E306/E307)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gendsl.codegen import generate, load_generated
from gendsl.codegen.helpers.autoregressive import MaskedLinear, SelfAttention, made_masks
from gendsl.graph.check import check_source
from gendsl.source import SourceFile

ACTIVATIONS = st.sampled_from(["relu", "tanh", "identity"])
CAUSAL = {"causal": "true", "strict": '"strict"'}  # SelfAttention's option for each kind of causal attention
RECURRENT = st.sampled_from(["RNN", "GRU", "LSTM"])
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- the pipeline: spec text -> checked -> generated module -> Jacobian ----

def spec(data_type: str, lines: list[str], extra: str = "") -> str:
    body = "\n    ".join(lines)
    return (f"model Order {{\n{extra}  data x: {data_type} from npy(\"x.npy\")\n"
            f"  autoregressive p(x) {{\n    {body}\n  }}\n"
            "  loss nll = -log p(x)\n  train { optimizer Adam(lr=1e-3); minimize nll; batch 8; steps 1 }\n"
            "  sample x ~ p(x)\n}\n")


def check(text: str):
    return check_source(SourceFile("order.gen", text))


def diagnostics(text: str) -> list[str]:
    return [f"{d.code}: {d.message}" for d in check(text).diagnostics if d.is_error]


def compiled_factor(text: str) -> torch.nn.Module:
    """The generated module of `autoregressive p(x)`, in double precision, every weight randomized."""
    checked = check(text)
    assert checked.ok, [f"{d.code}: {d.message}" for d in checked.diagnostics]
    model = load_generated(generate(checked.graph, "order.gen", text).source).build()
    factor = model.p_x.double().eval()
    with torch.no_grad():
        for p in factor.parameters():
            p.add_(0.5 * torch.randn_like(p))  # away from any zero initialization
    return factor


def positions(shape: tuple[int, ...]) -> torch.Tensor:
    """The position of each value of the data, flattened: features of a vector, rows of a
    sequence [T, C], pixels of an image [C, H, W] in raster order."""
    index = torch.arange(torch.Size(shape).numel())
    if len(shape) == 2:
        return index // shape[1]
    if len(shape) == 3:
        return index % (shape[1] * shape[2])
    return index


def jacobian(text: str, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """d parameters / d x for one random input: [outputs, inputs], both flattened."""
    torch.manual_seed(seed)
    factor = compiled_factor(text)
    x = torch.randn(1, *shape, dtype=torch.double)
    n = x.numel()
    return torch.autograd.functional.jacobian(lambda v: factor(v).base_dist.logits.reshape(-1), x).reshape(n, n)


def assert_ordered(text: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The compiled network's output at position i depends on no input at position >= i."""
    j = jacobian(text, shape)
    pos = positions(shape)
    later = pos[None, :] >= pos[:, None]
    leaks = (j != 0) & later
    assert not leaks.any(), f"output depends on a later input at (output, input) {leaks.nonzero()[:5].tolist()}"
    return j


def assert_refused(text: str) -> None:
    codes = [d.split(":")[0] for d in diagnostics(text)]
    assert codes and set(codes) <= {"E306", "E307"}, (codes, text)


# ---- drawn networks ----

class Block:
    """The lines of a drawn autoregressive block: locals first, then the draw."""

    def __init__(self, draw, data: str = "x"):
        self.draw = draw
        self.data = data  # how MADE layers see x: itself, or a sequence flattened
        self.lines: list[str] = []

    def local(self, expr: str) -> str:
        name = f"h{len(self.lines) + 1}"
        self.lines.append(f"{name} = {expr}")
        return name

    def finish(self, logits: str) -> list[str]:
        return [*self.lines, f"x ~ Bernoulli(logits = {logits})"]


def vector_hidden(b: Block, n: int, depth: int) -> tuple[str, int]:
    """A vector that depends on x in any MADE way (x itself, hidden units, sums, ...): (text, width)."""
    kind = b.draw(st.sampled_from(["x", "layer", "layer", "sum", "concat", "residual", "local"] if depth else ["x"]))
    if kind == "x":
        return b.data, n
    e, w = vector_hidden(b, n, depth - 1)
    if kind == "layer":
        out = b.draw(st.integers(1, 10))
        return f"({e} |> MaskedLinear({out}) |> {b.draw(ACTIVATIONS)})", out
    if kind == "sum":
        other, _ = vector_hidden(b, n, depth - 1)
        return f"({e} + ({other} |> MaskedLinear({w})))", w
    if kind == "concat":
        other, w2 = vector_hidden(b, n, depth - 1)
        return f"concat({e}, {other})", w + w2
    if kind == "residual":
        h = b.local(e)
        return f"({h} + ({h} |> MaskedLinear({w}) |> relu))", w
    return b.local(e), w


def vector_output(b: Block, n: int, depth: int) -> str:
    """Logits of x[n] whose feature i sees only x before i: output MaskedLinear layers and what keeps that."""
    kind = b.draw(st.sampled_from(["layer", "layer", "sum", "act", "scale", "local"] if depth else ["layer"]))
    if kind == "layer":
        return f"({vector_hidden(b, n, b.draw(st.integers(0, 3)))[0]} |> MaskedLinear({n}))"
    if kind == "sum":
        return f"({vector_output(b, n, depth - 1)} + {vector_output(b, n, depth - 1)})"
    if kind == "act":
        return f"({vector_output(b, n, depth - 1)} |> tanh)"
    if kind == "scale":
        return f"({vector_output(b, n, depth - 1)} * 0.5)"
    return b.local(vector_output(b, n, depth - 1))


def image_value(b: Block, c: int, depth: int) -> tuple[str, int, bool]:
    """An image that depends on x: (text, channels, strict: pixel i sees only pixels before i)."""
    kinds = ["x", "maskA", "maskB", "maskB", "conv1", "sum", "concat", "causal", "strict", "shift", "residual",
             "local"]
    kind = b.draw(st.sampled_from(kinds if depth else ["x"]))
    if kind == "x":
        return "x", c, False
    e, ch, strict = image_value(b, c, depth - 1)
    out, kernel = b.draw(st.integers(1, 3)), b.draw(st.sampled_from([1, 3]))
    if kind in ("maskA", "maskB"):
        mask = kind[-1]
        return f"({e} |> MaskedConv2d({out}, kernel={kernel}, mask={mask}) |> relu)", out, strict or mask == "A"
    if kind == "conv1":
        return f"({e} |> Conv2d({out}, kernel=1) |> {b.draw(ACTIVATIONS)})", out, strict
    if kind in ("causal", "strict"):
        return f"({e} |> SelfAttention(heads=1, causal={CAUSAL[kind]}))", ch, strict or kind == "strict"
    if kind == "shift":
        return f"({e} |> shift)", ch, True
    if kind == "sum":
        other, _, other_strict = image_value(b, c, depth - 1)
        return f"({e} + ({other} |> Conv2d({ch}, kernel=1)))", ch, strict and other_strict
    if kind == "concat":
        other, ch2, other_strict = image_value(b, c, depth - 1)
        return f"concat({e}, {other}, dim=0)", ch + ch2, strict and other_strict
    if kind == "residual":
        h = b.local(e)
        return f"({h} + ({h} |> MaskedConv2d({ch}, kernel=3, mask=B) |> relu))", ch, strict
    return b.local(e), ch, strict


def sequence_value(b: Block, c: int, depth: int) -> tuple[str, int, bool]:
    """A sequence [T, C] that depends on x: (text, channels, strict: position t sees only positions < t)."""
    kinds = ["x", "linear", "norm", "causal", "strict", "strict", "recurrent", "shifted", "shift", "sum", "concat",
             "residual", "local"]
    kind = b.draw(st.sampled_from(kinds if depth else ["x"]))
    if kind == "x":
        return "x", c, False
    e, ch, strict = sequence_value(b, c, depth - 1)
    if kind == "linear":
        out = b.draw(st.integers(1, 4))
        return f"({e} |> Linear({out}) |> {b.draw(ACTIVATIONS)})", out, strict
    if kind == "norm":
        return f"({e} |> LayerNorm)", ch, strict
    if kind in ("causal", "strict"):
        return f"({e} |> SelfAttention(heads=1, causal={CAUSAL[kind]}))", ch, strict or kind == "strict"
    if kind == "recurrent":  # output t sees positions up to t: strict only if its input is
        out, layers = b.draw(st.integers(1, 4)), b.draw(st.integers(1, 2))
        return f"({e} |> {b.draw(RECURRENT)}({out}, layers={layers}))", out, strict
    if kind == "shifted":  # teacher forcing: the recurrent layer reads positions before t
        out = b.draw(st.integers(1, 4))
        return f"({e} |> shift |> {b.draw(RECURRENT)}({out}))", out, True
    if kind == "shift":
        return f"({e} |> shift)", ch, True
    if kind == "sum":
        other, _, other_strict = sequence_value(b, c, depth - 1)
        return f"({e} + ({other} |> Linear({ch})))", ch, strict and other_strict
    if kind == "concat":
        other, ch2, other_strict = sequence_value(b, c, depth - 1)
        return f"concat({e}, {other})", ch + ch2, strict and other_strict
    if kind == "residual":
        h = b.local(e)
        return f"({h} + ({h} |> SelfAttention(heads=1, causal=true)))", ch, strict
    return b.local(e), ch, strict


@st.composite
def vector_nets(draw, leak: bool = False):
    """(data shape, block lines) of a MADE network; with `leak`, one that leaks by construction."""
    n = draw(st.integers(2, 6))
    b = Block(draw)
    logits = vector_output(b, n, draw(st.integers(0, 3)))
    if leak:
        hidden = vector_hidden(b, n, draw(st.integers(0, 2)))[0]
        logits = draw(st.sampled_from([f"{logits} + x",                          # an unmasked skip connection
                                       f"({logits} |> Linear({n}))",             # a Linear across the features
                                       f"({hidden} |> Linear({n}))"]))           # an unmasked output layer
    return (n,), b.finish(logits)


@st.composite
def flat_made_nets(draw, leak: bool = False):
    """A MADE network over a sequence [T, C] flattened to T * C features, position t's C values
    together: its output layer has C units per position, reshaped back to [T, C]."""
    t, c = draw(st.integers(2, 4)), draw(st.integers(1, 3))
    b = Block(draw, data=draw(st.sampled_from([f"(x |> reshape({t * c}))", "(x |> flatten)"])))
    logits = f"({vector_output(b, t * c, draw(st.integers(0, 3)))} |> reshape({t}, {c}))"
    if leak:
        hidden = vector_hidden(b, t * c, draw(st.integers(0, 2)))[0]
        logits = draw(st.sampled_from([f"{logits} + x",                                      # an unmasked skip
                                       f"(x |> reshape({t * c}) |> Linear({t * c}) |> reshape({t}, {c}))",
                                       f"({hidden} |> Linear({t * c}) |> reshape({t}, {c}))"]))  # unmasked output
    return (t, c), b.finish(logits)


def _strictly(b: Block, e: str, ch: int, strict: bool, image: bool) -> str:
    """Hide the current position where the drawn value still sees it."""
    if strict:
        return e
    if image and b.draw(st.booleans()):
        return f"({e} |> MaskedConv2d({ch}, kernel=3, mask=A))"
    if not image and b.draw(st.booleans()):
        return f"({e} |> shift |> {b.draw(RECURRENT)}({ch}))"
    return f"({e} |> SelfAttention(heads=1, causal=\"strict\"))"


@st.composite
def image_nets(draw, leak: bool = False):
    c, h, w = draw(st.integers(1, 2)), draw(st.integers(2, 4)), draw(st.integers(2, 4))
    b = Block(draw)
    e, ch, strict = image_value(b, c, draw(st.integers(0, 4)))
    e = _strictly(b, e, ch, strict, image=True)
    logits = f"({e} |> Conv2d({c}, kernel=1))"
    if leak:
        logits = draw(st.sampled_from([f"{logits} + x",                                # unmasked skip
                                       f"({e} |> Conv2d({c}, kernel=3))",              # a wide unmasked conv
                                       f"(x |> MaskedConv2d({c}, kernel=3, mask=B))",  # mask B first
                                       f"({e} |> SelfAttention(heads=1) |> Conv2d({c}, kernel=1))"]))
    return (c, h, w), b.finish(logits)


@st.composite
def sequence_nets(draw, leak: bool = False):
    t, c = draw(st.integers(2, 5)), draw(st.integers(1, 3))
    b = Block(draw)
    e, ch, strict = sequence_value(b, c, draw(st.integers(0, 4)))
    e = _strictly(b, e, ch, strict, image=False)
    logits = f"({e} |> Linear({c}))"
    if leak:
        logits = draw(st.sampled_from([f"{logits} + x",
                                       f"(x |> SelfAttention(heads={c}, causal=true))",    # sees its own position
                                       f"({e} |> SelfAttention(heads=1) |> Linear({c}))",  # not causal
                                       f"(x |> {draw(RECURRENT)}({c}))",                     # not shifted
                                       f"((x |> shift |> LSTM({c}) |> Linear({c})) + x)",    # a skip around it
                                       f"({e} |> GRU(2, bidirectional=true) |> Linear({c}))",  # reads later positions
                                       f"({logits} |> reshape({t * c}) |> Linear({t * c}) |> reshape({t}, {c}))"]))
    return (t, c), b.finish(logits)


def data_type(shape: tuple[int, ...]) -> str:
    return f"bin[{', '.join(map(str, shape))}]"


def _accepted_nets_keep_the_order(net) -> None:
    shape, lines = net
    assert_ordered(spec(data_type(shape), lines), shape)


def _leaky_nets_are_refused(net) -> None:
    shape, lines = net
    assert_refused(spec(data_type(shape), lines))


NETS = st.one_of(vector_nets(), flat_made_nets(), image_nets(), sequence_nets())
LEAKY = st.one_of(vector_nets(leak=True), flat_made_nets(leak=True), image_nets(leak=True), sequence_nets(leak=True))


@FAST
@given(net=vector_nets())
def test_made_networks_keep_the_order(net) -> None:
    _accepted_nets_keep_the_order(net)


@FAST
@given(net=flat_made_nets())
def test_made_networks_over_flattened_sequences_keep_the_order(net) -> None:
    _accepted_nets_keep_the_order(net)


@FAST
@given(net=image_nets())
def test_pixelcnn_and_attention_images_keep_the_order(net) -> None:
    _accepted_nets_keep_the_order(net)


@FAST
@given(net=sequence_nets())
def test_causal_attention_sequences_keep_the_order(net) -> None:
    _accepted_nets_keep_the_order(net)


@settings(max_examples=100, deadline=None)
@given(net=LEAKY)
def test_networks_that_leak_are_refused(net) -> None:
    _leaky_nets_are_refused(net)


@pytest.mark.slow
@SLOW
@given(net=NETS)
def test_accepted_networks_keep_the_order_long(net) -> None:
    _accepted_nets_keep_the_order(net)


@pytest.mark.slow
@SLOW
@given(net=LEAKY)
def test_networks_that_leak_are_refused_long(net) -> None:
    _leaky_nets_are_refused(net)


# ---- named cases ----

REPRODUCER_8 = ["x ~ Bernoulli(logits = (x |> MaskedLinear(hidden) |> relu |> MaskedLinear(D)) "
                "+ (x |> MaskedLinear(D)))"]


def test_reproducer_8_parallel_masked_paths_compile_to_an_ordered_network() -> None:
    """Issue 10, reproducer 8: a direct connection written as a second masked path used to get the
    masks of one stack, so output i saw input i; now each path's masks follow its own input."""
    text = spec("bin[D]", REPRODUCER_8, extra="  param D: int = 8\n  param hidden: int = 16\n")
    j = assert_ordered(text, (8,))
    assert (j.tril(-1) != 0).sum() > 20  # and it does use the earlier inputs


def test_made_stack_masks_are_the_ones_of_made_masks() -> None:
    """A plain MADE stack gets exactly the masks it had before the degree program (same seeded
    hidden degrees), so published results stay valid."""
    text = spec("bin[12]", ["x ~ Bernoulli(logits = x |> MaskedLinear(20) |> relu |> MaskedLinear(15) |> relu "
                            "|> MaskedLinear(12))"])
    factor = compiled_factor(text)
    layers = [m for m in factor.modules() if type(m).__name__ == "MaskedLinear"]  # the generated class
    reference = [MaskedLinear(m.in_features, m.out_features) for m in layers]
    made_masks(reference, 12)
    for layer, ref in zip(layers, reference, strict=True):
        assert torch.equal(layer.mask, ref.mask)


GOOD = {
    "vector seen as a sequence, strict attention": (
        (6,), ["x ~ Bernoulli(logits = x |> reshape(6, 1) |> Linear(4) |> SelfAttention(heads=2, causal=\"strict\") "
               "|> relu |> Linear(1) |> flatten)"]),
    "one-channel image flattened through MADE": (
        (1, 3, 3), ["x ~ Bernoulli(logits = x |> flatten |> MaskedLinear(12) |> relu |> MaskedLinear(9) "
                    "|> reshape(1, 3, 3))"]),
    "vector seen as an image through PixelCNN": (
        (9,), ["x ~ Bernoulli(logits = x |> reshape(1, 3, 3) |> MaskedConv2d(4, kernel=3, mask=A) |> relu "
               "|> Conv2d(1, kernel=1) |> flatten)"]),
    "mask B before mask A": (
        (1, 4, 4), ["x ~ Bernoulli(logits = x |> MaskedConv2d(3, kernel=3, mask=B) |> relu "
                    "|> MaskedConv2d(3, kernel=3, mask=A) |> relu |> Conv2d(1, kernel=1))"]),
    "MADE outputs added to a hidden path and a constant": (
        (5,), ["h = x |> MaskedLinear(7) |> relu", "o = h |> MaskedLinear(5)",
               "x ~ Bernoulli(logits = o + (o |> MaskedLinear(5)) + (concat(h, x) |> MaskedLinear(5) |> tanh))"]),
    "a constant added to the logits": ((3,), ["x ~ Bernoulli(logits = (x |> MaskedLinear(3)) + 0.5)"]),
    "row LSTM: shifted rows": ((6, 4), ["x ~ Bernoulli(logits = x |> shift |> LSTM(8, layers=2) |> Linear(4))"]),
    "pixel GRU of a vector seen as a sequence": (
        (7,), ["x ~ Bernoulli(logits = x |> reshape(7, 1) |> shift |> GRU(5) |> Linear(1) |> flatten)"]),
    "recurrent layers after strict attention, with a residual": (
        (5, 2), ["h = x |> Linear(4) |> SelfAttention(heads=2, causal=\"strict\") |> RNN(4, nonlinearity=relu)",
                 "x ~ Bernoulli(logits = (h + (h |> LSTM(4))) |> Linear(2))"]),
    "shifted vector added to MADE outputs": (
        (5,), ["x ~ Bernoulli(logits = (x |> shift |> tanh) + (x |> MaskedLinear(5)))"]),
    "shifted vector through MADE": ((6,), ["x ~ Bernoulli(logits = x |> shift |> MaskedLinear(9) |> relu "
                                           "|> MaskedLinear(6))"]),
    "shifted image through mask B": (
        (2, 3, 3), ["x ~ Bernoulli(logits = x |> shift |> MaskedConv2d(3, kernel=3, mask=B) |> relu "
                    "|> Conv2d(2, kernel=1))"]),
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_named_networks_keep_the_order(name: str) -> None:
    shape, lines = GOOD[name]
    assert_ordered(spec(data_type(shape), lines), shape)


BAD = {
    "unmasked skip connection": ("bin[4]", ["x ~ Bernoulli(logits = (x |> MaskedLinear(4)) + x)"], "E306"),
    "Linear across the features of a vector": (
        "bin[4]", ["x ~ Bernoulli(logits = x |> MaskedLinear(8) |> relu |> Linear(4))"], "E306"),
    "no masked layer": ("bin[4]", ["x ~ Bernoulli(logits = x |> tanh)"], "E306"),
    "mask B before any mask A": (
        "bin[1, 4, 4]", ["x ~ Bernoulli(logits = x |> MaskedConv2d(3, mask=B) |> Conv2d(1, kernel=1))"], "E307"),
    "causal attention that sees its own position": (
        "bin[5, 2]", ["x ~ Bernoulli(logits = x |> SelfAttention(heads=1, causal=true) |> Linear(2))"], "E307"),
    "attention that is not causal": (
        "bin[5, 2]", ["x ~ Bernoulli(logits = x |> SelfAttention(heads=1, causal=\"strict\") |> SelfAttention(heads=1) "
                      "|> Linear(2))"], "E306"),
    "MADE outputs concatenated": (
        "bin[4]", ["x ~ Bernoulli(logits = concat(x |> MaskedLinear(2), x |> MaskedLinear(2)))"], "E306"),
    "a flatten that reorders a two-channel image": (
        "bin[2, 2, 2]", ["x ~ Bernoulli(logits = x |> flatten |> MaskedLinear(8) |> reshape(2, 2, 2))"], "E306"),
    "a network call": ("bin[4]", ["x ~ Bernoulli(logits = f(x))"], "E306"),
    "data of four dims": ("bin[2, 2, 2, 2]", ["x ~ Bernoulli(logits = x |> tanh)"], "E306"),
    "an output MaskedLinear with too few outputs": (
        "bin[4]", ["x ~ Bernoulli(logits = (x |> MaskedLinear(1)) + (x |> MaskedLinear(4)))"], "E306"),
    "a recurrent layer that is not shifted": (
        "bin[5, 2]", ["x ~ Bernoulli(logits = x |> Linear(4) |> GRU(4) |> Linear(2))"], "E307"),
    "a bidirectional recurrent layer": (
        "bin[5, 2]", ["x ~ Bernoulli(logits = x |> shift |> LSTM(3, bidirectional=true) |> Linear(2))"], "E306"),
    "a skip connection around a shifted LSTM": (
        "bin[5, 2]", ["x ~ Bernoulli(logits = (x |> shift |> LSTM(3) |> Linear(2)) + x)"], "E306"),
    "a wide convolution after mask A": (
        "bin[1, 4, 4]", ["x ~ Bernoulli(logits = x |> MaskedConv2d(2, mask=A) |> Conv2d(1, kernel=3))"], "E306"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_known_bad_networks_are_refused(name: str) -> None:
    data, lines, code = BAD[name]
    text = spec(data, lines, extra="  net f(v: real[4]) -> real[4] { v |> tanh }\n")
    found = diagnostics(text)
    assert [d.split(":")[0] for d in found] == [code], found


def test_masked_linear_outside_an_autoregressive_block_follows_the_first_input() -> None:
    """A network that is not an autoregressive block promises no order, but its MaskedLinear
    layers still follow the order of its first input: output k sees only inputs before k mod 6
    (here two parallel paths, one of them through an unmasked Linear, which sees every input)."""
    text = ("model M {\n  data x: real[6] from npy(\"x.npy\")\n  latent z: real[6] ~ Normal(0, 1)\n"
            "  net f(h: real[6]) -> real[6] { (h |> MaskedLinear(9) |> relu |> MaskedLinear(6)) + (h |> MaskedLinear(6))"
            " + (h |> Linear(4) |> MaskedLinear(6)) }\n"
            "  decoder p(x | z) { x ~ Normal(loc = f(z), scale = 1.0) }\n"
            "  loss nll = -log p(x | z)\n  train { minimize nll; batch 8; steps 1 }\n}\n")
    checked = check(text)
    assert checked.ok, [d.message for d in checked.diagnostics]
    f = load_generated(generate(checked.graph, "m.gen", text).source).build().f.double()
    with torch.no_grad():
        for p in f.parameters():
            p.add_(0.5 * torch.randn_like(p))
    j = torch.autograd.functional.jacobian(lambda v: f(v[None])[0], torch.randn(6, dtype=torch.double))
    assert torch.all(j.triu() == 0) and (j.tril(-1) != 0).any()


@pytest.mark.parametrize("image", [False, True])
def test_strict_attention_sees_nothing_at_the_first_position_and_gives_no_nan(image: bool) -> None:
    """The first position attends to a zero token only: the same finite output for any input."""
    torch.manual_seed(0)
    layer = SelfAttention(4, heads=2, image=image, causal="strict")
    x = torch.randn(3, 4, 2, 3) if image else torch.randn(3, 5, 4)
    out = layer(x)
    first = out[:, :, 0, 0] if image else out[:, 0]
    assert torch.isfinite(out).all() and torch.allclose(first, first[:1].expand_as(first))
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())
