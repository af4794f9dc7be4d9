"""The generated code on a batch equals the per-sample meaning of the spec, sample by sample.

Hypothesis draws random well-typed expressions over inputs of random per-sample types (batched
network inputs or data, shared `tensor`s): arithmetic with per-sample broadcasting, unary
functions, the registry's functions, indexing and slicing, concat, reshape, per-sample
reductions and network calls. Each is wrapped in a spec (`net f(a0: ..., a1: ...) { EXPR }`, or a
loss over data), compiled through the real pipeline (check -> generate -> load -> build), and run
on a batch. The oracle is `torch.func.vmap` of tests/reference/per_sample.py, an interpreter of
the typed IR on one sample's tensors, with shared tensors passed unbatched (in_dims=None). The
output shape must also be the checker's type (with the batch first when batched).

Named regression tests below pin the reproducers of issue 10 (1, 2 and 3a).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from math import prod

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.func import vmap

from gendsl.codegen import generate, load_generated
from gendsl.graph.check import check_source
from gendsl.source import SourceFile
from tests.reference.per_sample import PerSample, calls_by_span

Shape = tuple[int, ...]
DIMS = st.integers(1, 4)
UNARY = ["relu", "tanh", "sigmoid", "softplus", "silu", "gelu", "elu", "abs", "sin", "cos", "exp"]


@dataclass(frozen=True)
class Value:
    """A generated expression: its text and the per-sample shape and batching it must have."""

    text: str
    shape: Shape
    batched: bool


@dataclass
class Spec:
    """The declarations an expression's leaves need: batched inputs, labels and shared tensors."""

    prefix: str = ""                                              # names of a helper network's own
    inputs: list[tuple[str, str]] = field(default_factory=list)   # (name, type text)
    tensors: list[tuple[str, Shape]] = field(default_factory=list)
    helpers: list[str] = field(default_factory=list)              # helper networks' declarations

    def input(self, shape: Shape) -> Value:
        name = f"{self.prefix}a{len(self.inputs)}"
        self.inputs.append((name, type_text(shape)))
        return Value(name, shape, True)

    def label(self, classes: int) -> Value:
        name = f"{self.prefix}a{len(self.inputs)}"
        self.inputs.append((name, f"cat[{classes}]"))
        return Value(name, (), True)

    def tensor(self, shape: Shape) -> Value:
        name = f"{self.prefix}t{len(self.tensors)}"
        self.tensors.append((name, shape))
        return Value(name, shape, False)


def type_text(shape: Shape) -> str:
    return f"real[{', '.join(map(str, shape))}]" if shape else "real"


def par(v: Value) -> str:
    """An operand in parentheses unless it is a name (postfix operators bind tightest)."""
    return v.text if v.text.isidentifier() else f"({v.text})"


# ---- expressions of a given per-sample shape ----

@st.composite
def leaf(draw, spec: Spec, shape: Shape) -> Value:
    # helper networks use inputs only: a helper's tensors need emit.py to pass them on
    # (test_network_calling_a_network_with_a_tensor)
    if spec.prefix or draw(st.booleans()):
        return spec.input(shape)
    return spec.tensor(shape)


@st.composite
def broadcast_shape(draw, shape: Shape) -> Shape:
    """A shape that broadcasts to `shape` per sample: a suffix of it, some sizes set to 1."""
    keep = draw(st.integers(0, len(shape)))
    suffix = shape[len(shape) - keep:]
    return tuple(1 if draw(st.booleans()) and draw(st.booleans()) else d for d in suffix)


@st.composite
def expression(draw, spec: Spec, shape: Shape, depth: int) -> Value:
    if depth <= 0:
        return draw(leaf(spec, shape))
    forms = ["leaf", "unary", "binary", "binary", "index", "slice", "reduce", "reshape", "call"]
    if shape:
        forms += ["concat", "softmax", "label_index"]
    if shape == ():
        forms += ["pair_loss", "scale"]
    if len(shape) == 1:
        forms += ["onehot"]
        if shape[0] % 2 == 0:
            forms += ["sinusoidal"]
    if len(shape) in (1, 2):
        forms += ["attend"]
    form = draw(st.sampled_from(forms))
    return draw(FORMS[form](spec, shape, depth - 1))


