"""Learned reverse variances (`Gaussian(..., variance=learned)`, Nichol & Dhariwal 2021): the
generated hybrid loss, reverse step, bound and guidance compute the paper's formulas (checked against
hand-written float64 references on small tensors), and the checker refuses what the compiler
cannot honour."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributions as D

from tests.unit.test_ddim_guidance import alpha_bars, build, errors

LEARNED = """model V {
  data x: real[64] from digits()
  diffusion q(x) = Gaussian(steps=12, betas=cosine(), levels=17, variance=learned)
  denoiser eps(x_t: real[64], t: step) -> real[128] {
    concat(x_t, sinusoidal(t, 8)) |> Linear(32) |> silu |> Linear(128)
  }
  loss hybrid = LOSS
  train { minimize hybrid; batch 8; steps 2 }
  sample x = q.reverse(eps)
}
"""

IMAGES = """model W {
  data x: real[1, 8, 8] from digits()
  diffusion q(x) = Gaussian(steps=6, betas=linear(1e-3, 0.2), levels=17, variance=learned)
  denoiser eps(x_t: real[1, 8, 8], t: step) -> real[2, 8, 8] {
    (x_t |> Conv2d(4)) + (sinusoidal(t, 8) |> Linear(4) |> reshape(4, 1, 1)) |> silu |> Conv2d(2)
  }
  loss hybrid = q.loss(eps)
  train { minimize hybrid; batch 8; steps 2 }
  sample x = q.reverse(eps)
  evaluate { bound }
}
"""

LABELLED = """model L {
  data x: real[64], y: cat[10] from digits()
  diffusion q(x) = Gaussian(steps=12, betas=linear(1e-3, 0.2), variance=learned)
  denoiser eps(x_t: real[64], t: step, y: cat[11]) -> real[128] {
    concat(x_t, sinusoidal(t, 8), onehot(y)) |> Linear(32) |> silu |> Linear(128)
  }
  loss hybrid = q.loss(eps, y, drop=0.2)
  train { minimize hybrid; batch 8; steps 2 }
  sample x = q.reverse(eps, y, guidance=2.0)
}
"""


def learned(loss: str = "q.loss(eps)") -> str:
    return LEARNED.replace("LOSS", loss)


def quantized(n: int, shape=(64,)) -> torch.Tensor:
    """Data as the digits source gives it: k/16 for k = 0..16."""
    return torch.randint(0, 17, (n, *shape)).float() / 16


# ---- hand-written references (float64, the papers' notation: t = 1..T) ----

class Reference:
    """The tables of the process and the formulas of Ho et al. 2020 and Nichol & Dhariwal 2021."""

    def __init__(self, betas: torch.Tensor):
        self.betas = betas.double()
        self.bars = torch.tensor(alpha_bars(betas), dtype=torch.float64)   # bars[t] = alpha-bar_t, bars[0] = 1
        self.T = len(betas)

    def beta(self, t: int) -> float:
        return float(self.betas[t - 1])

    def beta_tilde(self, t: int) -> float:
        return self.beta(t) * float(1 - self.bars[t - 1]) / float(1 - self.bars[t])

    def log_sigma(self, v, t: int):
        """Nichol & Dhariwal eq. 15, with log beta-tilde_1 (= log 0) replaced by log beta-tilde_2."""
        tilde = self.beta_tilde(max(t, 2))
        return v.double() * math.log(self.beta(t)) + (1 - v.double()) * math.log(tilde)

    def mean(self, x_t, e, t: int):
        """Ho et al. eq. 11."""
        return (x_t.double() - self.beta(t) / math.sqrt(1 - self.bars[t]) * e.double()) / math.sqrt(1 - self.beta(t))

    def posterior_mean(self, x0, x_t, t: int):
        """Ho et al. eq. 7."""
        bar, prev = float(self.bars[t]), float(self.bars[t - 1])
        return (math.sqrt(prev) * self.beta(t) / (1 - bar)) * x0.double() \
            + (math.sqrt(1 - self.beta(t)) * (1 - prev) / (1 - bar)) * x_t.double()

    def term(self, x0, x_t, e, v, t: int):
        """L_(t-1) per sample: KL(q(x_(t-1) | x_t, x0) || N(mean, Sigma)) for t > 1, the discretized
        decoder's -log p(x0 | x1) for t = 1 (Ho et al. eq. 13, 17 levels in [0, 1])."""
        mean, scale = self.mean(x_t, e, t), (0.5 * self.log_sigma(v, t)).exp()
        if t > 1:
            q = D.Normal(self.posterior_mean(x0, x_t, t), math.sqrt(self.beta_tilde(t)))
            return D.kl_divergence(q, D.Normal(mean, scale)).sum(-1)
        p, x, half = D.Normal(mean, scale), x0.double(), 1 / 32
        upper = torch.where(x > 1 - half / 2, torch.ones_like(x), p.cdf(x + half))
        lower = torch.where(x < half / 2, torch.zeros_like(x), p.cdf(x - half))
        return -torch.log(upper - lower).sum(-1)


