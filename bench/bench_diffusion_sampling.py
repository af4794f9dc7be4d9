"""How the samplers of one trained diffusion compare: DDIM (Song et al. 2021) at several step
counts and values of eta against ancestral DDPM sampling over all steps on 2-D data (MMD to
held-out points), and classifier-free guidance (Ho & Salimans 2022) on the labelled digits
(the share of guided samples a classifier trained on real digits gives their label).

    .venv/bin/python bench/bench_diffusion_sampling.py [--swiss-roll RUN] [--digits RUN] [--samples 2000]

RUN folders come from `bench/reproduce.py --only ddim,ddpm_guided`
(default runs/reproduce/NAME); a missing one is trained first with its spec's own settings. The test
split is used throughout; each row draws with its own fixed seed.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gendsl.data import load  # noqa: E402
from gendsl.evaluation.metrics import Context, _mmd2, _references  # noqa: E402
from gendsl.runtime.draw import held_out  # noqa: E402
from gendsl.runtime.run import load_trained  # noqa: E402


def trained(run: Path, spec: str) -> Path:
    if not (run / "checkpoint.pt").exists():
        subprocess.run([sys.executable, "-m", "gendsl.cli", "train", spec, "--out", str(run), "--force", "--quiet"],
                       cwd=ROOT, check=True)
    return run


def with_test_points(run: Path, samples: int):
    """A trained 2-D model, its device, and `samples` test points with the two references of the
    mmd metric: another sample of test points and the points with shuffled coordinates."""
    info, model, device = load_trained(run, "cpu")
    _, a, b, shuffled = _references(Context(model=model, spec=info.spec, groups=held_out(info.spec, device, "test")),
                                    samples)
    return model, device, a, b, shuffled


def swiss_roll_rows(run: Path, samples: int) -> list[tuple[str, float, float]]:
    """(sampler, MMD^2 to held-out points, seconds) for DDIM and ancestral sampling of one model."""
    model, device, a, b, shuffled = with_test_points(run, samples)
    q, n = model.q, len(a)
    rows = [("floor (two real samples)", _mmd2(b, a, 0.05), 0.0),
            ("shuffled coordinates", _mmd2(shuffled, a, 0.05), 0.0)]
    samplers = [(f"ancestral, {q.steps} steps", lambda: q.reverse(model.eps, n, (2,), device))]
    for steps in (10, 20, 50, q.steps):
        for eta in (0.0, 1.0):
            samplers.append((f"DDIM {steps} steps, eta={eta:g}",
                             lambda steps=steps, eta=eta: q.ddim(model.eps, n, (2,), device, steps, eta)))
    for seed, (name, sample) in enumerate(samplers):
        torch.manual_seed(seed)
        start = time.time()
        x = sample()
        rows.append((name, _mmd2(x, a, 0.05), time.time() - start))
    return rows


def digit_rows(run: Path, samples: int) -> list[tuple[str, float, float]]:
    """(sampler and guidance, share classified as its label, seconds)."""
    from sklearn.linear_model import LogisticRegression

    images, labels = load("digits", {}, "train")
    classifier = LogisticRegression(C=1.0, max_iter=2000).fit(images.reshape(len(images), -1), labels)
    test_images, test_labels = load("digits", {}, "test")
    rows = [("real test digits", classifier.score(test_images.reshape(len(test_images), -1), test_labels), 0.0)]
    info, model, device = load_trained(run, "cpu")
    q = model.q
    wanted = torch.arange(samples) % 10
    for steps in (50, None):
        for w in (0.0, 1.0, 3.0):
            torch.manual_seed(int(w * 10) + (steps or 0))
            eps = q.conditioned(model.eps, wanted, guidance=w, null=10)
            start = time.time()
            shape = (1, 8, 8)
            x = q.ddim(eps, samples, shape, device, steps, 0.0) if steps else q.reverse(eps, samples, shape, device)
            seconds = time.time() - start
            predicted = classifier.predict(x.clamp(0, 1).reshape(samples, -1).numpy())
            name = f"{'DDIM 50 steps, eta=0' if steps else f'ancestral, {q.steps} steps'}, w={w:g}"
            rows.append((name, float(np.mean(predicted == wanted.numpy())), seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--swiss-roll", type=Path, default=ROOT / "runs/reproduce/ddim")
    parser.add_argument("--digits", type=Path, default=ROOT / "runs/reproduce/ddpm_guided")
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread")
    print("\n| swiss roll sampler | MMD^2 to test points | s |\n|---|---|---|")
    for name, value, seconds in swiss_roll_rows(trained(args.swiss_roll, "specs/ddim.gen"), args.samples):
        print(f"| {name} | {value:.5f} | {seconds:.1f} |", flush=True)
    print("\n| digits sampler | classified as its label | s |\n|---|---|---|")
    for name, value, seconds in digit_rows(trained(args.digits, "specs/ddpm_guided.gen"), min(args.samples, 500)):
        print(f"| {name} | {value:.3f} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
