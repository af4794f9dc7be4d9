"""Shared test fixtures: paths to the repository, its specs and the shared datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("GENDSL_DATA_DIR", str(SHARED_DATA))
if os.environ.get("PYTEST_XDIST_WORKER"):
    # one thread per worker: two workers with two OpenMP threads each on two cores spin-wait on
    # every small matmul and run many times slower than one thread each
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite golden files (diagnostics, generated code, DOT) from current output")


@pytest.fixture
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")


def spec_files() -> list[Path]:
    return sorted(SPECS.glob("*.gen"))
