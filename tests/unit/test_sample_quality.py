"""Sample quality of image models (fid, kid, prd): improved precision and recall against a brute
force count, FID and KID of identical sets, the feature classifier's cache (reused; a damaged
file retrained silently), which data count as images, and the check-time E312 elsewhere."""

from __future__ import annotations

import itertools
import textwrap

import numpy as np
import pytest
import torch

from gendsl.evaluation import features
from gendsl.evaluation.quality import frechet, kernel, knn_radii, precision_recall
from gendsl.graph.check import check_source
from gendsl.library.sources import image_shape
from gendsl.source import SourceFile
from gendsl.spec import DataVar


# ---- precision and recall (Kynkaanniemi et al. 2019) ----

def brute_force(fake: list, real: list, k: int) -> tuple[float, float]:
    """The definition, point by point: a point is on a set's manifold when it lies within the
    distance from some member of the set to that member's k-th nearest other member."""
    def distance(p, q):
        return sum((a - b) ** 2 for a, b in zip(p, q)) ** 0.5

    def radius(i, points):
        return sorted(distance(points[i], q) for j, q in enumerate(points) if j != i)[k - 1]

    def share(points, manifold):
        radii = [radius(i, manifold) for i in range(len(manifold))]
        inside = [any(distance(p, m) <= r for m, r in zip(manifold, radii)) for p in points]
        return sum(inside) / len(points)

    return share(fake, real), share(real, fake)


def test_precision_and_recall_of_points_on_a_line():
    """Real points 0..4 (each one's 1st neighbour at distance 1); samples at 0.5 and 2.5 are on
    their manifold, 10 and 20 are not: precision 1/2. The samples' own 1-NN radii (2, 2, 7.5, 10)
    cover every real point: recall 1."""
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0]])
    fake = torch.tensor([[0.5], [2.5], [10.0], [20.0]])
    assert precision_recall(fake, real, k=1) == (0.5, 1.0)
    assert precision_recall(fake, real, k=1) == brute_force(fake.tolist(), real.tolist(), 1)
    assert torch.equal(knn_radii(real, 1), torch.ones(5))
    assert torch.equal(knn_radii(real, 2), torch.tensor([2.0, 1.0, 1.0, 1.0, 2.0]))


def test_identical_sets_have_full_precision_and_recall_and_far_sets_none():
    points = torch.randn(30, 5, generator=torch.Generator().manual_seed(0))
    assert precision_recall(points, points, k=3) == (1.0, 1.0)
    assert precision_recall(points + 100.0, points, k=3) == (0.0, 0.0)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_precision_and_recall_equal_the_brute_force_count(k):
    generator = torch.Generator().manual_seed(k)
    for n_fake, n_real in itertools.product((6, 11), (7, 12)):
        fake = torch.randn(n_fake, 3, generator=generator) * 1.5 + 0.5
        real = torch.randn(n_real, 3, generator=generator)
        found = precision_recall(fake, real, k)
        expected = brute_force(fake.double().tolist(), real.double().tolist(), k)
        assert found == pytest.approx(expected, abs=1e-12), (n_fake, n_real)


# ---- FID and KID (torchmetrics, given the classifier as feature extractor) ----

def untrained_network() -> features.ImageFeatures:
    torch.manual_seed(0)
    return features.ImageFeatures((1, 8, 8), 10).eval()


def test_fid_and_kid_of_identical_sets_are_zero():
    network = untrained_network()
    images = torch.rand(200, 64, generator=torch.Generator().manual_seed(1))
    assert abs(frechet(network, images, images)) < 1e-3
    mean, _ = kernel(network, images, images, subsets=10, subset_size=50)
    assert abs(mean) < 1e-2
    assert frechet(network, images.flip(-1), images) > 100 * abs(frechet(network, images, images))


# ---- the feature classifier and its cache ----

DIGITS = DataVar(name="x", group=0, position=0, source="digits", args={}, kind="real", shape=(64,))