# ---- the generated code against the references ----

@pytest.mark.parametrize("loss,weight", [("q.loss(eps)", 0.001), ("q.loss(eps, vlb=0.01)", 0.01)])
def test_hybrid_loss_is_l_simple_plus_lambda_l_vlb(loss: str, weight: float):
    """loss = mean |noise - eps|^2 + lambda * T * L_(t-1) / D at a uniform step t, per sample."""
    model = build(learned(loss))
    ref = Reference(model.q.betas)
    x = quantized(40)
    torch.manual_seed(1)
    ours = model.loss_hybrid({"x": x})
    torch.manual_seed(1)
    step = torch.randint(0, 12, (40,))
    noise = torch.randn_like(x)
    expected = []
    for i in range(40):
        t = int(step[i]) + 1
        x_t = math.sqrt(ref.bars[t]) * x[i:i + 1] + math.sqrt(1 - ref.bars[t]) * noise[i:i + 1]
        e, v = model.eps(x_t, step[i:i + 1]).detach().chunk(2, -1)
        simple = ((noise[i:i + 1].double() - e.double()) ** 2).mean()
        expected.append(simple + weight * 12 * ref.term(x[i:i + 1], x_t, e, v, t)[0] / 64)
    assert {int(s) for s in step} >= {0, 5, 11}  # the decoder's step and KL steps were both drawn
    torch.testing.assert_close(ours.double(), torch.stack(expected).mean(), rtol=1e-4, atol=1e-5)


def test_the_bound_term_trains_v_alone():
    """The stop-gradient on the mean: the noise half of the output gets L_simple's gradient only."""
    model = build(learned())
    x0 = quantized(6)
    t = torch.tensor([0, 1, 3, 5, 8, 11])
    noise = torch.randn_like(x0)
    x_t = model.q.noisy(x0, t, noise)
    out = torch.randn(6, 128, requires_grad=True)
    model.q.hybrid(out, x0, x_t, t, noise).sum().backward()
    e = out.detach()[:, :64].clone().requires_grad_(True)
    ((e - noise) ** 2).mean(-1).sum().backward()
    torch.testing.assert_close(out.grad[:, :64], e.grad)
    assert (out.grad[:, 64:].abs().sum(-1) > 0).all()


def test_reverse_step_uses_the_learned_variance():
    """x_(t-1) = mean + exp(log Sigma_t / 2) z for t > 1, x_0 = mean (Nichol & Dhariwal eq. 15)."""
    model = build(learned().replace("cosine()", "linear(1e-3, 0.2)"))  # an untrained chain stays finite
    ref = Reference(model.q.betas)
    torch.manual_seed(4)
    ours = model.sample_x(5)
    torch.manual_seed(4)
    x = torch.randn(5, 64)
    for t in range(12, 0, -1):
        e, v = model.eps(x, torch.full((5,), t - 1)).chunk(2, -1)
        mean = ref.mean(x, e, t)
        x = (mean + ((0.5 * ref.log_sigma(v, t)).exp() * torch.randn_like(x).double() if t > 1 else 0)).float()
    torch.testing.assert_close(ours, x, rtol=1e-4, atol=1e-4)


