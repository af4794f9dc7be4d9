"""Multi-process training through torch.distributed (torchrun, DDP; gloo on CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.cli import ROOT


def torchrun(*args: str, port: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           f"--master_port={port}", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_ranks_stay_in_sync(tmp_path: Path) -> None:
    """Each rank trains on its own shard; DDP averages gradients, so the weights stay equal
    (also in the GAN's steps, which freeze the network they do not update)."""
    result = torchrun("tests/e2e/ddp_worker.py", tmp_path / "run", tmp_path, port=29611)
    assert result.returncode == 0, result.stderr[-2000:]
    sums = [(tmp_path / f"checksum{rank}").read_text() for rank in (0, 1)]
    assert sums[0] == sums[1], sums


def test_gendsl_train_under_torchrun(tmp_path: Path) -> None:
    result = torchrun("-m", "gendsl.cli", "train", "specs/gan_ring.gen", "--steps", "30", "--set", "width=16",
                      "--out", tmp_path / "run", "--quiet", port=29612)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("done: 30 rounds") == 1  # only rank 0 reports and writes
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
