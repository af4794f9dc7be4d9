"""Training on the bound itself, `q.vlb(eps)` (Nichol & Dhariwal 2021, section 3.3): the generated loss
is an unbiased estimate of the bound's sum over t (checked by enumerating t, not by sampling), its
importance distribution follows sqrt(E[L_t^2]) over the last 10 values of each L_t (uniform before),
the noise prediction gets the bound's gradient, and the checker refuses what the compiler cannot honour."""

from __future__ import annotations

import math

import pytest
import torch

from tests.unit.test_ddim_guidance import build, errors
from tests.unit.test_learned_variances import quantized

SPEC = """model B {
  data x: real[64], y: cat[10] from digits()
  diffusion q(x) = Gaussian(steps=12, betas=cosine(), levels=17, variance=learned)
  denoiser eps(x_t: real[64], t: step) -> real[128] {
    concat(x_t, sinusoidal(t, 8)) |> Linear(32) |> silu |> Linear(128)
  }
  loss bound = LOSS
  train { minimize bound; batch 8; steps 2 }
  sample x = q.reverse(eps)
  evaluate { bound }
}
"""

LABELLED = SPEC.replace("t: step) -> real[128] {", "t: step, y: cat[11]) -> real[128] {") \
    .replace("sinusoidal(t, 8))", "sinusoidal(t, 8), onehot(y))") \
    .replace("q.reverse(eps)", "q.reverse(eps, y, guidance=2.0)")


def spec(loss: str = "q.vlb(eps)", learned: bool = True) -> str:
    text = SPEC.replace("LOSS", loss)
    return text if learned else text.replace(", variance=learned", "").replace("128", "64")


def filled(model, seed: int = 0) -> torch.Tensor:
    """Give every step a full, uneven history, so that p_t is far from uniform; the p_t that results."""
    g = torch.Generator().manual_seed(seed)
    model.q.loss_history.copy_(torch.rand(12, 10, generator=g) * torch.linspace(0.1, 5, 12)[:, None])
    model.q.loss_counts.fill_(10)
    return model.q.step_probs()


# ---- the estimator is the bound ----

@pytest.mark.parametrize("learned", [True, False])
def test_the_expectation_over_p_of_the_weighted_term_is_the_bound(learned: bool):
    """sum_t p_t * D * L_t / (p_t D) over every step t (the same noise as `terms` draws) = L_0 + sum L_t."""
    model = build(spec(learned=learned))
    p = filled(model)
    assert p.max() > 3 * p.min()
    x = quantized(5)
    torch.manual_seed(3)
    weighted = [model.q.vlb_at(model.eps, x, torch.full((5,), s), p).detach() for s in range(12)]
    torch.manual_seed(3)
    terms = model.bound_terms({"x": x})
    expectation = sum(p[s].double() * 64 * weighted[s].double() for s in range(12))
    torch.testing.assert_close(expectation, terms[:, :2].sum(-1).double(), rtol=1e-4, atol=1e-3)


def test_the_generated_loss_draws_t_from_p_and_weights_by_it():
    """loss = mean over the batch of L_t / (p_t D), t ~ p, with `record` updating the history in training."""
    model = build(spec()).train()
    p = filled(model)
    x = quantized(16)
    torch.manual_seed(4)
    ours = model.loss_bound({"x": x})
    torch.manual_seed(4)
    t = torch.multinomial(p, 16, replacement=True)
    expected = model.q.vlb_at(model.eps, x, t, p).mean()
    torch.testing.assert_close(ours, expected)


def test_uniform_steps_weight_by_t():
    """importance=false: t uniform, each term weighted T / D, and no history is kept."""
    model = build(spec("q.vlb(eps, importance=false)")).train()
    x = quantized(8)
    torch.manual_seed(5)
    ours = model.loss_bound({"x": x})
    torch.manual_seed(5)
    t = torch.multinomial(torch.full((12,), 1 / 12), 8, replacement=True)
    noise = torch.randn_like(x)
    x_t = model.q.noisy(x, t, noise)
    pred, v = model.q.split(model.eps(x_t, t))
    term = model.q.term(x, x_t, t, model.q.mean(x_t, t, pred), model.q.log_var(v, t, x))
    torch.testing.assert_close(ours, (12 * term / 64).mean())
    assert int(model.q.loss_counts.sum()) == 0


# ---- the importance distribution ----

def test_p_follows_the_root_mean_square_of_the_last_ten_values():
    """p_t = 0.999 sqrt(mean of squares) / sum + 0.001 / T once every step has 10 values (their code's
    uniform share), and 1/T before: here one step is a value short."""
    model = build(spec())
    p = filled(model, seed=1)
    history = model.q.loss_history.double()
    rms = [math.sqrt(sum(float(v) ** 2 for v in history[s]) / 10) for s in range(12)]
    expected = torch.tensor([0.999 * r / sum(rms) + 0.001 / 12 for r in rms], dtype=torch.float64)
    torch.testing.assert_close(p.double(), expected, rtol=1e-5, atol=1e-7)
    model.q.loss_counts[7] = 9
    torch.testing.assert_close(model.q.step_probs(), torch.full((12,), 1 / 12))


