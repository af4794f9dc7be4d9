"""Numerical properties of the run-time layers that carry a model's correctness: flows invert
and report the true log-determinant; MADE and PixelCNN masks respect the autoregressive order."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gendsl.codegen.helpers.autoregressive import MaskedConv2d, MaskedLinear, made_masks
from gendsl.codegen.helpers.flows import (
    ActNorm, AffineCoupling, FlowSequence, InvertibleLinear, Reverse, SplineCoupling,
)

LAYERS = {
    "coupling": lambda d: AffineCoupling(d, [16, 16]),
    "coupling_odd": lambda d: AffineCoupling(d, [8], mask="odd"),
    "spline": lambda d: SplineCoupling(d, [16], bins=4, bound=1.5),  # inputs fall inside and outside
    "spline_odd": lambda d: SplineCoupling(d, [8], bins=2, bound=3.0, mask="odd"),
    "actnorm": ActNorm,
    "linear": InvertibleLinear,
    "reverse": lambda d: Reverse(),
}


def randomize(module: torch.nn.Module) -> None:
    """Couplings start as the identity (zero last layer): give every weight a random value."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))


@settings(max_examples=25, deadline=None)
@given(dim=st.integers(2, 6), kinds=st.lists(st.sampled_from(sorted(LAYERS)), min_size=1, max_size=5),
       seed=st.integers(0, 1000))
def test_flows_invert_and_report_the_log_determinant(dim: int, kinds: list[str], seed: int) -> None:
    torch.manual_seed(seed)
    flow = FlowSequence(*(LAYERS[k](dim) for k in kinds)).double()
    x = torch.randn(4, dim, dtype=torch.double)
    flow(x)  # ActNorm sets itself from the first batch
    randomize(flow)
    z, logdet = flow(x)
    torch.testing.assert_close(flow.inverse(z), x)
    for i in range(len(x)):
        jacobian = torch.autograd.functional.jacobian(lambda row: flow(row[None])[0][0], x[i])
        torch.testing.assert_close(logdet[i], torch.linalg.slogdet(jacobian)[1])


@settings(max_examples=20, deadline=None)
@given(dim=st.integers(2, 12), hidden=st.lists(st.integers(1, 20), min_size=1, max_size=3), seed=st.integers(0, 1000))
def test_made_output_d_depends_only_on_earlier_inputs(dim: int, hidden: list[int], seed: int) -> None:
    torch.manual_seed(seed)
    widths = [dim, *hidden, dim]
    layers = [MaskedLinear(a, b) for a, b in zip(widths, widths[1:])]
    made_masks(layers, dim, seed)
    net = torch.nn.Sequential(*(m for layer in layers for m in (layer, torch.nn.Tanh())))
    jacobian = torch.autograd.functional.jacobian(lambda x: net(x[None])[0], torch.randn(dim))
    assert torch.all(jacobian.triu() == 0)  # d(out_d)/d(x_j) = 0 for every j >= d


@settings(max_examples=10, deadline=None)
@given(size=st.integers(3, 7), kernel=st.sampled_from([3, 5]), layers=st.integers(0, 3), seed=st.integers(0, 1000))
def test_pixelcnn_pixel_depends_only_on_pixels_before_it(size: int, kernel: int, layers: int, seed: int) -> None:
    torch.manual_seed(seed)
    stack = [MaskedConv2d(1, 4, kernel, mask="A")] + [MaskedConv2d(4, 4, 3, mask="B") for _ in range(layers)]
    net = torch.nn.Sequential(*(m for conv in stack for m in (conv, torch.nn.Tanh())), torch.nn.Conv2d(4, 1, 1))
    image = torch.randn(1, 1, size, size)
    jacobian = torch.autograd.functional.jacobian(lambda x: net(x).flatten(), image).reshape(size * size, size * size)
    assert torch.all(jacobian.triu() == 0)  # raster order: pixel i sees only pixels before it
