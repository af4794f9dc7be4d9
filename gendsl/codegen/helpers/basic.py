"""Small modules, per-sample loss functions and learning-rate schedules of generated models.

See gendsl/codegen/helpers/__init__.py for how generated code uses these."""

from __future__ import annotations

import contextlib
import math

import torch
import torch.distributions as D
import torch.nn as nn
import torch.nn.functional as F


class Exp(nn.Module):
    def forward(self, x):
        return torch.exp(x)


class Abs(nn.Module):
    def forward(self, x):
        return torch.abs(x)


class Sqrt(nn.Module):
    def forward(self, x):
        return torch.sqrt(x)


class Sin(nn.Module):
    def forward(self, x):
        return torch.sin(x)


class Cos(nn.Module):
    def forward(self, x):
        return torch.cos(x)


class Reshape(nn.Module):
    """A new per-sample shape (batch dimension kept)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


def pack_samples(x, n):
    """PacGAN's packing (graph/passes/packing.py): [B, d, ...] -> [B/n, n*d, ...], row g the n
    consecutive samples g*n .. g*n+n-1 concatenated along their first axis; [B] -> [B/n, n]."""
    if x.shape[0] % n:
        raise ValueError(f"a network that packs {n} samples got a batch of {x.shape[0]}, not a multiple of {n}")
    if x.dim() == 1:
        return x.reshape(-1, n)
    return x.reshape(x.shape[0] // n, n * x.shape[1], *x.shape[2:])


def _per_sample_mean(x):
    # one reduction over the per-sample dimensions: a reshape first would add an op and its backward
    return x.mean(tuple(range(1, x.dim()))) if x.dim() > 1 else x


def _stretched(b, a):
    """b expanded to a's shape; b itself when it has that shape (no view, no backward node)."""
    return b if b.shape == a.shape else b.expand_as(a)


def bce(logits, target):
    """Binary cross-entropy with logits, averaged over each sample's values."""
    if not torch.is_tensor(target):
        target = torch.full_like(logits, float(target))
    return _per_sample_mean(F.binary_cross_entropy_with_logits(logits, _stretched(target, logits),
                                                                reduction="none"))


def mse(a, b):
    """Squared error averaged over each sample's values."""
    if not torch.is_tensor(b):
        b = torch.full_like(a, float(b))
    return _per_sample_mean(F.mse_loss(a, _stretched(b, a), reduction="none"))


def l1(a, b):
    """Absolute error averaged over each sample's values."""
    if not torch.is_tensor(b):
        b = torch.full_like(a, float(b))
    return _per_sample_mean(F.l1_loss(a, _stretched(b, a), reduction="none"))


