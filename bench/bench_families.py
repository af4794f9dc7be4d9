"""Full-size runs of the model families of specs/, each through the CLI (gendsl train, then
gendsl evaluate on the test split), printed as a table beside the reference numbers.

    .venv/bin/python bench/bench_families.py [--only made,gmm] [--device auto] [--scale 1.0]

--scale multiplies every run's length (e.g. 0.1 for a quick look); the table says what ran.
References: Germain et al. 2015 (MADE, 88.04 nats), van den Oord et al. 2016 (PixelCNN, 81.30
nats) on binarized MNIST; for 2-D data with a known density, the true density's NLL of the same
test points (the floor no model can beat) and the gap to it; for the GMM, scikit-learn's
GaussianMixture fit by EM on the same data.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.reference.domain_scores import cyclegan_scores  # noqa: E402

# name: (spec, extra train args, metrics, reference)
RUNS = {
    "made": ("specs/made.gen", ["--epochs", "50"], ["nll"], "88.04 nats (Germain et al. 2015)"),
    "pixelcnn": ("specs/pixelcnn.gen", ["--epochs", "20"], ["nll"], "81.30 nats (van den Oord et al. 2016)"),
    "rnn_mnist": ("specs/rnn_mnist.gen", ["--epochs", "20"], ["nll"],
                  "NADE 88.33, PixelRNN 79.20 nats (van den Oord et al. 2016)"),
    "realnvp_ring": ("specs/realnvp.gen", [], ["nll"], "gap <= 0.15 nats to the true density"),
    "realnvp_grid": ("bench/specs/realnvp_grid.gen", [], ["nll"], "gap <= 0.15 nats to the true density"),
    "spline_grid": ("specs/spline_flow.gen", [], ["nll"], "gap <= 0.15 nats to the true density"),
    "gmm": ("specs/gmm.gen", ["--steps", "3000"], ["nll"], "scikit-learn GaussianMixture (EM)"),
    "ddpm_swiss_roll": ("specs/ddpm.gen", [], ["mmd", "bound"], "MMD^2 of two real samples (floor)"),
    "ddpm_digits": ("specs/ddpm_digits.gen", [], ["bound"], "factorized 17-level baseline 2.45 bits/dim"),
    "ddim_swiss_roll": ("specs/ddim.gen", [], ["mmd"], "ddpm_swiss_roll's MMD^2 (ancestral, all 200 steps)"),
    "ddpm_guided_digits": ("specs/ddpm_guided.gen", [], ["bound"],
                           "bound of log p(x | y); classifier accuracy: bench/bench_diffusion_sampling.py"),
    "ebm": ("specs/ebm.gen", [], ["coverage"], "8 modes"),
    "cond_ebm_digits": ("specs/cond_ebm.gen", [], ["accuracy"], ">= 90% accuracy (issue 11); samples given y: "
                        "tests/e2e/test_conditional_models.py"),
    "cond_flow_ring": ("specs/cond_flow.gen", [], ["nll"], "gap <= 0.05 nats to the true p(x | mode)"),
    "hmm": ("specs/hmm.gen", [], ["nll", "viterbi"], "the true HMM that drew the data (gap 0)"),
    "vqvae_digits": ("specs/vqvae.gen", [], ["losses"], "mean-image MSE 0.074 (valid); codebook "
                     "perplexity <= 32; class entropy of samples <= log 10 = 2.303"),
    "pix2pix": ("specs/pix2pix.gen", [], ["recon"], "copy-the-input L1 (copy_a_l1)"),
    "attention_vae": ("specs/attention_vae.gen", [], ["elbo"], "independent pixels: 24.50 nats"),
    "cyclegan": ("specs/cyclegan.gen", [], ["losses"], "translations accepted by a domain classifier"),
    # equal epochs, the same IWAE k=5000 test NLL: the IWAE objective (k=5) against the VAE's
    "vae_100ep": ("specs/vae.gen", ["--epochs", "100"], ["nll"], "88.71 nats at 3280 epochs (Burda et al. 2016)"),
    "iwae_k5_100ep": ("specs/iwae.gen", ["--epochs", "100"], ["nll"], "below the vae_100ep row"),
    "hvae_100ep": ("specs/hvae.gen", ["--epochs", "100"], ["nll"], "below the vae_100ep row (two layers, "
                   "3280 epochs: 85.33 vs 86.76 nats on dynamic binarization, Burda et al. table 1)"),
}


def gendsl(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "gendsl.cli", *args], cwd=ROOT, text=True, capture_output=True)
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    return result.stdout


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


def vq_scores(run: Path) -> dict:
    """Codebook perplexity on the test digits, and the class entropy of 1000 samples as a digit
    classifier reads them (tests/e2e/test_vqvae.py)."""
    import torch

    from gendsl.data import load
    from gendsl.runtime.run import load_trained
    from tests.e2e.test_families import digit_classifier
    from tests.e2e.test_vqvae import entropy, perplexity

    _, model, _ = load_trained(run, "cpu")
    x = torch.as_tensor(load("digits", {}, "test")[0].reshape(-1, 64), dtype=torch.float32)
    with torch.no_grad():
        codes = model.q_k(x, model.encode, model.codebook).sample()
    torch.manual_seed(0)
    samples = model.sample_x(1000).numpy().reshape(1000, -1)
    return {"perplexity": perplexity(codes, model.codebook.shape[0]),
            "sample_class_entropy": entropy(digit_classifier().predict(samples))}


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
        report = json.loads(gendsl("evaluate", out, "--split", "test", "--format", "json", "--quiet",
                                   "--device", args.device, *[a for m in metrics for a in ("--metric", m)]))
        values = report["metrics"]
        if name == "gmm":
            from gendsl.runtime.run import open_run

            data = open_run(Path(out)).spec.data[0]
            values["sklearn_nats"] = sklearn_gmm(data)
        if name == "cyclegan":
            values |= cyclegan_scores(Path(out), "test", 1000)
        if name == "vqvae_digits":
            values |= vq_scores(Path(out))
        rows.append((name, " ".join(train_args[1:2] + train_args[8:]), seconds, values, reference))
        print(f"{name}: {seconds:.0f} s  {json.dumps(values)}", flush=True)
    print("\n| run | command (after `gendsl train`) | train s | test metrics | reference |\n|---|---|---|---|---|")
    for name, command, seconds, values, reference in rows:
        print(f"| {name} | `{command}` | {seconds:.0f} | {json.dumps(values)} | {reference} |")


if __name__ == "__main__":
    main()