@st.composite
def unary(draw, spec, shape, depth):
    x = draw(expression(spec, shape, depth))
    fn = draw(st.sampled_from(UNARY + ["-", "leaky_relu", "clamp"]))
    if fn == "-":
        return Value(f"-{par(x)}", shape, x.batched)
    if fn == "leaky_relu":
        return Value(f"leaky_relu({x.text}, slope={draw(st.sampled_from([0.1, 0.3]))})", shape, x.batched)
    if fn == "clamp":
        return Value(f"clamp({x.text}, -0.5, max=0.7)", shape, x.batched)
    if fn == "exp":
        return Value(f"exp(tanh({x.text}))", shape, x.batched)
    return Value(f"{fn}({x.text})", shape, x.batched)


@st.composite
def binary(draw, spec, shape, depth):
    """Operands whose per-sample shapes broadcast to `shape` (one of them has it all)."""
    full = draw(expression(spec, shape, depth))
    other_shape = draw(broadcast_shape(shape))
    other = draw(st.one_of(expression(spec, other_shape, depth),
                           st.sampled_from([Value("2", (), False), Value("0.5", (), False)])))
    left, right = (full, other) if draw(st.booleans()) else (other, full)
    op = draw(st.sampled_from(["+", "-", "*"]))
    if op == "*" and draw(st.booleans()):
        return Value(f"{par(left)} ^ 2 * {par(right)}", shape, left.batched or right.batched)
    return Value(f"{par(left)} {op} {par(right)}", shape, left.batched or right.batched)


@st.composite
def scale(draw, spec, shape, depth):
    """A per-sample number times or over something: `x / 2`, `2 ^ x`."""
    x = draw(expression(spec, shape, depth))
    form = draw(st.sampled_from(["{} / 4", "0.5 ^ {}", "{} ^ 2"]))
    return Value(form.format(par(x)), shape, x.batched)


@st.composite
def index(draw, spec, shape, depth):
    """Ints pick positions of a bigger target; `:` keeps the axes before them."""
    axis = draw(st.integers(0, len(shape)))
    size = draw(DIMS)
    target_shape = shape[:axis] + (size,) + shape[axis:]
    target = draw(expression(spec, target_shape, depth))
    position = draw(st.integers(-size, size - 1))
    items = [":"] * axis + [str(position)]
    return Value(f"{par(target)}[{', '.join(items)}]", shape, target.batched)


@st.composite
def sliced(draw, spec, shape, depth):
    """Slices of a bigger target, on one axis; ints may pick another."""
    if not shape:
        return draw(index(spec, shape, depth))
    axis = draw(st.integers(0, len(shape) - 1))
    kept = shape[axis]
    step = draw(st.sampled_from([1, 1, 2]))
    start = draw(st.integers(0, 2))
    size = start + (kept - 1) * step + 1 + draw(st.integers(0, 1))
    target_shape = shape[:axis] + (size,) + shape[axis + 1:]
    target = draw(expression(spec, target_shape, depth))
    stop = start + (kept - 1) * step + 1
    text = f"{start}:{stop}" + (f":{step}" if step != 1 else "")
    if start == 0 and draw(st.booleans()):
        text = text[1:]
    items = [":"] * axis + [text]
    return Value(f"{par(target)}[{', '.join(items)}]", shape, target.batched)


@st.composite
def label_index(draw, spec, shape, depth):
    """`t[c]` (a shared table) or `h[c]` (a batched one): each sample's row; `:` may come first."""
    classes = draw(st.integers(2, 4))
    axis = draw(st.integers(0, min(1, len(shape))))
    target_shape = shape[:axis] + (classes,) + shape[axis:]
    target = draw(expression(spec, target_shape, depth))
    c = spec.label(classes)
    items = [":"] * axis + [c.text]
    return Value(f"{par(target)}[{', '.join(items)}]", shape, True)


