"""Mask set-up of autoregressive networks: the `__init__` lines that fix which inputs each
masked layer may see (MADE's degrees), so that output i depends only on inputs before i."""

from __future__ import annotations

from gendsl.graph import ir


def mask_lines(program: ir.Program, sequences: list[tuple[str, ir.Layers]], helpers: set[str]) -> list[str]:
    """`__init__` lines (without indentation) that set the masks of a network's masked layers;
    adds the helpers they call to `helpers`."""
    if not any("MaskedLinear" in use.helpers for _, layers in sequences for use in layers.layers):
        return []
    helpers.add("made_masks")
    n_in = program.inputs[0][1].numel
    return [f"made_masks(list(self.modules()), {n_in})  # MADE: output i sees inputs < i"]
