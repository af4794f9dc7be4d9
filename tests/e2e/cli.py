"""Running the gendsl CLI from tests: in-process (fast) or as a real subprocess."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

from gendsl.cli import main

ROOT = Path(__file__).resolve().parents[2]


def gendsl(*args: str) -> tuple[int, str, str]:
    """Run `gendsl ARGS...` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def gendsl_process(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    """Start `python -m gendsl.cli ARGS...` as its own process (for kill tests)."""
    return subprocess.Popen([sys.executable, "-m", "gendsl.cli", *map(str, args)], cwd=ROOT,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)