def authors_update(history: list[list[float]], t: list[int], losses: list[float]) -> None:
    """Nichol & Dhariwal's update, one value at a time: append, dropping the oldest of a full row."""
    for s, value in zip(t, losses):
        history[s] = (history[s] + [value])[-10:]


def test_record_keeps_each_steps_last_ten_values():
    """Batches that draw a step more than 10 times keep its last 10 draws, as the one-at-a-time update."""
    model = build(spec())
    reference: list[list[float]] = [[] for _ in range(12)]
    g = torch.Generator().manual_seed(6)
    for n in (3, 40, 7, 64):
        t = torch.cat([torch.full((n // 3,), 2), torch.randint(0, 12, (n - n // 3,), generator=g)])
        t = t[torch.randperm(n, generator=g)]
        losses = torch.rand(n, generator=g)
        model.q.record(t, losses)
        authors_update(reference, t.tolist(), losses.tolist())
        for s in range(12):
            kept = int(min(model.q.loss_counts[s], 10))
            assert kept == len(reference[s])
            ours = sorted(model.q.loss_history[s, :kept].tolist()) if kept == 10 else \
                sorted(model.q.loss_history[s].tolist())[10 - kept:]
            assert ours == pytest.approx(sorted(reference[s]))


def test_validation_and_evaluation_leave_the_history_alone():
    model = build(spec())
    x = quantized(8)
    model.loss_bound({"x": x})                   # eval mode
    with torch.no_grad():
        model.train().loss_bound({"x": x})       # no gradient: validation
    assert int(model.q.loss_counts.sum()) == 0
    model.loss_bound({"x": x})
    assert int(model.q.loss_counts.sum()) == 8


# ---- gradients ----

def test_the_noise_prediction_gets_the_bounds_gradient():
    """q.vlb: both halves of the output get gradient from L_t; in the hybrid, L_vlb's reaches v alone."""
    model = build(spec())
    x0 = quantized(6)
    t = torch.tensor([0, 1, 3, 5, 8, 11])
    p = torch.full((12,), 1 / 12)
    out = torch.randn(6, 128, requires_grad=True)
    model.q.vlb_at(lambda x_t, s: out, x0, t, p).sum().backward()
    assert (out.grad[:, :64].abs().sum(-1) > 0).all() and (out.grad[:, 64:].abs().sum(-1) > 0).all()
    hybrid = torch.randn(6, 128, requires_grad=True)
    noise = torch.randn_like(x0)
    x_t = model.q.noisy(x0, t, noise)
    (model.q.hybrid(hybrid, x0, x_t, t, noise, vlb=1.0) - ((hybrid[:, :64] - noise) ** 2).mean(-1)).sum().backward()
    assert hybrid.grad[:, :64].abs().max() < 1e-6


# ---- the generated model around it ----

def test_the_bound_metric_uses_the_denoiser_vlb_trains():
    model = build(spec())
    assert model.bound_terms({"x": quantized(3)}).shape == (3, 3)


def test_a_checkpoint_without_the_history_loads():
    """Checkpoints of diffusions saved before the history existed load with it empty; a saved one is kept."""
    model = build(spec())
    filled(model)
    saved = model.state_dict()
    fresh = build(spec())
    fresh.load_state_dict({k: v for k, v in saved.items() if not k.startswith("q.loss_")})
    assert int(fresh.q.loss_counts.sum()) == 0
    fresh.load_state_dict(saved)
    torch.testing.assert_close(fresh.q.loss_history, model.q.loss_history)


def test_labels_and_dropout_reach_the_denoiser():
    model = build(LABELLED.replace("LOSS", "q.vlb(eps, y, drop=0.2)")).train()
    batch = {"x": quantized(8), "y": torch.randint(0, 10, (8,))}
    assert model.loss_bound(batch).isfinite()


# ---- what the checker refuses ----

@pytest.mark.parametrize("loss,code,words,hint", [
    ("q.vlb(eps, vlb=0.01)", "E221", "has no option 'vlb'", "q.loss(eps, vlb=lambda)"),
    ("q.vlb(eps, schedule_sampler=1)", "E221", "has no option 'schedule_sampler'", "importance=false"),
    ("q.vlb(eps, importance=1.0)", "E221", "importance", ""),
    ("q.vlb(eps, drop=0.1)", "E321", "label dropout (drop=0.1) needs a conditional denoiser", "y: cat[K + 1]"),
])
def test_vlb_options_are_checked(loss: str, code: str, words: str, hint: str):
    found = [d for d in errors(spec(loss)) if d.code == code and words in d.message]
    assert found and found[0].hint and hint in found[0].hint and found[0].span is not None, errors(spec(loss))


def test_an_untrained_null_class_is_refused():
    (found,) = errors(LABELLED.replace("LOSS", "q.vlb(eps, y)"))
    assert found.code == "E321" and "never trains" in found.message and "drop=0.1" in found.hint


def test_vlb_belongs_in_a_loss():
    text = spec().replace("sample x = q.reverse(eps)", "sample x = q.vlb(eps)")
    assert any(d.code == "E212" and "belongs in a loss" in d.message for d in errors(text))
