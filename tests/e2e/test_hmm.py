"""The hidden Markov model of specs/hmm.gen trains through the CLI to within 0.02 nats per
sequence of the true model that drew its data (test split, exact NLL by the forward algorithm),
decodes states nearly as well as the true model does (Viterbi), and samples.

The model is tiny (44 parameters): one thread runs it faster than two that share the machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import SPECS
from tests.e2e.cli import gendsl


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_hmm_within_002_nats_of_the_true_model(tmp_path: Path, one_thread) -> None:
    run = tmp_path / "hmm"
    code, _, stderr = gendsl("train", SPECS / "hmm.gen", "--out", run, "--quiet")
    assert code == 0, stderr
    code, stdout, stderr = gendsl("evaluate", run, "--split", "test", "--format", "json", "--quiet")
    assert code == 0, stderr
    metrics = json.loads(stdout)["metrics"]
    nll, viterbi = metrics["nll"], metrics["viterbi"]
    assert nll["method"] == "exact" and nll["n"] == 5000, nll
    assert 0 <= nll["gap"] + 3 * nll["gap_stderr"] and nll["gap"] < 0.02, nll
    assert viterbi["states"] == "s" and viterbi["accuracy"] > viterbi["true_accuracy"] - 0.06, viterbi
    code, _, stderr = gendsl("sample", run, "-n", "16", "-o", tmp_path / "samples.png")
    assert code == 0 and (tmp_path / "samples.png").stat().st_size > 0, stderr
