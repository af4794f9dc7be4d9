"""`--amp` (bfloat16 autocast) and `--compile` (torch.compile of the train steps) train too."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.conftest import SPECS
from tests.e2e.cli import gendsl


@pytest.mark.parametrize("flag", ["--amp", "--compile"])
def test_flag_trains(flag: str, tmp_path: Path) -> None:
    code, stdout, stderr = gendsl("train", SPECS / "ae.gen", "--steps", "200", "--log-every", "100",
                                  "--out", tmp_path / "run", "--quiet", flag)
    assert code == 0, stderr
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert float(rows[-1]["loss/recon"]) < float(rows[0]["loss/recon"])
