"""`logmeanexp(w, k)` and `logsumexp(w, k)`: the generated loss equals the k-sample importance
weighted bound written by hand (Burda et al. 2016) on random weights and inputs, with the same
random draws; misuse is refused at check time."""

from __future__ import annotations

import math

import pytest
import torch

from tests.conformance.pipeline import checks, compile_text
from tests.conftest import SPECS


def iwae_text(loss: str) -> str:
    """specs/iwae.gen, small, with another loss line."""
    text = (SPECS / "iwae.gen").read_text()
    text = text.replace("param latent: int = 50", "param latent: int = 3")
    text = text.replace("param hidden: int = 200", "param hidden: int = 16")
    start = text.index("  loss bound")
    end = text.index("\n", start)
    return text[:start] + f"  loss bound = {loss}" + text[end:]


def hand_written_bound(model, x: torch.Tensor, k: int, mean: bool = True) -> torch.Tensor:
    """-log (1/k) sum_j p(x | z_j) p(z_j) / q(z_j | x), z_j = mu + sigma * eps_j, averaged over
    the batch; eps drawn as [k, n, d] (the order of the generated code's k-major draws)."""
    q = model.q_z(x).base_dist                      # the encoder's Normal(mu, sigma)
    mu, sigma = q.loc, q.scale
    eps = torch.randn(k, *mu.shape)
    z = mu + sigma * eps                            # [k, n, d]
    logits = model.p_x(z.flatten(0, 1)).base_dist.logits.view(k, len(x), -1)
    log_px = (x * logits - torch.nn.functional.softplus(logits)).sum(-1)
    log_pz = (-0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)).sum(-1)
    log_qz = (-0.5 * eps ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)).sum(-1)
    w = log_px + log_pz - log_qz                    # [k, n]
    bound = torch.logsumexp(w, 0) - (math.log(k) if mean else 0.0)
    return -bound.mean()


@pytest.mark.parametrize("k", [1, 5])
@pytest.mark.parametrize("fn", ["logmeanexp", "logsumexp"])
def test_generated_bound_equals_the_hand_written_one(fn: str, k: int, tmp_path) -> None:
    compiled = compile_text(iwae_text(f"-{fn}(log p(x | z) + log p(z) - log q(z | x), k={k})"), tmp_path)
    model = compiled.model
    torch.manual_seed(0)
    x = torch.bernoulli(torch.full((7, 784), 0.3))
    torch.manual_seed(1)
    generated = model.loss_bound({"x": x})
    torch.manual_seed(1)
    expected = hand_written_bound(model, x, k, mean=fn == "logmeanexp")
    torch.testing.assert_close(generated, expected, rtol=1e-5, atol=1e-4)
    # the gradient is that of the bound too (reparameterized draws)
    grads = torch.autograd.grad(generated, list(model.parameters()), allow_unused=True)
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_one_draw_is_the_elbo(tmp_path) -> None:
    """k = 1: the value inside on one draw, the same as the single-sample ELBO written without
    logmeanexp for the same draw."""
    one = compile_text(iwae_text("-logmeanexp(log p(x | z) + log p(z) - log q(z | x), k=1)"), tmp_path)
    plain = compile_text(iwae_text("-(log p(x | z) + log p(z) - log q(z | x))"), tmp_path)
    plain.model.load_state_dict(one.model.state_dict())
    x = torch.bernoulli(torch.full((5, 784), 0.5))
    torch.manual_seed(3)
    a = one.model.loss_bound({"x": x})
    torch.manual_seed(3)
    b = plain.model.loss_bound({"x": x})
    torch.testing.assert_close(a, b)


def test_more_draws_give_a_tighter_bound(tmp_path) -> None:
    """E[L_k] increases with k (Burda et al. theorem 1): the loss, -L_k, decreases (many draws)."""
    values = {}
    for k in (1, 10):
        compiled = compile_text(iwae_text(f"-logmeanexp(log p(x | z) + log p(z) - log q(z | x), k={k})"),
                                tmp_path)
        torch.manual_seed(0)
        compiled.model.load_state_dict(values.get("weights", compiled.model.state_dict()))
        values["weights"] = compiled.model.state_dict()
        x = torch.bernoulli(torch.full((2000, 784), 0.3))
        torch.manual_seed(5)
        with torch.no_grad():
            values[k] = float(compiled.model.loss_bound({"x": x}))
    assert values[10] < values[1] - 1.0, values


def diagnostics(loss: str) -> list[tuple[str, str]]:
    return [(d.code, d.message) for d in checks(iwae_text(loss)).diagnostics if d.severity == "error"]


@pytest.mark.parametrize("loss,code", [
    ("-logmeanexp(log p(x | z) + log p(z) - log q(z | x))", "E221"),                 # k is required
    ("-logmeanexp(log p(x | z) + log p(z) - log q(z | x), k=0)", "E221"),          # k >= 1
    ("-logmeanexp(z, k=5)", "E220"),                                               # one number per draw
    ("-logmeanexp(logmeanexp(log p(x | z), k=2), k=5)", "E240"),                 # draws of draws
    ("-logmeanexp(bound2, k=5)", "E220"),                                          # a loss is per batch
    ("-logmeanexp(log p(x | z) + bound2, k=5)", "E240"),                           # not one per draw
])
def test_misuse_is_refused(loss: str, code: str) -> None:
    text = loss.replace("bound2", "other")
    spec = iwae_text(text).replace("  loss bound", "  loss other = -log p(x | z)\n  loss bound")
    found = [(d.code, d.message) for d in checks(spec).diagnostics if d.severity == "error"]
    assert code in [c for c, _ in found], found


def test_only_losses_draw() -> None:
    inside = "    w = logmeanexp(h[0], k=2)\n    z ~ Normal(loc"
    spec = iwae_text("-log p(x | z)").replace("    z ~ Normal(loc", inside)
    found = [d.code for d in checks(spec).diagnostics if d.severity == "error"]
    assert "E240" in found, found