@st.composite
def reduce(draw, spec, shape, depth):
    """A per-sample mean or sum over inserted axes."""
    extra = draw(st.integers(1, 2))
    rank = len(shape) + extra
    axes = sorted(draw(st.sets(st.integers(0, rank - 1), min_size=extra, max_size=extra)))
    target_shape, rest = [], iter(shape)
    for a in range(rank):
        target_shape.append(draw(DIMS) if a in axes else next(rest))
    target = draw(expression(spec, tuple(target_shape), depth))
    fn = draw(st.sampled_from(["mean", "sum"]))
    dims = [a - rank if draw(st.booleans()) else a for a in axes]
    dim = str(dims[0]) if len(dims) == 1 and draw(st.booleans()) else str(dims)
    return Value(f"{fn}({target.text}, dim={dim})", shape, target.batched)


@st.composite
def reshape(draw, spec, shape, depth):
    """The same values under another per-sample shape."""
    n = prod(shape)
    source = draw(st.sampled_from([(n,), tuple(reversed(shape)) or (1,), (1, n)]))
    target = draw(expression(spec, source, depth))
    dims = "".join(f", {d}" for d in shape)
    return Value(f"reshape({target.text}{dims})", shape, target.batched)


@st.composite
def concat(draw, spec, shape, depth):
    axis = draw(st.integers(0, len(shape) - 1))
    if shape[axis] < 2:
        return draw(expression(spec, shape, depth))
    cut = draw(st.integers(1, shape[axis] - 1))
    parts = [shape[:axis] + (cut,) + shape[axis + 1:], shape[:axis] + (shape[axis] - cut,) + shape[axis + 1:]]
    a, b = (draw(expression(spec, p, depth)) for p in parts)
    dim = draw(st.sampled_from([axis, axis - len(shape)]))
    text = f"concat({a.text}, {b.text})" if dim == -1 else f"concat({a.text}, {b.text}, dim={dim})"
    return Value(text, shape, a.batched or b.batched)


@st.composite
def softmax(draw, spec, shape, depth):
    x = draw(expression(spec, shape, depth))
    return Value(f"softmax({x.text})", shape, x.batched)


@st.composite
def onehot(draw, spec, shape, depth):
    c = spec.label(shape[0])
    return Value(draw(st.sampled_from(["onehot({})", "2 * onehot({})"])).format(c.text), shape, True)


@st.composite
def sinusoidal(draw, spec, shape, depth):
    t = draw(expression(spec, (), depth))
    return Value(f"sinusoidal({t.text}, {shape[0]})", shape, t.batched)


@st.composite
def pair_loss(draw, spec, shape, depth):
    """mse/l1/bce of two values that broadcast per sample (or a value and a number)."""
    full = tuple(draw(st.lists(DIMS, max_size=2)))
    a = draw(expression(spec, draw(broadcast_shape(full)) if draw(st.booleans()) else full, depth))
    b = draw(st.one_of(expression(spec, full, depth), st.just(Value("1", (), False))))
    fn = draw(st.sampled_from(["mse", "l1", "bce"]))
    if fn == "bce" and b.text != "1":
        b = Value(f"sigmoid({b.text})", b.shape, b.batched)
    return Value(f"{fn}({a.text}, {b.text})", (), a.batched or b.batched)


@st.composite
def attend(draw, spec, shape, depth):
    """attend / hard_attend: query real[C] or real[Tq, C], keys real[T, C], values real[T, V]."""
    width, count = draw(DIMS), draw(DIMS)
    query = draw(expression(spec, shape[:-1] + (width,), depth))
    keys = draw(expression(spec, (count, width), depth))
    values = draw(expression(spec, (count, shape[-1]), depth))
    fn = draw(st.sampled_from(["attend", "hard_attend"]))
    return Value(f"{fn}({query.text}, {keys.text}, {values.text})", shape,
                 query.batched or keys.batched or values.batched)


