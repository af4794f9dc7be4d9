"""Samplers: Langevin dynamics on an energy (diffusion processes are in diffusion.py).

See gendsl/codegen/helpers/__init__.py for how generated code uses these."""

from __future__ import annotations

import torch
import torch.nn as nn


class Langevin(nn.Module):
    """Langevin dynamics on an energy with a replay buffer (Du & Mordatch 2019): each chain starts
    from the buffer, or from uniform noise with probability `reinit`. Given a value y per row
    (`given`), the chains follow E(x, y); given a label of `classes` categories, each label keeps a
    buffer of its own, so that a chain starts from an earlier sample of its label."""

    def __init__(self, shape, steps, step_size, noise, buffer, reinit, low, high, classes=0):
        super().__init__()
        self.shape, self.steps, self.step_size, self.noise = tuple(shape), steps, step_size, noise
        self.reinit, self.low, self.high = reinit, low, high
        rows = buffer // classes * classes if classes else buffer
        self.register_buffer("memory", low + (high - low) * torch.rand(rows, *self.shape))
        self.classes = classes

    def fresh(self, n, device):
        return self.low + (self.high - self.low) * torch.rand(n, *self.shape, device=device)

    def run(self, energy, x, given=None):
        """`steps` Langevin updates of x (no gradient leaves this function)."""
        x = x.detach()
        with torch.enable_grad():
            for _ in range(self.steps):
                x.requires_grad_(True)
                e = energy(x) if given is None else energy(x, given)
                (grad,) = torch.autograd.grad(e.sum(), x)
                x = (x - self.step_size * grad + self.noise * torch.randn_like(x)).detach()
        return x

    def slots(self, n, given, device):
        """Buffer rows to start from: any row, or one of the rows of each label's share."""
        if not self.classes or given is None:
            return torch.randint(len(self.memory), (n,), device=device)
        share = len(self.memory) // self.classes
        return given * share + torch.randint(share, (n,), device=device)

    def forward(self, energy, n, given=None):
        device = self.memory.device
        if len(self.memory) == 0:
            return self.run(energy, self.fresh(n, device), given)
        index = self.slots(n, given, device)
        start = self.memory[index]
        renew = torch.rand(n, device=device) < self.reinit
        start = torch.where(renew.view(-1, *([1] * len(self.shape))), self.fresh(n, device), start)
        samples = self.run(energy, start, given)
        self.memory[index] = samples
        return samples
