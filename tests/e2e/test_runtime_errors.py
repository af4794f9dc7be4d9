"""Run-time mistakes are diagnostics with exit code 1, never tracebacks; nothing written is lost."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tests.e2e.cli import gendsl

SMALL_AE = """
model Small {{
  data x: real[4] from {source}
  net f(x) -> real[4] {{ x |> Linear(8) |> relu |> Linear(4) }}
  loss recon = mse(f(x), x)
  train {{ optimizer Adam(lr=1e-2); minimize recon; batch 16; steps 20; checkpoint_every 5; log_every 5 }}
  sample x = f(x)
}}
"""


def write(tmp_path: Path, text: str, name: str = "spec.gen") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def assert_diagnostic(result, code: str) -> str:
    status, _, stderr = result
    assert status == 1, stderr
    assert f"error[{code}]" in stderr, stderr
    assert "Traceback" not in stderr and "E999" not in stderr
    return stderr


def test_data_of_the_wrong_shape(tmp_path: Path) -> None:
    np.savez(tmp_path / "five.npz", x=np.random.rand(100, 5).astype(np.float32))
    spec = write(tmp_path, SMALL_AE.format(source=f'npz(path="{tmp_path / "five.npz"}")'))
    stderr = assert_diagnostic(gendsl("train", spec, "--out", tmp_path / "run", "--quiet"), "E403")
    assert "spec.gen:3" in stderr and "5 values" in stderr


def test_missing_data_file(tmp_path: Path) -> None:
    spec = write(tmp_path, SMALL_AE.format(source=f'npz(path="{tmp_path / "nowhere.npz"}")'))
    stderr = assert_diagnostic(gendsl("train", spec, "--out", tmp_path / "run", "--quiet"), "E401")
    assert "nowhere.npz" in stderr


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    spec = write(tmp_path, """
model Blowup {
  data x: real[2] from ring()
  tensor w: real[1] = zeros
  loss up = -mean(exp(w)) + 0 * mean(x)
  train { optimizer SGD(lr=10.0); minimize up; batch 8; steps 100; checkpoint_every 2; log_every 1 }
}
""")
    stderr = assert_diagnostic(gendsl("train", spec, "--out", tmp_path / "run", "--quiet"), "E406")
    assert "last good checkpoint" in stderr
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert 0 < state["round"] < 100
    assert torch.isfinite(state["model"]["w"]).all()


def test_resuming_with_a_changed_spec(tmp_path: Path) -> None:
    spec = write(tmp_path, SMALL_AE.format(source="ring(n=200)").replace("real[4]", "real[2]")
                 .replace("Linear(4)", "Linear(2)"))
    assert gendsl("train", spec, "--out", tmp_path / "run", "--quiet")[0] == 0
    changed = spec.read_text().replace("Linear(8)", "Linear(9)")
    spec.write_text(changed)
    assert_diagnostic(gendsl("train", spec, "--out", tmp_path / "run", "--resume", "--quiet"), "E407")


def test_training_over_an_existing_run_needs_a_flag(tmp_path: Path) -> None:
    spec = write(tmp_path, SMALL_AE.format(source="ring(n=200)").replace("real[4]", "real[2]")
                 .replace("Linear(4)", "Linear(2)"))
    assert gendsl("train", spec, "--out", tmp_path / "run", "--quiet")[0] == 0
    before = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    assert_diagnostic(gendsl("train", spec, "--out", tmp_path / "run", "--quiet"), "E510")
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == before  # nothing already written is lost


def test_damaged_checkpoint(tmp_path: Path) -> None:
    spec = write(tmp_path, SMALL_AE.format(source="ring(n=200)").replace("real[4]", "real[2]")
                 .replace("Linear(4)", "Linear(2)"))
    assert gendsl("train", spec, "--out", tmp_path / "run", "--quiet")[0] == 0
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert_diagnostic(gendsl("sample", tmp_path / "run", "-o", tmp_path / "s.png"), "E408")
    assert_diagnostic(gendsl("evaluate", tmp_path / "run"), "E408")


def test_not_a_run_folder(tmp_path: Path) -> None:
    assert_diagnostic(gendsl("sample", tmp_path, "-o", tmp_path / "s.png"), "E504")


def test_missing_gpu_and_bad_flags(tmp_path: Path) -> None:
    spec = write(tmp_path, SMALL_AE.format(source="ring(n=200)").replace("real[4]", "real[2]")
                 .replace("Linear(4)", "Linear(2)"))
    if not torch.cuda.is_available():
        assert_diagnostic(gendsl("train", spec, "--out", tmp_path / "run", "--device", "cuda", "--quiet"), "E409")
    assert_diagnostic(gendsl("train", spec, "--steps", "ten"), "E505")
    assert_diagnostic(gendsl("train", spec, "--set", "nope=1", "--out", tmp_path / "r2"), "E120")


def test_recon_of_a_model_without_reconstructions(tmp_path: Path) -> None:
    spec = write(tmp_path, """
model Gen {
  data x: real[2] from ring(n=200)
  latent z: real[2] ~ Normal(0, 1)
  generator G(z) -> real[2] { z |> Linear(8) |> relu |> Linear(2) }
  loss fit = mse(G(z), x)
  train { optimizer Adam(lr=1e-2); minimize fit; batch 16; steps 5 }
  sample x = G(z)
}
""")
    assert gendsl("train", spec, "--out", tmp_path / "run", "--quiet")[0] == 0
    stderr = assert_diagnostic(gendsl("evaluate", tmp_path / "run", "--metric", "recon"), "E312")
    assert "draws from the model alone" in stderr and "help: recon applies to autoencoders" in stderr, stderr
