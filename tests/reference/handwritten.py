"""Hand-written PyTorch versions of reference models, as a person would write them without gendsl.

Used by the numerical-equivalence tests (same weights and noise must give the same numbers) and
by bench/ (training-step time, generated vs hand-written).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class VAE(nn.Module):
    """784-H-H-L VAE with tanh layers, Gaussian q(z | x) (scale = exp), Bernoulli p(x | z)."""

    def __init__(self, x_dim=784, hidden=200, latent=50, depth=2, activation=nn.Tanh):
        super().__init__()
        def mlp(i, o):
            layers, width = [], i
            for _ in range(depth):
                layers += [nn.Linear(width, hidden), activation()]
                width = hidden
            return nn.Sequential(*layers), width
        self.enc, width = mlp(x_dim, hidden)
        self.loc = nn.Linear(width, latent)
        self.log_scale = nn.Linear(width, latent)
        self.dec, width = mlp(latent, hidden)
        self.out = nn.Linear(width, x_dim)

    def loss(self, x, eps, beta=1.0):
        """Negative ELBO per batch (mean over samples), with the reparameterization noise given."""
        h = self.enc(x)
        loc, log_scale = self.loc(h), self.log_scale(h)
        scale = torch.exp(log_scale)
        z = loc + scale * eps
        logits = self.out(self.dec(z))
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
        kl = 0.5 * (loc ** 2 + scale ** 2 - 1 - 2 * log_scale).sum(1)
        return (rec + beta * kl).mean()


class RingGAN(nn.Module):
    """MLP generator and discriminator of the ring-of-8 GAN, non-saturating loss."""

    def __init__(self, latent=64, width=256):
        super().__init__()
        self.G = nn.Sequential(nn.Linear(latent, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                               nn.Linear(width, 2))
        self.D = nn.Sequential(nn.Linear(2, width), nn.LeakyReLU(0.2), nn.Linear(width, width), nn.LeakyReLU(0.2),
                               nn.Linear(width, 1))

    def d_loss(self, x, z, gamma=0.0):
        real = self.D(x)
        fake = self.D(self.G(z).detach())
        loss = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
        if gamma:
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.D(x).sum(), x, create_graph=True)
            loss = loss + gamma / 2 * grad.pow(2).sum(1).mean()
        return loss

    def g_loss(self, z):
        fake = self.D(self.G(z))
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
