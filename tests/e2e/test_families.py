"""Each model family of issue 3 trains from its reference spec through the CLI and reaches a
quality threshold on held-out data (the valid split; test numbers belong to bench/).

Runs are shortened with --steps to fit CI; the thresholds were set from runs of the same
commands (see the issue notes) with a margin, and each one is far from what an untrained or
broken model gives.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gendsl.runtime.run import load_trained
from gendsl.data import load
from gendsl.runtime.draw import held_out
from tests.conftest import SPECS
from tests.e2e.cli import gendsl


def train(spec: str, out: Path, *args: str) -> Path:
    code, _, stderr = gendsl("train", SPECS / spec, "--out", out, "--quiet", *args)
    assert code == 0, stderr
    return out


def evaluate(run: Path, *metrics: str, split: str = "valid", extra: tuple = ()) -> dict:
    args = [a for m in metrics for a in ("--metric", m)]
    code, stdout, stderr = gendsl("evaluate", run, "--split", split, "--format", "json", "--quiet", *args, *extra)
    assert code == 0, stderr
    return json.loads(stdout)["metrics"]


def mean_image_mse(source: str) -> float:
    """The error of predicting every held-out image by the training mean (a model that learnt nothing)."""
    train_x = load(source, {}, "train")[0].reshape(-1, 64)
    valid_x = load(source, {}, "valid")[0].reshape(-1, 64)
    return float(((valid_x - train_x.mean(0)) ** 2).mean())


def test_autoencoder(tmp_path: Path) -> None:
    run = train("ae.gen", tmp_path / "ae", "--steps", "2000")
    mse = evaluate(run, "recon")["recon"]["mse"]
    assert mse < 0.25 * mean_image_mse("digits"), mse


def test_denoising_autoencoder(tmp_path: Path) -> None:
    run = train("dae.gen", tmp_path / "dae", "--steps", "2000")
    mse = evaluate(run, "recon")["recon"]["mse"]
    noise_mse = 0.3 ** 2  # what the corrupted input itself is off by
    assert mse < 0.5 * noise_mse and mse < 0.4 * mean_image_mse("digits"), mse


def kl_to_prior(run: Path) -> float:
    """Mean KL(q(z | x) || p(z)) over held-out digits, read off the generated model."""
    _, model, device = load_trained(run, "cpu")
    x = held_out(model_spec(run), device)[0].tensors[0][:2000]
    with torch.no_grad():
        return float(torch.distributions.kl_divergence(model.q_z(x), model.prior_z()).mean())


def model_spec(run: Path):
    from gendsl.runtime.run import open_run

    return open_run(run).spec


def factorized_bernoulli_nll() -> float:
    """Held-out NLL of the best model with independent pixels (each pixel's training frequency):
    a VAE whose bound is not below this has learnt nothing beyond the marginals."""
    train_x = load("binarized_mnist", {}, "train")[0]
    valid_x = load("binarized_mnist", {}, "valid")[0]
    p = train_x.mean(0).clip(1e-3, 1 - 1e-3)
    return float(-(valid_x * np.log(p) + (1 - valid_x) * np.log(1 - p)).sum(1).mean())


def test_vae_and_beta_vae(tmp_path: Path) -> None:
    vae = train("vae.gen", tmp_path / "vae", "--steps", "600")
    beta = train("beta_vae.gen", tmp_path / "beta", "--steps", "600")
    baseline = factorized_bernoulli_nll()  # about 206 nats
    elbo = evaluate(vae, "elbo")["elbo"]
    assert elbo["nats"] < baseline - 15, (elbo, baseline)  # an untrained VAE gives ~545
    assert evaluate(beta, "elbo")["elbo"]["nats"] < baseline
    assert kl_to_prior(beta) < 0.8 * kl_to_prior(vae)  # beta > 1 pulls q(z | x) towards the prior


@pytest.mark.parametrize("spec,steps", [("gan_ring.gen", 6000), ("gan_ring_minimax.gen", 6000),
                                        ("gan_ring_hinge.gen", 6000)])
def test_gan_covers_the_ring(spec: str, steps: int, tmp_path: Path) -> None:
    run = train(spec, tmp_path / "gan", "--steps", str(steps))
    coverage = evaluate(run, "coverage")["coverage"]
    assert coverage["samples"] == 2500
    assert coverage["modes"] == 8, coverage
    assert coverage["high_quality"] >= 0.80, coverage


def digit_classifier():
    """A classifier of real 8x8 digits (trained on the train split; ~97% on valid)."""
    from sklearn.linear_model import LogisticRegression

    x, y = load("digits", {}, "train")
    clf = LogisticRegression(max_iter=2000).fit(x.reshape(len(x), -1), y)
    vx, vy = load("digits", {}, "valid")
    assert clf.score(vx.reshape(len(vx), -1), vy) > 0.9
    return clf


def test_conditional_gan_draws_the_digit_it_is_asked_for(tmp_path: Path) -> None:
    run = train("cgan.gen", tmp_path / "cgan", "--steps", "5000")
    _, model, _ = load_trained(run, "cpu")
    torch.manual_seed(0)
    n = 1000
    samples = model.sample_x(n).numpy()                  # the label cycles through 0..9
    labels = np.arange(n) % 10
    accuracy = float((digit_classifier().predict(samples.reshape(n, -1)) == labels).mean())
    assert accuracy >= 0.70, accuracy
