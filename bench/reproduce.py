"""The reproducibility table: each reference spec's number beside the like-for-like number of its
paper, one command per row (issue 13). A family with no paper number on the same data (most of
those issue 11 added) stands beside a reference measured in the same run: the true density of
synthetic data, the same diffusion sampled through its whole chain, a classifier of real digits.

    .venv/bin/python bench/reproduce.py --only vae [--device auto] [--out runs/reproduce]
    .venv/bin/python bench/reproduce.py --list
    .venv/bin/python bench/reproduce.py --only pacgan_grid --seed 1   # another seed: OUT/NAME_seed1

Everything goes through the commands a user runs: `gendsl train`, then `gendsl evaluate --split
test`. A row runs its paper-scale budget where it can. A row marked GPU whose budget a CPU cannot
give in reasonable time trains its CPU curve instead: the first epochs of the paper-length run,
stopping at each listed point (`gendsl train --epochs BUDGET --until N`, then `--resume --until
M`: one run, whose learning-rate schedule spans the whole budget), evaluates the test split there,
and prints the metric against the budget, so that the distance to the paper is visible. The
point at the paper's budget uses the row's own evaluation; the points of a CPU curve a cheaper
one where the row has one (fewer importance samples: a looser bound, which the table names).
Each row writes OUT/NAME/curve.json and curve.png (the metric against the budget, the paper's
number as a line).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from common import ROOT, evaluate, gendsl

sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Row:
    name: str
    spec: str
    data: str
    metric: str                  # a `gendsl evaluate --metric`
    paper: float | None          # the like-for-like published number (None: see `reference`)
    reference: str               # where the number comes from: paper, table, configuration
    budget: int                  # the paper-scale length, in `unit`
    cpu_curve: tuple[int, ...]   # the points a CPU run stops at when `gpu` is set
    gpu: bool                    # the budget needs a GPU to finish in hours
    unit: str = "epochs"         # or "steps"
    key: str = "nats"            # the reported number of the metric's report (nats, bpd, ...)
    also: tuple[str, ...] = ()   # other numbers of the report the table shows
    final: tuple[str, ...] = ()  # evaluation options at the paper's budget
    cheap: tuple[str, ...] = ()  # evaluation options of the points of a CPU curve
    scores: Callable[[Path], dict] | None = None  # numbers `gendsl evaluate` has no metric for, from the run


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


def viterbi_scores(run: Path) -> dict:
    """The share of test steps whose state the model's Viterbi path gets right (best relabelling),
    and the true HMM's own share: its ceiling."""
    values = evaluate(run, "--split", "test", "--metric", "viterbi")["viterbi"]
    return {"viterbi_accuracy": values["accuracy"], "true_viterbi_accuracy": values["true_accuracy"]}


def ancestral_mmd(run: Path, samples: int = 2000) -> dict:
    """MMD^2 to the test points of the same trained DDPM sampled the long way, every step of its
    chain (DDPM's ancestral sampler): what DDIM's shortcut is compared with (Song et al. 2021)."""
    import torch
    from bench_diffusion_sampling import with_test_points

    from gendsl.evaluation.metrics import _mmd2

    model, device, points, _, _ = with_test_points(run, samples)
    torch.manual_seed(0)
    return {"ancestral_mmd2": _mmd2(model.q.reverse(model.eps, len(points), (2,), device), points, 0.05)}


def label_agreement(run: Path, samples: int = 500) -> dict:
    """The share of samples (labels 0..9 in turn, the spec's guidance) that a classifier of real
    digits gives the label they were drawn for; and its accuracy on the real test digits."""
    import torch

    from gendsl.data import load
    from gendsl.runtime.run import load_trained
    from tests.e2e.test_families import digit_classifier

    _, model, _ = load_trained(run, "cpu")
    classifier = digit_classifier()
    torch.manual_seed(0)
    x = model.sample_x(samples).clamp(0, 1).reshape(samples, -1).numpy()
    images, labels = load("digits", {}, "test")
    return {"samples_as_label": float((classifier.predict(x) == torch.arange(samples).numpy() % 10).mean()),
            "real_as_label": float(classifier.score(images.reshape(len(images), -1), labels))}


IWAE_5000 = ("--k", "5000", "--full")
IWAE_100 = ("--k", "100")

