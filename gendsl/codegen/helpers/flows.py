"""Invertible layers (RealNVP, Glow, spline flows): forward gives (y, log|det dy/dx|).

See gendsl/codegen/helpers/__init__.py for how generated code uses these."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


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

    def read_context(self, width):
        """A conditional flow's coupling: the first layer also reads `width` context features."""
        first = self.net[0]
        self.net[0] = nn.Linear(first.in_features + width, first.out_features)

    def conditioner(self, x, context=None):
        """[batch, per_dim, dim]: the numbers that transform each dimension, from the kept ones
        (and the context, in a conditional flow)."""
        h = x * self.mask if context is None else torch.cat([x * self.mask, context], -1)
        return self.net(h).unflatten(-1, (self.per_dim, -1))


class AffineCoupling(Coupling):
    """RealNVP coupling (Dinh et al. 2017): the masked half sets a scale and shift of the rest."""

    def __init__(self, dim, hidden, mask="alternate"):
        super().__init__(dim, hidden, 2, mask)

    def _scale_shift(self, x, context):
        s, t = self.conditioner(x, context).unbind(1)
        s = torch.tanh(s) * (1 - self.mask)
        return s, t * (1 - self.mask)

    def forward(self, x, context=None):
        s, t = self._scale_shift(x, context)
        return x * torch.exp(s) + t, s.sum(-1)

    def inverse(self, y, context=None):
        s, t = self._scale_shift(y, context)
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

    def _knots(self, x, context):
        """Knot positions, knot values and slopes at the knots, each [batch, dim, bins + 1]."""
        raw = self.conditioner(x, context).transpose(1, 2)
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

    def _transform(self, v, context, inverse):
        xs, ys, slopes = self._knots(v, context)
        inside = (v.abs() < self.bound) & (self.mask == 0)
        out, logdet = rational_quadratic(v.clamp(-self.bound, self.bound), xs, ys, slopes, inverse)
        return torch.where(inside, out, v), torch.where(inside, logdet, 0.0).sum(-1)

    def forward(self, x, context=None):
        return self._transform(x, context, inverse=False)

    def inverse(self, y, context=None):
        return self._transform(y, context, inverse=True)[0]


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
    """Glow's activation normalization: per-dimension scale and shift, set from the first batch.

    Whether that happened is the buffer `initialized` (saved with the weights) and a Python flag
    that forward reads: reading the buffer there would be a host sync per layer and call, and a
    graph break under torch.compile. Loading a state dict sets the flag from the buffer; until the
    flag is set, the first batch sets only layers whose buffer is still false (an EMA's copy of a
    layer gets its buffer, not its flag), chosen on the device."""

    def __init__(self, dim):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.shift = nn.Parameter(torch.zeros(dim))
        self.register_buffer("initialized", torch.tensor(False))
        self.is_initialized = False
        self.register_load_state_dict_post_hook(ActNorm._read_initialized)

    @staticmethod
    def _read_initialized(module, incompatible_keys):
        module.is_initialized = bool(module.initialized)

    def forward(self, x):
        if not self.is_initialized and self.training:
            with torch.no_grad():
                fresh = ~self.initialized
                self.shift.copy_(torch.where(fresh, -x.mean(0), self.shift))
                # a dimension constant in the first batch (a blank pixel) must not get a huge scale
                self.log_scale.copy_(torch.where(fresh, -torch.log(x.std(0).clamp_min(1e-2)), self.log_scale))
                self.initialized.fill_(True)
            self.is_initialized = True
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
    """Invertible layers in order; `alternate` couplings take parities 0, 1, 0, ... In a
    conditional flow (`context` features) every coupling's conditioner also reads the context;
    the other layers do not depend on it."""

    def __init__(self, *layers, context=0):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        parity = 0
        for layer in self.layers:
            if isinstance(layer, Coupling) and context:
                layer.read_context(context)
            if isinstance(layer, Coupling) and layer.mask_kind == "alternate":
                layer.set_parity(parity)
                parity = 1 - parity

    def _call(self, layer, x, context, method):
        if isinstance(layer, Coupling) and context is not None:
            return getattr(layer, method)(x, context)
        return getattr(layer, method)(x)

    def forward(self, x, context=None):
        logdet = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = self._call(layer, x, context, "forward")
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z, context=None):
        for layer in reversed(self.layers):
            z = self._call(layer, z, context, "inverse")
        return z
