"""Layers with masks (MADE, PixelCNN) and attention: the layers of autoregressive blocks.

See gendsl/codegen/helpers/__init__.py for how generated code uses these."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


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
