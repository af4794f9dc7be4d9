"""Train the VAE of specs/vae.gen on binarized MNIST and report its NLL (IWAE bound) beside the
paper's number: Burda et al. (2016), appendix, VAE with one stochastic layer, k=1 training:
88.71 nats on the test split (their 3,280 epochs; the default here is the spec's 100 epochs).

Tune on valid; test is reported once, at the end. Everything goes through the CLI commands a
user runs (train, evaluate), so this measures the product, not a side path.

    .venv/bin/python bench/bench_vae_nll.py [--epochs 100] [--k 5000] [--device auto] [--out runs/bench_vae]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAPER = 88.71


def gendsl(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "gendsl.cli", *args], cwd=ROOT, text=True,
                            capture_output=True)
    if result.returncode != 0:
        sys.exit(result.stderr)
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--k", type=int, default=5000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="runs/bench_vae")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.time()
    gendsl("train", "specs/vae.gen", "--epochs", str(args.epochs), "--out", args.out, "--device", args.device,
           "--seed", str(args.seed), "--force", "--quiet")
    trained = time.time() - start
    results = {}
    for split in ("valid", "test"):
        report = json.loads(gendsl("evaluate", args.out, "--split", split, "--metric", "nll", "--metric", "elbo",
                                   "--k", str(args.k), "--device", args.device, "--format", "json", "--quiet"))
        results[split] = report["metrics"]
    print(f"specs/vae.gen, {args.epochs} epochs, seed {args.seed}, device {args.device}; training {trained:.0f} s, "
          f"total {time.time() - start:.0f} s")
    print(f"{'split':<6} {'NLL (IWAE k=' + str(args.k) + ')':>22} {'-ELBO':>10} {'paper (test)':>13}")
    for split, metrics in results.items():
        print(f"{split:<6} {metrics['nll']['nats']:>18.2f} nats {metrics['elbo']['nats']:>10.2f} "
              f"{PAPER if split == 'test' else '':>13}")


if __name__ == "__main__":
    main()