@st.composite
def call(draw, spec, shape, depth):
    """A helper network `g0(u: T, ...) { BODY }` called on an expression; its other inputs are
    inputs of the outer network passed through. Called on shared values only, it gives a shared
    value."""
    if spec.prefix:  # no helpers inside helpers
        return draw(expression(spec, shape, depth))
    source = draw(st.sampled_from([shape, (2,), (), (1,)]))
    # `real` and `real[1]` are accepted for each other at a network's input
    given = {(): (1,), (1,): ()}.get(source, source) if draw(st.booleans()) else source
    argument = draw(expression(spec, given, depth))
    name = f"g{len(spec.helpers)}"
    inner = Spec(prefix=f"{name}_")
    u = inner.input(source)
    body = u if source == shape and draw(st.booleans()) else draw(expression(inner, shape, 1))
    args = [argument.text]
    for _, text in inner.inputs[1:]:
        args.append(f"a{len(spec.inputs)}")
        spec.inputs.append((args[-1], text))
    spec.tensors += inner.tensors
    declared = f" -> {type_text(shape)}" if draw(st.booleans()) else ""
    params = ", ".join(f"{n}: {t}" for n, t in inner.inputs)
    spec.helpers.append(f"net {name}({params}){declared} {{ {body.text} }}")
    return Value(f"{name}({', '.join(args)})", shape, argument.batched or len(args) > 1)


FORMS = {"leaf": lambda spec, shape, depth: leaf(spec, shape), "unary": unary, "binary": binary,
         "scale": scale, "index": index, "slice": sliced, "label_index": label_index, "reduce": reduce,
         "reshape": reshape, "concat": concat, "softmax": softmax, "onehot": onehot, "sinusoidal": sinusoidal,
         "pair_loss": pair_loss, "attend": attend, "call": call}


@st.composite
def network_case(draw, max_depth: int = 3):
    """(spec text, expected per-sample shape, expected batching, batch size)."""
    spec = Spec()
    shape = tuple(draw(st.lists(DIMS, max_size=3)))
    value = draw(expression(spec, shape, draw(st.integers(1, max_depth))))
    if not spec.inputs:
        spec.input((2,))  # a network always has the batch of an input
    return spec, value, draw(st.sampled_from([1, 2, 3, 4]))


# ---- compile and compare ----

