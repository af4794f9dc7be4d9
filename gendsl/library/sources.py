"""Data sources for `data x: T from source(...)`: the one registry of them.

Each entry owns its source: the signature (the arguments a spec may give), the types of the
arrays it yields (None where only the file can tell; the declared type is then checked at load
time), the doc line, and its loader in gendsl/data (`runtime`, numpy, imported only when data
are loaded). Synthetic sources (tag `synthetic`) draw `n` rows for train and n // 4 for valid
and test; those with a known density also name the function that gives their modes (`density`).
"""

from __future__ import annotations

import math
from typing import Annotated

from gendsl.library.entries import Registry, require
from gendsl.library.signature import NonNegative, Positive, Range
from gendsl.types import TensorType, real

SOURCES = Registry("data source")
source = SOURCES.register

Outputs = tuple[TensorType, ...] | None
Rows = Annotated[int, Range(4, 10_000_000)]    # valid and test draw n // 4 rows each
Modes = Annotated[int, Range(1, 10_000)]
Side = Annotated[int, Range(1, 100)]          # side x side modes


def _labels(k: int = 10) -> TensorType:
    return TensorType(kind="cat", classes=k)


def _synthetic(name: str, doc: str, known_density: bool = False):
    """A synthetic 2-D source; its loader is gendsl.data.synthetic.NAME (and NAME_modes when its
    density is known)."""
    return source(name, doc + "; 2-D, " + ("known density; " if known_density else "")
                  + "n for train, n/4 for valid and test", skip=0,
                  tags=("synthetic", "known_density") if known_density else ("synthetic",),
                  runtime=f"gendsl.data.synthetic:{name}",
                  density=f"gendsl.data.synthetic:{name}_modes" if known_density else "")


def _file(name: str, doc: str, images: bool = False):
    """A source read from files by gendsl.data.files.NAME; `images`: its rows are pictures (what
    fid, kid and prd measure), whatever shape a spec declares them in."""
    return source(name, doc, skip=0, runtime=f"gendsl.data.files:{name}", tags=("images",) if images else ())


def image_shape(source_name: str, kind: str, shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """(C, H, W) of a data variable's rows when they are images, else None: a `real` or `bin`
    variable declared [C, H, W], or the pixels of an image source in any shape: [H, W] is one
    channel, a flat vector a square of one channel (digits' 64 values are 8x8, MNIST's 784 are
    28x28) or of three."""
    if kind not in ("real", "bin"):
        return None
    if len(shape) == 3:
        return shape[0], shape[1], shape[2]
    if source_name not in SOURCES or "images" not in SOURCES[source_name].tags:
        return None
    if len(shape) == 2:
        return 1, shape[0], shape[1]
    if len(shape) == 1:
        for channels in (1, 3):
            side = math.isqrt(shape[0] // channels)
            if channels * side * side == shape[0]:
                return channels, side, side
    return None


@_synthetic("ring", "a ring of equally weighted Gaussians (PacGAN's ring of 8), with each point's mode",
            known_density=True)
def ring(n: Rows = 20000, modes: Modes = 8, radius: Positive = 2.0, std: Positive = 0.02) -> Outputs:
    require(modes >= 1 and radius > 0 and std > 0, "ring needs modes >= 1, radius > 0 and std > 0")
    return (real(2), _labels(modes))


@_synthetic("grid", "a side x side grid of Gaussians (PacGAN's grid of 25), with each point's mode",
            known_density=True)
def grid(n: Rows = 20000, side: Side = 5, spacing: Positive = 2.0, std: Positive = 0.05) -> Outputs:
    require(side >= 1 and spacing > 0 and std > 0, "grid needs side >= 1, spacing > 0 and std > 0")
    return (real(2), _labels(side * side))


@_synthetic("moons", "two interleaved half circles")
def moons(n: Rows = 20000, noise: NonNegative = 0.05) -> Outputs:
    return (real(2),)


@_synthetic("circles", "two concentric circles")
def circles(n: Rows = 20000, noise: NonNegative = 0.05, factor: Annotated[float, Range(0, 1, open_low=True, open_high=True)] = 0.5) -> Outputs:
    return (real(2),)


@_synthetic("swiss_roll", "a 2-D swiss roll")
def swiss_roll(n: Rows = 20000, noise: NonNegative = 0.25) -> Outputs:
    return (real(2),)


@_file("digits", "scikit-learn's 1,797 8x8 digits in [0, 1] with labels (bundled, offline); "
        "fixed 80/10/10 split; categorical=true: each pixel is its level 0..16 as a category cat[17]",
        images=True)
def digits(classes: list[int] | None = None, binarize: bool = False, categorical: bool = False) -> Outputs:
    require(classes is None or all(0 <= c <= 9 for c in classes), "digits classes are 0..9")
    require(not (binarize and categorical), "digits: binarize and categorical exclude each other")
    if categorical:
        return (TensorType(kind="cat", shape=(8, 8), classes=17), _labels())
    return (TensorType(kind="bin" if binarize else "real", shape=(8, 8)), _labels())


@_file("binarized_mnist", "MNIST binarized by Larochelle & Murray (2011), the 50k/10k/10k split "
        "of the MADE, IWAE and PixelCNN papers; default ../shared/data/binarized_mnist.npz", images=True)
def binarized_mnist(path: str | None = None) -> Outputs:
    return (TensorType(kind="bin", shape=(784,)),)


@_file("paired_mnist", "pairs (binarized, grayscale, label) of the 10k MNIST test digits for "
        "image-to-image translation; fixed 80/10/10 split", images=True)
def paired_mnist(path: str | None = None, images: str | None = None) -> Outputs:
    return (TensorType(kind="bin", shape=(28, 28)), real(28, 28), _labels())


@_file("mnist_idx", "images (and labels) from IDX files, gzipped or not (default: the 10k "
        "grayscale MNIST test digits in ../shared/data); fixed 80/10/10 split", images=True)
def mnist_idx(images: str | None = None, labels: str | None = None) -> Outputs:
    return (real(28, 28), _labels()) if images is None else None


@_file("npz", "arrays from a .npz file: split keys (train/valid/test or key_split) or a "
        "fixed 80/10/10 split")
def npz(path: str, keys: list[str] | None = None) -> Outputs:
    return None


@_file("npy", "one array from a .npy file; fixed 80/10/10 split")
def npy(path: str) -> Outputs:
    return None


@_file("image_folder", "PNG/JPEG images, one subfolder per class; fixed 80/10/10 split", images=True)
def image_folder(path: str, size: int | list[int] | None = None, grayscale: bool = True) -> Outputs:
    return None


@source("hmm", "sequences of `length` symbols from a random hidden Markov model with `states` states, and the "
        "states each was drawn from; the model's parameters come from seed `truth`; known density; n for train, "
        "n/4 for valid and test", skip=0, tags=("synthetic", "known_density"), runtime="gendsl.data.synthetic:hmm")
def hmm(n: Rows = 20000, states: Annotated[int, Range(1, 64)] = 4, symbols: Annotated[int, Range(2, 1000)] = 6,
        length: Annotated[int, Range(1, 10_000)] = 20, truth: Annotated[int, Range(0)] = 0) -> Outputs:
    return (TensorType(kind="cat", classes=symbols, shape=(length,)),
            TensorType(kind="cat", classes=states, shape=(length,)))
