"""Recurrent layers and the one-position shift: the layers of sequence models (RNN, GRU, LSTM).

See gendsl/codegen/helpers/__init__.py for how generated code uses these."""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F


class Recurrent(nn.Module):
    """A batch-first nn.RNN, nn.GRU or nn.LSTM over [..., T, C]: the outputs of its last layer at
    every position, [..., T, hidden] (the final states are dropped). Leading batch dims are
    flattened into one, as torch's recurrent layers take a single batch dim; the state starts at
    zero for every sequence."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        out, _ = self.rnn(x.reshape(-1, *x.shape[-2:]))
        return out.reshape(*x.shape[:-2], *out.shape[-2:])


class Shift(nn.Module):
    """Moves each position one later, a zero position first and the last one dropped: the rows of a
    sequence [..., T, C], the features of a vector [..., D], the pixels of an image [..., C, H, W]
    in raster order. Position t then holds position t - 1: what a layer that also reads position t
    needs to predict it from earlier positions only (teacher forcing)."""

    def __init__(self, rank):
        super().__init__()
        self.rank = rank

    def forward(self, x):
        if self.rank == 1:
            return F.pad(x, (1, 0))[..., :-1]
        if self.rank == 2:
            return F.pad(x, (0, 0, 1, 0))[..., :-1, :]
        pixels = x.flatten(-2)
        return F.pad(pixels, (1, 0))[..., :-1].reshape(x.shape)
