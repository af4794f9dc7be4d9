"""A run killed with SIGKILL, or stopped with Ctrl-C, and continued with --resume ends with exactly
the weights of a run that was never interrupted (same seed): checkpoints hold the model,
optimizers, schedules, EMA, the data order, the validation record and every random state."""

from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path

import pytest
import torch

from tests.e2e.cli import gendsl, gendsl_process

SPEC = """
model Resumable {
  data x: real[2] from ring(n=2000)
  latent z: real[4] ~ Normal(0, 1)
  generator G(z) -> real[2] { z |> Linear(16) |> relu |> Dropout(0.1) |> Linear(2) }
  discriminator D(x) -> logit { x |> Linear(16) |> leaky_relu(0.2) |> Linear(1) }
  loss d_loss = bce(D(x), 1) + bce(D(G(z)), 0)
  loss g_loss = bce(D(G(z)), 1)
  train {
    step critic: minimize d_loss over D with Adam(lr=1e-3) repeat 2
    step gen:    minimize g_loss over G with Adam(lr=1e-3)
    schedule cosine(warmup=10); ema 0.9; clip 5.0
    batch 32; steps 120; checkpoint_every 10; log_every 10
  }
  sample x = G(z)
}
"""


def weights(folder: Path) -> dict:
    state = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert state["round"] == 120
    return {"model": state["model"], "ema": state["ema"]}


def assert_resumes_to_the_same_weights(spec: Path, stopped: Path, whole: Path) -> None:
    code, _, stderr = gendsl("train", spec, "--out", stopped, "--seed", "3", "--resume", "--quiet")
    assert code == 0, stderr
    expected, resumed = weights(whole), weights(stopped)
    for part in ("model", "ema"):
        for name, tensor in expected[part].items():
            assert torch.equal(tensor, resumed[part][name]), f"{part}.{name} differs after resume"


def checkpoint_round(folder: Path) -> int:
    try:
        return int(torch.load(folder / "checkpoint.pt", weights_only=True)["round"])
    except (FileNotFoundError, RuntimeError, EOFError, KeyError):
        return 0


def test_killed_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    spec = tmp_path / "resumable.gen"
    spec.write_text(SPEC)
    code, _, stderr = gendsl("train", spec, "--out", tmp_path / "whole", "--seed", "3", "--quiet")
    assert code == 0, stderr

    killed = tmp_path / "killed"
    process = gendsl_process("train", spec, "--out", killed, "--seed", "3", "--quiet",
                             env={"GENDSL_TEST_STEP_DELAY": "0.05"})
    deadline = time.time() + 120
    while checkpoint_round(killed) < 40 and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    interrupted_at = checkpoint_round(killed)
    assert 40 <= interrupted_at < 120, f"the kill came at round {interrupted_at}"
    assert json.loads((killed / "run.json").read_text())["status"] == "running"

    assert_resumes_to_the_same_weights(spec, killed, tmp_path / "whole")
    assert logged_rounds(killed) == logged_rounds(tmp_path / "whole"), "metrics.csv holds each logged round once"


def logged_rounds(folder: Path) -> list[int]:
    return [int(line.split(",")[0]) for line in (folder / "metrics.csv").read_text().splitlines()[1:]]


def test_ctrl_c_saves_the_round_it_stopped_at_and_resume_continues_it(tmp_path: Path) -> None:
    """SIGINT at some round: a checkpoint of that very round, an honest run.json, a message that
    says what was saved, exit 130; --resume then ends with the weights of an uninterrupted run.
    The run was asked for --steps 120 (the spec says 500): --resume alone keeps that length, and so
    its cosine schedule."""
    spec = tmp_path / "resumable.gen"
    spec.write_text(SPEC.replace("steps 120", "steps 500"))
    code, _, stderr = gendsl("train", spec, "--out", tmp_path / "whole", "--seed", "3", "--steps", "120", "--quiet")
    assert code == 0, stderr

    stopped = tmp_path / "stopped"
    process = gendsl_process("train", spec, "--out", stopped, "--seed", "3", "--steps", "120", "--quiet",
                             env={"GENDSL_TEST_STEP_DELAY": "0.05"})
    deadline = time.time() + 120
    while checkpoint_round(stopped) < 33 and time.time() < deadline and process.poll() is None:
        time.sleep(0.01)
    time.sleep(0.12)  # a round or two past the periodic checkpoint
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    info = json.loads((stopped / "run.json").read_text())
    assert info["status"] == "interrupted"
    assert info["round"] == checkpoint_round(stopped), "the checkpoint holds the round training stopped at"
    assert f"stopped at round {info['round']} of 120; saved" in stderr and "--resume" in stderr

    assert_resumes_to_the_same_weights(spec, stopped, tmp_path / "whole")
    assert json.loads((stopped / "run.json").read_text())["status"] == "finished"


def test_until_trains_a_prefix_of_the_run_and_resume_finishes_it(tmp_path: Path) -> None:
    """--until N stops at round N with the LR of the whole run's schedule there (a long run's first
    rounds, not a short run), says how to continue, and --resume ends with the weights of a run
    that never paused. --until past the end, or before where a run is, is E512."""
    spec = tmp_path / "resumable.gen"
    spec.write_text(SPEC)
    code, _, stderr = gendsl("train", spec, "--out", tmp_path / "whole", "--seed", "3", "--quiet")
    assert code == 0, stderr
    paused = tmp_path / "paused"
    code, _, stderr = gendsl("train", spec, "--out", paused, "--seed", "3", "--quiet", "--until", "47")
    assert code == 0, stderr
    info = json.loads((paused / "run.json").read_text())
    assert (info["status"], info["round"], info["total"]) == ("paused", 47, 120)
    assert "paused at round 47 of 120" in stderr and "--resume" in stderr
    last = (paused / "metrics.csv").read_text().splitlines()[-1].split(",")
    cosine_of_the_whole_run = 1e-3 * 0.5 * (1 + math.cos(math.pi * (47 - 10) / (120 - 10)))  # warmup 10
    assert (int(last[0]), float(last[-1])) == (47, pytest.approx(cosine_of_the_whole_run))
    code, _, stderr = gendsl("train", spec, "--out", paused, "--seed", "3", "--quiet", "--resume", "--until", "30")
    assert code == 1 and "E512" in stderr and "already at round 47" in stderr
    code, _, stderr = gendsl("train", spec, "--out", paused, "--seed", "3", "--quiet", "--resume", "--until", "121")
    assert code == 1 and "E512" in stderr and "past the end of the run, round 120" in stderr
    code, _, stderr = gendsl("train", spec, "--out", paused, "--seed", "3", "--quiet", "--resume", "--until", "80")
    assert code == 0, stderr
    assert json.loads((paused / "run.json").read_text())["round"] == 80
    assert_resumes_to_the_same_weights(spec, paused, tmp_path / "whole")
    assert json.loads((paused / "run.json").read_text())["status"] == "finished"
