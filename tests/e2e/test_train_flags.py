"""`--amp` (bfloat16 autocast on CPU; fp16 with a GradScaler), `--compile` (torch.compile of the
train steps) and `--accumulate` (gradients of several batches per update) train too."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.conftest import SPECS
from tests.e2e.cli import gendsl
from tests.e2e.test_validation import spec as mixture


@pytest.mark.parametrize("flag", ["--amp", "--compile"])
def test_flag_trains(flag: str, tmp_path: Path) -> None:
    code, stdout, stderr = gendsl("train", SPECS / "ae.gen", "--steps", "200", "--log-every", "100",
                                  "--out", tmp_path / "run", "--quiet", flag)
    assert code == 0, stderr
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert float(rows[-1]["loss/recon"]) < float(rows[0]["loss/recon"])


def test_fp16_autocast_trains_with_a_grad_scaler_in_the_checkpoint(tmp_path: Path) -> None:
    """fp16 is what --amp means on CUDA; the same path (autocast + GradScaler) runs on CPU here."""
    import torch

    code, _, stderr = gendsl("train", SPECS / "ae.gen", "--steps", "200", "--log-every", "100",
                             "--out", tmp_path / "run", "--quiet", "--amp", "fp16")
    assert code == 0, stderr
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert float(rows[-1]["loss/recon"]) < float(rows[0]["loss/recon"])
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["scalers"]["recon"]["scale"] > 0


def test_accumulating_four_batches_is_one_update_on_a_batch_four_times_larger(tmp_path: Path) -> None:
    """An exact (sampling-free) loss and the batches of one pass over the data: the same rows either way."""
    import torch

    weights = {}
    for name, batch, extra in (("big", "batch 400", []), ("accumulated", "batch 100", ["--accumulate", "4"]),
                               ("small", "batch 100", [])):
        path = mixture(tmp_path, "SGD(lr=0.1)", f"{batch}; steps 3", name)
        code, _, stderr = gendsl("train", path, "--out", tmp_path / name, "--quiet", "--validate-every", "0", *extra)
        assert code == 0, stderr
        weights[name] = torch.load(tmp_path / name / "checkpoint.pt", weights_only=True)["model"]["mu"]
    torch.testing.assert_close(weights["accumulated"], weights["big"], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(weights["small"], weights["big"], rtol=1e-3), "the batch size matters here"
