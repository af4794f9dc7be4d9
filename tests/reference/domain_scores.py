"""How well a trained CycleGAN translates, measured outside gendsl: cycle L1 both ways, and how
many translations a domain classifier (logistic regression on pixel-value histograms, fitted on
real train images) accepts as the target domain. Used by the CycleGAN test and bench/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def histogram_features(x: torch.Tensor) -> np.ndarray:
    """Each image's histogram of pixel values: what tells binarized from grayscale digits."""
    x = x.clamp(0, 1).reshape(len(x), -1).numpy()
    return np.stack([np.histogram(row, bins=10, range=(0, 1))[0] / row.size for row in x])


def cyclegan_scores(run_folder: Path, split: str, n: int, n_train: int = 3000) -> dict:
    """Scores of the run's G_ab / G_ba on the first n images of each domain of `split`."""
    from sklearn.linear_model import LogisticRegression

    from gendsl.runtime.run import load_trained
    from gendsl.runtime.draw import held_out

    run, model, _ = load_trained(Path(run_folder), "cpu")
    rows = {s: {name: t for g in held_out(run.spec, torch.device("cpu"), s) for name, t in zip(g.names, g.tensors)}
            for s in ("train", split)}
    real = torch.cat([rows["train"]["a"][:n_train], rows["train"]["b"][:n_train]])
    domain = LogisticRegression(max_iter=2000).fit(histogram_features(real), np.r_[np.zeros(n_train), np.ones(n_train)])
    a, b = rows[split]["a"][:n], rows[split]["b"][:n]
    with torch.no_grad():
        to_b, to_a = model.G_ab(a), model.G_ba(b)
        return {"cycle_aba_l1": float((model.G_ba(to_b) - a).abs().mean()),
                "cycle_bab_l1": float((model.G_ab(to_a) - b).abs().mean()),
                "G_ab_accepted_as_b": float((domain.predict(histogram_features(to_b)) == 1).mean()),
                "G_ba_accepted_as_a": float((domain.predict(histogram_features(to_a)) == 0).mean()),
                "classifier_real_accuracy": float(domain.score(histogram_features(torch.cat([a, b])),
                                                               np.r_[np.zeros(len(a)), np.ones(len(b))]))}
