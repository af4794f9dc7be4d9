"""`pack N` around the pipeline: what the checker accepts, held-out batches that fill whole
groups, and the reverse KL that PacGAN's table 1 reports."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gendsl.data.synthetic import coverage, reverse_kl, ring_modes
from gendsl.graph.check import check_source
from gendsl.runtime.data import Group, iterate
from gendsl.source import SourceFile

HEAD = """model Pac {
  data x: real[2] from ring(modes=8, radius=1.0, std=0.01)
  latent z: real[2] ~ Normal(0, 1)
  generator G(z) -> real[2] { z |> Linear(8) |> relu |> Linear(2) }
  discriminator D(x) -> logit pack 2 { x |> Linear(8) |> relu |> Linear(1) }
  critic C(x) -> real pack 2 { x |> Linear(8) |> relu |> Linear(1) }
"""
TAIL = """  train {
    step critic: minimize d_loss over D, C
    step gen: minimize g_loss over G
    batch 100; steps 10
  }
  sample x = G(z)
}
"""


def diagnostics(losses: str) -> list[str]:
    checked = check_source(SourceFile("<pac>", HEAD + losses + TAIL))
    return [d.code for d in checked.diagnostics if d.is_error]


@pytest.mark.parametrize("g_loss", [
    "bce(D(G(z)), 1)",
    "bce(D(G(z)), 1) + 0.1 * mean(mse(G(z), x))",     # a per-sample term as its own mean
    "-mean(C(G(z))) + bce(D(G(z)), 1)",
    "bce(D(G(z)), 1) - C(G(z)) + d_loss",              # packed by the same N; a loss is shared
])
def test_terms_that_line_up_are_accepted(g_loss: str) -> None:
    assert diagnostics(f"  loss d_loss = bce(D(x), 1) + bce(D(G(z)), 0) + mean(C(x))\n  loss g_loss = {g_loss}\n") == []


@pytest.mark.parametrize("g_loss,code", [
    ("bce(D(G(z)), 1) + mse(G(z), x)", "E242"),
    ("bce(D(G(z)), 1) * sum(G(z), dim=0)", "E242"),
    ("bce(D(D(G(z)) + G(z)), 1)", "E242"),
    ("-logmeanexp(D(G(z)), k=2)", "E242"),
    ("bce(D(G(z)), 1) + gradient_penalty(C, x, G(z))", "E331"),
])
def test_terms_that_mix_groups_and_samples_are_refused(g_loss: str, code: str) -> None:
    assert code in diagnostics(f"  loss d_loss = bce(D(x), 1) + bce(D(G(z)), 0)\n  loss g_loss = {g_loss}\n")


def test_held_out_batches_fill_whole_groups() -> None:
    groups = [Group(names=["x"], tensors=[torch.arange(23.0)[:, None]])]
    sizes = [len(chunk["x"]) for chunk in iterate(groups, 7, pack=3)]
    assert sizes == [6, 6, 6, 3] and all(s % 3 == 0 for s in sizes)
    assert [len(c["x"]) for c in iterate(groups, 7)] == [7, 7, 7, 2]   # unpacked: every row


def test_reverse_kl_of_mode_histograms() -> None:
    uniform = np.arange(800) % 8
    assert reverse_kl(uniform, uniform, 8) == 0.0
    assert reverse_kl(np.zeros(100, dtype=int), uniform, 8) == pytest.approx(math.log(8))
    assert reverse_kl(uniform, np.zeros(100, dtype=int), 8) == math.inf
    centres, std = ring_modes(8, 1.0, 0.01)
    rng = np.random.default_rng(0)
    real = centres[rng.integers(8, size=2500)] + std * rng.standard_normal((2500, 2))
    collapsed = centres[rng.integers(4, size=2500)] + std * rng.standard_normal((2500, 2))
    assert coverage(real, centres, std, reference=real[::-1])["reverse_kl"] == 0.0
    assert coverage(collapsed, centres, std, reference=real)["reverse_kl"] == pytest.approx(math.log(2), abs=0.05)
