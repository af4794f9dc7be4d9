"""VQ-VAE (specs/vqvae.gen, issue 11 item 4) trains through the CLI and, on held-out digits:
reconstructs them well, uses most of its codebook, and its prior's samples are digits of every
class (a classifier of real digits spreads them over the ten classes with entropy near log 10)
that lie as near the training digits as held-out digits do."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

from gendsl.data import load
from gendsl.runtime.run import load_trained
from tests.e2e.test_families import digit_classifier, evaluate, mean_image_mse, train


def perplexity(codes: torch.Tensor, size: int) -> float:
    """exp of the entropy of the codebook's usage: how many codes are in effect used."""
    share = torch.bincount(codes.flatten(), minlength=size).double() / codes.numel()
    share = share[share > 0]
    return float(torch.exp(-(share * share.log()).sum()))


def entropy(labels: np.ndarray, classes: int = 10) -> float:
    share = np.bincount(labels, minlength=classes) / len(labels)
    share = share[share > 0]
    return float(-(share * np.log(share)).sum())


def test_perplexity_and_entropy_count_what_is_used() -> None:
    assert math.isclose(perplexity(torch.arange(32) % 8, 32), 8.0)
    assert perplexity(torch.zeros(10, dtype=torch.long), 32) == 1.0
    assert math.isclose(entropy(np.arange(100) % 10), math.log(10))


def test_vqvae_reconstructs_uses_its_codes_and_samples_every_digit(tmp_path: Path) -> None:
    run = train("vqvae.gen", tmp_path / "vq", "--steps", "1000", "--validate-every", "0")
    recon = evaluate(run, "losses")["losses"]["recon"]
    assert recon < 0.2 * mean_image_mse("digits"), recon   # measured 0.14x at these 1000 rounds
    _, model, _ = load_trained(run, "cpu")
    valid_x = torch.as_tensor(load("digits", {}, "valid")[0].reshape(-1, 64), dtype=torch.float32)
    with torch.no_grad():
        codes = model.q_k(valid_x, model.encode, model.codebook).sample()
    used = perplexity(codes, model.codebook.shape[0])
    assert used >= 16, used                                      # measured 30.0 of 32
    torch.manual_seed(0)
    n = 1000
    samples = model.sample_x(n).numpy().reshape(n, -1)           # k ~ p(k), then decode(codebook[k])
    spread = entropy(digit_classifier().predict(samples))
    assert spread >= 0.9 * math.log(10), spread                  # measured 2.22 (log 10 = 2.30)
    train_x = load("digits", {}, "train")[0].reshape(-1, 64)
    nearest = NearestNeighbors(n_neighbors=1).fit(train_x)
    ratio = nearest.kneighbors(samples)[0].mean() / nearest.kneighbors(valid_x.numpy())[0].mean()
    assert ratio <= 1.5, ratio                                   # measured 1.33
