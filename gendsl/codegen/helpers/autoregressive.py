"""Layers with masks (MADE, PixelCNN, Gated PixelCNN) and attention: the layers of autoregressive blocks.

See gendsl/codegen/helpers/__init__.py for how generated code uses these."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class MaskedLinear(nn.Linear):
    """MADE layer: connections allowed by a mask that MadeDegrees sets (Germain et al. 2015). With
    `masks` K > 1 it holds the masks of a K-component ensemble, [K, out, in], and uses the mask of
    its `component` (set by mask_component)."""

    def __init__(self, n_in, n_out, masks=1):
        super().__init__(n_in, n_out)
        self.register_buffer("mask", torch.ones(n_out, n_in) if masks == 1 else torch.ones(masks, n_out, n_in))
        self.component = 0
        self.degrees = None  # (input [K, in], output [K, out]) degrees, set with the mask; what MadeSteps reads
        self.steps = None  # a MadeSteps while sampling

    def forward(self, x):
        if self.steps is not None:
            return self.steps.update(self, x)
        mask = self.mask if self.mask.dim() == 2 else self.mask[self.component]
        return F.linear(x, self.weight * mask, self.bias)


class MadeDegrees:
    """MADE's degrees (Germain et al. 2015) over `positions` ordered values: a unit of degree d
    depends only on the values at positions of rank 0 .. d-1 in the order. A masked layer connects an
    output unit to the input units whose degree is at most the output's, so its mask follows the
    degrees of the value it is actually given (a stack, a sum, a concatenation, ...).

    An ensemble of `masks` components (order- and connectivity-agnostic MADE) sets K masks at once:
    degrees are [K, units], component k having its own order `ranks[k]` (position i comes
    ranks[k, i]-th; the natural order, or a random permutation each) and its own hidden degrees."""

    def __init__(self, positions, seed=0, masks=1, order="natural"):
        self.positions = positions
        self.generator = torch.Generator().manual_seed(seed)
        natural = torch.arange(positions)
        self.ranks = torch.stack([natural if order == "natural" else torch.randperm(positions, generator=self.generator)
                                  for _ in range(masks)])

    def data(self):
        """The data itself: the value at position i sees position i (the positions of rank up to its own)."""
        return self.ranks + 1

    def earlier(self, n=None):
        """n units (one per position by default), unit j seeing only positions before position j mod positions."""
        return self.ranks[:, torch.arange(self.positions if n is None else n) % self.positions]

    def constant(self, n, degree=0):
        """n units of one degree: 0 for units that depend on no data, `positions` for any data."""
        return torch.full((len(self.ranks), n), degree, dtype=torch.long)

    def hidden(self, layer, d_in):
        """Random hidden degrees in [min d_in, positions - 1] (none sees the last position); sets the mask."""
        d_out = []
        for k in range(len(self.ranks)):
            low = min(int(d_in[k].min()), self.positions - 1)
            d_out.append(torch.randint(low, max(self.positions, 2), (layer.out_features,), generator=self.generator))
        return self.connect(layer, d_in, torch.stack(d_out))

    def output(self, layer, d_in, per=1):
        """Output unit j predicts position j (mod positions), or with `per` C, position j // C (the C
        values of each position together); it sees only units of lower degree."""
        d_out = self.earlier(layer.out_features) if per == 1 else self.earlier().repeat_interleave(per, -1)
        return self.connect(layer, d_in, d_out)

    def connect(self, layer, d_in, d_out):
        """Sets the mask(s) of a layer: unit of degree d_out sees inputs of degree up to d_out."""
        layer.mask.copy_((d_in[:, None, :] <= d_out[:, :, None]).float().view_as(layer.mask))
        layer.degrees = (d_in, d_out)
        return d_out


class MadeSteps:
    """Sampling a MADE one position at a time, with each unit of its masked layers computed once.

    A unit of degree d depends only on the positions of rank below d, so its value is final from the
    step that draws the position of rank d on, and it is computed at that step: `with MadeSteps(block,
    k) as steps`, set `steps.rank = r` before each call of the block, for r = 0, 1, ... in turn. Each
    MaskedLinear with degrees then keeps its output between calls and updates only its units of degree
    r; every other operation of the block runs as usual on those outputs. Units of a higher degree hold
    stale values, which only units of a higher degree read. All steps together cost about one pass of
    the block's masked layers, against one pass per position."""

    def __init__(self, module, component=0):
        self.rank = 0
        layers = [m for m in module.modules() if isinstance(m, MaskedLinear) and m.degrees is not None]
        # the degrees must be what the masks (as loaded) say, or the block runs whole at every step
        consistent = all(self.follows_degrees(layer, component) for layer in layers)
        self.plans = {layer: self.plan(layer, component) for layer in layers} if consistent else {}
        self.outputs = {}

    @staticmethod
    def follows_degrees(layer, k):
        d_in, d_out = (d[k].to(layer.mask.device) for d in layer.degrees)
        mask = layer.mask if layer.mask.dim() == 2 else layer.mask[k]
        return torch.equal(mask, (d_in[None, :] <= d_out[:, None]).to(mask.dtype))

    @staticmethod
    def plan(layer, k):
        """The layer's units sorted by degree, with their masked weights, and where each degree starts."""
        mask = layer.mask if layer.mask.dim() == 2 else layer.mask[k]
        degrees = layer.degrees[1][k].to(layer.weight.device)
        units = degrees.argsort(stable=True)
        starts = torch.bincount(degrees, minlength=int(degrees.max()) + 2).cumsum(0).tolist()
        return units, (layer.weight * mask)[units], layer.bias[units], [0, *starts]

    def update(self, layer, x):
        units, weight, bias, starts = self.plans[layer]
        out = self.outputs.get(layer)
        if out is None or out.shape[:-1] != x.shape[:-1]:
            out = self.outputs[layer] = x.new_zeros(*x.shape[:-1], layer.out_features)
        rank = min(self.rank, len(starts) - 2)  # past the highest degree: nothing left to compute
        first, last = starts[rank], starts[rank + 1]
        if last > first:
            out[..., units[first:last]] = F.linear(x, weight[first:last], bias[first:last])
        return out.clone()  # the caller's operations must not write into the kept output

    def __enter__(self):
        for layer in self.plans:
            layer.steps = self
        return self

    def __exit__(self, *exc):
        for layer in self.plans:
            layer.steps = None


