"""`gendsl train`, then `sample` and `evaluate`, as separate processes (as a user runs them)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.e2e.cli import ROOT


def run(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "gendsl.cli", *map(str, args)], cwd=ROOT, text=True,
                            capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def test_train_sample_evaluate_vae(tmp_path: Path) -> None:
    out = tmp_path / "vae"
    trained = run("train", "specs/vae.gen", "--steps", "150", "--out", out, "--log-every", "50",
                  "--sample-every", "75", "--validate-every", "75", "--quiet")
    assert "done: 150 rounds" in trained.stdout
    for name in ("model.py", "run.json", "checkpoint.pt", "best.pt", "metrics.csv", "losses.png", "diagram.svg",
                 "samples/final.png", "samples/round_0000075.png"):
        assert (out / name).is_file(), name
    assert any(p.name.startswith("events.out.tfevents") for p in (out / "tensorboard").iterdir())
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["round"]) for r in rows] == [50, 75, 100, 150]
    assert [int(r["round"]) for r in rows if r["valid/elbo"]] == [75, 150]
    assert float(rows[-1]["loss/elbo"]) < float(rows[0]["loss/elbo"])

    grid = tmp_path / "grid.png"
    run("sample", out, "-n", "16", "-o", grid)
    assert Image.open(grid).size[0] > 4 * 28
    run("sample", out, "--interpolate", "-o", tmp_path / "lerp.png")
    run("sample", out, "--traverse", "z", "-o", tmp_path / "trav.png")
    width, height = Image.open(tmp_path / "trav.png").size
    assert width > height  # 9 columns, 8 rows

    report = json.loads(run("evaluate", out, "--metric", "elbo", "--metric", "nll", "--k", "8",
                            "--format", "json", "--quiet").stdout)
    elbo, nll = report["metrics"]["elbo"]["nats"], report["metrics"]["nll"]["nats"]
    assert report["split"] == "valid"
    assert nll <= elbo + 0.5, (nll, elbo)  # the IWAE bound (k=8) is at least as tight as the ELBO
    assert 80 < nll < 300
    text = run("evaluate", out, "--metric", "nll", "--k", "2", "--quiet").stdout
    assert "bits/dim" in text and "IWAE bound, k=2" in text
    quick = run("evaluate", out, "--metric", "nll", "--quiet")  # the spec says k=5000: 40 min here
    assert "IWAE bound, k=100" in quick.stdout and "--full: the spec's k=5000" in quick.stderr


def test_compile_writes_a_standalone_module(tmp_path: Path) -> None:
    target = tmp_path / "model.py"
    run("compile", "specs/gan_ring.gen", "-o", target)
    code = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('m', sys.argv[1]); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
            "import torch; model = m.build(); print(model.sample_x(5).shape)")
    result = subprocess.run([sys.executable, "-c", code, str(target)], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "torch.Size([5, 2])" in result.stdout
    assert "gendsl" not in "".join(line for line in target.read_text().splitlines() if line.startswith("import"))