def spec_text(spec: Spec, body: str, loss: str | None = None) -> str:
    """`net f(inputs) { body }`, or with `loss`, the inputs as data and `loss l = loss`."""
    lines = ["model P {"]
    lines += [f"  tensor {n}: {type_text(s)} = normal" for n, s in spec.tensors]
    lines += [f"  {h}" for h in spec.helpers]
    if loss is None:
        params = ", ".join(f"{n}: {t}" for n, t in spec.inputs)
        lines.append(f"  net f({params}) {{ {body} }}")
    else:  # the inputs are data; npy files are only read when training
        lines += [f'  data {n}: {t} from npy(path="{n}.npy")' for n, t in spec.inputs]
        lines.append(f"  loss l = {loss}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def compile_spec(text: str):
    """(checked graph, built model) through the real pipeline; the spec must check."""
    source = SourceFile(path="p.gen", text=text)
    checked = check_source(source)
    errors = [f"{d.code} {d.message} ({d.hint})" for d in checked.diagnostics if d.code.startswith("E")]
    assert checked.ok, f"{errors}\n{text}"
    module = load_generated(generate(checked.graph, "p.gen", text).source)
    torch.manual_seed(0)
    return checked.graph, module.build()


def batch_of(spec: Spec, size: int) -> dict[str, torch.Tensor]:
    """A random batch of every input (labels in range)."""
    out = {}
    for name, text in spec.inputs:
        if text.startswith("cat["):
            out[name] = torch.randint(0, int(text[4:-1]), (size,))
        else:
            shape = () if text == "real" else tuple(int(d) for d in text[5:-1].split(", "))
            out[name] = torch.randn(size, *shape)
    return out


def forward_arguments(module, batch: dict[str, torch.Tensor], model) -> dict:
    """A generated network's forward() arguments: its inputs from the batch, then the model's
    tensors and networks it takes."""
    from gendsl.codegen.names import identifier

    values = {**dict(model.named_children()), **dict(model.named_parameters(recurse=False)), **batch}
    values = {identifier(name): value for name, value in values.items()}  # spec `h` is written `h_` there
    return {name: values[name] for name in list(inspect.signature(module.forward).parameters)}


def oracle(graph) -> PerSample:
    """The per-sample interpreter of a checked graph's networks and losses."""
    programs, calls = {}, {}
    for key, data in graph.nodes(data=True):
        node = data["data"]
        if node.kind == "net":
            programs[key] = node.program
            calls.update(calls_by_span(node.decl))
        elif node.kind == "loss":
            calls.update(calls_by_span(node.decl))
    return PerSample(programs, calls, graph.graph.get("params", {}))


def per_sample(run, batch: dict[str, torch.Tensor], shared: dict[str, torch.Tensor]) -> torch.Tensor:
    """vmap of one sample's meaning over the batch; shared tensors enter unbatched."""
    names = list(batch) + list(shared)
    in_dims = tuple([0] * len(batch) + [None] * len(shared))
    return vmap(lambda *values: run(dict(zip(names, values))), in_dims=in_dims,
                randomness="same")(*batch.values(), *shared.values())


def check_network(spec: Spec, value: Value, size: int) -> None:
    """`net f(...) { EXPR }` on a batch: the checker's type, the output's shape and its values."""
    text = spec_text(spec, value.text)
    graph, model = compile_spec(text)
    typed = graph.nodes["f"]["data"].program.result.type
    assert typed.shape == value.shape, (typed.describe(), value, text)
    assert typed.batched == value.batched, (typed.describe(), value, text)
    batch = batch_of(spec, size)
    shared = {n: getattr(model, n).detach() for n, _ in spec.tensors}
    with torch.no_grad():
        out = model.f(**forward_arguments(model.f, batch, model))
    assert tuple(out.shape) == (size, *typed.shape), (tuple(out.shape), typed.describe(), text)
    meaning = oracle(graph)
    program = graph.nodes["f"]["data"].program
    expected = per_sample(lambda env: meaning.run(program, env), batch, shared)
    torch.testing.assert_close(out, expected.to(out.dtype), rtol=1e-4, atol=1e-5, msg=lambda m: f"{m}\n{text}")


def check_loss(spec: Spec, value: Value, size: int) -> None:
    """The same expression in a loss: `mean(EXPR)` over the batch and every dimension; the loss's
    gradient is computed too."""
    text = spec_text(spec, "", loss=f"mean({value.text})")
    graph, model = compile_spec(text)
    loss = graph.nodes["l"]["data"].expr
    batch = batch_of(spec, size)
    shared = {n: getattr(model, n).detach() for n, _ in spec.tensors}
    out = model.loss_l(batch)
    assert out.shape == (), text
    if out.requires_grad:  # a loss also trains: its gradient reaches the tensors
        out.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None), text
    out = out.detach()
    meaning = oracle(graph)
    inner = loss.args[0]
    if inner.type.batched:
        values = per_sample(lambda env: meaning.value(inner, env), batch, shared)
    else:
        values = meaning.value(inner, shared)
    torch.testing.assert_close(out, values.mean(), rtol=1e-4, atol=1e-5, msg=lambda m: f"{m}\n{text}")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(network_case())
def test_network_expressions_mean_what_they_say_per_sample(case) -> None:
    check_network(*case)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(network_case(max_depth=2))
def test_loss_expressions_mean_what_they_say_per_sample(case) -> None:
    spec, value, size = case
    check_loss(spec, value, size)


@pytest.mark.slow
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(network_case(max_depth=4))
def test_network_expressions_many(case) -> None:
    check_network(*case)


@pytest.mark.slow
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(network_case(max_depth=3))
def test_loss_expressions_many(case) -> None:
    check_loss(*case)


# ---- named regressions: the reproducers of issue 10 ----

def diagnostics_of(text: str) -> list:
    return [d for d in check_source(SourceFile(path="r.gen", text=text)).diagnostics if d.code.startswith("E")]


def test_index_by_an_int_picks_each_samples_entry() -> None:
    """Reproducer 1: `h[0]` is entry 0 of each sample (it compiled to sample 0 of the batch)."""
    graph, model = compile_spec("model R {\n  net first(h: real[2]) -> real { h[0] }\n}\n")
    h = torch.randn(5, 2)
    torch.testing.assert_close(model.first(h), h[:, 0])


