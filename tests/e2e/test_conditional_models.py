"""Conditional flows and conditional energies (issue 11, item 7) train from their reference specs
through the CLI and reach the issue's thresholds on held-out data: the conditional flow's NLL of
p(x | mode) on the ring is within 0.05 nats of the true conditional density's, and its samples
given a mode lie at that mode; the energy F(x, y) of digits classifies held-out digits by its
lowest-energy label at >= 90%, and its Langevin samples given y are recognized as y at >= 70%."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sklearn.neighbors import NearestNeighbors

from gendsl.data import load
from gendsl.data.synthetic import modes
from gendsl.runtime.run import load_trained
from tests.e2e.test_families import digit_classifier, evaluate, train


def test_conditional_flow_matches_the_true_conditional_density(tmp_path: Path) -> None:
    run = train("cond_flow.gen", tmp_path / "cf", "--steps", "800", "--set", "couplings=4")
    nll = evaluate(run, "nll")["nll"]
    assert nll["gap"] <= 0.05, nll      # measured: 0.0033 (+/- 0.0012) on test after these 800 rounds
    _, model, _ = load_trained(run, "cpu")
    torch.manual_seed(0)
    n = 800
    samples = model.sample_x(n).numpy()                  # the label cycles through the 8 modes
    centres, std = modes("ring", modes=8, radius=2.0, std=0.1)
    nearest = ((samples[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    assert (nearest == np.arange(n) % 8).mean() >= 0.99
    assert np.abs(samples - centres[np.arange(n) % 8]).std() < 2 * std


def test_conditional_energy_classifies_and_draws_the_digit_it_is_given(tmp_path: Path) -> None:
    run = train("cond_ebm.gen", tmp_path / "ebm", "--validate-every", "0")
    accuracy = evaluate(run, "accuracy")["accuracy"]["accuracy"]
    assert accuracy >= 0.90, accuracy   # the label of lowest energy F(x, y), held-out digits (seeds 0-2: 0.961, 0.966, 0.961)
    _, model, _ = load_trained(run, "cpu")
    torch.manual_seed(0)
    n = 500
    samples = model.sample_x(n).numpy().reshape(n, -1)  # Langevin given y, the label cycling through 0..9
    recognized = (digit_classifier().predict(samples) == np.arange(n) % 10).mean()
    assert recognized >= 0.70, recognized                # measured 1.0 for three seeds
    # digits, not noise that fools the classifier: near the training digits (seeds 0-2: 1.97, 2.09 and
    # 2.19x as far as held-out digits are; the noise of runs at lr 3e-4: 2.5-2.8x, over-trained: 3.1x)
    train_x, valid_x = (load("digits", {}, split)[0].reshape(-1, 64) for split in ("train", "valid"))
    nearest = NearestNeighbors(n_neighbors=1).fit(train_x)
    ratio = nearest.kneighbors(samples)[0].mean() / nearest.kneighbors(valid_x)[0].mean()
    assert ratio <= 2.4, ratio
