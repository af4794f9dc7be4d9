"""Separate `data` lines are independent, in training and on held-out data alike (issue 10,
reproducer 5; docs/semantics.md, "Data"). Variables of one line stay paired everywhere."""

from __future__ import annotations

import torch

import gendsl
from gendsl.runtime.data import Group, held_out_rows, iterate

SPEC = """
model TwoLines {
  data a: real[64], y: cat[10] from digits()
  data b: real[64], y2: cat[10] from digits()
  net f(a) -> real[64] { a |> Linear(64) }
  loss gap = mse(a, b) + 0 * mse(f(a), a)
  loss same_label = mse(onehot(y), onehot(y2))
  train { minimize gap; batch 16; steps 2 }
  evaluate { losses }
}
"""


def test_held_out_lines_are_not_row_aligned(tmp_path):
    spec = tmp_path / "two.gen"
    spec.write_text(SPEC)
    run = gendsl.train(spec, out=tmp_path / "run", steps=2)
    held_out = gendsl.evaluate(run, ["losses"], split="valid")["losses"]
    # the same digits read row by row would give gap 0 and labels that always agree
    assert held_out["gap"] > 0.02, held_out
    assert held_out["same_label"] > 0.05, held_out


def test_paired_variables_stay_paired_and_other_lines_get_their_own_order():
    rows = torch.arange(50)
    first = Group(["x", "label"], [rows.float(), rows])
    second = Group(["w"], [rows.float()])
    batch = held_out_rows([first, second], 50)
    assert torch.equal(batch["x"].long(), batch["label"])          # one line: paired
    assert torch.equal(batch["x"], rows.float())                    # the first line row by row
    assert not torch.equal(batch["w"], batch["x"])                   # another line: its own order
    assert sorted(batch["w"].tolist()) == rows.float().tolist()      # every row once
    chunks = list(iterate([first, second], 16))
    assert torch.equal(torch.cat([c["w"] for c in chunks]), batch["w"])  # evaluation reads the same order
