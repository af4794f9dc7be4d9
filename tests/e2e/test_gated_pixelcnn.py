"""Gated PixelCNN (specs/gated_pixelcnn.gen), CI-sized on 8x8 digits: it trains through the CLI,
beats independent pixels by the margin the PixelCNN check asks (tests/e2e/test_families_issue4.py)
and samples one pixel at a time. The full binarized-MNIST run is bench/reproduce.py's gated_pixelcnn."""

from __future__ import annotations

from pathlib import Path

from gendsl.data import load
from tests.e2e.cli import gendsl
from tests.e2e.test_families import evaluate, train
from tests.e2e.test_families_issue4 import TEST_SPECS, factorized_nll


def test_gated_pixelcnn_beats_independent_pixels(tmp_path: Path) -> None:
    run = train(TEST_SPECS / "gated_pixelcnn_digits.gen", tmp_path / "gated", "--steps", "1000")
    nll = evaluate(run, "nll")["nll"]
    digits = {"binarize": True}
    baseline = factorized_nll(load("digits", digits, "train")[0], load("digits", digits, "valid")[0])
    assert nll["method"] == "exact"
    assert nll["nats"] < 0.8 * baseline, (nll, baseline)
    code, _, stderr = gendsl("sample", run, "-n", "16", "-o", tmp_path / "s.png")
    assert code == 0, stderr
