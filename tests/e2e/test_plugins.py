"""Plugins (issue 11, item 8): the example plugin end to end, its layer against its definition,
the opt-in, and a diagnostic (code, location, hint, exit code 1, no traceback) for each way a
plugin can be wrong."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import torch

from gendsl.library.functions import FUNCTIONS
from gendsl.library.layers import LAYERS
from gendsl.plugins import plugins_loaded
from tests.conformance.pipeline import compile_text
from tests.e2e.cli import ROOT, gendsl
from tests.unit.test_no_torch import assert_no_torch, probe

EXAMPLE = ROOT / "examples" / "plugins"
PLUGIN = EXAMPLE / "gated.py"
SPEC = EXAMPLE / "gated_vae.gen"


# ---- the example, end to end ----

def test_example_checks_compiles_trains_samples_and_evaluates(tmp_path):
    code, out, err = gendsl("check", SPEC, "--plugin", PLUGIN)
    assert code == 0, err
    assert "plugin " in out and "layer GatedLinear" in out and "ok: model GatedVAE" in out

    target = tmp_path / "model.py"
    code, _, err = gendsl("compile", SPEC, "--plugin", PLUGIN, "-o", target)
    assert code == 0, err
    assert "class GatedLinear(nn.Module)" in target.read_text()
    standalone = ("import importlib.util, sys; s = importlib.util.spec_from_file_location('m', sys.argv[1]); "
                  "m = importlib.util.module_from_spec(s); s.loader.exec_module(m); "
                  "print(tuple(m.build().sample_x(5).shape), any(k.startswith('gendsl') for k in sys.modules))")
    ran = subprocess.run([sys.executable, "-c", standalone, str(target)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["(5,", "64)", "False"]  # it ran with torch alone: no gendsl module loaded

    run = tmp_path / "run"
    code, out, err = gendsl("train", SPEC, "--plugin", PLUGIN, "--out", run, "--steps", "400", "--log-every", "100",
                            "--quiet")
    assert code == 0, err
    losses = [float(r["loss/elbo"]) for r in csv.DictReader((run / "metrics.csv").open())]
    assert losses[-1] < losses[0], losses
    assert json.loads((run / "run.json").read_text())["plugins"] == [str(PLUGIN.resolve())]

    # sample and evaluate read the run's standalone model.py: they need no --plugin
    code, _, err = gendsl("sample", run, "-n", "16", "-o", tmp_path / "grid.png")
    assert code == 0 and (tmp_path / "grid.png").is_file(), err
    code, out, err = gendsl("evaluate", run, "--metric", "nll", "--k", "50", "--format", "json", "--quiet")
    assert code == 0, err
    nll = json.loads(out)["metrics"]["nll"]["nats"]
    # independent Bernoulli pixels fitted to the training digits score 24.76 nats on this valid split
    assert nll < 23.5, nll

    # --resume recompiles the spec with the plugins the run remembers
    code, out, err = gendsl("train", SPEC, "--out", run, "--resume", "--steps", "420", "--quiet")
    assert code == 0, err
    assert "done: 420 rounds" in out


def test_plugin_layer_and_function_compute_their_definitions(tmp_path):
    """GatedLinear(4) |> snake(freq=2.0), and snake(h) as a function, against torch written by hand."""
    spec = ("model C {\n  net f(h: real[6]) { h |> GatedLinear(4) |> snake(freq=2.0) }\n"
            "  net g(h: real[3, 5]) { snake(h, freq=0.5) }\n}\n")
    with plugins_loaded([PLUGIN]):
        compiled = compile_text(spec, tmp_path)
    f, g = compiled.model.f, compiled.model.g
    x = torch.randn(7, 6)
    gated = dict(f.named_parameters())
    (value_w, value_b), (gate_w, gate_b) = [[p for n, p in gated.items() if f".{part}." in n]
                                            for part in ("value", "gate")]
    y = (x @ value_w.T + value_b) * torch.sigmoid(x @ gate_w.T + gate_b)
    assert torch.allclose(f(x), y + torch.sin(2.0 * y) ** 2 / 2.0, atol=1e-6)
    h = torch.randn(2, 3, 5)
    assert torch.allclose(g(h), h + torch.sin(0.5 * h) ** 2 / 0.5, atol=1e-6)
    assert sum(p.numel() for p in f.parameters()) == compiled.node("f").params == 2 * (6 * 4 + 4)


def test_check_and_render_with_a_plugin_do_not_import_torch(tmp_path):
    report = probe(["check", str(SPEC.relative_to(ROOT)), "--plugin", str(PLUGIN.relative_to(ROOT))],
                   ["render", str(SPEC.relative_to(ROOT)), "--plugin", str(PLUGIN.relative_to(ROOT)),
                    "-o", str(tmp_path / "d.dot")])
    assert report["codes"] == [0, 0], report["stderr"]
    assert_no_torch(report)


def test_commands_leave_the_registries_as_they_found_them(tmp_path):
    assert gendsl("check", SPEC, "--plugin", PLUGIN)[0] == 0
    assert "GatedLinear" not in LAYERS and "snake" not in FUNCTIONS


# ---- opt-in: no plugin runs unless named ----

MARKER_PLUGIN = """
from pathlib import Path

