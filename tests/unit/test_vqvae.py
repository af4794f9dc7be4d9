"""VQ-VAE's constructs mean what docs/language.md says: `Nearest(v, codebook)` draws the index of
the nearest codebook row (L2) with probability 1; the straight-through loss sends the decoder's
gradient to the encoder and none to the codebook; an autoregressive prior over a latent grid of
labels is a normalized density, and `draw_k` draws from it; misuses are refused."""

from __future__ import annotations

import itertools

import pytest
import torch

from gendsl.codegen import generate, load_generated
from gendsl.graph.check import check_source
from gendsl.source import SourceFile

SPEC = """model V {
  data x: real[4] from npz(path="d.npz")
  tensor codebook: real[K, 2] = normal(std=1.0)
  latent k: cat[K, 2] ~ p(k)
  net encode(x) -> real[2, 2] { x |> Linear(4) |> reshape(2, 2) }
  net decode(e: real[2, 2]) -> real[4] { e |> reshape(4) |> Linear(4) }
  encoder q(k | x) { k ~ Nearest(encode(x), codebook) }
  autoregressive p(k) { k ~ Categorical(logits = onehot(k) |> shift |> GRU(8) |> Linear(K)) }
  loss recon = mse(decode(encode(x) + detach(codebook[k] - encode(x))), x)
  loss codes = mse(codebook[k], detach(encode(x)))
  loss prior = -log p(k)
  loss total = recon + codes + prior
  train { minimize total; batch 8; steps 2 }
  sample x = decode(codebook[k])
}
"""


def build(text: str = SPEC, classes: int = 3):
    text = text.replace("K", str(classes))
    checked = check_source(SourceFile(path="v.gen", text=text))
    assert checked.ok, [f"{d.code} {d.message}" for d in checked.diagnostics]
    return load_generated(generate(checked.graph, "v.gen", text).source).build()


def errors(text: str) -> list[str]:
    text = text.replace("K", "3")
    return [d.code for d in check_source(SourceFile(path="v.gen", text=text)).diagnostics if d.severity == "error"]


def test_nearest_draws_the_closest_code_with_probability_one():
    torch.manual_seed(0)
    model = build()
    x = torch.randn(50, 4)
    q = model.q_k(x, model.encode, model.codebook)
    vectors = model.encode(x)                                          # [50, 2 positions, 2]
    by_hand = torch.cdist(vectors.reshape(-1, 2), model.codebook).argmin(-1).reshape(50, 2)
    assert torch.equal(q.sample(), by_hand) and torch.equal(q.sample(), by_hand)   # no randomness
    assert torch.equal(q.log_prob(by_hand), torch.zeros(50))
    other = (by_hand + 1) % 3
    assert torch.isinf(q.log_prob(other)).all()


def test_straight_through_gradient_reaches_the_encoder_not_the_codebook():
    torch.manual_seed(0)
    model = build()
    x = torch.randn(8, 4)
    model.loss_recon({"x": x}).backward()
    assert model.codebook.grad is None or torch.count_nonzero(model.codebook.grad) == 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encode.parameters())
    # the decoder is evaluated at the codes: the loss is the decoder's error at codebook[k]
    k = model.q_k(x, model.encode, model.codebook).sample()
    by_hand = ((model.decode(model.codebook[k]) - x) ** 2).mean()
    torch.testing.assert_close(model.loss_recon({"x": x}), by_hand)
    model.zero_grad()
    model.loss_codes({"x": x}).backward()                               # moves only the codebook
    assert model.codebook.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.encode.parameters())


def test_the_prior_over_the_code_grid_is_a_normalized_autoregressive_density():
    torch.manual_seed(0)
    model = build(classes=3)
    every = torch.tensor(list(itertools.product(range(3), repeat=2)))   # all 9 grids of 2 positions
    log_p = model.p_k(every).log_prob(every)
    torch.testing.assert_close(log_p.exp().sum(), torch.tensor(1.0))
    # position 0 does not see position 1: its logits are the same whatever follows
    logits = model.p_k(every).base_dist.logits
    torch.testing.assert_close(logits[:, 0], logits[:1, 0].expand(9, 3))
    # -log p(k) in a loss scores the encoder's codes under this density
    x = torch.randn(8, 4)
    k = model.q_k(x, model.encode, model.codebook).sample()
    torch.testing.assert_close(model.loss_prior({"x": x}), -model.p_k(k).log_prob(k).mean())


def test_draws_follow_the_prior():
    torch.manual_seed(0)
    model = build(classes=3)
    every = torch.tensor(list(itertools.product(range(3), repeat=2)))
    with torch.no_grad():
        want = model.p_k(every).log_prob(every).exp()
    draws = model.draw_k(20000)
    got = torch.bincount(draws[:, 0] * 3 + draws[:, 1], minlength=9) / 20000
    torch.testing.assert_close(got, want, atol=0.015, rtol=0)
    samples = model.sample_x(5)                                           # decode(codebook[k]), k ~ p(k)
    assert samples.shape == (5, 4)


@pytest.mark.parametrize("change, new, code", [
    ("codebook: real[K, 2]", "codebook: real[K, 3]", "E220"),            # vectors of width 2, codes of 3
    ("latent k: cat[K, 2]", "latent k: cat[5, 2]", "E226"),              # 3 codes, a latent of 5 labels
    ("latent k: cat[K, 2]", "latent k: cat[K, 3]", "E226"),              # 2 vectors, 3 positions
])
def test_nearest_that_does_not_fit_its_latent_is_refused(change, new, code):
    assert code in errors(SPEC.replace(change, new))


def test_an_autoregressive_prior_keeps_its_order():
    assert "E306" in errors(SPEC.replace("onehot(k) |> shift |> GRU(8)", "onehot(k) |> GRU(8)")) \
        or "E307" in errors(SPEC.replace("onehot(k) |> shift |> GRU(8)", "onehot(k) |> GRU(8)"))
