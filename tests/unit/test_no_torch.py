"""The front end never imports torch: `gendsl check`, `gendsl render` and `gendsl --help` start fast.

DESIGN.md section 2: "The front end (parse, graph, passes, render) must not import torch". Each
test runs the CLI in a fresh interpreter (so that nothing imported by other tests counts) with an
import hook that records every attempt to import torch, even one that is caught, and reports it
together with sys.modules. numpy is recorded too but only reported, not asserted: the front end
does not need it either, but nothing requires that. `gendsl check` itself is held to more: none of
the slow packages that only other commands use (numpy, graphviz, the LSP's, matplotlib, ...) nor
gendsl's back end, so that its start stays that of networkx, pydantic, Lark and the passes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.gen"))

# Runs in the child: record attempted imports of watched packages, run main() on each argv list,
# print a JSON report on the last line of stdout.
PROBE = r"""
import contextlib, io, json, sys

WATCHED = ("torch", "numpy", "scipy", "sympy", "matplotlib", "PIL", "graphviz", "pygls", "lsprotocol",
           "jinja2", "sklearn", "tensorboard")
BACK_END = ("gendsl.runtime", "gendsl.codegen", "gendsl.evaluation", "gendsl.data", "gendsl.diagram",
            "gendsl.lsp")
attempted = []

class Recorder:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in WATCHED or name.startswith(BACK_END):
            attempted.append(name)
        return None  # let the normal finders import it

sys.meta_path.insert(0, Recorder())

from gendsl.cli import main

codes = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            codes.append(main(argv))
        except SystemExit as exc:  # --help exits through argparse
            codes.append(exc.code)
    if codes[-1] not in (0, None):
        sys.stderr.write(err.getvalue())

print(json.dumps({
    "codes": codes,
    "attempted": sorted(set(attempted)),
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in WATCHED or m.startswith(BACK_END)),
}))
"""


def probe(*argvs: list[str]) -> dict:
    """Run the CLI in a fresh interpreter for each argv in turn; what it imported."""
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argvs)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    report["stderr"] = done.stderr
    return report


def assert_no_torch(report: dict) -> None:
    torch_attempts = [m for m in report["attempted"] if m.split(".")[0] == "torch"]
    torch_loaded = [m for m in report["loaded"] if m.split(".")[0] == "torch"]
    assert not torch_attempts and not torch_loaded, (
        f"the front end imported torch: attempted {torch_attempts[:5]}, loaded {torch_loaded[:5]}")


def test_check_and_render_do_not_import_torch(tmp_path):
    report = probe(["check", "specs/vae.gen"],
                   ["render", "specs/gan_ring.gen", "-o", str(tmp_path / "g.svg")],
                   ["check", *(str(p.relative_to(ROOT)) for p in SPECS)])
    assert report["codes"] == [0, 0, 0], report["stderr"]
    assert (tmp_path / "g.svg").exists() or (tmp_path / "g.dot").exists()
    assert_no_torch(report)


def test_check_imports_only_the_front_end():
    """What `gendsl check` may import: anything slow it needs not is a regression of its start."""
    report = probe(["check", "specs/vae.gen"], ["check", *(str(p.relative_to(ROOT)) for p in SPECS)])
    assert report["codes"] == [0, 0], report["stderr"]
    assert report["attempted"] == [] and report["loaded"] == [], (
        f"gendsl check imported {report['attempted'][:8]} (loaded {report['loaded'][:8]})")


@pytest.mark.parametrize("argv", [["--help"], ["check", "--help"], ["render", "--help"], [], ["--version"]],
                         ids=["help", "check-help", "render-help", "no-command", "version"])
def test_help_does_not_import_torch(argv):
    report = probe(argv)
    assert report["codes"][0] in (0, 1, None)
    assert_no_torch(report)


def test_render_pgm_and_png_do_not_import_torch(tmp_path):
    report = probe(["render", "specs/vae.gen", "-o", str(tmp_path / "v.png"), "--view", "pgm"],
                   ["render", "specs/ddpm.gen", "-o", str(tmp_path / "d.dot")])
    assert report["codes"] == [0, 0], report["stderr"]
    assert_no_torch(report)
