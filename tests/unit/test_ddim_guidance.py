"""DDIM sampling, conditional denoisers and classifier-free guidance: the generated code computes
the papers' formulas (checked against hand-written references on random inputs), and the checker
refuses options the compiler cannot honour."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch

from gendsl.codegen import generate, load_generated
from gendsl.graph.check import check_source
from gendsl.source import SourceFile

PLAIN = """model P {
  data x: real[2] from moons(n=64)
  diffusion q(x) = Gaussian(steps=12, betas=linear(1e-3, 0.2))
  denoiser eps(x_t: real[2], t: step) -> real[2] {
    concat(x_t, sinusoidal(t, 8)) |> Linear(16) |> silu |> Linear(2)
  }
  loss simple = q.loss(eps)
  train { minimize simple; batch 8; steps 2 }
  sample x = SAMPLE
}
"""

LABELLED = """model L {
  data x: real[64], y: cat[10] from digits()
  diffusion q(x) = Gaussian(steps=12, betas=linear(1e-3, 0.2))
  denoiser eps(x_t: real[64], t: step, y: cat[CLASSES]) -> real[64] {
    concat(x_t, sinusoidal(t, 8), onehot(y)) |> Linear(32) |> silu |> Linear(64)
  }
  loss simple = LOSS
  train { minimize simple; batch 8; steps 2 }
  sample x = SAMPLE
}
"""


def labelled(loss: str = "q.loss(eps, y, drop=0.2)", sample: str = "q.reverse(eps, y, guidance=2.0)",
             classes: int = 11) -> str:
    return LABELLED.replace("LOSS", loss).replace("SAMPLE", sample).replace("CLASSES", str(classes))


def build(text: str):
    checked = check_source(SourceFile(path="d.gen", text=text))
    assert checked.ok, [f"{d.code} {d.message}" for d in checked.diagnostics]
    model = load_generated(generate(checked.graph, "d.gen", text).source).build()
    return model.eval()


def errors(text: str) -> list:
    return [d for d in check_source(SourceFile(path="d.gen", text=text)).diagnostics if d.code.startswith("E")]


# ---- hand-written references (float64, the papers' notation: t = 1..T, alpha-bar_0 = 1) ----

def alpha_bars(betas: torch.Tensor) -> list[float]:
    """[alpha-bar_0 = 1, alpha-bar_1, ..., alpha-bar_T]."""
    return [1.0] + torch.cumprod(1 - betas.double(), 0).tolist()


def ddim_step(x, e, a_t: float, a_prev: float, eta: float, z):
    """Song et al. 2021, eq. 12, with sigma_t(eta) of eq. 16."""
    sigma = eta * math.sqrt((1 - a_prev) / (1 - a_t)) * math.sqrt(1 - a_t / a_prev)
    predicted_x0 = (x - math.sqrt(1 - a_t) * e) / math.sqrt(a_t)
    return math.sqrt(a_prev) * predicted_x0 + math.sqrt(max(1 - a_prev - sigma ** 2, 0.0)) * e + sigma * z


def reference_ddim(eps, betas, n: int, shape, steps: int, eta: float, seed: int):
    """DDIM over `steps` evenly spaced times from T down to 1 (0-based indices T-1 .. 0)."""
    bars = alpha_bars(betas)
    T = len(betas)
    times = [math.floor(Fraction((T - 1) * (steps - 1 - i), steps - 1) + Fraction(1, 2)) + 1
             for i in range(steps)] if steps > 1 else [T]
    torch.manual_seed(seed)
    x = torch.randn(n, *shape)
    for i, t in enumerate(times):
        prev = times[i + 1] if i + 1 < len(times) else 0
        e = eps(x, torch.full((n,), t - 1, dtype=torch.long))
        z = torch.randn_like(x) if prev > 0 and eta > 0 else torch.zeros_like(x)
        x = ddim_step(x.double(), e.double(), bars[t], bars[prev], eta, z.double()).float()
    return x


def reference_ancestral(eps, betas, n: int, shape, seed: int):
    """Ho et al. 2020, algorithm 2, with sigma_t^2 = beta-tilde_t."""
    bars = alpha_bars(betas)
    torch.manual_seed(seed)
    x = torch.randn(n, *shape)
    for t in range(len(betas), 0, -1):
        beta = float(betas[t - 1])
        e = eps(x, torch.full((n,), t - 1, dtype=torch.long)).double()
        mean = (x.double() - beta / math.sqrt(1 - bars[t]) * e) / math.sqrt(1 - beta)
        variance = beta * (1 - bars[t - 1]) / (1 - bars[t])
        x = (mean + (math.sqrt(variance) * torch.randn_like(x).double() if t > 1 else 0)).float()
    return x


def guided(eps, label, w: float, null: int):
    """Ho & Salimans 2022, eq. 6: (1 + w) eps(x, t, y) - w eps(x, t, null)."""
    return lambda x, t: (1 + w) * eps(x, t, label) - w * eps(x, t, torch.full_like(label, null))


# ---- the generated code against the references ----

def test_ddim_update_is_equation_12():
    model = build(PLAIN.replace("SAMPLE", "q.reverse(eps)"))
    torch.manual_seed(0)
    x, e, z = torch.randn(3, 5, 2), torch.randn(3, 5, 2), torch.randn(3, 5, 2)
    for a_t, a_prev, eta in [(0.3, 0.8, 0.0), (0.05, 0.6, 1.0), (0.5, 0.7, 0.4), (0.9, 1.0, 0.7)]:
        ours = model.q.ddim_update(x, e, torch.tensor(a_t), torch.tensor(a_prev), eta, z)
        torch.testing.assert_close(ours, ddim_step(x.double(), e.double(), a_t, a_prev, eta, z.double()).float())


@pytest.mark.parametrize("steps,eta", [(12, 0.0), (5, 0.0), (4, 0.5), (1, 0.0), (7, 1.0)])
def test_generated_ddim_sampler_is_song_et_al(steps: int, eta: float):
    model = build(PLAIN.replace("SAMPLE", f"q.reverse(eps, steps={steps}, eta={eta})"))
    torch.manual_seed(3)
    ours = model.sample_x(6)
    expected = reference_ddim(model.eps, model.q.betas, 6, (2,), steps, eta, seed=3)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


def test_ancestral_sampler_is_algorithm_2():
    model = build(PLAIN.replace("SAMPLE", "q.reverse(eps)"))
    torch.manual_seed(4)
    ours = model.sample_x(6)
    expected = reference_ancestral(model.eps, model.q.betas, 6, (2,), seed=4)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


def test_eta_one_over_all_steps_is_ancestral_sampling_draw_for_draw():
    """With sigma_t(1)^2 = beta-tilde_t, DDIM over all T steps is DDPM's ancestral sampler with the
    variance gendsl's reverse uses, so the same seed gives the same samples."""
    ddim = build(PLAIN.replace("SAMPLE", "q.reverse(eps, eta=1.0)"))
    ancestral = build(PLAIN.replace("SAMPLE", "q.reverse(eps)"))
    ancestral.load_state_dict(ddim.state_dict())
    torch.manual_seed(5)
    a = ddim.sample_x(8)
    torch.manual_seed(5)
    b = ancestral.sample_x(8)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(a, ddim.sample_x(8))  # and the draws are random


