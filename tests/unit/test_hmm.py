"""Hidden Markov models: a latent chain `z: cat[K, T] ~ Markov(...)` observed step by step.

The generated forward algorithm equals the sum over all K^T paths written out by hand, Viterbi
equals the argmax over them, samples are drawn from the chain, the true model of the `hmm` source
has the density its loader claims, and misuses are diagnostics with codes."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from gendsl.data import load
from gendsl.data.synthetic import hmm_log_density, hmm_parameters
from tests.conformance.pipeline import checks, compile_text
from tests.conftest import SPECS

CATEGORICAL = """
model Small {{
  data x: cat[{v}, {t}] from hmm(states={k}, symbols={v}, length={t})
  tensor init: real[{k}] = normal
  tensor trans: real[{k}, {k}] = normal
  tensor emit: real[{k}, {v}] = normal
  latent z: cat[{k}, {t}] ~ Markov(init=init, trans=trans)
  observe x ~ Categorical(logits=emit[z])
  loss nll = -log p(x)
  sample x ~ p(x)
}}
"""

GAUSSIAN = """
model Gaussian {
  data x: real[4, 2] from npy(path="x.npy")
  tensor init: real[3] = normal
  tensor trans: real[3, 3] = normal
  tensor mu: real[3, 2] = normal
  tensor log_sigma: real[3, 2] = normal(std=0.3)
  tensor shift: real[4, 2] = normal
  latent z: cat[3, 4] ~ Markov(init=init, trans=trans)
  observe x ~ Normal(mu[z] + shift, exp(log_sigma[z]))
  loss nll = -log p(x)
}
"""


def log_prior(model, path: tuple[int, ...]) -> torch.Tensor:
    """log p(z = path) by hand, from the model's logits."""
    log_init, log_trans = torch.log_softmax(model.init, -1), torch.log_softmax(model.trans, -1)
    return log_init[path[0]] + sum(log_trans[a, b] for a, b in zip(path, path[1:]))


def categorical_log_joints(model, x: torch.Tensor, k: int) -> tuple[list, torch.Tensor]:
    """Every path, and log p(x, z = path) of each sequence: [paths, batch]."""
    log_emit = torch.log_softmax(model.emit, -1)
    paths = list(itertools.product(range(k), repeat=x.shape[1]))
    joints = [log_prior(model, p) + sum(log_emit[s, x[:, t]] for t, s in enumerate(p)) for p in paths]
    return paths, torch.stack(joints)


@pytest.mark.parametrize("k,v,t", [(2, 3, 1), (2, 3, 5), (3, 4, 4), (4, 2, 3)])
def test_forward_algorithm_equals_the_sum_over_every_path(k, v, t, tmp_path) -> None:
    compiled = compile_text(CATEGORICAL.format(k=k, v=v, t=t), tmp_path)
    torch.manual_seed(0)
    x = torch.randint(v, (7, t))
    _, joints = categorical_log_joints(compiled.model, x, k)
    expected = torch.logsumexp(joints, 0)
    with torch.no_grad():
        assert torch.allclose(compiled.model.log_p_x(x), expected, atol=1e-5)
        assert torch.allclose(compiled.model.loss_nll({"x": x}), -expected.mean(), atol=1e-5)


def test_gaussian_steps_with_a_per_step_shift_equal_the_sum_over_every_path(tmp_path) -> None:
    compiled = compile_text(GAUSSIAN, tmp_path)
    model = compiled.model
    x = torch.randn(5, 4, 2)
    terms = []
    for path in itertools.product(range(3), repeat=4):
        z = torch.tensor(path)
        emit = torch.distributions.Normal(model.mu[z] + model.shift, torch.exp(model.log_sigma[z]))
        terms.append(log_prior(model, path) + emit.log_prob(x).sum((1, 2)))
    with torch.no_grad():
        assert torch.allclose(model.log_p_x(x), torch.logsumexp(torch.stack(terms), 0), atol=1e-5)


def test_viterbi_is_the_most_probable_path(tmp_path) -> None:
    compiled = compile_text(CATEGORICAL.format(k=3, v=4, t=5), tmp_path)
    torch.manual_seed(1)
    x = torch.randint(4, (20, 5))
    paths, joints = categorical_log_joints(compiled.model, x, 3)
    best = torch.tensor([paths[i] for i in joints.argmax(0)])
    with torch.no_grad():
        decoded, log_joint = compiled.model.viterbi_z(x)
        assert torch.equal(decoded, best)
        assert torch.allclose(log_joint, joints.max(0).values, atol=1e-5)
        assert torch.allclose(compiled.model.prior_z().log_prob(decoded), torch.stack(
            [log_prior(compiled.model, tuple(p.tolist())) for p in decoded]), atol=1e-5)