ROWS = [
    Row("vae", "specs/vae.gen", "binarized MNIST (fixed split)", "nll", 88.71,
        "Burda et al. 2016, appendix: VAE, one stochastic layer (784-200-200-50), k=1, 3,280 epochs; "
        "test NLL by IWAE k=5000; this spec trains at a constant 1e-3 in batches of 100, the vae_burda row "
        "with their recipe", 3280, (1, 10, 100), True, final=IWAE_5000, cheap=IWAE_100),
    Row("vae_burda", "specs/vae_burda.gen", "binarized MNIST (fixed split)", "nll", 88.71,
        "Burda et al. 2016 and their code (yburda/iwae, fixed binarization): the vae row's model with their "
        "recipe, batches of 20, Adam(beta1 0.99, eps 1e-4 on their batch sum), 3,280 epochs in 8 stages of "
        "3^i epochs at 1e-3 x 10^(-i/7); test NLL by IWAE k=5000", 3280, (1, 10, 100), True, final=IWAE_5000,
        cheap=IWAE_100),
    Row("iwae", "specs/iwae.gen", "binarized MNIST (fixed split)", "nll", None,
        "below the vae row at equal epochs (Burda et al. 2016: training on the k=5 bound beats the ELBO)",
        3280, (1, 10, 100), True, final=IWAE_5000, cheap=IWAE_100),
    Row("hvae", "specs/hvae.gen", "binarized MNIST (fixed split)", "nll", None,
        "below the vae row at equal epochs (Burda et al. 2016, table 1, dynamic binarization, 3,280 "
        "epochs: two stochastic layers 85.33 against one 86.76 nats)",
        3280, (1, 10, 100), True, final=IWAE_5000, cheap=IWAE_100),
    Row("made", "specs/made.gen", "binarized MNIST (fixed split)", "nll", 88.40,
        "Germain et al. 2015: one mask, one hidden layer (88.04 with the 32-mask ensemble); exact NLL; 8000 "
        "units and the direct input-to-output connection of the authors' MNIST command (mgermain/MADE), one "
        "random order, early stopping on valid", 12, (12,), False, final=("--best",)),
    Row("made_ensemble", "specs/made_ensemble.gen", "binarized MNIST (fixed split)", "nll", 88.04,
        "Germain et al. 2015: 32 masks (random orders and connectivities), one hidden layer, the exact "
        "mixture of the 32 models; 8000 units and the direct connection as in the made row, 100 epochs (the "
        "authors train to convergence)", 100, (100,), False),
    Row("pixelcnn", "specs/pixelcnn.gen", "binarized MNIST (fixed split)", "nll", 81.30,
        "van den Oord et al. 2016 (Pixel recurrent neural networks), binarized MNIST table: PixelCNN; "
        "exact NLL", 20, (1,), True),
    Row("gated_pixelcnn", "specs/gated_pixelcnn.gen", "binarized MNIST (fixed split)", "nll", None,
        "below the pixelcnn row at equal epochs (81.30 there is PixelCNN's; van den Oord et al. 2016, "
        "Conditional image generation with PixelCNN decoders, reports Gated PixelCNN on CIFAR-10 and "
        "ImageNet only, no binarized-MNIST number); exact NLL", 20, (1,), True),
    Row("rnn_mnist", "specs/rnn_mnist.gen", "binarized MNIST (fixed split)", "nll", 79.20,
        "van den Oord et al. 2016, binarized MNIST table: PixelRNN 79.20, NADE 88.33 nats; exact NLL", 20, (1, 4), True),
    Row("pacgan_ring", "specs/pacgan_ring.gen", "ring of 8 Gaussians (radius 1, std 0.01)", "coverage", 7.9,
        "Lin et al. 2018 (PacGAN), table 1, PacGAN2: 7.9 modes, 95.6% high quality, reverse KL 0.07 (GAN: 6.3, "
        "98.2%, 0.45); 2,500 samples; PacGAN trains 400,000 rounds of batch 100, this row the spec's 50,000", 50000,
        (50000,), False, unit="steps", key="modes",
        also=("high_quality", "reverse_kl")),
    Row("pacgan_grid", "specs/pacgan_grid.gen", "grid of 25 Gaussians (std 0.05)", "coverage", 23.8,
        "Lin et al. 2018 (PacGAN), table 1, PacGAN2: 23.8 modes, 91.3% high quality, reverse KL 0.13 (GAN: 17.3, "
        "94.8%, 0.70); 2,500 samples; PacGAN trains 400,000 rounds of batch 100, this row the spec's 100,000 "
        "of batch 300", 100000, (100000,), False, unit="steps", key="modes",
        also=("high_quality", "reverse_kl")),
    Row("ddpm_digits", "specs/ddpm_digits.gen", "8x8 digits (scikit-learn), 17 levels", "bound", None,
        "independent pixels (17 levels) 2.41 bits/dim on test (2.45 on valid); the bound must beat it by "
        "a wide margin; the lstm_digits and made_digits rows are the exact NLL of autoregressive models of "
        "the same pixels",
        20000, (20000,), False, unit="steps", key="bpd", also=("nats",)),
    Row("lstm_digits", "specs/lstm_digits.gen", "8x8 digits (scikit-learn), 17 levels as categories", "nll", None,
        "the exact-NLL comparison of the ddpm_digits bound (same data, split and levels; bits/dim)",
        3000, (3000,), False, unit="steps", key="bpd", also=("nats",)),
    Row("made_digits", "specs/made_digits.gen", "8x8 digits (scikit-learn), 17 levels as categories", "nll", None,
        "MADE's exact NLL beside the ddpm_digits bound (Germain et al. 2015: a mask ensemble, order- and "
        "connectivity-agnostic, early stopping on valid; same data, split and levels; bits/dim)",
        3000, (3000,), False, unit="steps", key="bpd", also=("nats",), final=("--best",)),
    Row("ddim", "specs/ddim.gen", "swiss roll (2-D)", "mmd", None,
        "the same trained DDPM sampled through all 200 steps of its chain (ancestral_mmd2, the comparison of "
        "Song et al. 2021, table 1: DDIM in few steps against DDPM in all); floor: two real samples",
        10000, (10000,), False, unit="steps", key="mmd2", also=("ancestral_mmd2", "floor"), scores=ancestral_mmd),
    Row("ddpm_guided", "specs/ddpm_guided.gen", "8x8 digits (scikit-learn) and their labels, 17 levels", "bound",
        None, "classifier-free guidance (Ho & Salimans 2022) at w=3, DDIM 50 steps: the share of 500 samples a "
        "classifier of real digits gives the label they were drawn for (samples_as_label), beside its accuracy on "
        "real test digits (real_as_label); the bound is of log p(x | y)",
        8000, (8000,), False, unit="steps", key="bpd", also=("nats", "samples_as_label", "real_as_label"),
        scores=label_agreement),
    Row("cond_flow", "specs/cond_flow.gen", "ring of 8 Gaussians (radius 2, std 0.1), each point's mode label",
        "nll", None, "the true conditional density p(x | mode) of the same test points (true_nats); issue 11's "
        "target: a gap of at most 0.05 nats", 3000, (3000,), False, unit="steps", also=("true_nats", "gap")),
    Row("cond_ebm", "specs/cond_ebm.gen", "8x8 digits (scikit-learn) and their labels", "accuracy", None,
        "JEM (Grathwohl et al. 2020) classifies with the label of lowest energy; issue 11's target: at least "
        "90% of test digits", 1000, (1000,), False, unit="steps", key="accuracy"),
    Row("hmm", "specs/hmm.gen", "sequences of 20 symbols (6) from a random HMM with 4 states", "nll", None,
        "the true HMM that drew the data, its NLL of the same test sequences (true_nats; Rabiner 1989's forward "
        "algorithm); issue 11's target: a gap of at most 0.02 nats; Viterbi: the true HMM's share of states "
        "decoded right", 1000, (1000,), False, unit="steps",
        also=("true_nats", "gap", "viterbi_accuracy", "true_viterbi_accuracy"), scores=viterbi_scores),
    Row("vqvae", "specs/vqvae.gen", "8x8 digits (scikit-learn)", "losses", None,
        "van den Oord et al. 2017 report no digits number; the mean image's MSE 0.074 (valid), a codebook "
        "perplexity of at most 32, and a class entropy of samples of at most log 10 = 2.303",
        2000, (2000,), False, unit="steps", key="recon", also=("perplexity", "sample_class_entropy"),
        scores=vq_scores),
]
BY_NAME = {row.name: row for row in ROWS}


