"""What the bench scripts share: running the CLI a user runs, and reading its JSON reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def gendsl(*args: str) -> str:
    """Run `gendsl ARGS` from the repository root; its stdout, or exit with its stderr."""
    result = subprocess.run([sys.executable, "-m", "gendsl.cli", *args], cwd=ROOT, text=True, capture_output=True)
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    return result.stdout


def evaluate(run: str | Path, *args: str) -> dict:
    """`gendsl evaluate RUN ARGS --format json`: its metrics."""
    return json.loads(gendsl("evaluate", str(run), "--format", "json", "--quiet", *args))["metrics"]