def test_samples_follow_the_chain(tmp_path) -> None:
    """A chain that always moves k -> k + 1 (mod K), observed exactly (x_t = z_t): every sample
    climbs by one each step, from a start with the initial probabilities."""
    compiled = compile_text(CATEGORICAL.format(k=3, v=3, t=6), tmp_path)
    model = compiled.model
    with torch.no_grad():
        model.trans.copy_(torch.full((3, 3), -30.0) + 60.0 * torch.roll(torch.eye(3), 1, dims=1))
        model.emit.copy_(torch.full((3, 3), -30.0) + 60.0 * torch.eye(3))
        model.init.copy_(torch.tensor([0.0, math.log(3.0), -30.0]))
        torch.manual_seed(0)
        x = model.sample_x(4000)
    assert x.shape == (4000, 6) and x.dtype == torch.long
    assert torch.equal((x[:, 1:] - x[:, :-1]) % 3, torch.ones(4000, 5, dtype=torch.long))
    assert abs(float((x[:, 0] == 1).float().mean()) - 0.75) < 0.03


def test_the_true_model_scores_its_own_data_like_the_loader_says(tmp_path) -> None:
    """The generated model given the source's true parameters gives the loader's exact log p(x),
    which is what the e2e test compares a trained model with."""
    compiled = compile_text(CATEGORICAL.format(k=3, v=4, t=6), tmp_path)
    init, trans, emit = hmm_parameters(states=3, symbols=4, truth=0)
    with torch.no_grad():
        for name, probs in (("init", init), ("trans", trans), ("emit", emit)):
            getattr(compiled.model, name).copy_(torch.as_tensor(np.log(probs)))
    x, states = load("hmm", {"states": 3, "symbols": 4, "length": 6, "n": 400}, "valid")
    assert x.shape == states.shape == (100, 6) and x.max() < 4 and states.max() < 3
    expected = hmm_log_density(x, states=3, symbols=4, length=6)
    with torch.no_grad():
        generated = compiled.model.log_p_x(torch.as_tensor(x))
    assert np.allclose(generated.double().numpy(), expected, atol=1e-4)
    with torch.no_grad():  # and by brute force
        _, joints = categorical_log_joints(compiled.model, torch.as_tensor(x[:10]), 3)
    assert np.allclose(torch.logsumexp(joints, 0).double().numpy(), expected[:10], atol=1e-4)


def test_the_reference_spec_checks() -> None:
    checked = checks((SPECS / "hmm.gen").read_text())
    assert checked.ok, [d.message for d in checked.diagnostics]


def codes(text: str) -> list[str]:
    return [d.code for d in checks(text).diagnostics if d.severity == "error"]


def variant(old: str, new: str) -> str:
    text = (SPECS / "hmm.gen").read_text()
    assert old in text
    return text.replace(old, new)


@pytest.mark.parametrize("old,new,code", [
    ("latent z: cat[K, T]", "latent z: cat[K]", "E226"),                      # a chain draws sequences
    ("Markov(init=init, trans=trans)", "Categorical(logits=init)", "E226"),    # a latent sequence needs a chain
    ("tensor trans: real[K, K]", "tensor trans: real[K, 3]", "E220"),         # K x K transitions
    ("Markov(init=init, trans=trans)", "Markov(init=0, trans=trans)", "E221"),  # logits are tensors
    ("observe x ~ Categorical(logits=emit[z])", "observe x ~ Markov(init=init, trans=trans)", "E226"),
    ("data x: cat[V, T]", "data x: cat[V, T, 2]", "E217"),
    ("observe x ~ Categorical(logits=emit[z])",                                # a sum over the steps mixes them
     "observe x ~ Categorical(logits=emit[z] + sum(emit[z], dim=0))", "E330"),
    ("observe x ~ Categorical(logits=emit[z])",                                # so may a network
     "net f(z: cat[K, T]) -> real[T, V] { onehot(z) |> Linear(V) }\n  observe x ~ Categorical(logits=f(z))", "E330"),
    ("observe x ~ Categorical(logits=emit[z])",                                # one chain, alone
     "latent c: cat[2] ~ Categorical(logits=0)\n  tensor b: real[2, V] = zeros\n"
     "  observe x ~ Categorical(logits=emit[z] + b[c])", "E330"),
    ("observe x ~ Categorical(logits=emit[z])",                                # z picks rows of a shared table
     "net g(z: cat[K, T]) -> real[K, V] { onehot(z) |> flatten |> Linear(K * V) |> reshape(K, V) }\n"
     "  observe x ~ Categorical(logits=g(z)[z])", "E227"),
])
def test_misuse_is_a_diagnostic(old: str, new: str, code: str) -> None:
    found = codes(variant(old, new))
    assert found and found[0] == code, found


def test_softmax_within_a_step_is_per_step() -> None:
    assert codes(variant("Categorical(logits=emit[z])", "Categorical(probs=softmax(emit[z]))")) == []


def test_data_whose_first_dimension_is_not_the_steps_is_refused() -> None:
    """x: real[2, 4, 2] broadcasts with mu[z]: real[4, 2], but its first dimension is not the 4 steps."""
    text = GAUSSIAN.replace("data x: real[4, 2]", "data x: real[2, 4, 2]").replace(
        "shift: real[4, 2]", "shift: real[2, 4, 2]").replace("exp(log_sigma[z])", "exp(log_sigma[z] + shift)")
    found = [d for d in checks(text).diagnostics if d.severity == "error"]
    assert [d.code for d in found] == ["E330"] and "first dimension" in found[0].message, found
