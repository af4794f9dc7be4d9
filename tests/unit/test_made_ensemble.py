"""A MADE ensemble (`MaskedLinear(n, masks=K, order=random)`, docs/semantics.md, "Mask
ensembles") compiles to what it means: each component k is an autoregressive model in its own
order, the mixture is a normalized density, `log_prob` is log (1/K) sum_k p_k(x) computed by
hand, sampling draws from that mixture, training draws one component per evaluation, and the
masks and orders are buffers of the checkpoint. The checker refuses what it cannot honour (E335)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from gendsl.codegen import generate, load_generated
from gendsl.graph.check import check_source
from gendsl.source import SourceFile

D, K = 5, 3


def spec(lines: list[str], data: str = f"bin[{D}]") -> str:
    body = "\n    ".join(lines)
    return (f"model Ensemble {{\n  data x: {data} from npy(\"x.npy\")\n"
            f"  autoregressive p(x) {{\n    {body}\n  }}\n"
            "  loss nll = -log p(x)\n  train { optimizer Adam(lr=1e-3); minimize nll; batch 8; steps 1 }\n"
            "  sample x ~ p(x)\n  evaluate { nll }\n}\n")


ENSEMBLE = spec([f"h = x |> MaskedLinear(12, masks={K}, order=random) |> relu",
                 f"x ~ Bernoulli(logits = (h |> MaskedLinear({D}, masks={K}, order=random)) "
                 f"+ (x |> MaskedLinear({D}, masks={K}, order=random)))"])


def build(text: str = ENSEMBLE):
    checked = check_source(SourceFile("ensemble.gen", text))
    assert checked.ok, [f"{d.code}: {d.message}" for d in checked.diagnostics]
    module = load_generated(generate(checked.graph, "ensemble.gen", text).source)
    torch.manual_seed(0)
    model = module.build().double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p))  # away from any zero initialization
    return module, model


def every_vector() -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=D)), dtype=torch.double)


def component_log_prob(model, x: torch.Tensor, k: int) -> torch.Tensor:
    """log p_k(x), by hand from the logits of component k."""
    model.p_x.held_component = k
    try:
        logits = model.p_x(x).base_dist.logits
    finally:
        model.p_x.held_component = None
    return (x * torch.nn.functional.logsigmoid(logits) + (1 - x) * torch.nn.functional.logsigmoid(-logits)).sum(-1)


def test_each_component_is_autoregressive_in_its_own_order() -> None:
    _, model = build()
    ranks = model.p_x.ranks
    assert ranks.shape == (K, D) and len({tuple(r.tolist()) for r in ranks}) > 1  # random orders
    x = every_vector()
    for k in range(K):
        model.p_x.held_component = k
        base = model.p_x(x).base_dist.logits
        for j in range(D):
            flipped = x.clone()
            flipped[:, j] = 1 - flipped[:, j]
            changed = (model.p_x(flipped).base_dist.logits - base).abs().amax(0) > 1e-12
            # the conditional of position i changes only if j comes before i in order k
            allowed = ranks[k] > ranks[k, j]
            assert not (changed & ~allowed).any(), (k, j)
        model.p_x.held_component = None
        assert sorted(ranks[k].tolist()) == list(range(D))


def test_the_mixture_is_normalized_and_log_prob_is_its_log_mean_exp() -> None:
    _, model = build()
    x = every_vector()
    by_hand = torch.stack([component_log_prob(model, x, k) for k in range(K)])
    for k in range(K):
        assert torch.allclose(by_hand[k].exp().sum(), torch.tensor(1.0, dtype=torch.double))
    log_p = model.log_prob({"x": x})
    assert torch.allclose(log_p, torch.logsumexp(by_hand, 0) - math.log(K))
    assert torch.allclose(log_p.exp().sum(), torch.tensor(1.0, dtype=torch.double))
    assert (by_hand.max(0).values - by_hand.min(0).values).max() > 1e-3  # the components differ


def test_samples_follow_the_mixture() -> None:
    _, model = build()
    model.float()  # samples are drawn in the default dtype
    torch.manual_seed(1)
    n = 20000
    samples = model.sample_x(n)
    codes = (samples * 2 ** torch.arange(D - 1, -1, -1)).sum(-1).long()
    freq = torch.bincount(codes, minlength=2 ** D).double() / n
    p = model.log_prob({"x": every_vector().float()}).exp().double()
    assert (freq - p).abs().max() < 4 * math.sqrt(0.25 / n) + 1e-3
    assert model.p_x.held_component is None


def test_training_draws_one_component_per_evaluation() -> None:
    _, model = build()
    x = every_vector()
    torch.manual_seed(2)
    values = {round(float(model.loss_nll({"x": x}).detach()), 9) for _ in range(40)}
    by_hand = {round(float(-component_log_prob(model, x, k).mean().detach()), 9) for k in range(K)}
    assert values == by_hand  # each evaluation is one component's loss, and every component comes up


def test_masks_and_orders_are_saved_with_the_weights() -> None:
    module, model = build()
    state = model.state_dict()
    assert state["p_x.ranks"].shape == (K, D)
    masks = [v for name, v in state.items() if name.endswith(".mask")]
    assert masks and all(m.shape[0] == K and m.dim() == 3 for m in masks)
    torch.manual_seed(5)  # another seed: the masks come from MadeDegrees's own generator, not from it
    fresh = module.build().double()
    fresh.load_state_dict(state)
    x = every_vector()
    assert torch.allclose(fresh.log_prob({"x": x}), model.log_prob({"x": x}))


def test_a_single_random_order_is_one_permuted_made() -> None:
    text = spec(["x ~ Bernoulli(logits = x |> MaskedLinear(12, order=random) |> relu "
                 f"|> MaskedLinear({D}, order=random))"])
    _, model = build(text)
    assert model.p_x.ranks.shape == (1, D)
    x = every_vector()
    assert torch.allclose(model.log_prob({"x": x}).exp().sum(), torch.tensor(1.0, dtype=torch.double))
    assert torch.allclose(model.log_prob({"x": x}), component_log_prob(model, x, 0))


REFUSED = {
    "different settings in one block": [
        f"x ~ Bernoulli(logits = x |> MaskedLinear(8, masks={K}, order=random) |> relu |> MaskedLinear({D}))"],
    "random order through shift": [
        f"x ~ Bernoulli(logits = x |> shift |> MaskedLinear(8, masks={K}, order=random) |> relu "
        f"|> MaskedLinear({D}, masks={K}, order=random))"],
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused(name: str) -> None:
    checked = check_source(SourceFile("ensemble.gen", spec(REFUSED[name])))
    assert [d.code for d in checked.diagnostics if d.is_error] == ["E335"]


def test_refused_outside_an_autoregressive_block() -> None:
    text = ("model M {\n  data x: real[4] from npy(\"x.npy\")\n"
            "  net f(x) -> real[4] { x |> MaskedLinear(8, masks=2) |> relu |> MaskedLinear(4, masks=2) }\n"
            "  loss l = mse(f(x), x)\n  train { minimize l; batch 8; steps 1 }\n}\n")
    checked = check_source(SourceFile("m.gen", text))
    assert [d.code for d in checked.diagnostics if d.is_error] == ["E335"]


def test_zero_masks_is_refused() -> None:
    checked = check_source(SourceFile("ensemble.gen", spec(
        [f"x ~ Bernoulli(logits = x |> MaskedLinear(8, masks=0) |> relu |> MaskedLinear({D}, masks=0))"])))
    assert checked.diagnostics and all(d.is_error for d in checked.diagnostics)
