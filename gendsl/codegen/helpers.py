"""Run-time helpers of generated models: real, tested PyTorch code.

The code generator copies the source of just the helpers a model uses into the generated file
(by name, with Python's ast module, following the names each helper uses), so a generated file
needs nothing but torch.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.distributions as D
import torch.nn as nn
import torch.nn.functional as F


# ---- small elementwise modules (stages without an nn counterpart) ----

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


# ---- losses and functions (per-sample values; the loss method averages over the batch) ----

def _per_sample_mean(x):
    return x.reshape(x.shape[0], -1).mean(1) if x.dim() > 1 else x


def bce(logits, target):
    """Binary cross-entropy with logits, averaged over each sample's values."""
    if not torch.is_tensor(target):
        target = torch.full_like(logits, float(target))
    return _per_sample_mean(F.binary_cross_entropy_with_logits(logits, target.expand_as(logits),
                                                                reduction="none"))


def mse(a, b):
    """Squared error averaged over each sample's values."""
    if not torch.is_tensor(b):
        b = torch.full_like(a, float(b))
    return _per_sample_mean(F.mse_loss(a, b.expand_as(a), reduction="none"))


def l1(a, b):
    """Absolute error averaged over each sample's values."""
    if not torch.is_tensor(b):
        b = torch.full_like(a, float(b))
    return _per_sample_mean(F.l1_loss(a, b.expand_as(a), reduction="none"))


def sinusoidal(t, dim):
    """Transformer-style embedding of integer time steps t (shape [B]) into [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


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


# ---- learning-rate schedules: round -> factor of the base rate (for torch's LambdaLR) ----

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


# ---- layers with masks (MADE, PixelCNN) and attention ----

class MaskedLinear(nn.Linear):
    """MADE layer: connections allowed by a mask that MadeDegrees sets (Germain et al. 2015)."""

    def __init__(self, n_in, n_out):
        super().__init__(n_in, n_out)
        self.register_buffer("mask", torch.ones(n_out, n_in))

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


class MadeDegrees:
    """MADE's degrees (Germain et al. 2015) over `positions` ordered values: a unit of degree d
    depends only on the values at positions 0 .. d-1. A masked layer connects an output unit to
    the input units whose degree is at most the output's, so its mask follows the degrees of the
    value it is actually given (a stack, a sum, a concatenation, ...)."""

    def __init__(self, positions, seed=0):
        self.positions = positions
        self.generator = torch.Generator().manual_seed(seed)

    def data(self):
        """The data itself: the value at position i sees position i."""
        return torch.arange(1, self.positions + 1)

    def earlier(self, n=None):
        """n units (one per position by default), unit k seeing only positions before k mod positions."""
        return torch.arange(self.positions if n is None else n) % self.positions

    def constant(self, n, degree=0):
        """n units of one degree: 0 for units that depend on no data, `positions` for any data."""
        return torch.full((n,), degree, dtype=torch.long)

    def hidden(self, layer, d_in):
        """Random hidden degrees in [min d_in, positions - 1] (none sees the last position); sets the mask."""
        low = min(int(d_in.min()), self.positions - 1)
        d_out = torch.randint(low, max(self.positions, 2), (layer.out_features,), generator=self.generator)
        layer.mask.copy_((d_in[None, :] <= d_out[:, None]).float())
        return d_out

    def output(self, layer, d_in):
        """Output unit k predicts position k (mod positions) and sees only units of lower degree."""
        d_out = torch.arange(layer.out_features) % self.positions
        layer.mask.copy_((d_in[None, :] <= d_out[:, None]).float())
        return d_out


def made_masks(layers, n_in, seed=0):
    """Natural-order MADE masks for a stack of MaskedLinear layers (the last one is the output)."""
    layers = [m for m in layers if isinstance(m, MaskedLinear)]
    made = MadeDegrees(n_in, seed)
    degrees = made.data()
    for layer in layers[:-1]:
        degrees = made.hidden(layer, degrees)
    made.output(layers[-1], degrees)


class MaskedConv2d(nn.Conv2d):
    """PixelCNN convolution (van den Oord et al. 2016): mask A hides the centre pixel, B keeps it."""

    def __init__(self, c_in, c_out, kernel, mask="B"):
        super().__init__(c_in, c_out, kernel, padding=kernel // 2)
        m = torch.ones_like(self.weight)
        centre = kernel // 2
        m[:, :, centre, centre + (mask == "B"):] = 0
        m[:, :, centre + 1:] = 0
        self.register_buffer("mask", m)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a residual connection over the positions of [B, T, C] or
    [B, C, H, W] (pixels as tokens, in raster order). causal=True: position t attends to positions
    up to t. causal="strict": position t sees only positions before t; it works on the tokens
    shifted by one position (t gets the token of t - 1, the first a zero token), since a query made
    from position t itself would let t see its own value through the attention weights."""

    def __init__(self, channels, heads=4, image=False, causal=False):
        super().__init__()
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.image, self.causal = image, causal

    def forward(self, x):
        tokens = x.flatten(2).transpose(1, 2) if self.image else x
        if self.causal == "strict":
            tokens = F.pad(tokens, (0, 0, 1, 0))[:, :-1]
        mask = None
        if self.causal:
            t = tokens.shape[1]
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        out, _ = self.attn(tokens, tokens, tokens, attn_mask=mask, need_weights=False)
        out = tokens + out
        return out.transpose(1, 2).reshape(x.shape) if self.image else out