def test_bound_terms_use_the_learned_variances():
    """L_0 is the discretized decoder of variance Sigma_1, the middle terms full Gaussian KLs."""
    model = build(learned())
    ref = Reference(model.q.betas)
    x = quantized(7)
    torch.manual_seed(5)
    terms = model.bound_terms({"x": x})
    torch.manual_seed(5)
    middle = torch.zeros(7, dtype=torch.float64)
    for t in range(1, 13):
        x_t = math.sqrt(ref.bars[t]) * x + math.sqrt(1 - ref.bars[t]) * torch.randn_like(x)
        e, v = model.eps(x_t, torch.full((7,), t - 1)).chunk(2, -1)
        if t == 1:
            torch.testing.assert_close(terms[:, 0].double(), ref.term(x, x_t, e, v, 1), rtol=1e-4, atol=1e-4)
        else:
            middle += ref.term(x, x_t, e, v, t)
    torch.testing.assert_close(terms[:, 1].double(), middle, rtol=1e-4, atol=1e-3)


def test_images_stack_v_on_the_channel_axis():
    """real[1, 8, 8] data: the denoiser returns real[2, 8, 8], channel 0 the noise, channel 1 v."""
    model = build(IMAGES)
    x = quantized(3, (1, 8, 8))
    t = torch.tensor([0, 2, 5])
    out = model.eps(x, t)
    e, v = model.q.split(out)
    torch.testing.assert_close(e, out[:, :1])
    torch.testing.assert_close(v, out[:, 1:])
    assert model.loss_hybrid({"x": x}).isfinite()
    assert model.bound_terms({"x": x}).isfinite().all() and model.sample_x(2).shape == (2, 1, 8, 8)


def test_guidance_mixes_the_noise_predictions_and_keeps_the_labels_variances():
    model = build(LABELLED)
    x, t, y = torch.randn(4, 64), torch.tensor([0, 3, 7, 11]), torch.tensor([1, 2, 3, 4])
    ours = model.q.conditioned(model.eps, y, guidance=2.0, null=10)(x, t)
    cond, free = model.eps(x, t, y), model.eps(x, t, torch.full_like(y, 10))
    torch.testing.assert_close(ours[:, :64], 3 * cond[:, :64] - 2 * free[:, :64])
    torch.testing.assert_close(ours[:, 64:], cond[:, 64:])


def test_fixed_variances_keep_the_simple_loss():
    """Without variance=learned the loss is L_simple, as before (no vlb term, no split)."""
    model = build(learned().replace(", variance=learned", "").replace("real[128]", "real[64]")
                  .replace("Linear(128)", "Linear(64)"))
    x = quantized(9)
    torch.manual_seed(2)
    ours = model.loss_hybrid({"x": x})
    torch.manual_seed(2)
    t, noise = torch.randint(0, 12, (9,)), torch.randn_like(x)
    torch.testing.assert_close(ours, ((model.eps(model.q.noisy(x, t, noise), t) - noise) ** 2).mean())


# ---- what the checker refuses ----

@pytest.mark.parametrize("edit,code,words", [
    (("real[128] {", "real[64] {"), "E321", "q learns its reverse variances (variance=learned): eps must return "
     "real[128]"),
    ((", variance=learned", ""), "E321", "eps must return the noise prediction real[64], but it returns real[128]"),
    (("variance=learned", "variance=learnt"), "E221", "variance"),
    (("q.loss(eps)", "q.loss(eps, vlb=-1.0)"), "E221", "'vlb' must be float >= 0"),
    (("real[128] {", "real[96] {"), "E310", "must map"),
])
def test_learned_variances_are_checked(edit: tuple[str, str], code: str, words: str):
    text = learned()
    if "real[64] {" in edit[1] or "real[96]" in edit[1]:
        text = text.replace("Linear(128)", "Linear(%s)" % edit[1][5:7])
    found = [d for d in errors(text.replace(*edit)) if d.code == code and words in d.message]
    assert found and found[0].hint and found[0].span is not None, errors(text.replace(*edit))


def test_vlb_with_fixed_variances_is_refused():
    text = learned("q.loss(eps, vlb=0.001)").replace(", variance=learned", "").replace("128", "64")
    (found,) = errors(text)
    assert found.code == "E221" and "variances are fixed" in found.message and "variance=learned" in found.hint