from gendsl.library.entries import Built
from gendsl.library.layers import layer
from gendsl.types import TensorType

Path(__file__).with_name("ran").write_text("the plugin ran")

@layer("Twice", "2 x")
def twice(x: TensorType) -> Built:
    return Built(out=x.as_real(), code="nn.Identity()")
"""
TWICE_SPEC = "model M {\n  net f(h: real[6]) { h |> Twice }\n}\n"


def test_a_plugin_runs_only_when_named(tmp_path):
    (tmp_path / "twice.py").write_text(MARKER_PLUGIN)
    (tmp_path / "m.gen").write_text(TWICE_SPEC)
    code, _, err = gendsl("check", tmp_path / "m.gen")
    assert code == 1 and "E103" in err and not (tmp_path / "ran").exists()
    code, out, err = gendsl("check", tmp_path / "m.gen", "--plugin", tmp_path / "twice.py")
    assert code == 0, err
    assert (tmp_path / "ran").exists()


def test_the_project_configuration_names_plugins(tmp_path):
    """`[tool.gendsl] plugins` of the nearest pyproject.toml, paths relative to it."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "twice.py").write_text(MARKER_PLUGIN)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\n\n[tool.gendsl]\nplugins = ["plugins/twice.py"]\n')
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "m.gen").write_text(TWICE_SPEC)
    code, out, err = gendsl("check", tmp_path / "specs" / "m.gen")
    assert code == 0, err
    assert "layer Twice" in out
    code, _, err = gendsl("compile", tmp_path / "specs" / "m.gen", "-o", tmp_path / "m.py")
    assert code == 0, err


# ---- bad plugins: diagnostics ----

RULES = """from gendsl.library.entries import Built
from gendsl.library.layers import layer
from gendsl.library.signature import Count
from gendsl.types import TensorType

"""
BAD = {
    "missing file": (None, "E520", None),
    "import error": (RULES + "import gendsl_no_such_module\n", "E521", 6),
    "syntax error": (RULES + "def broken(:\n", "E521", 6),
    "imports torch": ("import torch\n" + RULES, "E521", 1),
    "rule raises": (RULES + '@layer("Twice", "2 x")\ndef twice(x: TensorType, out: Count) -> Built:\n'
                    "    width = {}[out]\n    return Built(out=x)\n", "E524", 8),
    "built-in name": (RULES + '@layer("Linear", "mine")\ndef linear(x: TensorType) -> Built:\n'
                      '    return Built(out=x, code="nn.Identity()")\n', "E522", 6),
    "a function's name": (RULES + '@layer("mean", "mine")\ndef mean(x: TensorType) -> Built:\n'
                          '    return Built(out=x, code="nn.Identity()")\n', "E522", 6),
    "no implementation": (RULES + '@layer("Twice", "2 x")\ndef twice(x: TensorType, out: Count) -> Built:\n'
                          '    return Built(out=x, code=f"Twice({out})")\n', "E523", 6),
    "no code": (RULES + '@layer("Twice", "2 x")\ndef twice(x: TensorType, out: Count) -> Built:\n'
                "    return Built(out=x)\n", "E523", 6),
    "unlisted helper": (RULES + 'IMPLEMENTATION = "impl.py"\n\n@layer("Twice", "2 x")\n'
                        "def twice(x: TensorType, out: Count) -> Built:\n"
                        '    return Built(out=x, code="Twice()")\n', "E523", 8),
    "missing implementation file": (RULES + 'IMPLEMENTATION = "nowhere.py"\n', "E525", 6),
}
IMPL = "import torch.nn as nn\n\n\nclass Twice(nn.Module):\n    def forward(self, x):\n        return 2 * x\n"
SPEC_TEXT = "model M {\n  net f(h: real[6]) { h |> Twice(3) }\n}\n"


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_plugin_is_a_diagnostic(case, tmp_path):
    text, code, line = BAD[case]
    plugin = tmp_path / "bad.py"
    if text is not None:
        plugin.write_text(text)
    (tmp_path / "impl.py").write_text(IMPL)
    (tmp_path / "m.gen").write_text(SPEC_TEXT)
    for command in (["check"], ["compile", "-o", str(tmp_path / "m.py")]):
        exit_code, _, err = gendsl(command[0], tmp_path / "m.gen", "--plugin", plugin, *command[1:])
        assert exit_code == 1, (case, err)
        assert f"error[{code}]" in err, err
        assert "help:" in err and "Traceback" not in err and "E999" not in err, err
        if line is not None:
            assert f"--> {plugin}:{line}:" in err, err
    assert "Twice" not in LAYERS