# ---- invertible layers (RealNVP / Glow): forward gives (y, log|det dy/dx|) ----

class Coupling(nn.Module):
    """What every coupling shares: the kept dimensions (mask 1) pass unchanged and set, through an
    MLP whose last layer starts at zero (so the layer starts as the identity), `per_dim` numbers
    for each dimension."""

    def __init__(self, dim, hidden, per_dim, mask):
        super().__init__()
        widths = [dim, *hidden]
        layers = []
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], per_dim * dim))
        self.net = nn.Sequential(*layers)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        self.per_dim, self.mask_kind = per_dim, mask
        self.register_buffer("mask", torch.zeros(dim))
        self.set_parity(0 if mask in ("alternate", "even") else 1)

    def set_parity(self, parity):
        """Which dimensions are kept: even ones for parity 0, odd ones for parity 1."""
        self.mask.copy_((torch.arange(self.mask.numel()) % 2 == parity).float())

    def conditioner(self, x):
        """[batch, per_dim, dim]: the numbers that transform each dimension, from the kept ones."""
        return self.net(x * self.mask).unflatten(-1, (self.per_dim, -1))


class AffineCoupling(Coupling):
    """RealNVP coupling (Dinh et al. 2017): the masked half sets a scale and shift of the rest."""

    def __init__(self, dim, hidden, mask="alternate"):
        super().__init__(dim, hidden, 2, mask)

    def _scale_shift(self, x):
        s, t = self.conditioner(x).unbind(1)
        s = torch.tanh(s) * (1 - self.mask)
        return s, t * (1 - self.mask)

    def forward(self, x):
        s, t = self._scale_shift(x)
        return x * torch.exp(s) + t, s.sum(-1)

    def inverse(self, y):
        s, t = self._scale_shift(y)
        return (y - t) * torch.exp(-s)


class SplineCoupling(Coupling):
    """Rational-quadratic spline coupling (Durkan et al. 2019): each transformed dimension goes
    through a monotone spline of `bins` pieces on [-bound, bound] set by the kept half, and is
    left as it is outside. The spline maps [-bound, bound] onto itself, so unlike an affine shift
    no value of the kept half can throw a point far out."""

    MIN_BIN, MIN_SLOPE = 1e-3, 1e-3

    def __init__(self, dim, hidden, bins=8, bound=4.0, mask="alternate"):
        super().__init__(dim, hidden, 3 * bins - 1, mask)
        self.bins, self.bound = bins, bound
        # the raw slope that softplus maps to 1, so a zero conditioner gives the identity
        self.slope_offset = math.log(math.expm1(1 - self.MIN_SLOPE))

    def _knots(self, x):
        """Knot positions, knot values and slopes at the knots, each [batch, dim, bins + 1]."""
        raw = self.conditioner(x).transpose(1, 2)
        widths, heights, slopes = raw.split([self.bins, self.bins, self.bins - 1], dim=-1)
        slopes = self.MIN_SLOPE + F.softplus(slopes + self.slope_offset)
        slopes = F.pad(slopes, (1, 1), value=1.0)  # slope 1 at both ends: the identity continues outside
        return self._edges(widths), self._edges(heights), slopes

    def _edges(self, raw):
        """Bin sizes (softmax, none below MIN_BIN) -> bins + 1 edges from -bound to bound."""
        sizes = self.MIN_BIN + (1 - self.MIN_BIN * self.bins) * torch.softmax(raw, dim=-1)
        inner = torch.cumsum(sizes, dim=-1)[..., :-1]
        ends = torch.ones_like(inner[..., :1])
        return self.bound * torch.cat([-ends, 2 * inner - 1, ends], dim=-1)

    def _transform(self, v, inverse):
        xs, ys, slopes = self._knots(v)
        inside = (v.abs() < self.bound) & (self.mask == 0)
        out, logdet = rational_quadratic(v.clamp(-self.bound, self.bound), xs, ys, slopes, inverse)
        return torch.where(inside, out, v), torch.where(inside, logdet, 0.0).sum(-1)

    def forward(self, x):
        return self._transform(x, inverse=False)

    def inverse(self, y):
        return self._transform(y, inverse=True)[0]