def points(row: Row, cuda: bool) -> tuple[int, ...]:
    return (row.budget,) if cuda or not row.gpu else row.cpu_curve


def run_row(row: Row, out: Path, device: str, cuda: bool, seed: int | None = None) -> dict:
    """Train to each point (resuming), evaluate test there; the curve and what ran. `seed`: the
    training seed when not the spec's own."""
    folder, curve, started = out / (row.name if seed is None else f"{row.name}_seed{seed}"), [], time.time()
    stops = points(row, cuda)
    for i, stop in enumerate(stops):
        start = ["--resume"] if i else ["--force", f"--{row.unit}", str(row.budget)]
        until = ["--until", str(stop)] if stop < row.budget else []
        gendsl("train", row.spec, "--out", str(folder), "--quiet", "--device", device,
               *(["--seed", str(seed)] if seed is not None else []), *start, *until)
        values = evaluate(folder, "--split", "test", "--metric", row.metric, "--device", device,
                          *(row.final if stop >= row.budget else row.cheap))[row.metric]
        if row.scores is not None:
            values = {**values, **row.scores(folder)}
        number = float(values[row.key])
        curve.append({row.unit: stop, row.metric: number, "how": values.get("method", ""),
                      **{key: values[key] for key in row.also},
                      **({"terms": values["terms"]} if "terms" in values else {}),  # a diffusion bound's terms
                      "seconds": round(time.time() - started)})
        print(f"{row.name}: {row.unit} {stop}: {number:.3f} {row.key} {values.get('method', '')}", flush=True)
        result = {"row": row.name, "spec": row.spec, "seed": seed, "device": device, "curve": curve, "paper": row.paper,
                  "reference": row.reference, "complete": stop >= row.budget}
        (folder / "curve.json").write_text(json.dumps(result, indent=2) + "\n")  # after each point: a stopped
        plot(row, curve, folder / "curve.png")                                   # run keeps what it measured
    return result


