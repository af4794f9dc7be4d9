"""Hierarchical priors (`latent z1 ~ p(z1 | z2)` with `decoder p(z1 | z2)`, and an encoder given
a latent, `q(z2 | z1)`): the generated ELBO, IWAE weights and samples are those of the math on
random weights (hand-written with the same draws); malformed hierarchies are refused at check."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tests.conformance.pipeline import checks, compile_text
from tests.conftest import SPECS

LOG_2PI = math.log(2 * math.pi)


def hvae_text(loss: str | None = None) -> str:
    text = (SPECS / "hvae.gen").read_text()
    text = text.replace("param z1_size: int = 100", "param z1_size: int = 6")
    text = text.replace("param z2_size: int = 50", "param z2_size: int = 3")
    if loss is not None:
        start = text.index("  loss elbo")
        text = text[:start] + f"  loss elbo = {loss}" + text[text.index("\n", start):]
    return text


def normal_log_prob(v: torch.Tensor, loc, scale) -> torch.Tensor:
    return (-0.5 * ((v - loc) / scale) ** 2 - torch.log(scale) - 0.5 * LOG_2PI).sum(-1)


def hand_written_log_weights(model, x: torch.Tensor, k: int) -> torch.Tensor:
    """log p(x | z1) + log p(z1 | z2) + log p(z2) - log q(z1 | x) - log q(z2 | z1) for k draws,
    z1 = mu1 + s1 eps1 then z2 = mu2 + s2 eps2 ([k, n] k-major, as the generated code draws)."""
    q1 = model.q_z1(x).base_dist
    z1 = q1.loc + q1.scale * torch.randn(k, *q1.loc.shape)           # [k, n, d1]
    flat1 = z1.flatten(0, 1)
    q2 = model.q_z2(flat1).base_dist
    z2 = q2.loc + q2.scale * torch.randn(*q2.loc.shape)              # [k * n, d2]
    p1 = model.p_z1(z2).base_dist
    logits = model.p_x(flat1).base_dist.logits
    xk = x.repeat(k, 1)
    log_px = (xk * logits - F.softplus(logits)).sum(-1)
    log_pz1 = normal_log_prob(flat1, p1.loc, p1.scale)
    log_pz2 = (-0.5 * z2 ** 2 - 0.5 * LOG_2PI).sum(-1)
    log_qz1 = normal_log_prob(z1, q1.loc, q1.scale).flatten()
    log_qz2 = normal_log_prob(z2, q2.loc, q2.scale)
    return (log_px + log_pz1 + log_pz2 - log_qz1 - log_qz2).view(k, -1)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return compile_text(hvae_text(), tmp_path_factory.mktemp("hvae"))


def test_elbo_has_the_terms_of_the_math(compiled) -> None:
    x = torch.bernoulli(torch.full((9, 784), 0.4))
    torch.manual_seed(2)
    generated = compiled.model.loss_elbo({"x": x})
    torch.manual_seed(2)
    expected = -hand_written_log_weights(compiled.model, x, 1)[0].mean()
    torch.testing.assert_close(generated, expected, rtol=1e-5, atol=1e-4)
    # every block is trained by the ELBO: p(z1 | z2) through log p(z1 | z2), q(z2 | z1) through z2
    grads = torch.autograd.grad(generated, list(compiled.model.parameters()))
    assert all(g.abs().sum() > 0 for g in grads)


def test_importance_weights_are_those_of_the_math(compiled) -> None:
    x = torch.bernoulli(torch.full((4, 784), 0.4))
    torch.manual_seed(7)
    generated = compiled.model.log_weights({"x": x}, 5)
    torch.manual_seed(7)
    expected = hand_written_log_weights(compiled.model, x, 5)
    assert generated.shape == (5, 4)
    torch.testing.assert_close(generated, expected, rtol=1e-5, atol=1e-4)


def test_two_layer_iwae_loss_is_the_bound(tmp_path) -> None:
    weights = "log p(x | z1) + log p(z1 | z2) + log p(z2) - log q(z1 | x) - log q(z2 | z1)"
    iwae = compile_text(hvae_text(f"-logmeanexp({weights}, k = 5)"), tmp_path)
    x = torch.bernoulli(torch.full((6, 784), 0.4))
    torch.manual_seed(4)
    generated = iwae.model.loss_elbo({"x": x})
    torch.manual_seed(4)
    w = hand_written_log_weights(iwae.model, x, 5)
    torch.testing.assert_close(generated, -(torch.logsumexp(w, 0) - math.log(5)).mean(), rtol=1e-5, atol=1e-4)


def test_samples_are_drawn_down_the_hierarchy(compiled) -> None:
    """sample x ~ p(x | z1): z2 ~ p(z2), z1 ~ p(z1 | z2), then x; with `mean`, the mean of each
    draw's distribution below the top (z1 the mean of p(z1 | z2), x the mean of p(x | z1)); a
    caller (interpolation) sets the top latent z2 only."""
    torch.manual_seed(0)
    got = compiled.model.sample_x(5, mean=True)
    torch.manual_seed(0)
    z2 = torch.randn(5, 3)
    z1 = compiled.model.p_z1(z2).base_dist.loc
    torch.testing.assert_close(got, torch.sigmoid(compiled.model.p_x(z1).base_dist.logits))
    given = torch.zeros(4, 3)
    z1 = compiled.model.p_z1(given).base_dist.loc
    torch.testing.assert_close(compiled.model.sample_x(4, mean=True, latents={"z2": given}),
                               torch.sigmoid(compiled.model.p_x(z1).base_dist.logits))
    assert compiled.module.SPEC["samples"]["x"]["latents"] == ["z2"]  # z1 follows from z2
    drawn = compiled.model.sample_x(300)
    assert drawn.shape == (300, 784) and set(drawn.unique().tolist()) <= {0.0, 1.0}


def codes(text: str) -> list[str]:
    return [d.code for d in checks(text).diagnostics if d.severity == "error"]


@pytest.mark.parametrize("edit,code", [
    (("latent z2: real[z2_size] ~ Normal(0, 1)", "latent z2: real[z2_size] ~ p(z2 | z1)"), "E325"),  # a cycle
    (("real[z1_size] ~ p(z1 | z2)", "real[z1_size] ~ p(z1 | x)"), "E215"),         # no such block
    (("real[z1_size] ~ p(z1 | z2)", "real[z1_size] ~ p(z2 | z1)"), "E309"),        # not its own prior
    (("real[z1_size] ~ p(z1 | z2)", "real[z1_size] ~ Normal(0, 1)"), "E309"),      # a decoder of a latent
    (("loss elbo = -(log p(x | z1)", "loss elbo = -(log p(z1) + log p(x | z1)"), "E301"),  # a marginal
    (("sample x ~ p(x | z1)", "sample z1 ~ p(z1)"), "E231"),
])
def test_malformed_hierarchies_are_refused(edit, code) -> None:
    old, new = edit
    text = hvae_text()
    assert old in text
    found = codes(text.replace(old, new))
    if code == "E325":  # p(z2 | z1) must exist for the cycle to be reached
        text = text.replace(old, new).replace("  decoder p(x | z1)", "  decoder p(z2 | z1) {\n    z2 ~ Normal(z1 |> "
                                              "Linear(3), 1)\n  }\n  decoder p(x | z1)")
        found = codes(text)
    assert code in found, found