def rational_quadratic(v, xs, ys, slopes, inverse=False):
    """The monotone rational-quadratic spline through knots (xs, ys) with the given slopes (Gregory
    & Delbourgo 1982), or its inverse, at v in [xs[0], xs[-1]]: (image, log|d forward / dx|) with
    the log-derivative negated for the inverse, so both are the log-determinant of the map applied."""
    knots = ys if inverse else xs
    index = (torch.searchsorted(knots, v[..., None].contiguous()) - 1).clamp(0, knots.shape[-1] - 2)

    def at(t, shift=0):
        return t.gather(-1, index + shift)[..., 0]

    x0, y0, d0, d1 = at(xs), at(ys), at(slopes), at(slopes, 1)
    width, height = at(xs, 1) - x0, at(ys, 1) - y0
    slope = height / width
    bend = d0 + d1 - 2 * slope
    if inverse:
        rise = v - y0
        a = height * (slope - d0) + rise * bend
        b = height * d0 - rise * bend
        c = -slope * rise
        t = 2 * c / (-b - torch.sqrt((b * b - 4 * a * c).clamp_min(0)))
    else:
        t = (v - x0) / width
    mix = t * (1 - t)
    denominator = slope + bend * mix
    log_derivative = (2 * torch.log(slope) + torch.log(d1 * t * t + 2 * slope * mix + d0 * (1 - t) ** 2)
                      - 2 * torch.log(denominator))
    if inverse:
        return x0 + t * width, -log_derivative
    return y0 + height * (slope * t * t + d0 * mix) / denominator, log_derivative


class ActNorm(nn.Module):
    """Glow's activation normalization: per-dimension scale and shift, set from the first batch."""

    def __init__(self, dim):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.shift = nn.Parameter(torch.zeros(dim))
        self.register_buffer("initialized", torch.tensor(False))

    def forward(self, x):
        if not bool(self.initialized) and self.training:
            with torch.no_grad():
                self.shift.copy_(-x.mean(0))
                # a dimension constant in the first batch (a blank pixel) must not get a huge scale
                self.log_scale.copy_(-torch.log(x.std(0).clamp_min(1e-2)))
                self.initialized.fill_(True)
        return (x + self.shift) * torch.exp(self.log_scale), self.log_scale.sum().expand(x.shape[0])

    def inverse(self, y):
        return y * torch.exp(-self.log_scale) - self.shift


class InvertibleLinear(nn.Module):
    """Glow's invertible 1x1 convolution, on vectors (Kingma & Dhariwal 2018): y = W x with
    W = P L (U + diag(sign * exp(log_s))), so log|det W| = sum(log_s); starts as a random rotation."""

    def __init__(self, dim):
        super().__init__()
        permutation, lower, upper = torch.linalg.lu(torch.linalg.qr(torch.randn(dim, dim))[0])
        diagonal = torch.diagonal(upper)
        self.register_buffer("permutation", permutation)
        self.register_buffer("sign", torch.sign(diagonal))
        self.register_buffer("below", torch.tril(torch.ones(dim, dim), -1))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(diagonal.abs().log())

    def weight(self):
        eye = torch.eye(self.sign.numel(), device=self.sign.device)
        lower = self.lower * self.below + eye
        upper = self.upper * self.below.T + torch.diag(self.sign * torch.exp(self.log_s))
        return self.permutation @ lower @ upper

    def forward(self, x):
        return x @ self.weight().T, self.log_s.sum().expand(x.shape[0])

    def inverse(self, y):
        return torch.linalg.solve(self.weight(), y.T).T


class Reverse(nn.Module):
    """Reverses the order of the dimensions (volume preserving)."""

    def forward(self, x):
        return x.flip(-1), x.new_zeros(x.shape[0])

    def inverse(self, y):
        return y.flip(-1)


class FlowSequence(nn.Module):
    """Invertible layers in order; `alternate` couplings take parities 0, 1, 0, ..."""

    def __init__(self, *layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        parity = 0
        for layer in self.layers:
            if isinstance(layer, Coupling) and layer.mask_kind == "alternate":
                layer.set_parity(parity)
                parity = 1 - parity

    def forward(self, x):
        logdet = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z):
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z


# ---- samplers and noise processes ----

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