@pytest.fixture
def quick(monkeypatch, tmp_path):
    """A private cache folder, no networks in memory, a few train steps, and a count of trainings."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(features, "_loaded", {})
    monkeypatch.setattr(features, "STEPS", 5)
    trained = []
    original = features.train_network

    def counted(var, shape):
        trained.append(var.source)
        return original(var, shape)

    monkeypatch.setattr(features, "train_network", counted)
    return trained


def cache_files(tmp_path):
    return sorted((tmp_path / "gendsl").glob("features-*.pt"))


def test_the_network_is_trained_once_and_read_back(quick, tmp_path):
    images = torch.rand(20, 64, generator=torch.Generator().manual_seed(0))
    first = features.extract(features.feature_network(DIGITS, (1, 8, 8)), images)
    assert quick == ["digits"] and len(cache_files(tmp_path)) == 1
    features._loaded.clear()   # a new process: only the file is left
    state = torch.get_rng_state()
    again = features.extract(features.feature_network(DIGITS, (1, 8, 8)), images)
    assert quick == ["digits"], "the cached network was trained again"
    assert torch.equal(first, again) and first.shape == (20, features.FEATURES)
    assert torch.equal(torch.get_rng_state(), state), "reading the cache moved the caller's random state"


def test_a_damaged_cache_file_is_retrained_silently(quick, tmp_path, capfd):
    features.feature_network(DIGITS, (1, 8, 8))
    [path] = cache_files(tmp_path)
    path.write_bytes(b"not a network\x00\x01")
    features._loaded.clear()
    features.feature_network(DIGITS, (1, 8, 8))
    assert quick == ["digits", "digits"]
    assert capfd.readouterr().err == ""
    features._loaded.clear()
    features.feature_network(DIGITS, (1, 8, 8))   # the rewritten file loads
    assert quick == ["digits", "digits"]


def test_the_key_follows_the_source_its_arguments_and_the_shape():
    key = features.cache_key(DIGITS, (1, 8, 8))
    assert key == features.cache_key(DIGITS.model_copy(update={"name": "img"}), (1, 8, 8))
    assert key != features.cache_key(DIGITS.model_copy(update={"args": {"binarize": True}}), (1, 8, 8))
    assert key != features.cache_key(DIGITS, (1, 4, 16))
    assert key != features.cache_key(DIGITS.model_copy(update={"source": "mnist_idx"}), (1, 8, 8))


def test_without_labels_it_learns_to_tell_rotations_apart(quick, tmp_path):
    """An npz of images without labels: a four-way rotation classifier."""
    path = tmp_path / "images.npz"
    np.savez(path, x=np.random.default_rng(0).random((40, 1, 6, 6), dtype=np.float32))
    var = DataVar(name="x", group=0, position=0, source="npz", args={"path": str(path)}, kind="real",
                  shape=(1, 6, 6))
    network = features.feature_network(var, (1, 6, 6))
    assert network.head[-1].out_features == 4
    images = torch.arange(8.0).reshape(2, 1, 2, 2)
    turned = features.transformed(images, torch.tensor([1, 2]))
    assert torch.equal(turned[0], torch.rot90(images[0], 1, dims=(-2, -1)))
    assert torch.equal(turned[1], images[1].flip(-1).flip(-2))
    wide = torch.arange(12.0).reshape(2, 1, 2, 3)
    flipped = features.transformed(wide, torch.tensor([1, 2]))
    assert torch.equal(flipped[0], wide[0].flip(-1)) and torch.equal(flipped[1], wide[1].flip(-2))


def test_no_cache_folder_still_gives_a_network(quick, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert features.feature_network(DIGITS, (1, 8, 8)) is not None and quick == ["digits"]


# ---- which data are images ----

@pytest.mark.parametrize("source, kind, shape, expected", [
    ("digits", "real", (64,), (1, 8, 8)),
    ("digits", "bin", (8, 8), (1, 8, 8)),
    ("binarized_mnist", "bin", (784,), (1, 28, 28)),
    ("mnist_idx", "real", (28, 28), (1, 28, 28)),
    ("npz", "real", (3, 32, 32), (3, 32, 32)),
    ("image_folder", "real", (3 * 16 * 16,), (3, 16, 16)),
    ("npz", "real", (28, 28), None),          # a sequence [T, C] as much as an image
    ("ring", "real", (2,), None),
    ("digits", "real", (63,), None),
    ("hmm", "cat", (5,), None),
])
def test_image_shape(source, kind, shape, expected):
    assert image_shape(source, kind, shape) == expected


SPEC = """\
model M {
  data x: real[2] from ring(n=64)
  latent z: real[2] ~ Normal(0, 1)
  generator G(z) -> real[2] { z |> Linear(2) }
  loss l = mse(G(z), x)
  train { minimize l; batch 8; steps 2 }
  sample x = G(z)
  evaluate { mmd(samples=10); fid(samples=10) }
}
"""


def test_fid_on_data_that_are_not_images_is_refused_at_check_time():
    checked = check_source(SourceFile("m.gen", textwrap.dedent(SPEC)))
    [problem] = [d for d in checked.diagnostics if d.is_error]
    assert problem.code == "E312" and problem.span.line == 8, problem.message
    assert "image data" in problem.message and "fid" not in problem.hint.split(": ", 1)[1], problem.hint
    images = SPEC.replace("real[2] from ring(n=64)", "real[64] from digits()").replace("real[2] {", "real[64] {") \
        .replace("Linear(2)", "Linear(64)")
    assert check_source(SourceFile("m.gen", images)).ok
