"""The generated modules and losses equal hand-written PyTorch on the same weights and noise."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gendsl.codegen import generate, load_generated
from gendsl.graph.check import check_file
from tests.conftest import SPECS
from tests.reference.handwritten import VAE, RingGAN


def compiled(spec: str, overrides: list[str]):
    checked = check_file(SPECS / spec, overrides)
    assert checked.ok, [d.message for d in checked.diagnostics]
    text = (SPECS / spec).read_text()
    return load_generated(generate(checked.graph, str(SPECS / spec), text).source).build()


def copy_linear(dst: torch.nn.Linear, src: torch.nn.Linear) -> None:
    dst.weight.data.copy_(src.weight.data)
    dst.bias.data.copy_(src.bias.data)


@settings(max_examples=6, deadline=None)
@given(latent=st.integers(1, 12), hidden=st.integers(1, 40), batch=st.integers(1, 9),
       beta=st.sampled_from([0.5, 1.0, 4.0]))
def test_vae_loss_equals_handwritten(latent: int, hidden: int, batch: int, beta: float) -> None:
    torch.manual_seed(0)
    model = compiled("vae.gen", [f"latent={latent}", f"hidden={hidden}", f"beta={beta}"])
    ref = VAE(784, hidden, latent)
    enc, dec = model.q_z, model.p_x
    copy_linear(ref.enc[0], enc.h[0])
    copy_linear(ref.enc[2], enc.h[2])
    copy_linear(ref.loc, enc.z_loc[0])
    copy_linear(ref.log_scale, enc.z_scale[0])
    copy_linear(ref.dec[0], dec.x_logits[0])
    copy_linear(ref.dec[2], dec.x_logits[2])
    copy_linear(ref.out, dec.x_logits[4])
    x = (torch.rand(batch, 784) < 0.3).float()
    torch.manual_seed(123)
    generated = model.loss_elbo({"x": x})
    torch.manual_seed(123)
    noise = torch.randn(batch, latent)  # the draw rsample makes from the same generator state
    expected = ref.loss(x, noise, beta)
    assert torch.allclose(generated, expected, atol=1e-6, rtol=1e-6), (generated, expected)


@settings(max_examples=6, deadline=None)
@given(width=st.integers(1, 64), batch=st.integers(1, 17), gamma=st.sampled_from([0.0, 1.0, 10.0]))
def test_gan_losses_equal_handwritten(width: int, batch: int, gamma: float) -> None:
    torch.manual_seed(1)
    model = compiled("gan_ring.gen", [f"width={width}", f"gamma={gamma}"])
    ref = RingGAN(64, width)
    for i in (0, 2, 4):
        copy_linear(ref.G[i], model.G.out[i])
        copy_linear(ref.D[i], model.D.out[i])
    x = torch.randn(batch, 2)
    torch.manual_seed(7)
    d_generated = model.step_critic({"x": x})
    torch.manual_seed(7)
    z = torch.randn(batch, 64)
    assert torch.allclose(d_generated, ref.d_loss(x, z, gamma), atol=1e-6, rtol=1e-6)
    torch.manual_seed(8)
    g_generated = model.step_gen({"x": x})
    torch.manual_seed(8)
    z = torch.randn(batch, 64)
    assert torch.allclose(g_generated, ref.g_loss(z), atol=1e-6, rtol=1e-6)


def test_gan_steps_move_only_their_networks() -> None:
    """`over D` compiles to a step whose backward reaches D's weights only (and G's for `over G`)."""
    model = compiled("gan_ring.gen", ["width=8"])
    x = torch.randn(5, 2)
    model.step_critic({"x": x}).backward()
    assert all(p.grad is not None for p in model.D.parameters())
    assert all(p.grad is None for p in model.G.parameters())
    model.zero_grad(set_to_none=True)
    model.step_gen({"x": x}).backward()
    assert all(p.grad is not None for p in model.G.parameters())
    assert all(p.grad is None for p in model.D.parameters())