def mask_component(module, k=None):
    """Makes component k of a MADE ensemble active in every MaskedLinear of `module`: the one a caller
    holds (`module.held_component`, for exact evaluation and sampling), else k, else one drawn
    uniformly (training: one component per evaluation of the block)."""
    held = getattr(module, "held_component", None)
    k = held if held is not None else int(torch.randint(len(module.ranks), ())) if k is None else k
    for layer in module.modules():
        if isinstance(layer, MaskedLinear):
            layer.component = k
    return k


def ensemble_log_prob(module, log_prob):
    """log p(x) = log (1/K) sum_k p_k(x) of a K-component MADE ensemble, exact: `log_prob()` is called
    with each component held in turn."""
    try:
        logs = []
        for k in range(len(module.ranks)):
            module.held_component = k
            logs.append(log_prob())
    finally:
        module.held_component = None
    return torch.logsumexp(torch.stack(logs), 0) - math.log(len(logs))


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


class GatedMaskedConv2d(nn.Module):
    """Gated PixelCNN layer (van den Oord et al. 2016, "Conditional image generation with PixelCNN
    decoders"): a vertical and a horizontal stack, side by side along the channels ([B, 2*out, H, W],
    vertical first), which together see every earlier pixel (no blind spot).

    The vertical stack at (i, j) sees only rows above i; the horizontal one pixels left of (i, j) in
    row i and, through a 1x1 link, the vertical stack at (i, j). Mask A starts both stacks from any
    image: its vertical convolution reads the rows above i, its horizontal one the pixels left of j.
    Mask B continues them: the vertical convolution reads rows up to i of the vertical stack (which
    sees only rows above), the horizontal one row i up to j of the horizontal stack; the horizontal
    stack adds its input back (residual). Each stack's activation is tanh(a) * sigmoid(b) of the two
    halves of its convolution. last=True returns the horizontal stack alone."""

    def __init__(self, c_in, out, kernel, mask="B", last=False):
        super().__init__()
        self.out, self.kernel, self.mask, self.last = out, kernel, mask, last
        reads = c_in if mask == "A" else out
        half = kernel // 2
        self.vertical = nn.Conv2d(reads, 2 * out, (half + 1, kernel))
        self.horizontal = nn.Conv2d(reads, 2 * out, (1, half + 1))
        self.link = nn.Conv2d(2 * out, 2 * out, 1)
        self.project = nn.Conv2d(out, out, 1)

    def forward(self, x):
        half, strict = self.kernel // 2, self.mask == "A"
        v, h = (x, x) if strict else x.split(self.out, dim=1)
        # padding above and to the left puts output (i, j) over rows i - half .. i (columns j - half ..
        # j); one more row (column) of padding with the last one dropped moves it one before (strict)
        v_in = F.pad(v, (half, half, half + strict, 0))
        h_in = F.pad(h, (half + strict, 0, 0, 0))
        if strict:
            v_in, h_in = v_in[:, :, :-1], h_in[:, :, :, :-1]
        v_pre = self.vertical(v_in)
        h_pre = self.horizontal(h_in) + self.link(v_pre)
        h_out = self.project(gate(h_pre))
        if not strict:
            h_out = h + h_out
        return h_out if self.last else torch.cat([gate(v_pre), h_out], dim=1)


def gate(a):
    """PixelCNN's gated activation: tanh of the first half of the channels times sigmoid of the second."""
    f, g = a.chunk(2, dim=1)
    return torch.tanh(f) * torch.sigmoid(g)


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
