"""Training-step time of generated models against the same models written by hand, in one run.

For each family, both versions train on the same data (resident on the device, batched by index)
in alternating blocks of rounds, so that machine noise hits both alike. Reported: the median time
of one training round (forward, backward, optimizer step, and the spec's schedule and EMA; for the
GAN one D step and one G step), the ratio generated / hand-written (aim: at most 1.00), and each
side's minor page faults per round. Both sides run in one process, so the allocator settings that
the trainer makes (`gendsl/runtime/allocator.py`) hold for the hand-written side too.

Before timing, each pair is checked to be the same model: equal parameter shapes (so equal
counts), and, with the generated weights copied into the hand-written model, the same loss on
the same batch and random draws (but for the VAE of the PyTorch examples, whose posterior scale
is parameterized otherwise).

    .venv/bin/python bench/bench_step_time.py [--only made,pixelcnn] [--blocks 20]
                                              [--block-steps N] [--compile] [--aa] [--hand-fused] [--device cpu]

`--block-steps` replaces every family's default (the table `FAMILIES`: about half a second of
work per block on one CPU thread). `--compile` wraps both sides' loss in torch.compile (the
generated side through `gendsl train --compile`, which compiles each step's method). `--aa` adds
a row per family that times the hand-written model against a second copy of it, the same way:
its distance from 1.00 is what noise alone does to a ratio in that run. gendsl builds Adam fused
(`fused=True`); the hand-written side keeps torch's default Adam unless `--hand-fused` gives it
the same kernels.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gendsl.runtime.loop import Options, Trainer  # noqa: E402
from gendsl.runtime.run import create  # noqa: E402


# ---- the models, as a PyTorch user writes them ----

class ExampleVAE(nn.Module):
    """examples/vae/main.py of the PyTorch examples, as written there (BCE + KLD, summed)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.fc4(F.relu(self.fc3(z))), mu, logvar

    def loss(self, x):
        logits, mu, logvar = self(x)
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return (bce + kld) / len(x)


