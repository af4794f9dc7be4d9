"""Sampling an image block over the rows a pixel reads only (docs/semantics.md, "Sampling an
autoregressive block") means what a pass over the whole image means: for every image network the
checker accepts (drawn as in test_order.py, on images tall enough for the crop), the distribution
at each pixel of row h computed from rows h - R .. h equals the one from the whole image, R being
the bound the generated sampler uses; and the generated sampler draws what full passes draw."""

from __future__ import annotations

import re

import torch
from hypothesis import given
from hypothesis import strategies as st

from gendsl.codegen import generate
from gendsl.graph.check import check_source
from gendsl.source import SourceFile
from tests.property.test_made_steps import build
from tests.property.test_order import FAST, Block, _strictly, data_type, image_value, spec


@st.composite
def tall_image_nets(draw):
    c, h, w = draw(st.integers(1, 2)), draw(st.integers(5, 8)), draw(st.integers(2, 5))
    b = Block(draw)
    e, ch, strict = image_value(b, c, draw(st.integers(0, 4)))
    return (c, h, w), b.finish(f"({_strictly(b, e, ch, strict, image=True)} |> Conv2d({c}, kernel=1))")


def generated(shape: tuple[int, ...], lines: list[str]):
    """The generated module and model of the block, and the R of its sampler (None: whole images)."""
    text = spec(data_type(shape), lines)
    module, model = build(text)
    return module, model, bound_of(text)


def bound_of(text: str) -> int | None:
    """The R of the generated sampler's `top = max(h - R, 0)`, None where it passes whole images."""
    source = generate(check_source(SourceFile("rows.gen", text)).graph, "rows.gen", text).source
    found = re.search(r"top = max\(h - (\d+), 0\)", source)
    return int(found[1]) if found else None


def crop_differs(model, shape: tuple[int, ...], rows: int) -> list[int]:
    """The rows h whose distribution's parameters, from rows h - rows .. h alone, differ from the whole pass's."""
    x = torch.randn(3, *shape, dtype=torch.double)  # no zeros that a crop's padding could match
    with torch.no_grad():
        full = model.p_x(x).base_dist.logits
        cropped = [model.p_x(x[:, :, max(h - rows, 0):h + 1]).base_dist.logits[:, :, min(h, rows)]
                   for h in range(shape[1])]
    return [h for h in range(shape[1]) if not torch.allclose(cropped[h], full[:, :, h], rtol=1e-9, atol=1e-9)]


@FAST
@given(net=tall_image_nets())
def test_the_rows_a_pixel_reads_give_its_distribution(net) -> None:
    shape, lines = net
    module, model, rows = generated(shape, lines)
    if rows is not None:
        assert rows + 1 < shape[1]
        assert crop_differs(model, shape, rows) == []
    elif not any("SelfAttention" in line for line in lines):  # only attention has no bound
        assert bound_of(spec(data_type((shape[0], 40, shape[2])), lines)) is not None, lines


NAMED = {
    "PixelCNN": ["x ~ Bernoulli(logits = x |> MaskedConv2d(4, kernel=7, mask=A) |> relu "
                 "|> repeat 2 { MaskedConv2d(4, kernel=3, mask=B) |> relu } |> Conv2d(4, kernel=1) |> relu "
                 "|> Conv2d(1, kernel=1))"],
    "Gated PixelCNN": ["x ~ Bernoulli(logits = x |> GatedMaskedConv2d(3, kernel=5, mask=A) "
                       "|> GatedMaskedConv2d(3, kernel=3, mask=B) |> GatedMaskedConv2d(3, kernel=3, mask=B, last=true) "
                       "|> relu |> Conv2d(1, kernel=1))"],
    "shift then mask B, with a residual": ["h = x |> shift |> MaskedConv2d(3, kernel=3, mask=B) |> relu",
                                           "x ~ Bernoulli(logits = (h + (h |> MaskedConv2d(3, kernel=5, mask=B))) "
                                           "|> Conv2d(1, kernel=1))"],
}


def test_named_networks_read_few_rows() -> None:
    expected = {"PixelCNN": 3 + 2, "Gated PixelCNN": 2 + 1 + 1 + 1, "shift then mask B, with a residual": 1 + 1 + 2}
    for name, lines in NAMED.items():
        module, model, rows = generated((1, 12, 6), lines)
        assert rows == expected[name], (name, rows)
        assert crop_differs(model, (1, 12, 6), rows) == []
        assert crop_differs(model, (1, 12, 6), rows - 1) == list(range(rows, 12)), name  # the bound is tight


def test_attention_passes_whole_images() -> None:
    lines = ["x ~ Bernoulli(logits = x |> MaskedConv2d(3, kernel=3, mask=A) |> SelfAttention(heads=1, causal=true) "
             "|> Conv2d(1, kernel=1))"]
    assert generated((1, 12, 6), lines)[2] is None


def test_generated_sampler_draws_what_full_passes_draw() -> None:
    _, model = build(spec(data_type((1, 12, 6)), NAMED["PixelCNN"]), torch.float)
    x = torch.zeros(5, 1, 12, 6)
    with torch.no_grad():
        for i in range(72):
            h, w = divmod(i, 6)
            x[:, :, h, w] = model.p_x(x).mean[:, :, h, w]
        means = model.sample_x(5, mean=True)
    assert torch.allclose(means, x, rtol=1e-5, atol=1e-6)
    assert ((means > 0.01) & (means < 0.99)).all()
