"""Validation while training: valid losses in the CSV, TensorBoard and the loss plot; best.pt
holds the weights of the lowest valid loss; `patience` stops a run that no longer improves.
TensorBoard also shows the sample pictures and the weights' histograms."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.e2e.cli import gendsl

MIXTURE = """
model Mixture {
  data x: real[2] from ring(n=2000)
  tensor mu: real[8, 2] = normal(std=1.5)
  latent c: cat[8] ~ Categorical(logits = 0)
  observe x ~ Normal(mu[c], 0.3)
  loss nll = -log p(x)
  train { optimizer OPTIMIZER; minimize nll; SETTINGS }
  sample x ~ p(x)
}
"""


def spec(tmp_path: Path, optimizer: str, settings: str, name: str = "mixture") -> Path:
    """A Gaussian mixture on the ring, its NLL exact (summed out): no sampling in the loss."""
    path = tmp_path / f"{name}.gen"
    batch = "" if "batch" in settings else "batch 100; "
    path.write_text(MIXTURE.replace("OPTIMIZER", optimizer).replace("SETTINGS", batch + settings))
    return path


def rows(folder: Path) -> list[dict]:
    with open(folder / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_valid_losses_each_epoch_in_csv_tensorboard_and_best_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, _, stderr = gendsl("train", spec(tmp_path, "Adam(lr=0.05)", "epochs 6; log_every 7"), "--out", run, "--quiet")
    assert code == 0, stderr
    logged = rows(run)
    validated = [r for r in logged if r["valid/nll"]]
    assert [int(r["round"]) for r in validated] == [20, 40, 60, 80, 100, 120], "once an epoch (20 rounds)"
    assert [int(r["round"]) for r in logged] == sorted(set(range(7, 121, 7)) | set(range(20, 121, 20)))
    scores = [float(r["valid/nll"]) for r in validated]
    assert scores[-1] < scores[0], "training lowers the valid loss"
    best = torch.load(run / "best.pt", weights_only=True)
    assert best["round"] == int(validated[scores.index(min(scores))]["round"])
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "histograms": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("valid/nll")] == [20, 40, 60, 80, 100, 120]
    assert [e.step for e in events.Images("samples/final")] == [120], "the final samples, as a picture"
    assert [e.step for e in events.Histograms("weights/mu")] == [120]
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


def test_patience_stops_a_run_whose_valid_loss_no_longer_falls(tmp_path: Path) -> None:
    """SGD with a learning rate below float32's resolution leaves the weights as they are, so the
    valid loss (the same random numbers each time) never falls after the first validation."""
    run = tmp_path / "run"
    settings = "steps 100; validate_every 5; patience 3"
    code, _, stderr = gendsl("train", spec(tmp_path, "SGD(lr=1e-30)", settings), "--out", run, "--quiet")
    assert code == 0, stderr
    assert "early stop at round 20" in stderr and "best.pt" in stderr
    info = json.loads((run / "run.json").read_text())
    assert (info["status"], info["round"]) == ("stopped early", 20)
    assert torch.load(run / "best.pt", weights_only=True)["round"] == 5
    assert torch.load(run / "checkpoint.pt", weights_only=True)["round"] == 20
    assert len({r["valid/nll"] for r in rows(run) if r["valid/nll"]}) == 1


def test_validate_every_0_turns_validation_off(tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, _, stderr = gendsl("train", spec(tmp_path, "Adam(lr=0.05)", "steps 30; validate_every 0"), "--out", run,
                             "--quiet")
    assert code == 0, stderr
    assert "valid/nll" not in rows(run)[0] and not (run / "best.pt").exists()


def test_flags_override_the_train_block_and_best_weights_can_be_sampled_and_evaluated(tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, _, stderr = gendsl("train", spec(tmp_path, "SGD(lr=1e-30)", "steps 100"), "--out", run, "--quiet",
                             "--validate-every", "4", "--patience", "2")
    assert code == 0, stderr
    assert json.loads((run / "run.json").read_text())["round"] == 12
    code, stdout, stderr = gendsl("evaluate", run, "--best", "--metric", "nll", "--quiet")
    assert code == 0 and "nll" in stdout, stderr
    code, _, stderr = gendsl("sample", run, "--best", "-n", "16", "-o", tmp_path / "best.png")
    assert code == 0 and (tmp_path / "best.png").exists(), stderr


def test_patience_without_validation_and_best_without_best_pt_are_diagnostics(tmp_path: Path) -> None:
    run = tmp_path / "run"
    path = spec(tmp_path, "Adam(lr=0.05)", "steps 10")
    code, _, stderr = gendsl("train", path, "--out", run, "--quiet", "--validate-every", "0", "--patience", "2")
    assert code == 1 and "E505" in stderr and "patience 2 needs validation" in stderr
    code, _, stderr = gendsl("train", path, "--out", run, "--quiet", "--validate-every", "0", "--force")
    assert code == 0, stderr
    code, _, stderr = gendsl("sample", run, "--best", "-o", tmp_path / "x.png")
    assert code == 1 and "E408" in stderr and "no best.pt" in stderr and "Traceback" not in stderr


def test_the_plateau_schedule_lowers_the_rate_when_the_valid_loss_stalls(tmp_path: Path) -> None:
    """threshold=0.99: only a valid loss below 1% of the best counts as lower, which this positive
    NLL never reaches, so every validation after the first halves the rate."""
    run = tmp_path / "run"
    settings = "steps 20; validate_every 5; log_every 5; schedule plateau(factor=0.5, patience=0, threshold=0.99)"
    code, _, stderr = gendsl("train", spec(tmp_path, "SGD(lr=0.01)", settings), "--out", run, "--quiet")
    assert code == 0, stderr
    assert all(float(r["valid/nll"]) > 0 for r in rows(run))
    assert [float(r["lr"]) for r in rows(run)] == [0.01, 0.005, 0.0025, 0.00125]
    code, _, stderr = gendsl("train", spec(tmp_path, "SGD(lr=0.01)", settings), "--out", run, "--force",
                             "--quiet", "--validate-every", "0")
    assert code == 1 and "E505" in stderr and "the plateau schedule needs validation" in stderr


def test_validating_does_not_change_the_trained_weights(tmp_path: Path) -> None:
    """Validation puts the random state back, so a run draws the same batches and samples with it."""
    from tests.e2e.test_resume import SPEC as GAN_WITH_DROPOUT_AND_EMA

    spec_path = tmp_path / "gan.gen"
    spec_path.write_text(GAN_WITH_DROPOUT_AND_EMA)
    states = {}
    for name, flag in (("validated", "7"), ("not", "0")):
        code, _, stderr = gendsl("train", spec_path, "--out", tmp_path / name, "--quiet", "--validate-every", flag)
        assert code == 0, stderr
        states[name] = torch.load(tmp_path / name / "checkpoint.pt", weights_only=True)
    assert any(r["valid/critic"] for r in rows(tmp_path / "validated"))
    for part in ("model", "ema"):
        for key, value in states["not"][part].items():
            assert torch.equal(value, states["validated"][part][key]), f"{part}.{key}"
