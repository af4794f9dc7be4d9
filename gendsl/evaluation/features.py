"""The feature space of the sample-quality metrics (fid, kid, prd): a small convolutional
classifier of the run's image data set, trained once on its train split with a fixed seed and
cached in the user's cache folder (gendsl/cache.py); its penultimate layer gives the features.

Inception weights cannot be downloaded offline, and a network trained on ImageNet photographs
knows little of 8x8 digits: a classifier of the data set itself responds to what tells its
images apart. A source with labels (digits, MNIST, an image folder with a subfolder per class)
trains it to predict them; one without (binarized_mnist, an npz of images) to predict which of
four rotations was applied (flips, for images that are not square), a task that needs no labels
(Gidaris et al. 2018). The cache file is keyed by the source, its arguments, the array, the
image shape and the size and date of the data files named; one that does not load is retrained,
silently."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gendsl.cache import cache_folder
from gendsl.spec import DataVar

FEATURES = 64          # width of the penultimate layer: the features
VERSION = 1            # changes with the network or its training: older cache files are then ignored
TRAIN_ROWS = 20_000    # train rows it learns from, at most (binarized_mnist has 50,000)
STEPS, BATCH, LR = 300, 64, 2e-3
SEED = 0

_loaded: dict[str, "ImageFeatures"] = {}   # this process's networks, by cache key


class ImageFeatures(nn.Module):
    """Three 3x3 convolutions (the last two of stride 2), average-pooled to at most 4x4, then a
    linear layer of FEATURES units, the penultimate layer: forward gives its values; `head`
    classifies them."""

    def __init__(self, shape: tuple[int, int, int], classes: int):
        super().__init__()
        channels, height, width = shape
        self.shape = tuple(shape)
        self.num_features = FEATURES   # read by torchmetrics' FID, which otherwise runs a dummy input
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("std", torch.ones(()))
        self.register_buffer("scale", torch.ones(()))   # features of train images: mean square 1
        pooled = (min(4, math.ceil(height / 4)), min(4, math.ceil(width / 4)))
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(pooled), nn.Flatten(),
            nn.Linear(64 * pooled[0] * pooled[1], FEATURES))
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(FEATURES, classes))   # the features before their ReLU:
                                                                               # no unit is dead for every image

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(len(x), *self.shape).float()
        return self.body((x - self.mean) / self.std) * self.scale


def feature_network(var: DataVar, shape: tuple[int, int, int]) -> ImageFeatures:
    """The classifier of `var`'s data set, in eval mode: from this process, else the cache file,
    else trained now (on the CPU) and cached."""
    key = cache_key(var, shape)
    if key not in _loaded:
        folder = cache_folder()
        path = folder / f"features-{key[:16]}.pt" if folder is not None else None
        network = _read(path, key, shape) if path is not None else None
        if network is None:
            network, classes = train_network(var, shape)
            if path is not None:
                _write(path, key, classes, network)
        _loaded[key] = network.eval()
    return _loaded[key]


def cache_key(var: DataVar, shape: tuple[int, int, int]) -> str:
    """What the trained network depends on; data files named in the arguments by size and date."""
    args = {k: v for k, v in sorted(var.args.items()) if v is not None}
    files = []
    for value in args.values():
        if isinstance(value, str) and Path(value).expanduser().exists():
            stat = Path(value).expanduser().stat()
            files.append([value, stat.st_size, stat.st_mtime_ns])
    described = json.dumps({"source": var.source, "args": args, "position": var.position, "shape": list(shape),
                            "files": files, "version": VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(described.encode()).hexdigest()


def _read(path: Path, key: str, shape: tuple[int, int, int]) -> ImageFeatures | None:
    """The cached network, or None when the file is missing, damaged or another network's."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("key") != key:
            return None
        with torch.random.fork_rng(devices=[]):  # the layers' initial draws, overwritten: the caller's
            network = ImageFeatures(shape, int(saved["classes"]))   # samples stay as they were
        network.load_state_dict(saved["state"])
        return network
    except Exception:  # noqa: BLE001 - any unreadable file means the same thing: train again
        return None


def _write(path: Path, key: str, classes: int, network: ImageFeatures) -> None:
    """Save atomically (a reader never sees half a file); a cache that cannot be written is skipped."""
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as handle:
            torch.save({"key": key, "classes": classes, "state": network.state_dict()}, handle)
        os.replace(handle.name, path)
    except OSError:
        pass


def training_data(var: DataVar, shape: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The train split's images (N, C, H, W), at most TRAIN_ROWS, and their labels: an integer
    array of the same source (None when it has none)."""
    from gendsl.data import load

    arrays = load(var.source, {k: v for k, v in var.args.items() if v is not None}, "train")
    images = torch.as_tensor(np.asarray(arrays[var.position][:TRAIN_ROWS], dtype=np.float32)).reshape(-1, *shape)
    labels = next((a[:TRAIN_ROWS] for i, a in enumerate(arrays) if i != var.position and a.ndim == 1
                   and np.issubdtype(a.dtype, np.integer) and len(np.unique(a)) > 1), None)
    return images, None if labels is None else torch.as_tensor(labels, dtype=torch.long)


def transformed(x: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
    """Each image turned by `which` quarter turns (square images) or flipped (bit 0: left-right,
    bit 1: upside down)."""
    out = x.clone()
    square = x.shape[-1] == x.shape[-2]
    for k in range(1, 4):
        chosen = which == k
        if chosen.any():
            part = x[chosen]
            if square:
                part = torch.rot90(part, k, dims=(-2, -1))
            else:
                part = part.flip(-1) if k & 1 else part
                part = part.flip(-2) if k & 2 else part
            out[chosen] = part
    return out


def train_network(var: DataVar, shape: tuple[int, int, int]) -> tuple[ImageFeatures, int]:
    """Train the classifier on the CPU with a fixed seed, leaving the caller's random state as
    it was (a metric's samples are the same whether the network was cached or not)."""
    images, labels = training_data(var, shape)
    classes = int(labels.max()) + 1 if labels is not None else 4
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        network = ImageFeatures(shape, classes)
        network.mean.fill_(float(images.mean()))
        network.std.fill_(float(images.std().clamp_min(1e-6)))
        optimizer = torch.optim.Adam(network.parameters(), lr=LR)
        for _ in range(STEPS):
            index = torch.randint(len(images), (BATCH,))
            x = images[index]
            if labels is None:
                target = torch.randint(4, (BATCH,))
                x = transformed(x, target)
            else:
                target = labels[index]
            loss = nn.functional.cross_entropy(network.head(network(x)), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    network.eval()
    with torch.no_grad():  # unit scale: KID's kernel (x.y / d + 1)^3 assumes features of order one
        network.scale.fill_(float(network(images[:2000]).square().mean().clamp_min(1e-12).rsqrt()))
    return network, classes


@torch.no_grad()
def extract(network: ImageFeatures, x: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """Features of images (or of their pixels in any shape with the same number of values)."""
    network = network.to(x.device)
    return torch.cat([network(x[i:i + batch]) for i in range(0, len(x), batch)]).float()
