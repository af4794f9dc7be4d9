"""`gendsl check` and `gendsl render` as a user runs them: a real process, real exit codes.

Runs `python -m gendsl.cli` (the console script may not be installed) from the repository root.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.gen"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# An unknown name on line 3, columns 17-18 (1-based): LSP range line 2, characters 16-17.
BAD_SPEC = "model M {\n  data x: real[2] from ring()\n  loss l = mean(y)\n}\n"


def gendsl(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gendsl.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env, **kw)


def assert_no_traceback(done: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in done.stderr and "E999" not in done.stderr, done.stderr


def test_check_all_specs_prints_one_summary_per_file():
    done = gendsl("check", *(str(p.relative_to(ROOT)) for p in SPECS))
    assert done.returncode == 0, done.stderr
    assert_no_traceback(done)
    oks = re.findall(r"^ok: model (\w+) \((.+)\)$", done.stdout, flags=re.M)
    assert [Path(path).name for _, path in oks] == [p.name for p in SPECS]
    totals = re.findall(r"^  total +([\d,]+) parameters", done.stdout, flags=re.M)
    assert len(totals) == len(SPECS)
    assert all(int(t.replace(",", "")) > 0 for t in totals), totals
    assert re.search(r"^  network .*\[[\d,]+ params\]$", done.stdout, flags=re.M)


def test_check_json_has_lsp_ranges(tmp_path):
    bad = tmp_path / "bad.gen"
    bad.write_text(BAD_SPEC, encoding="utf-8")
    done = gendsl("check", str(bad), "specs/vae.gen", "--format", "json")
    assert done.returncode == 1
    assert_no_traceback(done)
    payload = json.loads(done.stdout)
    assert payload["ok"] is False
    first, second = payload["files"]
    assert first["ok"] is False and first["summary"] is None
    assert second["ok"] is True and second["summary"]["parameters"] > 0
    unknown = [d for d in first["diagnostics"] if d["code"] == "E102"]
    assert unknown, first["diagnostics"]
    d = unknown[0]
    assert d["severity"] == "error" and d["file"] == str(bad) and "'y'" in d["message"]
    assert d["range"] == {"start": {"line": 2, "character": 16}, "end": {"line": 2, "character": 17}}
    for diag in first["diagnostics"]:
        assert re.fullmatch(r"[EW]\d{3}", diag["code"])
        for end in ("start", "end"):
            assert diag["range"][end]["line"] >= 0 and diag["range"][end]["character"] >= 0


def test_check_text_points_at_the_error(tmp_path):
    bad = tmp_path / "bad.gen"
    bad.write_text(BAD_SPEC, encoding="utf-8")
    done = gendsl("check", str(bad))
    assert done.returncode == 1 and done.stdout == ""
    assert "error[E102]: unknown name 'y'" in done.stderr
    assert f"--> {bad}:3:17" in done.stderr


def test_missing_file_is_e501_not_a_traceback():
    done = gendsl("check", "specs/no_such_spec.gen")
    assert done.returncode == 1
    assert_no_traceback(done)
    assert "error[E501]" in done.stderr and "no_such_spec.gen" in done.stderr


def test_unknown_flag_is_e505_exit_1():
    done = gendsl("check", "specs/vae.gen", "--no-such-flag")
    assert done.returncode == 1, (done.returncode, done.stderr)  # not argparse's 2
    assert_no_traceback(done)
    assert "error[E505]" in done.stderr and "--no-such-flag" in done.stderr
    assert "usage:" not in done.stderr


needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed")


@needs_dot
def test_render_svg_png_dot(tmp_path):
    for name in ("gan.svg", "gan.png", "gan.dot"):
        done = gendsl("render", "specs/gan_ring.gen", "-o", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
        assert_no_traceback(done)
        assert f"wrote {tmp_path / name}" in done.stdout
    svg = (tmp_path / "gan.svg").read_text(encoding="utf-8")
    assert "<svg" in svg and "</svg>" in svg
    assert (tmp_path / "gan.png").read_bytes().startswith(PNG_MAGIC)
    dot = (tmp_path / "gan.dot").read_text(encoding="utf-8")
    assert dot.lstrip().startswith("digraph") and "->" in dot


@needs_dot
def test_render_pgm_view(tmp_path):
    out = tmp_path / "vae_pgm.svg"
    done = gendsl("render", "specs/vae.gen", "-o", str(out), "--view", "pgm")
    assert done.returncode == 0, done.stderr
    assert "<svg" in out.read_text(encoding="utf-8")
    dot = tmp_path / "vae_pgm.dot"
    assert gendsl("render", "specs/vae.gen", "-o", str(dot), "--view", "pgm").returncode == 0
    assert "cluster_plate" in dot.read_text(encoding="utf-8")  # the pgm view draws a plate


def test_render_without_graphviz_writes_dot_and_warns(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    out = tmp_path / "gan.svg"
    done = gendsl("render", "specs/gan_ring.gen", "-o", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert_no_traceback(done)
    assert not out.exists()
    fallback = tmp_path / "gan.dot"
    assert fallback.read_text(encoding="utf-8").lstrip().startswith("digraph")
    assert "warning[W503]" in done.stderr and "graphviz" in done.stderr
    assert "install graphviz" in done.stderr and "apt-get install graphviz" in done.stderr
    assert f"wrote {fallback}" in done.stdout


def test_render_bad_spec_exits_1_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.gen"
    bad.write_text(BAD_SPEC, encoding="utf-8")
    done = gendsl("render", str(bad), "-o", str(tmp_path / "bad.svg"))
    assert done.returncode == 1 and "error[E102]" in done.stderr
    assert not list(tmp_path.glob("bad.svg")) and not list(tmp_path.glob("bad.dot"))


def test_closed_stdout_is_not_an_internal_error():
    """`gendsl check specs/*.gen | head -1` used to report the BrokenPipeError as E999, exit 70."""
    proc = subprocess.Popen([sys.executable, "-m", "gendsl.cli", "check", *map(str, SPECS)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader goes away before gendsl writes, like `| head` after one line
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert "E999" not in err and "Traceback" not in err, err
    assert code != 70


def test_bench_test_and_example_specs_check():
    """The specs that benchmarks, tests and examples train must stay valid as the language moves."""
    others = sorted(p for folder in ("bench/specs", "tests/specs", "examples") for p in (ROOT / folder).glob("*.gen"))
    done = gendsl("check", *(str(p.relative_to(ROOT)) for p in others))
    assert done.returncode == 0 and len(re.findall(r"^ok: model", done.stdout, flags=re.M)) == len(others), done.stderr


def test_version_names_gendsl_torch_and_python() -> None:
    import platform

    from gendsl import __version__

    done = gendsl("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"gendsl {__version__} (torch ") and platform.python_version() in done.stdout