BAD_IMPLEMENTATIONS = {
    "an import generated files lack": "import numpy as np\n\n\ndef twice(x):\n    return x\n",
    "module-level state": "import torch.nn as nn\n\nSCALE = 2\n",
    "a built-in helper's name": "import torch.nn as nn\n\n\nclass MaskedLinear(nn.Module):\n    pass\n",
}


@pytest.mark.parametrize("case", sorted(BAD_IMPLEMENTATIONS))
def test_a_bad_implementation_file_is_a_diagnostic(case, tmp_path):
    (tmp_path / "bad.py").write_text(RULES + 'IMPLEMENTATION = "impl.py"\n')
    (tmp_path / "impl.py").write_text(BAD_IMPLEMENTATIONS[case])
    (tmp_path / "m.gen").write_text(SPEC_TEXT)
    exit_code, _, err = gendsl("check", tmp_path / "m.gen", "--plugin", tmp_path / "bad.py")
    assert exit_code == 1 and "Traceback" not in err, err
    assert ("error[E525]" in err or "error[E522]" in err) and f"--> {tmp_path / 'impl.py'}:" in err, err


FRAGILE_RULES = RULES + '''IMPLEMENTATION = "fragile_torch.py"


@layer("Fragile", "fails on batches larger than 4")
def fragile(x: TensorType) -> Built:
    return Built(out=x.as_real(), code="Fragile()", helpers=("Fragile",))
'''
FRAGILE_TORCH = """import torch.nn as nn


class Fragile(nn.Module):
    def forward(self, x):
        if len(x) > 4:
            raise ValueError(f"batch of {len(x)} is too large")
        return x
"""


def test_a_plugin_fault_while_training_points_into_its_implementation(tmp_path):
    (tmp_path / "fragile.py").write_text(FRAGILE_RULES)
    (tmp_path / "fragile_torch.py").write_text(FRAGILE_TORCH)
    (tmp_path / "m.gen").write_text("model M {\n  data x: real[2] from ring(n=200)\n"
                                    "  net f(h: real[2]) -> real[2] { h |> Fragile |> Linear(2) }\n"
                                    "  loss l = mse(f(x), x)\n  train { minimize l; batch 8; steps 3 }\n}\n")
    exit_code, _, err = gendsl("train", tmp_path / "m.gen", "--plugin", tmp_path / "fragile.py",
                               "--out", tmp_path / "run", "--quiet")
    assert exit_code == 1 and "error[E526]" in err and "E999" not in err, err
    assert f"--> {tmp_path / 'fragile_torch.py'}:7:" in err and "batch of 8 is too large" in err, err


def test_a_configured_plugin_that_is_missing_points_at_the_configuration(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.gendsl]\nplugins = ["gone.py"]\n')
    (tmp_path / "m.gen").write_text(SPEC_TEXT)
    exit_code, _, err = gendsl("check", tmp_path / "m.gen")
    assert exit_code == 1 and "error[E520]" in err and f"--> {tmp_path / 'pyproject.toml'}:2:" in err, err


def test_a_bad_configuration_is_a_diagnostic(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.gendsl]\nplugins = "gone.py"\n')
    (tmp_path / "m.gen").write_text(SPEC_TEXT)
    exit_code, _, err = gendsl("check", tmp_path / "m.gen")
    assert exit_code == 1 and "error[E520]" in err and "list of file paths" in err, err


def test_a_plugin_fault_in_json_output(tmp_path):
    (tmp_path / "m.gen").write_text(SPEC_TEXT)
    exit_code, out, _ = gendsl("check", tmp_path / "m.gen", "--plugin", tmp_path / "none.py", "--format", "json")
    report = json.loads(out)
    assert exit_code == 1 and not report["ok"]
    assert report["files"][0]["diagnostics"][0]["code"] == "E520"
