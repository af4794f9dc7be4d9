"""How fast the generated autoregressive samplers draw, against the sampler people write by hand:
one full pass of the network per position, in plain PyTorch, on the same weights.

For MADE the generated sampler computes each unit of the masked layers once over all positions
(MadeSteps); for a PixelCNN it passes, for each pixel, only the rows that pixel reads
(docs/semantics.md, "Sampling an autoregressive block"); each step draws the position alone,
where the hand-written loop draws every value and keeps the position's. Each row draws `--n`
samples with both, `--runs` times in turn, and prints the medians, their ratio (generated /
hand-written: below 1 is faster), and the largest difference between the two samplers'
mean-mode samples (`sample_x(n, mean=True)`), which must be at the level of float rounding.
Weights are the spec's initial ones, shifted at random so that the conditionals are not all one
half; the timing does not depend on training.

    .venv/bin/python bench/bench_ar_sampling.py [--only made,made_ensemble,pixelcnn,gated_pixelcnn] [--n N]
                                                [--runs 3]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gendsl.codegen import generate, load_generated  # noqa: E402
from gendsl.graph.check import check_file  # noqa: E402

SPECS = {"made": "specs/made.gen", "made_ensemble": "specs/made_ensemble.gen", "pixelcnn": "specs/pixelcnn.gen",
         "gated_pixelcnn": "specs/gated_pixelcnn.gen"}
SAMPLES = {"pixelcnn": 4, "gated_pixelcnn": 4}  # one full pass per pixel of a PixelCNN takes seconds


def build(spec: str):
    """The spec's generated model, its weights shifted at random, and the shape of its samples."""
    path = ROOT / spec
    checked = check_file(path)
    assert checked.ok, [d.message for d in checked.diagnostics]
    module = load_generated(generate(checked.graph, path.name, path.read_text()).source)
    torch.manual_seed(0)
    model = module.build().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model, tuple(module.SPEC["samples"]["x"]["shape"])


@torch.no_grad()
def by_hand(model: torch.nn.Module, shape: tuple[int, ...], n: int, mean: bool) -> torch.Tensor:
    """One full pass per position; for an ensemble, as the generated sampler does otherwise: a
    component drawn per sample, and the samples of each component drawn together in its order."""
    block = model.p_x
    x = torch.zeros(n, *shape)
    ranks = getattr(block, "ranks", None)
    components = torch.zeros(n, dtype=torch.long) if ranks is None else torch.randint(len(ranks), (n,))
    try:
        for k in components.unique().tolist():
            rows = (components == k).nonzero().flatten()
            x_k = x[rows].view(len(rows), -1)
            block.held_component = None if ranks is None else k
            for i in range(x_k.shape[1]) if ranks is None else ranks[k].argsort().tolist():
                dist = block(x_k.view(len(rows), *shape))
                value = dist.mean if mean else dist.sample()
                x_k[:, i] = value.reshape(len(rows), -1)[:, i]
            x[rows] = x_k.view(len(rows), *shape)
    finally:
        block.held_component = None
    return x


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def row(name: str, n: int, runs: int) -> tuple[str, int, float, float, float]:
    model, shape = build(SPECS[name])
    generated, hand = [], []
    for _ in range(runs):
        generated.append(timed(lambda: model.sample_x(n)))
        hand.append(timed(lambda: by_hand(model, shape, n, mean=False)))
    difference = float("nan")  # an ensemble's two samplers draw different components
    if len(getattr(model.p_x, "ranks", ())) <= 1:
        m = min(n, 8)
        difference = float((model.sample_x(m, mean=True) - by_hand(model, shape, m, mean=True)).abs().max())
    return name, n, statistics.median(generated), statistics.median(hand), difference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SPECS), help=f"rows, comma-separated, of {', '.join(SPECS)}")
    parser.add_argument("--n", type=int, help="samples per draw (default 100; 4 for the PixelCNNs)")
    parser.add_argument("--runs", type=int, default=3, help="timed draws per sampler (default 3)")
    args = parser.parse_args()
    unknown = set(args.only.split(",")) - set(SPECS)
    if unknown:
        parser.error(f"--only: no row {', '.join(sorted(unknown))}; the rows are {', '.join(SPECS)}")
    torch.set_num_threads(1)
    print(f"# {platform.machine()}, torch {torch.__version__}, 1 thread, {args.runs} runs, medians")
    print("| spec | samples | generated | hand-written, one pass per position | ratio | max mean-mode difference |")
    print("|---|---|---|---|---|---|")
    for name in args.only.split(","):
        name, n, gen, hand, diff = row(name, args.n or SAMPLES.get(name, 100), args.runs)
        print(f"| {name} | {n} | {gen:.2f} s | {hand:.2f} s | {gen / hand:.3f} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
