"""`pack N` means what docs/semantics.md says: a packed discriminator on a batch of B samples is
its body applied to the B/N groups of N consecutive samples concatenated along the first
per-sample axis, and a loss over its output is the mean over the groups."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from gendsl.codegen import generate, load_generated
from gendsl.graph.check import check_source
from gendsl.source import SourceFile

SPEC = """model Packed {
  param n: int = 2
  data x: real[2] from ring(modes=8)
  latent z: real[4] ~ Normal(0, 1)
  generator G(z) -> real[2] { z |> Linear(8) |> tanh |> Linear(2) }
  discriminator D(x) -> logit pack n { x |> Linear(5) |> leaky_relu(0.2) |> Linear(1) }
  loss d_loss = bce(D(x), 1) + bce(D(G(z)), 0)
  loss g_loss = bce(D(G(z)), 1)
  train {
    step critic: minimize d_loss over D
    step gen: minimize g_loss over G
    batch 12; eval_batch 12; steps 1
  }
  sample x = G(z)
}
"""


def compiled(n: int):
    checked = check_source(SourceFile("<packed>", SPEC), [f"n={n}"])
    assert checked.ok, [d.message for d in checked.diagnostics]
    return load_generated(generate(checked.graph, "packed.gen", SPEC).source).build()


def by_hand(body: torch.nn.Module, x: torch.Tensor, n: int) -> torch.Tensor:
    """The body on each group: samples g*n .. g*n+n-1 side by side, one logit per group."""
    groups = [torch.cat([x[g * n + j] for j in range(n)]) for g in range(len(x) // n)]
    return torch.stack([body(group[None])[0, 0] for group in groups])


@settings(max_examples=8, deadline=None)
@given(n=st.sampled_from([1, 2, 3, 4]), groups=st.integers(1, 5))
def test_packed_discriminator_is_its_body_on_concatenated_groups(n: int, groups: int) -> None:
    torch.manual_seed(n)
    model = compiled(n)
    assert model.D.out[0].in_features == 2 * n   # the body's input type is real[2 * n]
    x = torch.randn(n * groups, 2)
    out = model.D(x)
    assert out.shape == (groups,)
    assert torch.allclose(out, by_hand(model.D.out, x, n), atol=1e-6)


@settings(max_examples=6, deadline=None)
@given(n=st.sampled_from([1, 2, 3]), groups=st.integers(1, 4))
def test_loss_is_the_mean_over_the_groups(n: int, groups: int) -> None:
    torch.manual_seed(0)
    model = compiled(n)
    x = torch.randn(n * groups, 2)
    torch.manual_seed(7)
    generated = model.loss_d_loss({"x": x})
    torch.manual_seed(7)
    z = torch.randn(n * groups, 4)           # the prior's draw, from the same generator state
    real = by_hand(model.D.out, x, n)
    fake = by_hand(model.D.out, model.G(z), n)
    expected = F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) \
        + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    assert torch.allclose(generated, expected, atol=1e-6), (generated, expected)


def test_a_batch_that_does_not_divide_is_refused_at_run_time() -> None:
    model = compiled(2)
    try:
        model.D(torch.randn(3, 2))
    except ValueError as exc:
        assert "multiple of 2" in str(exc)
    else:
        raise AssertionError("a batch of 3 packed by 2 ran")
