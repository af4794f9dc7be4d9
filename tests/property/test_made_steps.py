"""Sampling a MADE with each unit of its masked layers computed once (the generated MadeSteps,
docs/semantics.md, "Sampling an autoregressive block") means what one full pass of the block per
position means: at every step, the distribution of the position being drawn is the same, for every
MADE network the checker accepts (drawn as in test_order.py), for mask ensembles in each component's
order, and through the generated sampler itself."""

from __future__ import annotations

import re

import torch
from hypothesis import given
from hypothesis import strategies as st

from gendsl.codegen import generate, load_generated
from gendsl.graph.check import check_source
from gendsl.source import SourceFile
from tests.property.test_order import FAST, GOOD, data_type, flat_made_nets, spec, vector_nets

MADE_GOOD = {name: net for name, net in GOOD.items() if any("MaskedLinear" in line for line in net[1])}


def build(text: str, dtype: torch.dtype = torch.double):
    """The generated module and its model, every weight randomized."""
    checked = check_source(SourceFile("made.gen", text))
    assert checked.ok, [f"{d.code}: {d.message}" for d in checked.diagnostics]
    module = load_generated(generate(checked.graph, "made.gen", text).source)
    torch.manual_seed(0)
    model = module.build().to(dtype).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p))  # away from any zero initialization
    return module, model


MADE_NETS = st.one_of(vector_nets(), flat_made_nets())  # features of a vector, rows of a flattened sequence


def flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(len(t), -1)


