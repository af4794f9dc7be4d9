"""Samplers and noise processes: Langevin dynamics and Gaussian diffusion.

See gendsl/codegen/helpers/__init__.py for how generated code uses these."""

from __future__ import annotations

import math

import torch
import torch.distributions as D
import torch.nn as nn

from gendsl.codegen.helpers.basic import mse


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


class GaussianDiffusion(nn.Module):
    """DDPM (Ho et al. 2020): forward noising q(x_t | x_0), the simple loss, ancestral sampling
    and the variational bound in nats."""

    def __init__(self, steps, betas, levels=0):
        super().__init__()
        self.levels = levels  # > 1: data quantized to `levels` values in [0, 1] (discretized decoder)
        alphas = 1 - betas
        bar = torch.cumprod(alphas, 0)
        bar_prev = torch.cat([torch.ones(1, dtype=betas.dtype), bar[:-1]])
        self.steps = steps
        for name, value in dict(betas=betas, alphas=alphas, bar=bar, bar_prev=bar_prev,
                                post_var=betas * (1 - bar_prev) / (1 - bar)).items():
            self.register_buffer(name, value.float())

    @staticmethod
    def linear(steps, start, end):
        return torch.linspace(start, end, steps, dtype=torch.float64)

    @staticmethod
    def cosine(steps, s):
        t = torch.linspace(0, steps, steps + 1, dtype=torch.float64) / steps
        f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999)

    def _at(self, values, t, x):
        return values[t].view(-1, *([1] * (x.dim() - 1)))

    def noisy(self, x0, t, noise):
        return self._at(self.bar, t, x0).sqrt() * x0 + (1 - self._at(self.bar, t, x0)).sqrt() * noise

    def loss(self, eps, x0):
        """Per-sample mean squared error of the predicted noise at a uniform random step."""
        t = torch.randint(0, self.steps, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        return mse(eps(self.noisy(x0, t, noise), t), noise)

    def _mean(self, eps, x, t):
        pred = eps(x, t)
        return (x - self._at(self.betas, t, x) / (1 - self._at(self.bar, t, x)).sqrt() * pred) \
            / self._at(self.alphas, t, x).sqrt()

    @torch.no_grad()
    def reverse(self, eps, n, shape, device):
        """Ancestral sampling, all n chains at once."""
        x = torch.randn(n, *shape, device=device)
        for step in reversed(range(self.steps)):
            t = torch.full((n,), step, device=device, dtype=torch.long)
            mean = self._mean(eps, x, t)
            x = mean + (self._at(self.post_var, t, x).sqrt() * torch.randn_like(x) if step > 0 else 0)
        return x

    @torch.no_grad()
    def bound(self, eps, x0):
        """Negative variational bound per sample (nats): sum of KL terms, with a Gaussian
        decoder of variance beta_1 at t = 0 and the prior term at T."""
        total = torch.zeros(x0.shape[0], device=x0.device)
        dims = tuple(range(1, x0.dim()))
        for step in range(self.steps):
            t = torch.full((x0.shape[0],), step, device=x0.device, dtype=torch.long)
            xt = self.noisy(x0, t, torch.randn_like(x0))
            mean = self._mean(eps, xt, t)
            if step == 0:
                total += self._decoder_nll(x0, mean, self._at(self.betas, t, x0)).sum(dims)
            else:
                true_mean = (self._at(self.bar_prev, t, x0).sqrt() * self._at(self.betas, t, x0) * x0
                             + self._at(self.alphas, t, x0).sqrt() * (1 - self._at(self.bar_prev, t, x0)) * xt) \
                    / (1 - self._at(self.bar, t, x0))
                total += (0.5 * (true_mean - mean) ** 2 / self._at(self.post_var, t, x0)).sum(dims)
        bar_T = self.bar[-1]
        prior = 0.5 * (bar_T * x0 ** 2 + (1 - bar_T) - 1 - torch.log(1 - bar_T))
        return total + prior.sum(dims)

    def _decoder_nll(self, x0, mean, var):
        """-log p(x0 | x1): a Gaussian density, or for quantized data the probability of x0's bin
        (Ho et al. 2020, eq. 13; the outer bins reach to infinity)."""
        if self.levels < 2:
            return 0.5 * ((x0 - mean) ** 2 / var + torch.log(2 * math.pi * var))
        normal = D.Normal(mean, var.sqrt())
        half = 0.5 / (self.levels - 1)
        upper = torch.where(x0 >= 1 - half, torch.ones_like(x0), normal.cdf(x0 + half))
        lower = torch.where(x0 <= half, torch.zeros_like(x0), normal.cdf(x0 - half))
        return -torch.log((upper - lower).clamp_min(1e-12))