def plot(row: Row, curve: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([p[row.unit] for p in curve], [p[row.metric] for p in curve], "o-", label=f"{row.spec}")
    if row.paper is not None:
        ax.axhline(row.paper, color="gray", linestyle="--", label=f"paper: {row.paper}"
                   + (f" ({row.budget:,} {row.unit})" if row.gpu else ""))
    ax.set_xscale("log" if len(curve) > 1 else "linear")
    ax.set_xlabel(row.unit)
    ax.set_ylabel(f"test {row.metric} ({row.key})")
    ax.set_title(row.name)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table_row(row: Row, result: dict) -> str:
    last = result["curve"][-1]
    ours = f"{last[row.metric]:.4g} {row.key}" + "".join(f", {key} {last[key]:.4g}" for key in row.also)
    ours += (f", {last['how']}" if last["how"] else "") + f" ({row.unit} {last[row.unit]}"
    ours += ")" if result["complete"] else f" of {row.budget}; CPU curve: " + ", ".join(
        f"{p[row.unit]}: {p[row.metric]:.2f}" for p in result["curve"]) + ")"
    paper = f"{row.paper} ({row.reference})" if row.paper is not None else row.reference
    return f"| {row.name} | {row.data} | {ours} | {paper} | `bench/reproduce.py --only {row.name}` |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated rows: " + ", ".join(BY_NAME))
    parser.add_argument("--list", action="store_true", help="print the rows and what each would run here")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument("--out", default="runs/reproduce")
    parser.add_argument("--seed", type=int, default=None,
                        help="a training seed other than the spec's own (the table's); writes OUT/NAME_seedN")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(BY_NAME)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown row {', '.join(unknown)}; the rows are {', '.join(BY_NAME)}")
    import torch

    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if args.list:
        for name in names:
            row = BY_NAME[name]
            print(f"{name}: {row.spec}, {row.metric}, {row.unit} {list(points(row, cuda))}"
                  f"{' (GPU budget ' + str(row.budget) + ')' if row.gpu and not cuda else ''}")
        return
    device = args.device if args.device != "auto" else "cuda" if cuda else "cpu"
    results = [run_row(BY_NAME[name], Path(args.out), device, cuda, args.seed) for name in names]
    print("\n| row | data | ours (test) | paper / reference | command |\n|---|---|---|---|---|")
    for result in results:
        print(table_row(BY_NAME[result["row"]], result))


if __name__ == "__main__":
    main()
