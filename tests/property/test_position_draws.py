"""An autoregressive sampler draws each position from that position's own distribution (the
family's per-position constructor, library/distributions.py; docs/semantics.md, "Sampling an
autoregressive block"): for Bernoulli, Normal and Categorical blocks over vectors, sequences and
images, the generated sampler gives exactly what one full pass per position gives when the
position's values are drawn from the whole distribution's parameters at that position, with the
same random numbers (to float rounding for real values: a MADE's units are computed once); the
mean mode too."""

from __future__ import annotations

import pytest
import torch

from tests.property.test_made_steps import build
from tests.property.test_order import spec

CASES = {
    "Bernoulli, MADE vector": (
        "bin[6]", (6,), ["x ~ Bernoulli(logits = x |> MaskedLinear(9) |> relu |> MaskedLinear(6))"]),
    "Normal, MADE vector, learned scale": (
        "real[5]", (5,), ["h = x |> MaskedLinear(8) |> tanh",
                          "x ~ Normal(loc = h |> MaskedLinear(5), scale = h |> MaskedLinear(5) |> exp)"]),
    "Normal, constant scale": ("real[4]", (4,), ["x ~ Normal(loc = x |> MaskedLinear(4), scale = 0.5)"]),
    "Categorical, sequence of labels": (
        "cat[3, 6]", (6,), ["x ~ Categorical(logits = onehot(x) |> shift |> GRU(4) |> Linear(3))"]),
    "Bernoulli, rows of a sequence": (
        "bin[5, 3]", (5, 3), ["x ~ Bernoulli(logits = x |> shift |> GRU(4) |> Linear(3))"]),
    "Bernoulli, PixelCNN image": (
        "bin[2, 7, 4]", (2, 7, 4), ["x ~ Bernoulli(logits = x |> MaskedConv2d(3, kernel=3, mask=A) |> relu "
                                     "|> MaskedConv2d(3, kernel=3, mask=B) |> relu |> Conv2d(2, kernel=1))"]),
}
PARAMS = {"Bernoulli": ("logits",), "Normal": ("loc", "scale"), "Categorical": ("logits",)}


def positions(shape: tuple[int, ...]) -> list[tuple]:
    """The index after the batch of each position, in order."""
    if len(shape) == 3:
        return [(slice(None), h, w) for h in range(shape[1]) for w in range(shape[2])]
    return [(i,) for i in range(shape[0])]


@torch.no_grad()
def full_passes(model, shape: tuple[int, ...], n: int, mean: bool, labels: bool) -> torch.Tensor:
    """One pass of the block per position; the position drawn from the whole distribution's parameters there."""
    x = torch.zeros(n, *shape, dtype=torch.long if labels else torch.float)
    for index in positions(shape):
        base = model.p_x(x).base_dist
        family = type(base).__name__
        dist = type(base)(**{name: getattr(base, name)[(slice(None), *index)] for name in PARAMS[family]})
        x[(slice(None), *index)] = dist.mean if mean and not labels else dist.sample()
    return x


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_position_is_drawn_from_its_own_parameters(name: str) -> None:
    data, shape, lines = CASES[name]
    _, model = build(spec(data, lines), torch.float)
    labels = data.startswith("cat")
    with torch.no_grad():
        torch.manual_seed(5)
        drawn = model.sample_x(300)
        torch.manual_seed(5)
        expected = full_passes(model, shape, 300, mean=False, labels=labels)
        assert torch.allclose(drawn.float(), expected.float(), rtol=1e-5, atol=1e-5)  # discrete: equal
        assert drawn.float().std(0).min() > 0  # every position varies: the draws are real draws
        if not labels:
            assert torch.allclose(model.sample_x(4, mean=True), full_passes(model, shape, 4, mean=True, labels=False),
                                  rtol=1e-5, atol=1e-6)