def test_options_bind_by_name_in_any_order():
    a = build(PLAIN.replace("SAMPLE", "q.reverse(eps, eta=0.5, steps=4)"))
    b = build(PLAIN.replace("SAMPLE", "q.reverse(eps, steps=4, eta=0.5)"))
    b.load_state_dict(a.state_dict())
    torch.manual_seed(6)
    first = a.sample_x(5)
    torch.manual_seed(6)
    torch.testing.assert_close(first, b.sample_x(5))
    torch.testing.assert_close(first, reference_ddim(a.eps, a.q.betas, 5, (2,), 4, 0.5, seed=6), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("sample", ["q.reverse(eps, y, guidance=2.0)", "q.reverse(eps, y, guidance=2.0, steps=5)"])
def test_guided_samples_are_classifier_free_guidance(sample: str):
    """Samples cycle through the labels; each step's noise prediction is eq. 6 of Ho & Salimans."""
    model = build(labelled(sample=sample))
    labels = torch.arange(7) % 10
    torch.manual_seed(7)
    ours = model.sample_x(7)
    eps = guided(model.eps, labels, 2.0, null=10)
    expected = reference_ddim(eps, model.q.betas, 7, (64,), 5, 0.0, seed=7) if "steps" in sample \
        else reference_ancestral(eps, model.q.betas, 7, (64,), seed=7)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


def test_guidance_zero_is_the_conditional_denoiser_alone():
    model = build(labelled(loss="q.loss(eps, y)", sample="q.reverse(eps, y)", classes=10))
    torch.manual_seed(8)
    ours = model.sample_x(4)
    expected = reference_ancestral(lambda x, t: model.eps(x, t, torch.arange(4)), model.q.betas, 4, (64,), seed=8)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


def test_label_dropout_loss_is_the_simple_loss_with_null_labels():
    """loss = |eps - eps(sqrt(a) x + sqrt(1 - a) eps, t, y')|^2 per sample, y' = null w.p. drop."""
    model = build(labelled(loss="q.loss(eps, y, drop=0.3)"))
    x, y = torch.rand(50, 64), torch.randint(0, 10, (50,))
    torch.manual_seed(9)
    ours = model.loss_simple({"x": x, "y": y})
    bars = torch.tensor(alpha_bars(model.q.betas)[1:], dtype=torch.float32)
    torch.manual_seed(9)
    t = torch.randint(0, 12, (50,))
    noise = torch.randn_like(x)
    dropped = torch.rand(50) < 0.3
    label = torch.where(dropped, torch.full_like(y, 10), y)
    a = bars[t][:, None]
    expected = ((model.eps(a.sqrt() * x + (1 - a).sqrt() * noise, t, label) - noise) ** 2).mean(1).mean()
    torch.testing.assert_close(ours, expected)
    assert 0 < int(dropped.sum()) < 50


def test_label_dropout_rate():
    model = build(labelled(loss="q.loss(eps, y, drop=0.25)"))
    seen = []
    model.q.loss(lambda x, t, label: seen.append(label) or torch.zeros_like(x), torch.rand(4000, 64),
                 label=torch.randint(0, 10, (4000,)), drop=0.25, null=10)
    share = float((seen[0] == 10).float().mean())
    assert abs(share - 0.25) < 0.03, share


def test_conditional_bound_gives_each_row_its_label():
    model = build(labelled())
    x, y = torch.rand(3, 64), torch.tensor([1, 4, 7])
    torch.manual_seed(10)
    ours = model.bound({"x": x, "y": y})
    torch.manual_seed(10)
    expected = model.q.bound(lambda x_t, t: model.eps(x_t, t, y), x)
    torch.testing.assert_close(ours, expected)


def test_bound_terms_are_the_papers_terms():
    """bound = L_0 + (L_1 + ... + L_(T-1)) + L_T, with L_T = KL(q(x_T | x_0) || N(0, I)) and L_0
    the Gaussian decoder's -log p(x_0 | x_1) of variance beta_1 (Ho et al. 2020, eq. 5)."""
    model = build(PLAIN.replace("SAMPLE", "q.reverse(eps)"))
    x = torch.randn(5, 2)
    torch.manual_seed(3)
    terms = model.bound_terms({"x": x})
    torch.manual_seed(3)
    torch.testing.assert_close(model.bound({"x": x}), terms.sum(-1))
    bar_T = model.q.bar[-1]
    q_T = torch.distributions.Normal(bar_T.sqrt() * x, (1 - bar_T).sqrt())
    prior = torch.distributions.kl_divergence(q_T, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(terms[:, 2], prior)
    beta_1 = model.q.betas[0]
    torch.manual_seed(3)
    noise = torch.randn_like(x)                          # the draw of x_1 that bound_terms made first
    x_1 = (1 - beta_1).sqrt() * x + beta_1.sqrt() * noise
    t = torch.zeros(5, dtype=torch.long)
    mean = (x_1 - beta_1 / (1 - model.q.bar[0]).sqrt() * model.eps(x_1, t)) / (1 - beta_1).sqrt()
    decoder = -torch.distributions.Normal(mean, beta_1.sqrt()).log_prob(x).sum(-1)
    torch.testing.assert_close(terms[:, 0], decoder, rtol=1e-4, atol=1e-4)


# ---- what the checker refuses ----

@pytest.mark.parametrize("sample,code,words", [
    ("q.reverse(eps, steps=13)", "E328", "at most the 12 steps"),
    ("q.reverse(eps, steps=0)", "E221", "'steps' must be int >= 1"),
    ("q.reverse(eps, eta=-0.5)", "E221", "'eta' must be float >= 0"),
    ("q.reverse(eps, steps=2.5)", "E221", "'steps' must be int >= 1"),
    ("q.reverse(eps, guidance=2.0)", "E321", "guidance=2 needs a conditional denoiser"),
])
def test_unconditional_sampling_options_are_checked(sample: str, code: str, words: str):
    (found,) = errors(PLAIN.replace("SAMPLE", sample))
    assert found.code == code and words in found.message, found
    assert found.hint and found.span is not None


@pytest.mark.parametrize("loss,sample,classes,code,words", [
    ("q.loss(eps, y, drop=0.1)", "q.reverse(eps, y, guidance=-1.0)", 11, "E221", "'guidance' must be float >= 0"),
    ("q.loss(eps, y, drop=1.0)", "q.reverse(eps, y)", 11, "E221", "'drop' must be float in [0, 1)"),
    ("q.loss(eps, y, drop=0.1)", "q.reverse(eps, y)", 10, "E321", "needs a null class"),
    ("q.loss(eps, y)", "q.reverse(eps, y, guidance=3.0)", 10, "E321", "needs a null class"),
    ("q.loss(eps)", "q.reverse(eps, y)", 11, "E321", "is conditional on a label cat[11], but q is given none"),
    ("q.loss(eps, y)", "q.reverse(eps, y)", 12, "E321", "takes labels cat[12], but q is given cat[10]"),
    ("q.loss(eps, y)", "q.reverse(eps, y, guidance=1.0)", 11, "E321", "null class (label 10 of cat[11]) that this "
     "loss never trains"),
    ("q.loss(eps, x)", "q.reverse(eps, y)", 11, "E321", "a category cat[K] per sample"),
])
def test_conditional_options_are_checked(loss: str, sample: str, classes: int, code: str, words: str):
    found = errors(labelled(loss=loss, sample=sample, classes=classes))
    assert {d.code for d in found} == {code} and words in found[0].message, found
    assert found[0].hint


def test_a_label_for_an_unconditional_denoiser_is_refused():
    text = labelled(loss="q.loss(eps)", sample="q.reverse(eps, y)")
    text = text.replace(", y: cat[11])", ")").replace(", onehot(y)", "")
    found = errors(text)
    assert [d.code for d in found] == ["E321"] and "takes no label" in found[0].message, found


def test_a_denoiser_with_a_real_third_input_is_refused():
    text = PLAIN.replace("t: step)", "t: step, c: real[3])").replace("SAMPLE", "q.reverse(eps)")
    assert "E310" in [d.code for d in errors(text)]