def test_a_number_per_sample_times_a_vector_scales_each_sample() -> None:
    """Reproducer 1: `s(h) * h` with s one number per sample, h real[3], at a batch of 3 (where
    [B] * [B, 3] silently broadcast the batch against the vector)."""
    graph, model = compile_spec("model R {\n  net s(h: real[3]) -> real { sum(h, dim=0) }\n"
                                "  net f(h: real[3]) -> real[3] { s(h) * h }\n}\n")
    h = torch.randn(3, 3)
    torch.testing.assert_close(model.f(h, model.s), h.sum(1, keepdim=True) * h)


def test_sum_and_mean_over_the_batch_only_in_losses() -> None:
    """Reproducer 1: `sum(h)` in a network reduced the whole batch; now it is E236 with a hint."""
    found = diagnostics_of("model R {\n  net f(h: real[2]) -> real { sum(h) }\n}\n")
    assert [d.code for d in found] == ["E236"]
    assert "dim=0" in found[0].hint
    graph, model = compile_spec("model R {\n  net f(h: real[2, 3]) -> real[2] { mean(h, dim=-1) + sum(h, dim=[1]) }\n}\n")
    h = torch.randn(4, 2, 3)
    torch.testing.assert_close(model.f(h), h.mean(-1) + h.sum(-1))


DIFFUSION = """model R {
  data x: real[2] from ring()
  diffusion q(x) = Gaussian(steps=20)
  denoiser eps(x_t: real[2], t: step) -> real[2] {
    concat(x_t, sinusoidal(t, 8)) |> Linear(16) |> silu |> Linear(2)
  }
  loss simple = LOSS
  train { minimize simple; batch 8; steps 2 }
  sample x = SAMPLE
}
"""


def test_method_options_are_refused_with_what_exists() -> None:
    """Reproducer 2: options of q.reverse, q.loss and f.inverse were dropped silently."""
    found = diagnostics_of(DIFFUSION.replace("LOSS", "q.loss(eps, banana=1)")
                           .replace("SAMPLE", "q.reverse(eps, steps=50, eta=0)"))
    assert [(d.code, d.message) for d in found] == [
        ("E221", "q.loss has no argument 'banana'"),
        ("E328", "q.reverse takes at most the 20 steps of its process, got steps=50")]  # DDIM's steps
    assert found[1].hint == "write steps=20 or fewer"
    typo = diagnostics_of(DIFFUSION.replace("LOSS", "q.loss(epss=eps)").replace("SAMPLE", "q.reverse(eps)"))[0]
    assert (typo.code, typo.message, typo.hint) == ("E221", "q.loss has no argument 'epss'", "did you mean 'eps'?")
    flow = ("model R {\n  data x: real[2] from ring()\n  latent z: real[2] ~ Normal(0, 1)\n"
            "  flow f(x) <-> z { repeat 2 { AffineCoupling(hidden=[8]) } }\n  loss nll = -log p(x)\n"
            "  train { minimize nll; batch 8; steps 2 }\n  sample x = f.inverse(z, temperature=0.7)\n}\n")
    (refused,) = diagnostics_of(flow)
    assert refused.code == "E221" and "f.inverse(0.7 * z)" in refused.hint


def test_diffusion_methods_compile_from_their_registry_entries() -> None:
    """q.loss and q.reverse still emit the process's code (one loss number, n samples)."""
    graph, model = compile_spec(DIFFUSION.replace("LOSS", "q.loss(eps)").replace("SAMPLE", "q.reverse(eps)"))
    assert model.loss_simple({"x": torch.randn(6, 2)}).shape == ()
    assert model.sample_x(5, {"x": torch.randn(6, 2)}).shape == (5, 2)


def train_two_steps(model, batch: dict[str, torch.Tensor], loss: str) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        optimizer.zero_grad()
        value = getattr(model, f"loss_{loss}")(batch)
        value.backward()
        optimizer.step()
        assert torch.isfinite(value)


