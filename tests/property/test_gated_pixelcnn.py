"""GatedMaskedConv2d (Gated PixelCNN, van den Oord et al. 2016) through the whole pipeline: every
stack the checker accepts is strictly causal in raster order (the Jacobian of the logits with
respect to the pixels is zero wherever output pixel i meets input pixel >= i), for mask A then
mask B layers of several kernels, one- and two-channel images; the two stacks see the pixels a
masked-convolution PixelCNN misses (its blind spot); stacks that would leak are refused."""

from __future__ import annotations

import pytest
import torch

from gendsl.codegen.helpers.autoregressive import GatedMaskedConv2d
from tests.property.test_order import assert_ordered, check, data_type, diagnostics, jacobian, spec


def gated(kernel_a: int, kernels_b: list[int], ch: int = 3, tail: str = "|> Conv2d(1, kernel=1)") -> str:
    stages = [f"GatedMaskedConv2d({ch}, kernel={kernel_a}, mask=A)"]
    stages += [f"GatedMaskedConv2d({ch}, kernel={k}, mask=B)" for k in kernels_b[:-1]]
    if kernels_b:
        stages.append(f"GatedMaskedConv2d({ch}, kernel={kernels_b[-1]}, mask=B, last=true)")
    return "x ~ Bernoulli(logits = x |> " + " |> ".join(stages) + f" {tail})"


CASES = [(1, []), (3, []), (3, [3]), (1, [1, 1]), (3, [3, 3, 3]), (5, [3, 5]), (7, [3, 3]), (3, [5, 1, 3])]


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("kernel_a, kernels_b", CASES)
def test_gated_stacks_are_strictly_causal(kernel_a: int, kernels_b: list[int], channels: int) -> None:
    shape = (channels, 5, 6)
    tail = f"|> relu |> Conv2d({channels}, kernel=1)"
    j = assert_ordered(spec(data_type(shape), [gated(kernel_a, kernels_b, tail=tail)]), shape)
    assert (j != 0).sum() > 0


def test_the_first_layer_alone_is_causal_as_a_whole() -> None:
    """Both stacks of a mask-A layer are strict: a 1x1 convolution over all 2*out channels is too."""
    text = spec("bin[1, 4, 5]", ["x ~ Bernoulli(logits = x |> GatedMaskedConv2d(2, mask=A) |> Conv2d(1, kernel=1))"])
    assert_ordered(text, (1, 4, 5))


def test_no_blind_spot() -> None:
    """Output pixel (i, j) sees (i - 1, j + 2), which no stack of 3x3 masked convolutions reaches."""
    shape = (1, 5, 6)
    i, j = 3, 2
    out = i * shape[2] + j
    above_right = (i - 1) * shape[2] + j + 2
    gated_j = jacobian(spec(data_type(shape), [gated(3, [3, 3, 3])]), shape)
    assert gated_j[out, above_right] != 0
    masked = ("x ~ Bernoulli(logits = x |> MaskedConv2d(3, kernel=3, mask=A) |> relu "
              "|> MaskedConv2d(3, kernel=3, mask=B) |> relu |> MaskedConv2d(3, kernel=3, mask=B) |> relu "
              "|> MaskedConv2d(3, kernel=3, mask=B) |> relu |> Conv2d(1, kernel=1))")
    assert jacobian(spec(data_type(shape), [masked]), shape)[out, above_right] == 0


def test_every_earlier_pixel_is_seen_with_enough_layers() -> None:
    """The horizontal stack of the last pixel depends on every earlier pixel of a small image."""
    shape = (1, 4, 4)
    j = jacobian(spec(data_type(shape), [gated(3, [3, 3, 3, 3])]), shape)
    assert (j[-1, :-1] != 0).all()


REFUSED = {
    "mask B first": "x |> GatedMaskedConv2d(2, mask=B) |> Conv2d(4, kernel=1)",
    "an activation between the gated layers": (
        "x |> GatedMaskedConv2d(2, mask=A) |> relu |> GatedMaskedConv2d(2, mask=B) |> Conv2d(1, kernel=1)"),
    "mask B after MaskedConv2d": (
        "x |> MaskedConv2d(4, mask=A) |> GatedMaskedConv2d(2, mask=B) |> Conv2d(1, kernel=1)"),
    "mask B after the last layer": ("x |> GatedMaskedConv2d(4, mask=A, last=true) |> GatedMaskedConv2d(2, mask=B) "
                                    "|> Conv2d(1, kernel=1)"),
    "mask B on the sum of two stacks": (
        "(x |> GatedMaskedConv2d(2, mask=A)) + (x |> GatedMaskedConv2d(2, mask=A)) |> GatedMaskedConv2d(2, mask=B) "
        "|> Conv2d(1, kernel=1)"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_stacks_that_would_leak_are_refused(name: str) -> None:
    data = "bin[4, 4, 4]" if name == "mask B first" else "bin[1, 4, 4]"  # four channels: two stacks of two
    found = diagnostics(spec(data, [f"x ~ Bernoulli(logits = {REFUSED[name]})"]))
    assert [d.split(":")[0] for d in found] == ["E306"], found


@pytest.mark.parametrize("kernel", [1, 3, 5])
def test_mask_b_leaks_on_an_input_that_is_not_its_stacks(kernel: int) -> None:
    """Why mask B needs the stacks: on an arbitrary image its vertical convolution reads the
    current row, so pixel i sees later pixels; the refusal above is not overcautious."""
    torch.manual_seed(0)
    layer = GatedMaskedConv2d(2, 1, max(kernel, 3), mask="B", last=True).double()
    x = torch.randn(1, 2, 4, 4, dtype=torch.double, requires_grad=True)
    layer(x)[0, 0, 1, 1].backward()
    assert x.grad[0, :, 1, 2:].abs().sum() > 0  # later pixels in the same row


def test_mask_b_needs_both_stacks_of_its_width() -> None:
    text = spec("bin[1, 4, 4]", ["x ~ Bernoulli(logits = x |> GatedMaskedConv2d(3, mask=A) "
                                 "|> GatedMaskedConv2d(2, mask=B) |> Conv2d(1, kernel=1))"])
    checked = [d for d in check(text).diagnostics if d.is_error]
    assert len(checked) == 1 and "needs 4 input channels, got 6" in checked[0].message
    assert checked[0].hint and checked[0].span is not None