class RingGAN(nn.Module):
    """A generator and a discriminator MLP on 2-D points, the non-saturating loss (no R1 term)."""

    def __init__(self, width=256, latent=64):
        super().__init__()
        self.latent = latent
        self.G = nn.Sequential(nn.Linear(latent, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2))
        self.D = nn.Sequential(nn.Linear(2, width), nn.LeakyReLU(0.2), nn.Linear(width, width), nn.LeakyReLU(0.2),
                               nn.Linear(width, 1))

    def d_loss(self, x):
        real = self.D(x)
        fake = self.D(self.G(torch.randn(len(x), self.latent, device=x.device)).detach())
        return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + \
            F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))

    def g_loss(self, x):
        fake = self.D(self.G(torch.randn(len(x), self.latent, device=x.device)))
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (MADE)."""

    def __init__(self, n_in, n_out, mask):
        super().__init__(n_in, n_out)
        self.register_buffer("mask", mask.float())

    def forward(self, x):
        return F.linear(x, self.mask * self.weight, self.bias)


class MADE(nn.Module):
    """Germain et al. (2015), one hidden layer (the masks of karpathy/pytorch-made) and the direct
    input-to-output connection of the authors' runs; its masks are replaced by the generated model's
    before timing, as its weights are."""

    def __init__(self, d=784, hidden=500, seed=0):
        super().__init__()
        order = torch.arange(d)  # output i may see inputs 0 .. i-1
        degrees = torch.randint(0, d - 1, (hidden,), generator=torch.Generator().manual_seed(seed))
        self.net = nn.Sequential(MaskedLinear(d, hidden, order[None, :] <= degrees[:, None]), nn.ReLU(),
                                 MaskedLinear(hidden, d, degrees[None, :] < order[:, None]))
        self.direct = MaskedLinear(d, d, order[None, :] < order[:, None])

    def loss(self, x):
        return F.binary_cross_entropy_with_logits(self.net(x) + self.direct(x), x, reduction="sum") / len(x)


class MaskedConv2d(nn.Conv2d):
    """Mask A hides the centre pixel and those after it; mask B keeps the centre."""

    def __init__(self, kind, c_in, c_out, k):
        super().__init__(c_in, c_out, k, padding=k // 2)
        mask = torch.ones_like(self.weight)
        mask[:, :, k // 2, k // 2 + (kind == "B"):] = 0
        mask[:, :, k // 2 + 1:] = 0
        self.register_buffer("mask", mask)

    def forward(self, x):
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class PixelCNN(nn.Module):
    """van den Oord et al. (2016): 7x7 mask A, mask-B 3x3 layers, two 1x1 convolutions."""

    def __init__(self, ch=64, layers=7):
        super().__init__()
        body = [m for _ in range(layers) for m in (MaskedConv2d("B", ch, ch, 3), nn.ReLU())]
        self.net = nn.Sequential(MaskedConv2d("A", 1, ch, 7), nn.ReLU(), *body,
                                 nn.Conv2d(ch, ch, 1), nn.ReLU(), nn.Conv2d(ch, 1, 1))

    def loss(self, x):
        return F.binary_cross_entropy_with_logits(self.net(x), x, reduction="sum") / len(x)


class Denoiser(nn.Module):
    """The noise prediction eps(x_t, t) of a 2-D DDPM: an MLP on x_t and a sinusoidal embedding of t."""

    def __init__(self, width=128, emb=64):
        super().__init__()
        half = emb // 2
        self.register_buffer("freqs", torch.exp(-math.log(10000.0) * torch.arange(half) / half))
        self.net = nn.Sequential(nn.Linear(2 + emb, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
                                 nn.Linear(width, width), nn.SiLU(), nn.Linear(width, 2))

    def forward(self, x, t):
        angles = t[:, None].float() * self.freqs
        return self.net(torch.cat([x, angles.sin(), angles.cos()], 1))


class DDPM(nn.Module):
    """Ho et al. (2020), the simple loss, with a linear schedule of beta."""

    def __init__(self, steps=200, beta_1=1e-4, beta_T=0.05):
        super().__init__()
        self.steps, self.eps = steps, Denoiser()
        alpha_bar = torch.cumprod(1 - torch.linspace(beta_1, beta_T, steps, dtype=torch.float64), 0)
        self.register_buffer("sqrt_ab", alpha_bar.sqrt().float())
        self.register_buffer("sqrt_1m_ab", (1 - alpha_bar).sqrt().float())

    def loss(self, x0):
        t = torch.randint(0, self.steps, (len(x0),), device=x0.device)
        noise = torch.randn_like(x0)
        xt = self.sqrt_ab[t, None] * x0 + self.sqrt_1m_ab[t, None] * noise
        return F.mse_loss(self.eps(xt, t), noise)


class AffineCoupling(nn.Module):
    """RealNVP (Dinh et al. 2017): the kept half (mask 1) sets a scale and shift of the rest."""

    def __init__(self, parity, dim=2, width=128):
        super().__init__()
        self.register_buffer("mask", (torch.arange(dim) % 2 == parity).float())
        self.net = nn.Sequential(nn.Linear(dim, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                                 nn.Linear(width, 2 * dim))
        nn.init.zeros_(self.net[-1].weight)  # starts as the identity
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x):
        s, t = self.net(x * self.mask).chunk(2, -1)
        s = torch.tanh(s) * (1 - self.mask)
        return x * s.exp() + t * (1 - self.mask), s.sum(-1)


class ActNorm(nn.Module):
    """Glow (Kingma & Dhariwal 2018): per-dimension scale and shift, set from the first batch."""

    def __init__(self, dim=2):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.shift = nn.Parameter(torch.zeros(dim))
        self.initialized = False

    def forward(self, x):
        if not self.initialized:
            with torch.no_grad():
                self.shift.copy_(-x.mean(0))
                self.log_scale.copy_(-x.std(0).clamp_min(1e-2).log())
            self.initialized = True
        return (x + self.shift) * self.log_scale.exp(), self.log_scale.sum()


class RealNVP(nn.Module):
    """Couplings of alternating parity, each followed by ActNorm; a standard normal prior."""

    def __init__(self, couplings=12, width=128):
        super().__init__()
        self.layers = nn.ModuleList(m for i in range(couplings) for m in (AffineCoupling(i % 2, 2, width), ActNorm(2)))

    def loss(self, x):
        logdet = 0
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        log_pz = -0.5 * (x ** 2).sum(-1) - x.shape[1] * 0.5 * math.log(2 * math.pi)
        return -(log_pz + logdet).mean()


# ---- the hand-written training rounds ----

def shuffled(data: torch.Tensor, batch: int) -> Callable[[], torch.Tensor]:
    """Endless batches by index, reshuffled after each pass (as the generated loop draws them)."""
    state = {"perm": torch.randperm(len(data), device=data.device), "pos": 0}

    def draw():
        if state["pos"] + batch > len(data):
            state["perm"], state["pos"] = torch.randperm(len(data), device=data.device), 0
        state["pos"] += batch
        return data[state["perm"][state["pos"] - batch: state["pos"]]]
    return draw


@dataclass
class Hand:
    """A hand-written model, its loss functions (for the equality check) and its training round."""

    model: nn.Module
    losses: list[Callable]
    step: Callable[[], None]


HAND_ADAM: dict = {}  # --hand-fused: {"fused": True}


def adam(params, **options) -> torch.optim.Adam:
    """The hand-written side's Adam: torch's default implementation, as code usually builds it, or
    with --hand-fused the fused one that gendsl builds (the same kernels on both sides)."""
    return torch.optim.Adam(params, **options, **HAND_ADAM)


def minimize(model, data, batch, compile, schedule=None, average=None, decay=0.0, weight_decay=0.0) -> Hand:
    """One loss, one Adam(lr=1e-3, weight_decay): the usual training round of `model.loss`, with an LR
    schedule and an EMA (decay `decay`) of the module `average` if given."""
    opt = adam(model.parameters(), lr=1e-3, weight_decay=weight_decay)
    scheduler = schedule(opt) if schedule else None
    ema = AveragedModel(average, multi_avg_fn=get_ema_multi_avg_fn(decay)) if average is not None else None
    loss, draw = torch.compile(model.loss) if compile else model.loss, shuffled(data, batch)

    def step():
        value = loss(draw())
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            ema.update_parameters(average)
    return Hand(model, [model.loss], step)


# each hand_* builds the hand-written side of a family: (data, batch, compile) -> Hand

def hand_vae(data, batch, compile):
    return minimize(ExampleVAE().to(data.device), data, batch, compile)


def hand_made(data, batch, compile):
    return minimize(MADE().to(data.device), data, batch, compile, weight_decay=1e-4,
                    schedule=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=6000))


def hand_pixelcnn(data, batch, compile):
    return minimize(PixelCNN().to(data.device), data, batch, compile)


def hand_ddpm(data, batch, compile):
    model = DDPM().to(data.device)
    return minimize(model, data, batch, compile, average=model.eps, decay=0.995)  # samples use the EMA


def hand_realnvp(data, batch, compile):
    return minimize(RealNVP().to(data.device), data, batch, compile,
                    schedule=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10000))


def hand_gan(data, batch, compile):
    model = RingGAN().to(data.device)
    opt_d = adam(model.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = adam(model.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    ema = AveragedModel(model.G, multi_avg_fn=get_ema_multi_avg_fn(0.999))  # samples come from the EMA of G
    d_loss, g_loss = (torch.compile(f) if compile else f for f in (model.d_loss, model.g_loss))
    draw = shuffled(data, batch)

    def step():
        loss = d_loss(draw())
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_d.step()
        loss = g_loss(draw())  # the generated loop also draws a batch for the G step
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        ema.update_parameters(model.G)
    return Hand(model, [model.d_loss, model.g_loss], step)


# ---- the families ----

@dataclass
class Family:
    """One row of the comparison: the spec and its overrides, and the hand-written side."""

    label: str
    spec: str
    overrides: tuple[str, ...]
    batch: int
    hand: Callable[[torch.Tensor, int, bool], Hand]
    block_steps: int  # rounds per block: about half a second on one CPU thread
    same_loss: bool = True  # False: the same network, but the loss is parameterized otherwise


FAMILIES = {
    "vae": Family("VAE 784-400-20 (PyTorch examples), batch 128", "bench/specs/vae_pytorch_example.gen", (),
                  128, hand_vae, 50, same_loss=False),  # the example's scale is exp(0.5 h), the spec's exp(h)
    "gan": Family("ring GAN (gan_ring, width=256, gamma=0), batch 256, D+G", "specs/gan_ring.gen",
                  ("width=256", "gamma=0", "lr=2e-4"), 256, hand_gan, 50),
    "made": Family("MADE 784-500-784 + direct (made, hidden=500), batch 100", "specs/made.gen", ("hidden=500",),
                   100, hand_made, 40),
    "pixelcnn": Family("PixelCNN 64 ch, 7+1 masked conv (pixelcnn), batch 64", "specs/pixelcnn.gen", (),
                       64, hand_pixelcnn, 1),
    "ddpm": Family("DDPM swiss roll, MLP 128, T=200, EMA (ddpm), batch 256", "specs/ddpm.gen", (),
                   256, hand_ddpm, 200),
    "realnvp": Family("RealNVP 12 affine couplings + ActNorm (realnvp), batch 512", "specs/realnvp.gen", (),
                      512, hand_realnvp, 20),
}


def generated(spec: Path, device: str, folder: Path, overrides, compile: bool) -> Trainer:
    """The trainer `gendsl train` would run on the spec (its data on the device)."""
    run, _ = create(folder, str(spec), list(overrides), None)
    trainer = Trainer(run, Options(device=device, quiet=True, steps=10**9, compile=compile))
    trainer.model.train()
    return trainer


def check_same(trainer: Trainer, hand: Hand, same_loss: bool) -> int:
    """Assert that the two are one model: the same parameter shapes in the same order, and, on the
    generated weights (and masks), the same loss on one batch; returns the parameter count."""
    ours, theirs = list(trainer.model.parameters()), list(hand.model.parameters())
    assert [p.shape for p in ours] == [p.shape for p in theirs], "the parameters differ"
    masks = [b for name, b in hand.model.named_buffers() if name.endswith("mask")]
    our_masks = [b for name, b in trainer.model.named_buffers() if name.endswith("mask")]
    assert len(masks) == len(our_masks)
    with torch.no_grad():
        for a, b in zip(ours + our_masks, theirs + masks):
            b.copy_(a)
    batch = trainer.batcher.next()
    x = next(iter(batch.values()))
    for step, loss in zip(trainer.run.spec.steps, hand.losses if same_loss else []):
        torch.manual_seed(1)
        a = getattr(trainer.model, step.method)(batch)
        torch.manual_seed(1)
        b = loss(x)
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4), f"step {step.name}: {a.item()} against {b.item()}"
    return sum(p.numel() for p in ours)


def timed(step, count: int, device: torch.device) -> tuple[float, float, float]:
    """Wall and CPU seconds and minor page faults per round over `count` rounds (CPU time and faults:
    this process, all threads)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start, cpu, faults = time.perf_counter(), time.process_time(), minor_faults()
    for _ in range(count):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return ((time.perf_counter() - start) / count, (time.process_time() - cpu) / count,
            (minor_faults() - faults) / count)


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def compare(ours, theirs, blocks: int, block_steps: int, device: torch.device) -> dict:
    """Median round times of both sides over alternating blocks, their ratio and its spread."""
    for _ in range(3):  # warm-up: allocator, kernels, Adam state, compilation
        timed(ours, block_steps, device)
        timed(theirs, block_steps, device)
    a, b = [], []
    for i in range(blocks):
        first, second = (ours, theirs) if i % 2 == 0 else (theirs, ours)
        t1, t2 = timed(first, block_steps, device), timed(second, block_steps, device)
        (a, b)[i % 2].append(t1)
        (b, a)[i % 2].append(t2)
    ratios = sorted(x[0] / y[0] for x, y in zip(a, b))  # per pair of neighbouring blocks: the spread
    gen, hand = (statistics.median(t[0] for t in ts) for ts in (a, b))
    gen_cpu, hand_cpu = (statistics.median(t[1] for t in ts) for ts in (a, b))
    gen_faults, hand_faults = (statistics.median(t[2] for t in ts) for ts in (a, b))
    return {"generated_ms": gen * 1e3, "handwritten_ms": hand * 1e3, "ratio": gen / hand,
            "q1": ratios[len(ratios) // 4], "q3": ratios[(3 * len(ratios)) // 4], "cpu_ratio": gen_cpu / hand_cpu,
            "gen_faults": gen_faults, "hand_faults": hand_faults}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(FAMILIES), help=f"comma-separated, of {', '.join(FAMILIES)}")
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--block-steps", type=int, default=None, help="rounds per block (default: per family)")
    parser.add_argument("--compile", action="store_true", help="torch.compile both sides' losses")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--aa", action="store_true",
                        help="also time the hand-written side against a second copy of itself (an A/A run): "
                             "how far from 1.00 noise alone moves a ratio")
    parser.add_argument("--hand-fused", action="store_true",
                        help="give the hand-written side the fused Adam that gendsl builds (default: torch's "
                             "default Adam, as hand-written code usually has it)")
    args = parser.parse_args()
    if args.hand_fused:
        HAND_ADAM["fused"] = True
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)} (known: {', '.join(FAMILIES)})")
    device = torch.device(args.device)
    load = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            family = FAMILIES[name]
            torch.manual_seed(0)
            trainer = generated(ROOT / family.spec, args.device, Path(tmp) / name, family.overrides, args.compile)
            hand = family.hand(trainer.groups[0].tensors[0], family.batch, args.compile)
            count = check_same(trainer, hand, family.same_loss)
            steps = args.block_steps or family.block_steps
            row = compare(trainer.one_round, hand.step, args.blocks, steps, device)
            rows.append({"label": family.label, "params": count, "steps": steps, **row})
            print(f"  {name}: {row['ratio']:.3f} (CPU time {row['cpu_ratio']:.3f})", file=sys.stderr, flush=True)
            if args.aa:
                twin = family.hand(trainer.groups[0].tensors[0], family.batch, args.compile)
                row = compare(twin.step, hand.step, args.blocks, steps, device)
                rows.append({"label": "  A/A: hand-written against a copy", "params": count, "steps": steps, **row})
                del twin
            del trainer, hand
    print(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}{', compiled' if args.compile else ''}; "
          f"hand-written Adam: {'fused' if args.hand_fused else 'torch default'}; "
          f"median of {args.blocks} blocks per side, interleaved; load average {load[0]:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after")
    print(f"{'model':<60} {'params':>9} {'rounds':>6} {'generated':>11} {'hand-written':>12} {'ratio':>6} "
          f"{'pairs q1-q3':>12} {'CPU ratio':>9} {'faults':>9}")
    for r in rows:
        faults = f"{r['gen_faults']:.0f}/{r['hand_faults']:.0f}"
        print(f"{r['label']:<60} {r['params']:>9,} {r['steps']:>6} {r['generated_ms']:>9.3f}ms "
              f"{r['handwritten_ms']:>10.3f}ms {r['ratio']:>6.3f} {r['q1']:>5.3f}-{r['q3']:.3f} "
              f"{r['cpu_ratio']:>9.3f} {faults:>9}")


if __name__ == "__main__":
    main()