def sinusoidal(t, dim):
    """Transformer-style embedding of integer time steps t (shape [B]) into [B, dim]."""
    angles = t.float()[:, None] * sinusoidal_frequencies(dim // 2, t.device)[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


def sinusoidal_frequencies(half, device, _tables={}):
    """The frequencies 10000^(-j / half), j < half, of `sinusoidal`: built once per size and device
    (rebuilding them cost an arange and an exp every call); traced as they are under torch.compile,
    which folds them into the graph. The cache is a default argument because generated modules copy
    helpers' functions and classes only, not module-level names."""
    if torch.compiler.is_compiling():
        return _frequency_table(half, device)
    if (half, device) not in _tables:
        with torch.inference_mode(False):  # a table first built while sampling must also serve training
            _tables[half, device] = _frequency_table(half, device)
    return _tables[half, device]


def _frequency_table(half, device):
    return torch.exp(-math.log(10000.0) * torch.arange(half, device=device, dtype=torch.float32) / half)


def input_gradient(critic, x):
    """d sum(critic(x)) / dx with its graph kept (penalties are trained through it); zeros where
    the critic does not depend on x. Attention inside runs its math kernel: the fused kernels have
    no double backward."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH):
        (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True, allow_unused=True)
    return torch.zeros_like(x) if grad is None else grad


def gradient_penalty(critic, real, fake):
    """WGAN-GP (Gulrajani et al. 2017): mean over the batch of (|grad critic| - 1)^2."""
    alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    grad = input_gradient(critic, mixed)
    return ((grad.reshape(grad.shape[0], -1).norm(dim=1) - 1) ** 2).mean()


def each_label(net, x, classes):
    """[net(x, 0), ..., net(x, K-1)] for each row of x: one batch of n * K rows."""
    n = x.shape[0]
    labels = torch.arange(classes, device=x.device).repeat(n)
    return net(x.repeat_interleave(classes, 0), labels).reshape(n, classes)


def nearest_logits(vectors, codebook):
    """Logits of a point mass at the codebook row nearest (L2) to each vector: 0 there, -inf
    elsewhere, so that D.Categorical draws the index and scores it log 1 = 0."""
    distances = (vectors.pow(2).sum(-1, keepdim=True) - 2 * vectors @ codebook.t()
                 + codebook.pow(2).sum(-1))
    index = distances.argmin(-1, keepdim=True)
    return torch.full_like(distances, float("-inf")).scatter(-1, index, 0.0)


def r1_penalty(critic, real):
    """R1 (Mescheder et al. 2018): mean over the batch of |grad critic(x)|^2 at real data."""
    grad = input_gradient(critic, real.detach().requires_grad_(True))
    return grad.reshape(grad.shape[0], -1).pow(2).sum(1).mean()


def soft_attention(query, keys, values):
    """softmax(q k^T / sqrt(C)) v, batched; query [B, C] or [B, Tq, C]."""
    squeeze = query.dim() == 2
    q = query[:, None] if squeeze else query
    out = F.scaled_dot_product_attention(q, keys, values)
    return out[:, 0] if squeeze else out


def hard_attention(query, keys, values):
    """The value of the best-matching key (argmax of q k^T); no gradient through the choice."""
    squeeze = query.dim() == 2
    q = query[:, None] if squeeze else query
    index = (q @ keys.transpose(1, 2)).argmax(-1)
    out = torch.gather(values, 1, index[..., None].expand(-1, -1, values.shape[-1]))
    return out[:, 0] if squeeze else out


def kl_divergence(q, p):
    """KL(q || p): analytic when torch knows the pair, else a one-sample reparameterized estimate."""
    try:
        return D.kl_divergence(q, p)
    except NotImplementedError:
        sample = q.rsample()
        return q.log_prob(sample) - p.log_prob(sample)


@contextlib.contextmanager
def frozen(*modules):
    """Parameters that a step does not update get no gradients computed (requires_grad off)."""
    params = [p for m in modules for p in (m.parameters() if isinstance(m, nn.Module) else [m])]
    states = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, state in zip(params, states):
            p.requires_grad_(state)


def _progress(r, total, warmup):
    """The share of the rounds after warmup that round r has done, in [0, 1]."""
    return min(1.0, (r - warmup) / max(1, total - warmup))


def constant_lr(total, warmup=0):
    """The base rate, after a linear warmup over `warmup` rounds."""
    return lambda r: (r + 1) / warmup if r < warmup else 1.0


def cosine_lr(total, warmup=0, min_factor=0.0):
    """Cosine decay from the base rate to min_factor x base over the rounds after warmup."""
    def factor(r):
        if r < warmup:
            return (r + 1) / warmup
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * _progress(r, total, warmup)))
    return factor


def linear_lr(total, warmup=0):
    """Linear decay from the base rate to zero over the rounds after warmup."""
    return lambda r: (r + 1) / warmup if r < warmup else max(0.0, 1.0 - _progress(r, total, warmup))


def step_lr(total, every, gamma=0.1):
    """The base rate multiplied by gamma every `every` rounds."""
    return lambda r: gamma ** (r // every)


def staged_lr(total, count=8, growth=3.0, final=0.1):
    """`count` constant stages: stage i spans growth**i / sum_j growth**j of the rounds, at
    final**(i / (count - 1)) x the base rate."""
    lengths = [growth ** i for i in range(count)]
    ends = [total * sum(lengths[:i + 1]) / sum(lengths) for i in range(count - 1)]   # of stages 0 .. count-2
    return lambda r: final ** (sum(r >= end for end in ends) / (count - 1))


def one_cycle_lr(total, rise=0.3, div=25.0, final_div=1e4):
    """The one-cycle policy (Smith & Topin 2019): a cosine rise from base/div to the base rate
    over the first `rise` share of the rounds, then a cosine fall to base/(div * final_div)."""
    peak = max(1, round(rise * total))

    def between(start, end, share):
        return end + (start - end) * 0.5 * (1 + math.cos(math.pi * min(1.0, share)))

    def factor(r):
        if r < peak:
            return between(1 / div, 1.0, r / peak)
        return between(1.0, 1 / (div * final_div), (r - peak) / max(1, total - peak))
    return factor
