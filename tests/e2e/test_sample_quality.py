"""fid, kid and prd from the CLI: a short cGAN run is measured beside the real-vs-real value
(two halves of held-out digits), in text and JSON; training orders runs; data that are not
images are refused with E312. The feature classifier trains in a private cache folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.conftest import SPECS
from tests.e2e.cli import gendsl


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    from gendsl.evaluation import features

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(features, "_loaded", {})


def train(spec: Path, out: Path, *args: str) -> Path:
    code, _, stderr = gendsl("train", spec, "--out", out, "--quiet", *args)
    assert code == 0, stderr
    return out


def evaluate(run: Path, *args: str) -> dict:
    code, stdout, stderr = gendsl("evaluate", run, "--format", "json", "--quiet", *args)
    assert code == 0, stderr
    return json.loads(stdout)["metrics"]


def test_a_short_cgan_run_is_measured_beside_real_data(tmp_path: Path) -> None:
    run = train(SPECS / "cgan.gen", tmp_path / "cgan", "--steps", "300")
    code, stdout, stderr = gendsl("evaluate", run, "--metric", "fid", "--quiet")
    assert code == 0, stderr
    assert "fid" in stdout and "(real vs real " in stdout, stdout
    fid = evaluate(run, "--metric", "fid")["fid"]
    assert set(fid) == {"fid", "real_vs_real_fid", "samples"}
    assert math.isfinite(fid["fid"]) and 0 <= fid["real_vs_real_fid"] < fid["fid"], fid
    assert fid["samples"] == 89   # half the 179 valid digits, fewer than the default 1000
    both = evaluate(run, "--metric", "kid", "--metric", "prd", "--samples", "40")
    assert both["kid"]["samples"] == both["prd"]["samples"] == 40
    assert {"kid", "kid_std", "real_vs_real_kid", "real_vs_real_kid_std"} <= set(both["kid"])
    assert both["kid"]["kid"] > both["kid"]["real_vs_real_kid"], both["kid"]
    prd = both["prd"]
    assert all(0 <= prd[k] <= 1 for k in ("precision", "recall", "real_vs_real_precision", "real_vs_real_recall"))
    assert prd["recall"] < prd["real_vs_real_recall"], prd   # 300 rounds: a collapsed generator


def test_training_lowers_the_fid_of_reconstructions(tmp_path: Path) -> None:
    """An autoencoder (cheap and steady, where a GAN's first thousands of rounds are not): its
    reconstructions after 1,500 rounds score near the real-vs-real value, untrained ones far off."""
    untrained = evaluate(train(SPECS / "ae.gen", tmp_path / "ae1", "--steps", "1"), "--metric", "fid")["fid"]
    trained = evaluate(train(SPECS / "ae.gen", tmp_path / "ae1500", "--steps", "1500"), "--metric", "fid")["fid"]
    assert trained["real_vs_real_fid"] == untrained["real_vs_real_fid"]
    assert trained["fid"] < 3 * trained["real_vs_real_fid"] < untrained["fid"], (trained, untrained)


def test_real_vs_real_reads_every_class_of_a_sorted_split(tmp_path: Path) -> None:
    """binarized MNIST's test digits are stored sorted by class: rows 0-999 are nearly all zeros,
    1000-1999 all ones (FID 31 between them in these features). The two real halves must each be a
    fair sample of the split, so that their distance is the noise floor, far below an untrained
    model's."""
    run = train(SPECS / "vae.gen", tmp_path / "vae", "--steps", "1")
    fid = evaluate(run, "--metric", "fid", "--split", "test")["fid"]
    assert fid["samples"] == 1000
    assert fid["real_vs_real_fid"] < 0.5 < fid["fid"], fid


@pytest.mark.slow
def test_a_trained_cgan_beats_an_untrained_one(tmp_path: Path) -> None:
    untrained = evaluate(train(SPECS / "cgan.gen", tmp_path / "g1", "--steps", "1"), "--metric", "fid")["fid"]
    trained = evaluate(train(SPECS / "cgan.gen", tmp_path / "g6000", "--steps", "6000"), "--metric", "fid")["fid"]
    assert trained["fid"] < untrained["fid"] / 5, (trained, untrained)


def test_data_that_are_not_images_are_refused(tmp_path: Path) -> None:
    spec = tmp_path / "ring.gen"
    spec.write_text("model Gen {\n  data x: real[2] from ring(n=200)\n  latent z: real[2] ~ Normal(0, 1)\n"
                    "  generator G(z) -> real[2] { z |> Linear(2) }\n  loss fit = mse(G(z), x)\n"
                    "  train { minimize fit; batch 16; steps 2 }\n  sample x = G(z)\n}\n")
    run = train(spec, tmp_path / "run")
    code, _, stderr = gendsl("evaluate", run, "--metric", "fid")
    assert code == 1 and "error[E312]" in stderr and "real[2] from ring(...)" in stderr, stderr
    assert "for other data use mmd or swd" in stderr, stderr


def test_a_short_dcgan_run_on_28x28_digits_approaches_real_data(tmp_path: Path) -> None:
    """specs/dcgan.gen at half its width for 500 rounds (the full spec: bench_families'
    dcgan_mnist row). Trained, its samples are several times closer to held-out digits than an
    untrained generator's, and most lie on the real digits' manifold."""
    small = ("--set", "ch=32")
    untrained = evaluate(train(SPECS / "dcgan.gen", tmp_path / "g1", "--steps", "1", *small), "--metric", "fid",
                         "--samples", "300")["fid"]
    run = train(SPECS / "dcgan.gen", tmp_path / "g500", "--steps", "500", *small)
    both = evaluate(run, "--metric", "fid", "--metric", "prd", "--samples", "300")
    fid, prd = both["fid"], both["prd"]
    assert fid["fid"] < untrained["fid"] / 3, (fid, untrained)
    assert fid["real_vs_real_fid"] < fid["fid"], fid
    assert prd["precision"] > 0.3, prd
