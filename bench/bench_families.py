"""Full-size runs of the model families of specs/ that are not rows of bench/reproduce.py (the
families with a paper number or a reference to reproduce, and those issue 11 added), each
through the CLI (gendsl train, then gendsl evaluate on the test split), printed as a table beside
the reference numbers.

    .venv/bin/python bench/bench_families.py [--only gmm,ebm] [--device auto] [--scale 1.0]

--scale multiplies every run's length (e.g. 0.1 for a quick look); the table says what ran.
References: for 2-D data with a known density, the true density's NLL of the same test points
(the floor no model can beat) and the gap to it; for the GMM, scikit-learn's GaussianMixture fit
by EM on the same data; otherwise the target or baseline of each row.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import ROOT, evaluate, gendsl

sys.path.insert(0, str(ROOT))

from tests.reference.domain_scores import cyclegan_scores  # noqa: E402

# name: (spec, extra train args, metrics, reference)
RUNS = {
    "realnvp_ring": ("specs/realnvp.gen", [], ["nll"], "gap <= 0.15 nats to the true density"),
    "realnvp_grid": ("bench/specs/realnvp_grid.gen", [], ["nll"], "gap <= 0.15 nats to the true density"),
    "spline_grid": ("specs/spline_flow.gen", [], ["nll"], "gap <= 0.15 nats to the true density"),
    "gmm": ("specs/gmm.gen", ["--steps", "3000"], ["nll"], "scikit-learn GaussianMixture (EM)"),
    "ddpm_swiss_roll": ("specs/ddpm.gen", [], ["mmd", "bound"], "MMD^2 of two real samples (floor)"),
    "ebm": ("specs/ebm.gen", [], ["coverage"], "8 modes"),
    "cgan_digits": ("specs/cgan.gen", [], ["fid", "kid", "prd"], "the real-vs-real value printed beside each "
                    "(two halves of held-out digits)"),
    "infogan_digits": ("specs/infogan.gen", [], [], "code agreement >= 0.80 (issue 11); InfoGAN's 5% error "
                       "on MNIST (Chen et al. 2016) is on 28x28 digits, not these 8x8 ones"),
    "dcgan_mnist": ("specs/dcgan.gen", [], ["fid", "kid", "prd"], "the real-vs-real value printed beside each "
                    "(two halves of held-out 28x28 digits)"),
    "vae_mnist_quality": ("specs/vae.gen", ["--epochs", "100"], ["fid", "kid", "prd"],
                          "the real-vs-real value printed beside each (two halves of the binarized test digits)"),
    "ddpm_digits_quality": ("specs/ddpm_digits.gen", [], ["fid", "kid", "prd"],
                            "the real-vs-real value printed beside each (two halves of held-out digits)"),
    "pix2pix": ("specs/pix2pix.gen", [], ["recon", "fid", "kid", "prd"],
                "copy-the-input L1 (copy_a_l1); the real-vs-real value beside fid, kid and prd"),
    "attention_vae": ("specs/attention_vae.gen", [], ["elbo"], "independent pixels: 24.50 nats"),
    "cyclegan": ("specs/cyclegan.gen", [], ["losses", "fid", "kid", "prd"],
                 "translations accepted by a domain classifier; the real-vs-real value beside fid, kid and prd"),
}


def scaled(args: list[str], scale: float) -> list[str]:
    out = list(args)
    for flag in ("--steps", "--epochs"):
        if flag in out:
            i = out.index(flag) + 1
            out[i] = str(max(1, round(int(out[i]) * scale)))
    return out


def sklearn_gmm(data) -> float:
    """Test NLL (nats) of scikit-learn's GaussianMixture, 8 diagonal components, EM, 10 inits."""
    from sklearn.mixture import GaussianMixture

    from gendsl.data import load

    args = {k: v for k, v in data.args.items() if v is not None}
    train, test = load("ring", args, "train")[0], load("ring", args, "test")[0]
    gmm = GaussianMixture(8, covariance_type="diag", n_init=10, random_state=0).fit(train)
    return float(-gmm.score_samples(test).mean())


def info_scores(run: Path) -> dict:
    """How often a digit classifier agrees with InfoGAN's code under the best matching of code
    values to classes, on 1000 samples (tests/e2e/test_infogan.py)."""
    import torch

    from gendsl.runtime.run import load_trained
    from tests.e2e.test_families import digit_classifier
    from tests.e2e.test_infogan import code_agreement

    _, model, _ = load_trained(run, "cpu")
    torch.manual_seed(0)
    codes = torch.arange(1000) % 10
    samples = model.sample_x(1000, latents={"c": codes}).numpy().reshape(1000, -1)
    return {"code_agreement": code_agreement(codes.numpy(), digit_classifier().predict(samples))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated run names: " + ", ".join(RUNS))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--out", default="runs/bench")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(RUNS)
    rows = []
    for name in names:
        spec, extra, metrics, reference = RUNS[name]
        out = f"{args.out}/{name}"
        train_args = ["train", spec, "--out", out, "--force", "--quiet", "--device", args.device,
                      *scaled(extra, args.scale)]
        start = time.time()
        gendsl(*train_args)
        seconds = time.time() - start
        values = evaluate(out, "--split", "test", "--device", args.device,
                          *[a for m in metrics for a in ("--metric", m)])
        if name == "gmm":
            from gendsl.runtime.run import open_run

            data = open_run(Path(out)).spec.data[0]
            values["sklearn_nats"] = sklearn_gmm(data)
        if name == "cyclegan":
            values |= cyclegan_scores(Path(out), "test", 1000)
        if name == "infogan_digits":
            values |= info_scores(Path(out))
        rows.append((name, " ".join(train_args[1:2] + train_args[8:]), seconds, values, reference))
        print(f"{name}: {seconds:.0f} s  {json.dumps(values)}", flush=True)
    print("\n| run | command (after `gendsl train`) | train s | test metrics | reference |\n|---|---|---|---|---|")
    for name, command, seconds, values, reference in rows:
        print(f"| {name} | `{command}` | {seconds:.0f} | {json.dumps(values)} | {reference} |")


if __name__ == "__main__":
    main()
