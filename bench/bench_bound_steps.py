"""Where a diffusion's bound sits: its terms step by step on held-out rows of a trained run (issue 13).

    .venv/bin/python bench/bench_bound_steps.py RUN [--split valid] [--rows 64]

Prints L_(t-1) for the first steps (nats per sample, with the model's variances and with the
fixed beta-tilde_t in their place, beta-tilde_2 at t = 1), the share of the bound the steps up to t
carry, and the whole sum with beta-tilde_t: for a model that learns its variances, what they
gain. `gendsl evaluate RUN --metric bound` gives the same sum over all held-out rows; this shows
which steps it comes from.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import torch

from gendsl.runtime.draw import held_out
from gendsl.runtime.run import load_trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--split", default="valid")
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--denoiser", default="eps", help="the denoiser's name in the spec")
    args = parser.parse_args()
    trained, model, _ = load_trained(args.run, "cpu")
    group = held_out(trained.spec, torch.device("cpu"), args.split)[0]
    x0 = group.tensors[group.names.index(trained.spec.likelihood.bound)][:args.rows]
    q = next(m for m in model.children() if type(m).__name__ == "GaussianDiffusion")
    eps = getattr(model, args.denoiser)
    torch.manual_seed(0)
    terms, fixed_total = [], 0.0
    with torch.no_grad():
        for step in range(q.steps):
            t = torch.full((len(x0),), step, dtype=torch.long)
            xt = q.noisy(x0, t, torch.randn_like(x0))
            pred, v = q.split(eps(xt, t))
            mean = q.mean(xt, t, pred)
            terms.append(float(q.term(x0, xt, t, mean, q.log_var(v, t, x0)).mean()))
            fixed = float(q.term(x0, xt, t, mean, q.log_var(None, t, x0)).mean())
            fixed_total += fixed
            if step < 10:
                print(f"t = {step + 1}: {terms[-1]:.3f} nats (with beta-tilde_t: {fixed:.3f})")
    total = list(itertools.accumulate(terms))
    for share in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5):
        k = max(1, int(q.steps * share))
        print(f"t <= {k}: {total[k - 1]:.2f} of {total[-1]:.2f} nats")
    print(f"all steps with beta-tilde_t in place of the model's variances: {fixed_total:.2f} nats")


if __name__ == "__main__":
    main()
