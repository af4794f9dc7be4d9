"""Sample quality in the features of a classifier of the data set (evaluation/features.py): the
Frechet and kernel distances (torchmetrics' FID and KID, given that classifier as their feature
extractor: no Inception network) and improved precision and recall (Kynkaanniemi et al. 2019,
written here: torchmetrics has none, torch-fidelity's needs its own extractor classes and
replaces the installed torch)."""

from __future__ import annotations

import warnings

import torch

CHUNK = 1024   # rows of a distance matrix computed at once
EXACT = "donot_use_mm_for_euclid_dist"   # not |x|^2 + |y|^2 - 2xy, which rounds a point's distance to itself


def frechet(network: torch.nn.Module, fake: torch.Tensor, real: torch.Tensor) -> float:
    """FID between two sets of images: the Frechet distance of Gaussians fitted to their features."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = _filled(FrechetInceptionDistance(feature=network), fake, real)
    return float(metric.compute())


def _filled(metric, fake: torch.Tensor, real: torch.Tensor):
    """A torchmetrics image metric on the images' device, given both sets a chunk at a time."""
    metric = metric.to(fake.device)
    for images, is_real in ((real, True), (fake, False)):
        for start in range(0, len(images), CHUNK):
            metric.update(images[start:start + CHUNK], real=is_real)
    return metric


def kernel(network: torch.nn.Module, fake: torch.Tensor, real: torch.Tensor, subsets: int,
           subset_size: int) -> tuple[float, float]:
    """KID between two sets of images: the unbiased MMD of a cubic polynomial kernel on their
    features, mean and std over random subsets (see subset_rows)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    with warnings.catch_warnings():  # "will save all extracted features in buffer": a few thousand rows here
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=network, subsets=subsets,
                                         subset_size=subset_rows(subset_size, min(len(fake), len(real))))
    mean, std = _filled(metric, fake, real).compute()
    return float(mean), float(std)


def subset_rows(subset_size: int, rows: int) -> int:
    """KID's subset size: at most half the rows, so that subsets differ and their spread means
    something (the mean is unbiased at any size)."""
    return max(2, min(subset_size, rows // 2))


def knn_radii(points: torch.Tensor, k: int) -> torch.Tensor:
    """Each point's distance to its k-th nearest other point of the same set."""
    radii = [torch.cdist(points[i:i + CHUNK], points, compute_mode=EXACT).kthvalue(k + 1, dim=1).values
             for i in range(0, len(points), CHUNK)]   # k + 1: the nearest is the point itself, at 0
    return torch.cat(radii)


def manifold_share(points: torch.Tensor, manifold: torch.Tensor, k: int) -> float:
    """The share of `points` inside the manifold estimate of another set: the union of balls
    around its points, each reaching its k-th nearest neighbour (boundary included)."""
    radii = knn_radii(manifold, k)
    inside = [(torch.cdist(points[i:i + CHUNK], manifold, compute_mode=EXACT) <= radii).any(dim=1)
              for i in range(0, len(points), CHUNK)]
    return float(torch.cat(inside).double().mean())


def precision_recall(fake: torch.Tensor, real: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision (fake features on the real manifold) and recall (real ones on the fake
    manifold), Kynkaanniemi et al. (2019); each set needs more than k rows."""
    fake, real = fake.double(), real.double()
    return manifold_share(fake, real, k), manifold_share(real, fake, k)
