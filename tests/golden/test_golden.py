"""Golden tests: the exact text of diagnostics for bad specs, and the DOT of every reference spec.

One runner for all goldens; `pytest tests/golden --update-golden` rewrites the expected files
from the current output (review the diff before committing it).

A diagnostics case is `diagnostics/NAME.gen` with its expected output in `NAME.expected`. A
first line `# args: ...` adds command-line arguments (e.g. `--set beta=oops`).
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
from pathlib import Path

import pytest

from gendsl.cli import main

HERE = Path(__file__).parent
CASES = sorted((HERE / "diagnostics").glob("*.gen"))
SPECS = sorted((HERE.parents[1] / "specs").glob("*.gen"))


def run_cli(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run the CLI in-process from `cwd`, returning (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    finally:
        os.chdir(previous)
    return code, out.getvalue(), err.getvalue()


def case_args(path: Path) -> list[str]:
    first = path.read_text(encoding="utf-8").splitlines()[:1]
    if first and first[0].startswith("# args:"):
        return shlex.split(first[0][len("# args:"):])
    return []


def compare(expected_file: Path, actual: str, update: bool) -> None:
    if update or not expected_file.exists():
        expected_file.write_text(actual, encoding="utf-8")
        if not update:
            pytest.fail(f"no golden file yet: wrote {expected_file.name}; review it and run again")
    assert actual == expected_file.read_text(encoding="utf-8"), \
        f"{expected_file.name} differs (run with --update-golden after checking the new output)"


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_diagnostics(case: Path, update_golden: bool) -> None:
    code, stdout, stderr = run_cli(["check", case.name, *case_args(case)], case.parent)
    assert code == 1, f"{case.name} should be rejected (exit 1), got {code}:\n{stdout}{stderr}"
    assert "Traceback" not in stderr and "E999" not in stderr, stderr
    compare(case.with_suffix(".expected"), stderr, update_golden)


def test_enough_bad_specs() -> None:
    assert len(CASES) >= 40, f"the golden folder should hold at least 40 bad specs, has {len(CASES)}"


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
@pytest.mark.parametrize("view", ["compute", "pgm"])
def test_dot(spec: Path, view: str, tmp_path: Path, update_golden: bool) -> None:
    out = tmp_path / f"{spec.stem}.dot"
    code, _, stderr = run_cli(["render", spec.name, "-o", str(out), "--view", view], spec.parent)
    assert code == 0, stderr
    compare(HERE / "dot" / f"{spec.stem}.{view}.dot", out.read_text(encoding="utf-8"), update_golden)


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_generated_code(spec: Path, tmp_path: Path, update_golden: bool) -> None:
    out = tmp_path / f"{spec.stem}.py"
    code, _, stderr = run_cli(["compile", spec.name, "-o", str(out)], spec.parent)
    assert code == 0, stderr
    compare(HERE / "codegen" / f"{spec.stem}.py", out.read_text(encoding="utf-8"), update_golden)
