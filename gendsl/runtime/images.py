"""What people would rather look at than read: sample grids, 2-D scatter plots, loss curves."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def as_images(x: np.ndarray) -> np.ndarray | None:
    """[n, ...] samples as [n, H, W, C] images in [0, 1], or None when they are not images. A NaN or
    an infinity is drawn black (the caller says how many there were: `draw.non_finite`)."""
    shape = x.shape[1:]
    if len(shape) == 3 and shape[0] in (1, 3):
        images = x.transpose(0, 2, 3, 1)
    elif len(shape) == 2 and min(shape) > 2:
        images = x[..., None]
    elif len(shape) == 1 and shape[0] >= 16 and math.isqrt(shape[0]) ** 2 == shape[0]:
        side = math.isqrt(shape[0])
        images = x.reshape(len(x), side, side, 1)
    else:
        return None
    return np.clip(np.nan_to_num(images, nan=0.0, posinf=0.0, neginf=0.0), 0.0, 1.0)


def save_grid(images: np.ndarray, path: Path, columns: int | None = None, min_size: int = 32) -> None:
    """A PNG grid of [n, H, W, C] images, small images upscaled (nearest) to be visible."""
    from PIL import Image

    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    scale = max(1, math.ceil(min_size / max(h, w)))
    pad = 2
    canvas = np.ones((rows * (h * scale + pad) + pad, columns * (w * scale + pad) + pad, c), dtype=np.float32)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        big = image.repeat(scale, 0).repeat(scale, 1)
        top, left = pad + r * (h * scale + pad), pad + col * (w * scale + pad)
        canvas[top:top + h * scale, left:left + w * scale] = big
    pixels = (canvas * 255).round().astype(np.uint8)
    Image.fromarray(pixels[..., 0] if c == 1 else pixels).save(path)


def save_scatter(samples: np.ndarray, path: Path, reference: np.ndarray | None = None, title: str = "") -> None:
    """2-D samples (blue) over held-out data (grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    if reference is not None:
        ax.scatter(reference[:, 0], reference[:, 1], s=2, c="#bbbbbb", label="held-out data", rasterized=True)
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c="#1f5fa8", label="samples", rasterized=True)
    ax.set_aspect("equal", adjustable="datalim")
    # below the axes: inside them, the legend hid the samples of a corner mode
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=2, fontsize=7, markerscale=4, frameon=False)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_samples(samples: np.ndarray, path: Path, reference: np.ndarray | None = None, title: str = "") -> None:
    """A grid for images, a scatter plot for 2-D points, else a heat map with one row per sample."""
    images = as_images(samples)
    flat = samples.reshape(len(samples), -1)
    if images is not None:
        save_grid(images, path)
    elif flat.shape[1] == 2:
        save_scatter(flat, path, None if reference is None else reference.reshape(len(reference), -1), title)
    else:
        save_rows(flat, path, title)


def save_rows(flat: np.ndarray, path: Path, title: str = "") -> None:
    """Samples that are neither images nor points: each sample's values as one row of a heat map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    shown = ax.imshow(flat.astype(np.float64), aspect="auto", interpolation="nearest", cmap="viridis")
    ax.set_xlabel("value index")
    ax.set_ylabel("sample")
    ax.set_title(title, fontsize=9)
    fig.colorbar(shown, ax=ax)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_loss_plot(rows: list[dict], path: Path) -> None:
    """Each logged loss against the round, and each valid loss (dashed, where it was measured)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in rows[0] if k.startswith(("loss/", "valid/"))] if rows else []
    if not keys:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    for key in keys:  # a valid loss only on the rounds that validated
        points = [(int(r["round"]), float(r[key])) for r in rows if r.get(key) not in (None, "")]
        if points:
            ax.plot(*zip(*points), label=key.removeprefix("loss/"), linewidth=1.2,
                    linestyle="--" if key.startswith("valid/") else "-", marker="." if key.startswith("valid/") else None)
    ax.set_xlabel("round")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
