"""Training-step time of generated models against the same models written by hand, in one run.

For each model, both versions train on the same data (resident on the device, batched by index)
in alternating blocks of steps, so that machine noise hits both alike. Reported: the median time
of one training round (forward, backward, optimizer step; for the GAN one D step and one G step),
and the ratio generated / hand-written (aim: at most 1.05).

    .venv/bin/python bench/bench_step_time.py [--blocks 30] [--block-steps 50] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gendsl.runtime.loop import Options, Trainer  # noqa: E402
from gendsl.runtime.run import create  # noqa: E402


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
    def __init__(self, width=256, latent=64):
        super().__init__()
        self.latent = latent
        self.G = nn.Sequential(nn.Linear(latent, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2))
        self.D = nn.Sequential(nn.Linear(2, width), nn.LeakyReLU(0.2), nn.Linear(width, width), nn.LeakyReLU(0.2),
                               nn.Linear(width, 1))


def handwritten_vae(data: torch.Tensor, batch: int):
    model = ExampleVAE().to(data.device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    state = {"perm": torch.randperm(len(data), device=data.device), "pos": 0}

    def step():
        if state["pos"] + batch > len(data):
            state["perm"], state["pos"] = torch.randperm(len(data), device=data.device), 0
        x = data[state["perm"][state["pos"]: state["pos"] + batch]]
        state["pos"] += batch
        loss = model.loss(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def handwritten_gan(data: torch.Tensor, batch: int):
    model = RingGAN().to(data.device)
    opt_d = torch.optim.Adam(model.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(model.G.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def sample_batch():
        return data[torch.randint(len(data), (batch,), device=data.device)]

    def step():
        x = sample_batch()
        z = torch.randn(batch, model.latent, device=data.device)
        real, fake = model.D(x), model.D(model.G(z).detach())
        d_loss = F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + \
            F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        sample_batch()  # the generated loop also draws a batch for the G step
        z = torch.randn(batch, model.latent, device=data.device)
        fake = model.D(model.G(z))
        g_loss = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
    return step


def generated(spec: Path, device: str, folder: Path, overrides: list[str] = ()):
    run, _ = create(folder, str(spec), list(overrides), None)
    trainer = Trainer(run, Options(device=device, quiet=True, steps=10**9))
    trainer.model.train()
    return trainer.one_round, trainer


def timed(step, count: int, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(count):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / count


def compare(name: str, ours, theirs, blocks: int, block_steps: int, device: torch.device) -> dict:
    for _ in range(3):  # warm-up: allocator, kernels, Adam state
        timed(ours, block_steps, device)
        timed(theirs, block_steps, device)
    a, b = [], []
    for i in range(blocks):
        first, second = (ours, theirs) if i % 2 == 0 else (theirs, ours)
        t1, t2 = timed(first, block_steps, device), timed(second, block_steps, device)
        (a, b)[i % 2].append(t1)
        (b, a)[i % 2].append(t2)
    gen, hand = statistics.median(a), statistics.median(b)
    return {"model": name, "generated_ms": gen * 1e3, "handwritten_ms": hand * 1e3, "ratio": gen / hand}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=30)
    parser.add_argument("--block-steps", type=int, default=50)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ours, trainer = generated(ROOT / "bench/specs/vae_pytorch_example.gen", args.device, Path(tmp) / "vae")
        data = trainer.groups[0].tensors[0]
        rows.append(compare("VAE 784-400-20 (PyTorch examples), batch 128", ours,
                            handwritten_vae(data, 128), args.blocks, args.block_steps, device))
        # the same networks as the hand-written GAN: width 256, no R1 term
        ours, trainer = generated(ROOT / "specs/gan_ring.gen", args.device, Path(tmp) / "gan",
                                  ["width=256", "gamma=0"])
        data = trainer.groups[0].tensors[0]
        rows.append(compare("ring GAN (gan_ring.gen, width=256, gamma=0), batch 256, D+G", ours,
                            handwritten_gan(data, 256), args.blocks, args.block_steps, device))
    print(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}; median of {args.blocks} blocks "
          f"of {args.block_steps} rounds, interleaved")
    print(f"{'model':<50} {'generated':>12} {'hand-written':>13} {'ratio':>7}")
    for r in rows:
        print(f"{r['model']:<50} {r['generated_ms']:>10.3f}ms {r['handwritten_ms']:>11.3f}ms {r['ratio']:>7.3f}")


if __name__ == "__main__":
    main()
