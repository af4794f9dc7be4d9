"""Tests for gendsl.data: every source and split, known densities, coverage, and each DataError."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest

from gendsl.data import SOURCES, SPLITS, DataError, accepted_arguments, load
from gendsl.data import files, synthetic

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
NPZ = DATA / "binarized_mnist.npz"
T10K_IMAGES = DATA / "mnist_t10k-images-idx3-ubyte.gz"
T10K_LABELS = DATA / "mnist_t10k-labels-idx1-ubyte.gz"
SYNTHETIC = ["ring", "grid", "moons", "circles", "swiss_roll"]


def raises(code: str, source: str, args: dict, split: str = "train") -> DataError:
    with pytest.raises(DataError) as info:
        load(source, args, split)
    assert info.value.code == code, info.value.message
    assert info.value.message
    return info.value


# ---------------------------------------------------------------- synthetic sources

@pytest.mark.parametrize("source", SYNTHETIC)
def test_synthetic_shapes_dtypes_and_split_sizes(source):
    for split in SPLITS:
        x = load(source, {"n": 400}, split)[0]
        assert x.shape == (400 if split == "train" else 100, 2)
        assert x.dtype == np.float32 and np.isfinite(x).all()


def test_synthetic_default_n_is_20000():
    (x,) = load("moons", {}, "train")
    (v,) = load("moons", {}, "valid")
    assert len(x) == 20000 and len(v) == 5000


@pytest.mark.parametrize("source", SYNTHETIC)
def test_synthetic_splits_are_reproducible_and_distinct(source):
    first = load(source, {"n": 200}, "test")[0]
    again = load(source, {"n": 200}, "test")[0]
    train = load(source, {"n": 200}, "train")[0]
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(train[:50], first)


def test_different_sources_use_different_seeds():
    ring = load("ring", {"n": 100, "std": 1.0, "radius": 0.0}, "train")[0]
    grid = load("grid", {"n": 100, "std": 1.0, "side": 1}, "train")[0]
    assert not np.allclose(ring, grid)  # same distribution, different draws


def test_synthetic_geometry():
    ring = load("ring", {"n": 2000, "radius": 3.0}, "train")[0]
    assert abs(np.linalg.norm(ring, axis=1).mean() - 3.0) < 0.01
    grid = load("grid", {"n": 2000}, "train")[0]
    assert np.abs(grid).max() < 4.5 and abs(grid.mean()) < 0.2
    (circles,) = load("circles", {"n": 2000, "noise": 0.0, "factor": 0.3}, "train")
    radii = np.linalg.norm(circles, axis=1)
    assert np.all(np.isclose(radii, 1.0, atol=1e-5) | np.isclose(radii, 0.3, atol=1e-5))
    (moons,) = load("moons", {"n": 2000, "noise": 0.0}, "train")
    assert moons[:, 0].min() >= -1.0 - 1e-6 and moons[:, 0].max() <= 2.0 + 1e-6
    (roll,) = load("swiss_roll", {"n": 2000, "noise": 0.0}, "train")
    radius = np.linalg.norm(roll, axis=1) * 5
    assert radius.min() >= 1.5 * math.pi - 1e-3 and radius.max() <= 4.5 * math.pi + 1e-3


def mixture_density(x: np.ndarray, centres: np.ndarray, std: float) -> np.ndarray:
    """Direct (no logsumexp) mixture density, independent of the code under test."""
    squared = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
    return np.exp(-squared / (2 * std**2)).sum(1) / (len(centres) * 2 * math.pi * std**2)


def quadrature_entropy(name: str) -> float:
    """-integral p log p on a fine midpoint grid (h = std/4), one column block at a time."""
    centres, std = synthetic.modes(name)
    h = std / 4
    reach = np.abs(centres).max() + 10 * std
    axis = np.arange(-reach, reach, h) + h / 2
    total = 0.0
    for start in range(0, len(axis), 64):
        xs, ys = np.meshgrid(axis[start:start + 64], axis, indexing="ij")
        p = mixture_density(np.stack([xs.ravel(), ys.ravel()], 1), centres, std)
        p = p[p > 0]
        total -= float((p * np.log(p)).sum()) * h * h
    return total


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_entropy_matches_quadrature(name):
    exact = quadrature_entropy(name)
    estimate = synthetic.entropy(name, n=200_000)
    assert abs(estimate - exact) < 0.01, (estimate, exact)


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_log_density_matches_direct_sum_and_is_stable(name):
    centres, std = synthetic.modes(name)
    x = load(name, {"n": 1000}, "valid")[0]
    expected = np.log(mixture_density(x.astype(np.float64), centres, std))
    np.testing.assert_allclose(synthetic.log_density(name, x), expected, rtol=1e-9, atol=1e-9)
    far = synthetic.log_density(name, np.array([[100.0, 100.0]]))
    assert np.isfinite(far).all() and far[0] < -1e5  # direct sum underflows to log(0) here


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_labels_are_each_points_mode_and_give_the_conditional_density(name):
    centres, std = synthetic.modes(name)
    x, y = load(name, {"n": 2000}, "valid")
    assert y.dtype == np.int64 and set(np.unique(y)) == set(range(len(centres)))
    assert np.abs(x - centres[y]).max() < 6 * std  # each point lies at its own mode
    direct = -((x - centres[y]) ** 2).sum(1) / (2 * std ** 2) - np.log(2 * np.pi * std ** 2)
    np.testing.assert_allclose(synthetic.log_density(name, x, labels=y), direct, rtol=1e-6)
    # the entropy of a 2-D Gaussian, 1 + log(2 pi std^2), estimated from draws
    assert abs(synthetic.entropy(name, n=200_000, conditional=True) - (1 + np.log(2 * np.pi * std ** 2))) < 0.01


def test_modes_of_ring_and_grid():
    centres, std = synthetic.modes("ring", modes=4, radius=1.0)
    np.testing.assert_allclose(centres, [[1, 0], [0, 1], [-1, 0], [0, -1]], atol=1e-12)
    assert std == 0.02
    centres, std = synthetic.modes("grid", side=3, spacing=1.0)
    assert centres.shape == (9, 2) and std == 0.05
    np.testing.assert_allclose(centres.mean(0), 0.0, atol=1e-12)
    with pytest.raises(DataError) as info:
        synthetic.modes("moons")
    assert info.value.code == "E405"


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_coverage_of_true_and_collapsed_samples(name):
    centres, std = synthetic.modes(name)
    x = load(name, {"n": 5000}, "test")[0]
    report = synthetic.coverage(x, centres, std)
    assert report["modes_covered"] == len(centres)
    assert report["high_quality"] > 0.95
    assert sum(report["per_mode"]) == round(report["high_quality"] * len(x))
    collapsed = centres[0] + std * np.random.default_rng(0).standard_normal((500, 2))
    report = synthetic.coverage(collapsed, centres, std)
    assert report["modes_covered"] == 1 and report["per_mode"][0] > 0


# ---------------------------------------------------------------- file sources

def test_binarized_mnist_splits():
    sizes = {}
    for split in SPLITS:
        (x,) = load("binarized_mnist", {"path": str(NPZ)}, split)
        assert x.dtype == np.float32 and x.shape[1] == 784
        assert set(np.unique(x)) == {0.0, 1.0}
        sizes[split] = len(x)
    assert sizes == {"train": 50000, "valid": 10000, "test": 10000}


def test_binarized_mnist_default_path_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv("GENDSL_DATA_DIR", raising=False)
    assert files.default_data_path("binarized_mnist.npz").samefile(NPZ)
    np.savez(tmp_path / "binarized_mnist.npz", train=np.ones((3, 784), np.uint8),
             valid=np.zeros((2, 784), np.uint8), test=np.zeros((2, 784), np.uint8))
    monkeypatch.setenv("GENDSL_DATA_DIR", str(tmp_path))
    (x,) = load("binarized_mnist", {}, "train")
    assert x.shape == (3, 784)


def test_paired_mnist_pairs_correspond():
    sizes = []
    for split in SPLITS:
        binary, gray, labels = load("paired_mnist", {}, split)
        assert binary.shape == gray.shape == (len(labels), 28, 28)
        assert binary.dtype == gray.dtype == np.float32 and labels.dtype == np.int64
        assert 0.0 <= gray.min() and gray.max() <= 1.0 and set(np.unique(binary)) <= {0.0, 1.0}
        agree = (gray > 0.5) == (binary > 0.5)
        # Measured: 0.9726 of pixels overall and >= 0.944 per image; a wrong pairing gives ~0.83.
        assert agree.mean() > 0.965
        assert agree.reshape(len(labels), -1).mean(1).min() > 0.93
        assert ((np.roll(gray, 1, axis=0) > 0.5) == (binary > 0.5)).mean() < 0.9
        sizes.append(len(labels))
    assert sizes == [8000, 1000, 1000]


def test_paired_mnist_labels_match_t10k_labels():
    with np.load(NPZ) as archive:
        index, labels = archive["test_source_index"], archive["test_labels"]
    t10k_labels = files.read_idx("test", T10K_LABELS)
    np.testing.assert_array_equal(t10k_labels[index], labels)


def test_mnist_idx_gzip_and_plain(tmp_path):
    plain = tmp_path / "images-idx3-ubyte"
    plain.write_bytes(gzip.decompress(T10K_IMAGES.read_bytes()))
    sizes = []
    for split in SPLITS:
        images, labels = load("mnist_idx", {"images": str(T10K_IMAGES), "labels": str(T10K_LABELS)}, split)
        assert images.shape == (len(labels), 28, 28) and images.dtype == np.float32
        assert labels.dtype == np.int64 and set(np.unique(labels)) == set(range(10))
        assert 0.0 <= images.min() and images.max() == 1.0
        (same,) = load("mnist_idx", {"images": str(plain)}, split)
        np.testing.assert_array_equal(images, same)
        sizes.append(len(labels))
    assert sizes == [8000, 1000, 1000]


def test_digits():
    images, labels = load("digits", {}, "train")
    assert images.shape == (len(labels), 8, 8) and images.dtype == np.float32
    assert labels.dtype == np.int64 and 0.0 <= images.min() and images.max() == 1.0
    sizes = [len(load("digits", {}, split)[1]) for split in SPLITS]
    assert sizes == [1439, 179, 179]
    images, labels = load("digits", {"classes": [3, 5], "binarize": True}, "valid")
    assert set(labels) == {3, 5} and set(np.unique(images)) == {0.0, 1.0}


def test_digits_as_categories_are_the_same_rows_at_17_levels():
    """categorical=true: pixel k/16 is the category k, row for row and split for split."""
    for split in SPLITS:
        levels, labels = load("digits", {"categorical": True, "classes": [1, 7]}, split)
        images, same = load("digits", {"classes": [1, 7]}, split)
        assert levels.dtype == np.int64 and levels.min() == 0 and levels.max() == 16
        np.testing.assert_array_equal(levels, images * 16)
        np.testing.assert_array_equal(labels, same)


def test_permutation_rule_partitions_rows():
    parts = [files.split_indices("t", 105, split) for split in SPLITS]
    assert [len(p) for p in parts] == [85, 10, 10]
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(105))
    np.testing.assert_array_equal(parts[0], np.random.default_rng(0).permutation(105)[:85])


def test_npz_with_split_keys_suffixed_keys_and_no_split(tmp_path):
    np.savez(tmp_path / "a.npz", train=np.zeros((5, 2)), valid=np.ones((3, 2)), test=np.ones((4, 2)))
    (x,) = load("npz", {"path": str(tmp_path / "a.npz")}, "test")
    assert x.shape == (4, 2) and x.dtype == np.float32
    np.savez(tmp_path / "b.npz", x_train=np.zeros((5, 2)), y_train=np.arange(5, dtype=np.uint8),
             x_valid=np.zeros((2, 2)), y_valid=np.arange(2), x_test=np.zeros((1, 2)), y_test=[7])
    y, x = load("npz", {"path": str(tmp_path / "b.npz"), "keys": ["y", "x"]}, "train")
    assert y.dtype == np.int64 and x.dtype == np.float32 and len(x) == len(y) == 5
    np.savez(tmp_path / "c.npz", x=np.arange(40.0).reshape(20, 2), y=np.arange(20))
    x, y = load("npz", {"path": str(tmp_path / "c.npz")}, "valid")
    assert x.shape == (2, 2) and y.dtype == np.int64
    np.testing.assert_array_equal(x[:, 0] / 2, y)  # rows stay aligned across arrays
    (only_y,) = load("npz", {"path": str(tmp_path / "c.npz"), "keys": ["y"]}, "valid")
    np.testing.assert_array_equal(only_y, y)


def test_npy(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(30.0).reshape(10, 3))
    (x,) = load("npy", {"path": str(tmp_path / "a.npy")}, "test")
    assert x.shape == (1, 3) and x.dtype == np.float32


def write_image(path: Path, size: tuple[int, int], value: int = 128, mode: str = "L") -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode == "L" else (value, 0, 255)
    Image.new(mode, (size[1], size[0]), color).save(path)


def test_image_folder_with_classes_and_resize(tmp_path):
    for i in range(12):
        write_image(tmp_path / ("cat" if i % 3 else "ant") / f"{i}.png", (6, 4), value=20 * i)
    write_image(tmp_path / "cat" / "big.jpg", (12, 8))
    images, labels = load("image_folder", {"path": str(tmp_path), "size": [6, 4]}, "train")
    assert images.shape == (len(labels), 1, 6, 4) and len(labels) == 11
    assert images.dtype == np.float32 and 0.0 <= images.min() and images.max() <= 1.0
    assert set(labels) <= {0, 1} and labels.dtype == np.int64
    ant_values = {round(20 * i / 255, 4) for i in range(0, 12, 3)}
    for image, label in zip(images, labels):
        assert (round(float(image.mean()), 4) in ant_values) == (label == 0)


def test_image_folder_rgb_without_classes(tmp_path):
    for i in range(10):
        write_image(tmp_path / f"{i}.png", (5, 7), mode="RGB")
    (images,) = load("image_folder", {"path": str(tmp_path), "grayscale": False}, "valid")
    assert images.shape == (1, 3, 5, 7)
    np.testing.assert_allclose(images[0, :, 0, 0], [128 / 255, 0.0, 1.0], atol=1e-6)


# ---------------------------------------------------------------- errors

def test_missing_file_is_e401(tmp_path):
    error = raises("E401", "npz", {"path": str(tmp_path / "nope.npz")})
    assert "nope.npz" in error.message and error.hint
    raises("E401", "mnist_idx", {"images": str(tmp_path / "nope.gz")})
    raises("E401", "image_folder", {"path": str(tmp_path / "nope")})


def test_default_data_path_lists_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setenv("GENDSL_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError) as info:
        files.default_data_path("absent.npz")
    assert info.value.code == "E401" and str(tmp_path) in info.value.message
    assert "GENDSL_DATA_DIR" in info.value.hint and "path=" in info.value.hint


def test_corrupt_npz_is_e402(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    raises("E402", "npz", {"path": str(tmp_path / "bad.npz")})
    raises("E402", "binarized_mnist", {"path": str(tmp_path / "bad.npz")})


def test_npz_missing_key_is_e402(tmp_path):
    np.savez(tmp_path / "a.npz", train=np.zeros((5, 784), np.uint8))
    error = raises("E402", "binarized_mnist", {"path": str(tmp_path / "a.npz")}, "valid")
    assert "'valid'" in error.message and "train" in error.message
    raises("E402", "npz", {"path": str(tmp_path / "a.npz"), "keys": ["x"]})


def test_bad_idx_magic_is_e402(tmp_path):
    (tmp_path / "bad.idx").write_bytes(b"\x12\x34\x08\x03" + bytes(100))
    error = raises("E402", "mnist_idx", {"images": str(tmp_path / "bad.idx")})
    assert "magic" in error.message and "12 34 08 03" in error.message


def test_truncated_idx_is_e403(tmp_path):
    (tmp_path / "short.idx").write_bytes(b"\0\0\x08\x03" + (5).to_bytes(4, "big") * 3 + bytes(10))
    raises("E403", "mnist_idx", {"images": str(tmp_path / "short.idx")})


def test_nan_in_npz_is_e404(tmp_path):
    x = np.zeros((20, 3))
    x[7, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x=x)
    error = raises("E404", "npz", {"path": str(tmp_path / "nan.npz")})
    assert "row 7" in error.message
    np.savez(tmp_path / "huge.npz", x=np.full((20, 3), 1e300))
    raises("E404", "npz", {"path": str(tmp_path / "huge.npz")})


def test_wrong_shapes_are_e403(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros((20, 3)), y=np.zeros(19))
    raises("E403", "npz", {"path": str(tmp_path / "a.npz")})
    np.savez(tmp_path / "b.npz", train=np.zeros((5, 10)), valid=np.zeros((5, 10)), test=np.zeros((5, 10)))
    raises("E403", "binarized_mnist", {"path": str(tmp_path / "b.npz")})
    np.save(tmp_path / "tiny.npy", np.zeros((5, 2)))
    raises("E403", "npy", {"path": str(tmp_path / "tiny.npy")}, "test")


def test_image_folder_mismatched_sizes_is_e403(tmp_path):
    for i in range(9):
        write_image(tmp_path / f"{i}.png", (6, 6))
    write_image(tmp_path / "odd.png", (6, 5))
    error = raises("E403", "image_folder", {"path": str(tmp_path)})
    assert "odd.png" in error.message and "size=" in error.hint


def test_unknown_source_suggests_a_name():
    error = raises("E405", "binarised_mnist", {})
    assert "binarized_mnist" in error.hint


def test_unknown_argument_lists_accepted_ones():
    error = raises("E405", "ring", {"n": 100, "mode": 4})
    assert "modes" in error.message and "radius" in error.message and "modes" in error.hint
    assert accepted_arguments("ring") == ["n", "modes", "radius", "std"]
    raises("E405", "ring", {"seed": 3})  # the split seeds are fixed, not a user argument


def test_bad_argument_values_are_e405():
    raises("E405", "ring", {"n": 100}, "validation")
    raises("E405", "ring", {"n": -5})
    raises("E405", "grid", {"n": 100, "std": 0})
    raises("E405", "circles", {"n": 100, "factor": 1.5})
    raises("E405", "digits", {"classes": [1, 12]})
    raises("E405", "npz", {})  # path is required
    raises("E405", "image_folder", {"path": ".", "size": [1, 2, 3]})


def test_registry_names():
    assert set(SOURCES) == {"ring", "grid", "moons", "circles", "swiss_roll", "digits",
                            "binarized_mnist", "mnist_idx", "paired_mnist", "npz", "npy",
                            "image_folder", "hmm"}
