"""The PyTorch side of the gated.py plugin: copied, by name, into the files gendsl generates.

Only imports that every generated file has (math, torch, torch.nn as nn, torch.nn.functional
as F, torch.distributions as D), then classes and functions.
"""

import torch
import torch.nn as nn


class GatedLinear(nn.Module):
    """(x W + b) * sigmoid(x V + c) over the last dimension (Dauphin et al. 2017)."""

    def __init__(self, n, out):
        super().__init__()
        self.value = nn.Linear(n, out)
        self.gate = nn.Linear(n, out)

    def forward(self, x):
        return self.value(x) * torch.sigmoid(self.gate(x))


def snake(x, freq):
    return x + torch.sin(freq * x) ** 2 / freq


class Snake(nn.Module):
    def __init__(self, freq):
        super().__init__()
        self.freq = freq

    def forward(self, x):
        return snake(x, self.freq)