def by_position(t: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """[B, positions, values of a position]: the rows of a sequence [T, C], else one value each (the
    features of a vector, the pixels of a one-channel image)."""
    return t.reshape(len(t), shape[0], -1) if len(shape) == 2 else t.reshape(len(t), -1, 1)


def held_back(x: torch.Tensor, shape: tuple[int, ...], order: list[int], rank: int) -> torch.Tensor:
    """What the sampler holds before drawing the position of rank `rank`: later positions still zero."""
    x = x.clone()
    by_position(x, shape)[:, order[rank:]] = 0
    return x


def assert_steps_match(module, factor, shape: tuple[int, ...], k: int = 0, consistent: bool = True) -> None:
    """At each rank r, the cached pass gives the logits of the position of rank r that a full pass gives
    (with `consistent` masks and degrees, from masked layers that compute each unit once)."""
    positions = by_position(torch.zeros(1, *shape), shape).shape[1]
    order = factor.ranks[k].argsort().tolist() if hasattr(factor, "ranks") else list(range(positions))
    x = torch.bernoulli(torch.full((4, *shape), 0.5, dtype=torch.double))
    inputs = [held_back(x, shape, order, r) for r in range(len(order))]
    factor.held_component = k if hasattr(factor, "ranks") else None

    def logits(xr: torch.Tensor, p: int) -> torch.Tensor:
        return by_position(factor(xr).base_dist.logits, shape)[:, p]

    with torch.no_grad():
        full = [logits(xr, p) for xr, p in zip(inputs, order, strict=True)]
        with module.MadeSteps(factor, k) as steps:
            assert steps.plans or not consistent, "no masked layer computed once"
            for rank, (xr, p) in enumerate(zip(inputs, order, strict=True)):
                steps.rank = rank
                cached = logits(xr, p)
                assert torch.allclose(cached, full[rank], rtol=1e-9, atol=1e-9), (rank, p, cached, full[rank])
    assert all(layer.steps is None for layer in factor.modules() if hasattr(layer, "steps"))  # left as found


def as_ensemble(lines: list[str], masks: int = 3) -> list[str]:
    return [re.sub(r"MaskedLinear\((\w+)\)", rf"MaskedLinear(\1, masks={masks}, order=random)", line) for line in lines]


@FAST
@given(net=MADE_NETS)
def test_made_steps_give_the_full_pass_logits(net) -> None:
    shape, lines = net
    module, model = build(spec(data_type(shape), lines))
    assert_steps_match(module, model.p_x, shape)


@FAST
@given(net=MADE_NETS, k=st.integers(0, 2))
def test_made_steps_follow_each_components_order(net, k: int) -> None:
    shape, lines = net
    module, model = build(spec(data_type(shape), as_ensemble(lines)))
    assert_steps_match(module, model.p_x, shape, k)


def test_named_made_networks() -> None:
    """The named networks of test_order.py that have masked layers: skips, constants, shift, images."""
    assert len(MADE_GOOD) >= 5
    for name, (shape, lines) in MADE_GOOD.items():
        module, model = build(spec(data_type(shape), lines))
        assert hasattr(module, "MadeSteps"), name
        assert_steps_match(module, model.p_x, shape)


def reference_sample(model, shape: tuple[int, ...], n: int, mean: bool) -> torch.Tensor:
    """What `sample x ~ p(x)` means, written out: one full pass per position, the position drawn from
    its own Bernoulli (test_position_draws.py holds the generated code to that)."""
    x = torch.zeros(n, *shape)
    for i in range(flat(x).shape[1]):
        dist = torch.distributions.Bernoulli(logits=flat(model.p_x(x).base_dist.logits)[:, i])
        flat(x)[:, i] = dist.mean if mean else dist.sample()
    return x


def test_generated_sampler_draws_what_full_passes_draw() -> None:
    text = spec("bin[D]", ["h = x |> MaskedLinear(hidden) |> relu |> MaskedLinear(hidden) |> tanh",
                           "x ~ Bernoulli(logits = (h |> MaskedLinear(D)) + (x |> MaskedLinear(D)))"],
                extra="  param D: int = 10\n  param hidden: int = 24\n")
    _, model = build(text, torch.float)  # the sampler's own precision
    with torch.no_grad():
        means = model.sample_x(6, mean=True)
        assert torch.allclose(means, reference_sample(model, (10,), 6, mean=True), rtol=1e-5, atol=1e-6)
        assert ((means > 0.01) & (means < 0.99)).all()  # real probabilities, not a saturated net
        torch.manual_seed(3)
        drawn = model.sample_x(500)
        torch.manual_seed(3)
        assert torch.equal(drawn, reference_sample(model, (10,), 500, mean=False))  # the same uniforms, the same draws


def test_masks_that_disagree_with_the_degrees_run_whole() -> None:
    """A mask loaded from elsewhere (here: one connection removed) is not what the degrees say: the
    sampler then makes full passes, which are exact for any masks."""
    shape, lines = MADE_GOOD["MADE outputs added to a hidden path and a constant"]
    module, model = build(spec(data_type(shape), lines))
    layer = next(m for m in model.p_x.modules() if type(m).__name__ == "MaskedLinear")
    assert module.MadeSteps(model.p_x).plans
    with torch.no_grad():
        layer.mask[layer.mask.nonzero()[0].tolist()] = 0
    assert module.MadeSteps(model.p_x).plans == {}
    assert_steps_match(module, model.p_x, shape, consistent=False)


def test_generated_sampler_of_categorical_positions_draws_what_full_passes_draw() -> None:
    """A MADE over K categories per position (one-hot inputs flattened, K logits per position, as
    specs/made_digits.gen): each step draws position i from its own K logits, like a full pass."""
    text = spec("cat[5, 6]", ["x ~ Categorical(logits = onehot(x) |> reshape(30) |> MaskedLinear(16) |> relu "
                              "|> MaskedLinear(30) |> reshape(6, 5))"])
    _, model = build(text, torch.float)
    with torch.no_grad():
        torch.manual_seed(3)
        drawn = model.sample_x(400)
        torch.manual_seed(3)
        x = torch.zeros(400, 6, dtype=torch.long)
        for i in range(6):
            x[:, i] = torch.distributions.Categorical(logits=model.p_x(x).base_dist.logits[:, i]).sample()
    assert torch.equal(drawn, x)
    assert len(drawn.unique()) == 5  # every category drawn: real probabilities, not a saturated net


def test_ensemble_sampler_over_sequence_rows_draws_what_full_passes_draw() -> None:
    """A mask ensemble over the rows of bin[4, 2] flattened: each sample's component k, then its rows
    in order k, each row's two values from one full pass of component k."""
    text = spec("bin[4, 2]", ["x ~ Bernoulli(logits = x |> reshape(8) |> MaskedLinear(12, masks=3, order=random) "
                              "|> relu |> MaskedLinear(8, masks=3, order=random) |> reshape(4, 2))"])
    _, model = build(text, torch.float)
    block = model.p_x
    with torch.no_grad():
        torch.manual_seed(5)
        drawn = model.sample_x(300)
        torch.manual_seed(5)
        x = torch.zeros(300, 4, 2)
        components = torch.randint(len(block.ranks), (300,))
        for k in components.unique().tolist():
            rows = (components == k).nonzero().flatten()
            x_k = x[rows]
            block.held_component = k
            for i in block.ranks[k].argsort().tolist():
                x_k[:, i] = torch.distributions.Bernoulli(logits=block(x_k).base_dist.logits[:, i]).sample()
            x[rows] = x_k
        block.held_component = None
    assert torch.equal(drawn, x)
    assert 0.05 < drawn.mean() < 0.95
