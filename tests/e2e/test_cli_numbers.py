"""Numbers on the command line (issue 10, reproducer 6): counts out of range are E5xx diagnostics
with a hint, exit code 1, nothing written and nothing claimed; `--resume` never runs a run
backwards and leaves run.json as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.cli import gendsl

SPEC = """
model Tiny {
  data x: real[2] from ring(n=200)
  latent z: real[2] ~ Normal(0, 1)
  generator G(z) -> real[2] { z |> Linear(8) |> relu |> Linear(2) }
  loss l = mse(G(z), x)
  train { minimize l; batch 16; steps 3 }
  sample x = G(z)
  evaluate { mmd(samples=50) }
}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("numbers")
    spec = folder / "tiny.gen"
    spec.write_text(SPEC)
    code, _, err = gendsl("train", spec, "--out", folder / "run", "--quiet")
    assert code == 0, err
    return spec, folder / "run"


def assert_flag_error(code: int, out: str, err: str, flag: str) -> None:
    assert code == 1, (out, err)
    assert "error[E505]" in err and flag in err, err
    assert "= help:" in err and "Traceback" not in err, err
    assert "wrote" not in out and "done" not in out, out


@pytest.mark.parametrize("flags", [["--steps", "0"], ["--steps", "-1"], ["--epochs", "0"], ["--log-every", "0"],
                                   ["--checkpoint-every", "0"], ["--sample-every", "-2"], ["--seed", "-3"],
                                   ["--steps", "two"]])
def test_train_counts(flags, tmp_path, trained):
    spec, _ = trained
    code, out, err = gendsl("train", spec, "--out", tmp_path / "run", *flags)
    assert_flag_error(code, out, err, flags[0])
    assert not (tmp_path / "run").exists(), "a refused command wrote files"


@pytest.mark.parametrize("command, flags", [("sample", ["-n", "0"]), ("sample", ["-n", "-3"]),
                                            ("evaluate", ["--k", "0"]), ("evaluate", ["--k", "-5"]),
                                            ("evaluate", ["--batch", "0"])])
def test_sample_and_evaluate_counts(command, flags, trained, tmp_path):
    _, run = trained
    extra = ["-o", tmp_path / "s.png"] if command == "sample" else []
    code, out, err = gendsl(command, run, *flags, *extra)
    assert_flag_error(code, out, err, flags[0])
    assert not (tmp_path / "s.png").exists()


def test_resume_with_fewer_rounds_than_done_is_refused(trained):
    spec, run = trained
    before = json.loads((run / "run.json").read_text())
    code, out, err = gendsl("train", spec, "--out", run, "--resume", "--steps", "2")
    assert code == 1 and "error[E511]" in err and "= help:" in err, err
    assert json.loads((run / "run.json").read_text()) == before
    assert before["round"] == 3 and before["status"] == "finished"


def test_k_reaches_only_likelihood_metrics():
    """`--k` is the number of importance samples; coverage's k (a radius in stds) keeps its value."""
    from gendsl.evaluation.metrics import importance_samples

    assert importance_samples("iwae", 7) == {"k": 7}
    assert importance_samples("nll", 7) == {"k": 7}
    assert importance_samples("coverage", 7) == {}
    assert importance_samples("elbo", 7) == {}
    assert importance_samples("iwae", None) == {}
