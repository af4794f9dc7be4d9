"""Shared test fixtures: paths to the repository, its specs and the shared datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("GENDSL_DATA_DIR", str(SHARED_DATA))


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite golden files (diagnostics, generated code, DOT) from current output")


@pytest.fixture
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")


def spec_files() -> list[Path]:
    return sorted(SPECS.glob("*.gen"))