def test_attention_over_a_shared_codebook_trains() -> None:
    """Reproducer 3a: hard_attend(h, codebook, codebook) with a shared `tensor` as keys passed check
    and crashed at train (the helper assumed batched keys); concat with a shared tensor likewise."""
    text = ("model R {\n  data x: real[2] from ring()\n  tensor codebook: real[5, 8] = normal\n"
            "  net f(h: real[2]) -> real[8] { hard_attend(h |> Linear(8), codebook, codebook) }\n"
            "  net g(h: real[2]) -> real[8] { attend(h |> Linear(8), codebook, codebook) }\n"
            "  net c(h: real[2]) -> real[10] { concat(h, codebook[0]) }\n"
            "  loss l = mse(f(x), 0) + mse(g(x), 0) + mse(c(x), 0)\n"
            "  train { minimize l; batch 4; steps 2 }\n}\n")
    graph, model = compile_spec(text)
    h = torch.randn(3, 2)
    with torch.no_grad():
        query = model.f.out(h)
        best = (query @ model.codebook.T).argmax(-1)
        torch.testing.assert_close(model.f(h, model.codebook), model.codebook[best])
        torch.testing.assert_close(model.c(h, model.codebook), torch.cat([h, model.codebook[0].expand(3, 8)], 1))
    train_two_steps(model, {"x": torch.randn(4, 2)}, "l")


def test_network_calling_a_network_with_a_tensor() -> None:
    """A network that calls a network using a model tensor passes the tensor on."""
    graph, model = compile_spec("model R {\n  tensor w: real[2] = normal\n  net g(u: real[2]) -> real[2] { u * w }\n"
                                "  net f(h: real[2]) -> real[2] { g(h) + h }\n}\n")
    h = torch.randn(3, 2)
    out = model.f(**forward_arguments(model.f, {"h": h}, model))
    torch.testing.assert_close(out, h * model.w + h)


def test_a_pipeline_on_a_shared_tensor_gives_one_shared_value() -> None:
    """Layers act on one sample: a shared tensor goes through them once (as a batch of one)."""
    graph, model = compile_spec("model R {\n  tensor book: real[5, 3] = normal\n"
                                "  net f(h: real[4]) -> real[4] { (book |> Linear(4))[0] + h }\n}\n")
    h = torch.randn(2, 4)
    with torch.no_grad():
        expected = model.f.out(model.book)[0] + h
        torch.testing.assert_close(model.f(h, model.book), expected)
    (found,) = diagnostics_of("model R {\n  tensor book: real[3] = normal\n"
                              "  net f(h: real[3]) -> real[3] { (book |> BatchNorm) + h }\n}\n")
    assert found.code == "E220" and "LayerNorm" in found.hint


def test_a_network_returning_a_constant_or_a_shared_value_gives_one_per_sample() -> None:
    graph, model = compile_spec("model R {\n  tensor w: real[2] = normal\n  net c(h: real[3]) -> real { 3 }\n"
                                "  net s(h: real[3]) -> real[2] { w }\n}\n")
    h = torch.randn(4, 3)
    torch.testing.assert_close(model.c(h), torch.full((4,), 3.0))
    torch.testing.assert_close(model.s(h, model.w), model.w.expand(4, 2))


def test_a_draw_with_shared_parameters_is_one_draw_per_sample() -> None:
    """`x ~ Normal(mu, 1)` in a decoder, mu a shared tensor: each sample draws its own x."""
    graph, model = compile_spec(
        "model R {\n  data x: real[2] from ring()\n  latent z: real[2] ~ Normal(0, 1)\n  tensor mu: real[2] = zeros\n"
        "  encoder q(z | x) { z ~ Normal(x |> Linear(2), 1) }\n  decoder p(x | z) { x ~ Normal(mu, 1) }\n"
        "  loss elbo = -log p(x | z) + kl(q(z | x), p(z))\n  sample x ~ p(x | z)\n}\n")
    draws = model.sample_x(5, {"x": torch.randn(6, 2)})
    assert draws.shape == (5, 2) and draws.std(0).min() > 0
    x = torch.randn(3, 2)
    log_p = model.p_x(torch.randn(3, 2), model.mu).log_prob(x)
    torch.testing.assert_close(log_p, torch.distributions.Normal(model.mu, 1).log_prob(x).sum(-1))
