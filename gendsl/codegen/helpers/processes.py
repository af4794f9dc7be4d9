"""Samplers: Langevin dynamics on an energy (diffusion processes are in diffusion.py).

See gendsl/codegen/helpers/__init__.py for how generated code uses these."""

from __future__ import annotations

import torch
import torch.nn as nn


class Langevin(nn.Module):
    """Langevin dynamics on an energy with a replay buffer (Du & Mordatch 2019): each chain starts
    from the buffer, or from uniform noise with probability `reinit`."""

    def __init__(self, shape, steps, step_size, noise, buffer, reinit, low, high):
        super().__init__()
        self.shape, self.steps, self.step_size, self.noise = tuple(shape), steps, step_size, noise
        self.reinit, self.low, self.high = reinit, low, high
        self.register_buffer("memory", low + (high - low) * torch.rand(buffer, *self.shape))

    def fresh(self, n, device):
        return self.low + (self.high - self.low) * torch.rand(n, *self.shape, device=device)

    def run(self, energy, x):
        """`steps` Langevin updates of x (no gradient leaves this function)."""
        x = x.detach()
        with torch.enable_grad():
            for _ in range(self.steps):
                x.requires_grad_(True)
                (grad,) = torch.autograd.grad(energy(x).sum(), x)
                x = (x - self.step_size * grad + self.noise * torch.randn_like(x)).detach()
        return x

    def forward(self, energy, n):
        device = self.memory.device
        if len(self.memory) == 0:
            return self.run(energy, self.fresh(n, device))
        index = torch.randint(len(self.memory), (n,), device=device)
        start = self.memory[index]
        renew = torch.rand(n, device=device) < self.reinit
        start = torch.where(renew.view(-1, *([1] * len(self.shape))), self.fresh(n, device), start)
        samples = self.run(energy, start)
        self.memory[index] = samples
        return samples
