"""Metrics over a held-out split, one run-time function per entry of the METRICS registry
(gendsl/library/training.py names it as the entry's `runtime`). Each takes the evaluation
`Context` and the metric's options. Likelihoods are per sample in nats, with bits/dim beside
them: exact where the model allows (flows, autoregressive, discrete latents summed out), else
the IWAE bound (encoder models) or the variational bound (diffusion)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from gendsl.data import DataError
from gendsl.diagnostics import GendslError, error
from gendsl.library.entries import resolve_runtime
from gendsl.library.sources import SOURCES
from gendsl.library.training import METRICS
from gendsl.spec import RunSpec
from gendsl.runtime.data import Group, held_out_rows, iterate
from gendsl.runtime.draw import draw


@dataclass
class Context:
    """What every metric may read: the trained model, its contract and the held-out data."""

    model: torch.nn.Module
    spec: RunSpec
    groups: list[Group]
    batch: int = 500
    quiet: bool = True


ROWS_PER_CHUNK = 200_000  # k * batch rows a single IWAE forward pass may hold


def _progress(total: int, what: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=what, unit="batch", disable=quiet, leave=False)


def data_dims(spec: RunSpec, var: str) -> int:
    return int(np.prod(spec.variable(var).shape))


@torch.no_grad()
def per_sample(fn, groups: list[Group], batch: int, quiet: bool, what: str) -> torch.Tensor:
    values = []
    n = len(groups[0])
    bar = _progress(math.ceil(n / batch), what, quiet)
    for chunk in iterate(groups, batch):
        values.append(fn(chunk).float())
        bar.update(1)
    bar.close()
    return torch.cat(values)


def iwae_values(model, groups: list[Group], k: int, batch: int, quiet: bool) -> torch.Tensor:
    """log (1/k) sum_i w_i per sample, the k draws taken in chunks that fit in memory."""
    def one(chunk):
        size = next(iter(chunk.values())).shape[0]
        per = max(1, min(k, ROWS_PER_CHUNK // size))
        parts, done = [], 0
        while done < k:
            take = min(per, k - done)
            parts.append(torch.logsumexp(model.log_weights(chunk, take).double(), dim=0))
            done += take
        return torch.logsumexp(torch.stack(parts), dim=0) - math.log(k)
    return per_sample(one, groups, batch, quiet, f"iwae k={k}")


def likelihood(ctx: Context, k: int, prefer: str = "nll") -> dict:
    """-log p(x) per sample, by the best method the model has (or the one `prefer` names)."""
    model, spec, groups, batch, quiet = ctx.model, ctx.spec, ctx.groups, ctx.batch, ctx.quiet
    found = spec.likelihood
    terms = None
    if found.log_prob and prefer == "nll":
        var, values, how = found.log_prob, -per_sample(model.log_prob, groups, batch, quiet, "log p(x)"), "exact"
    elif found.log_weights and prefer in ("nll", "iwae"):
        var, values, how = found.log_weights, -iwae_values(model, groups, k, max(1, batch // 4), quiet), \
            f"IWAE bound, k={k}"
    elif found.bound and prefer in ("nll", "bound"):
        terms = per_sample(model.bound_terms, groups, batch, quiet, "bound")
        var, values, how = found.bound, terms.sum(-1), "variational bound"
    elif found.log_weights and prefer == "elbo":
        var, values, how = found.log_weights, -per_sample(model.elbo, groups, batch, quiet, "elbo"), \
            "negative ELBO"
    else:
        raise GendslError(error("E312", f"model {spec.model} has no {prefer} to evaluate",
                                hint="likelihoods exist for flows, autoregressive models, discrete latents "
                                     "summed out, encoder models (IWAE) and diffusions (bound)"))
    nats = float(values.mean())
    dims = data_dims(spec, var)
    result = {"nats": nats, "bpd": nats / (dims * math.log(2)), "stderr": float(values.std() / math.sqrt(len(values))),
              "method": how, "n": len(values)}
    if terms is not None:  # a diffusion's bound: L_0 (decoder), the KL terms of the steps between, L_T (prior)
        result["terms"] = dict(zip(("L_0", "L_1..L_T-1", "L_T"), map(float, terms.mean(0))))
    return {**result, **known_density(spec, var, groups, values)}


def nll(ctx: Context, k: int = 5000) -> dict:
    """Negative log-likelihood in nats and bits/dim: exact where the model allows."""
    return likelihood(ctx, k)


def iwae(ctx: Context, k: int = 5000) -> dict:
    """The IWAE bound with k importance samples."""
    return likelihood(ctx, k, prefer="iwae")


def elbo(ctx: Context) -> dict:
    """The negative evidence lower bound."""
    return likelihood(ctx, 1, prefer="elbo")


def bound(ctx: Context) -> dict:
    """The diffusion variational bound."""
    return likelihood(ctx, 1, prefer="bound")


def known_density(spec: RunSpec, var: str, groups: list[Group], values: torch.Tensor) -> dict:
    """For data with a known density (ring, grid): the true NLL of the same points and the gap.

    The gap (model NLL minus true NLL, point by point) estimates KL(data || model) without the
    sampling noise of comparing a finite test set with the population entropy."""
    from gendsl.data.synthetic import entropy, log_density

    data = spec.variable(var)
    if "known_density" not in SOURCES[data.source].tags:
        return {}
    args = {k: v for k, v in data.args.items() if k != "n" and v is not None}
    group = next(g for g in groups if var in g.names)
    x = group.tensors[group.names.index(var)]
    points = x.double().cpu().numpy().reshape(len(x), -1)  # the declared type may reshape the source's rows
    given = spec.likelihood.given
    if given and not _is_mode_label(spec, var, given):
        return {}
    labels = group.tensors[group.names.index(given[0])].cpu().numpy() if given else None
    true = -torch.as_tensor(log_density(data.source, points, labels=labels, **args))
    gap = values.double().cpu() - true
    return {"true_nats": float(true.mean()), "gap": float(gap.mean()),
            "gap_stderr": float(gap.std() / math.sqrt(len(gap))),
            "entropy": entropy(data.source, n=200_000, conditional=bool(given), **args)}


def _is_mode_label(spec: RunSpec, var: str, given: tuple[str, ...]) -> bool:
    """A likelihood given the mode label of the same ring or grid data (its true density is known)."""
    return len(given) == 1 and spec.variable(given[0]).group == spec.variable(var).group


def coverage(ctx: Context, k: float = 3.0, samples: int = 2500) -> dict:
    """Modes hit within k std and the share of high-quality samples (PacGAN)."""
    from gendsl.data.synthetic import coverage as measure, modes

    spec = ctx.spec
    data = next((v for v in spec.data if SOURCES[v.source].density and v.name in spec.samples), None)
    if data is None:
        raise GendslError(error("E312", "coverage needs a `sample` of a variable whose data come from a source "
                                "with known modes (ring, grid)",
                                hint="mode coverage counts the modes of a mixture that samples reach"))
    name = data.name
    args = {a: v for a, v in data.args.items() if a != "n" and v is not None}
    centres, std = modes(data.source, **args)
    x = draw(ctx.model, spec, name, samples, ctx.groups).float().cpu().numpy().reshape(samples, -1)
    group = next(g for g in ctx.groups if name in g.names)
    real = held_out_rows(ctx.groups, min(samples, len(group)))[name].float().cpu().numpy()
    result = measure(x, centres, std, k, reference=real)
    return {"modes": int(result["modes_covered"]), "of": len(centres), "high_quality": float(result["high_quality"]),
            "reverse_kl": result["reverse_kl"], "samples": samples, "real": len(real), "k": k}


def _halves(ctx: Context, samples: int):
    """Samples of the first `sample` statement, and two disjoint halves of the held-out data of
    as many rows (at most `samples`), in the held-out order (runtime/data.py): `a` to compare
    with, the rows a draw reads; `b` for the noise floor (a second real sample); in the rows'
    declared shape."""
    spec, groups = ctx.spec, ctx.groups
    name = next(iter(spec.samples))
    rows = len(next(g for g in groups if name in g.names))
    half = min(samples, rows // 2)
    if half < 1:
        raise GendslError(error("E403", f"this metric compares samples with two halves of the held-out data, but "
                                f"it has {rows} row", hint="use more data (a synthetic source's n gives "
                                "n // 4 held-out rows: n >= 8)"))
    real = held_out_rows(groups, 2 * half)[name].float()
    x = draw(ctx.model, spec, name, half, groups).float()
    return x.reshape(half, *real.shape[1:]), real[:half], real[half:]


def _references(ctx: Context, samples: int):
    """Samples, and two disjoint halves of the held-out data (see _halves), flattened; and `b`
    with its coordinates shuffled independently, a baseline with the right marginals and no
    structure."""
    x, a, b = (t.reshape(len(t), -1) for t in _halves(ctx, samples))
    half = len(x)
    generator = torch.Generator().manual_seed(0)
    shuffled = torch.stack([b[torch.randperm(half, generator=generator), j] for j in range(b.shape[1])], 1)
    return x, a, b, shuffled


def _mmd2(x: torch.Tensor, y: torch.Tensor, scale: float) -> float:
    both = torch.cat([x, y])
    distances = torch.cdist(both, both) ** 2
    kernel = torch.exp(-distances / (distances.median().clamp_min(1e-12) * scale))
    n = len(x)
    return float(kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean())


def mmd(ctx: Context, samples: int = 2000) -> dict:
    """Squared MMD with a Gaussian kernel of bandwidth median/20 (the median heuristic alone is
    too wide to see thin structure), beside the noise floor and the shuffled baseline."""
    x, a, b, shuffled = _references(ctx, samples)
    return {"mmd2": _mmd2(x, a, 0.05), "floor": _mmd2(b, a, 0.05), "shuffled": _mmd2(shuffled, a, 0.05),
            "samples": len(x)}


def _swd(x: torch.Tensor, y: torch.Tensor, projections: int) -> float:
    generator = torch.Generator().manual_seed(1)
    directions = torch.randn(x.shape[1], projections, generator=generator).to(x.device)
    directions = directions / directions.norm(dim=0, keepdim=True)
    return float((torch.sort(x @ directions, 0)[0] - torch.sort(y @ directions, 0)[0]).abs().mean())


def swd(ctx: Context, samples: int = 2000, projections: int = 128) -> dict:
    """Sliced Wasserstein-1 distance over fixed random directions, beside the noise floor (two
    real samples) and the shuffled-coordinates baseline."""
    x, a, b, shuffled = _references(ctx, samples)
    return {"swd": _swd(x, a, projections), "floor": _swd(b, a, projections),
            "shuffled": _swd(shuffled, a, projections), "samples": len(x), "projections": projections}


def _image_sets(ctx: Context, samples: int, metric: str):
    """The feature network of the first sample's image data set; samples; held-out images to
    compare them with; and as many other held-out images, compared with the same ones for the
    real-vs-real value. Samples computed from held-out rows (reconstructions, labels of a
    conditional model) read those other rows, so a copy of its input would score the floor."""
    from gendsl.evaluation.features import feature_network
    from gendsl.library.sources import image_shape

    name = next(iter(ctx.spec.samples), None)
    var = next((v for v in ctx.spec.data if v.name == name), None)
    shape = image_shape(var.source, var.kind, tuple(var.shape)) if var is not None else None
    if shape is None:
        what = "has no `sample` statement" if name is None else f"samples `{name}`, " + (
            f"{var.kind}[{', '.join(map(str, var.shape))}] from {var.source}(...)" if var else "not a data variable")
        raise GendslError(error("E312", f"{metric} compares samples with held-out images, but model "
                                f"{ctx.spec.model} {what}",
                                hint="fid, kid and prd apply to a first `sample` of image data: real or bin "
                                     "[C, H, W], or the pixels of digits, binarized_mnist, mnist_idx, paired_mnist "
                                     "or image_folder; for other data use mmd or swd"))
    rows = len(next(g for g in ctx.groups if name in g.names))
    if rows < 4:  # like the kind of data, something only the run can tell: E312, not a data error
        raise GendslError(error("E312", f"{metric} compares two halves of the held-out images, at least 2 each, but "
                                f"the split has {rows}", hint="held-out splits of file sources are a tenth of the "
                                "rows each: use 40 images or more"))
    x, read, real = _halves(ctx, samples)  # 2 rows or more each; the draw reads the first half's rows
    return feature_network(var, shape), x, real, read


def fid(ctx: Context, samples: int = 1000) -> dict:
    """Frechet distance in the features of a classifier of the data set, beside the same distance
    between two halves of held-out data (what a perfect model gets with this many samples)."""
    from gendsl.evaluation.quality import frechet

    network, x, real, other = _image_sets(ctx, samples, "fid")
    return {"fid": frechet(network, x, real), "real_vs_real_fid": frechet(network, other, real), "samples": len(x)}


def kid(ctx: Context, samples: int = 1000, subsets: int = 100, subset_size: int = 100) -> dict:
    """Kernel distance (mean and std over subsets) in the classifier's features, beside the same
    between two halves of held-out data."""
    from gendsl.evaluation.quality import kernel, subset_rows

    network, x, real, other = _image_sets(ctx, samples, "kid")
    (value, std), (floor, floor_std) = (kernel(network, t, real, subsets, subset_size) for t in (x, other))
    return {"kid": value, "kid_std": std, "real_vs_real_kid": floor, "real_vs_real_kid_std": floor_std,
            "samples": len(x), "subset_size": subset_rows(subset_size, len(x))}


def prd(ctx: Context, samples: int = 1000, k: int = 3) -> dict:
    """Improved precision and recall in the classifier's features (k-NN manifolds), beside the
    same between two halves of held-out data."""
    from gendsl.evaluation.features import extract
    from gendsl.evaluation.quality import precision_recall

    network, x, real, other = _image_sets(ctx, samples, "prd")
    k = min(k, len(x) - 1)  # a set of n rows has n - 1 neighbours
    fx, freal, fother = (extract(network, t) for t in (x, real, other))
    (precision, recall), (floor_precision, floor_recall) = (precision_recall(f, freal, k) for f in (fx, fother))
    return {"precision": precision, "recall": recall, "real_vs_real_precision": floor_precision,
            "real_vs_real_recall": floor_recall, "samples": len(x), "k": k}


def accuracy(ctx: Context) -> dict:
    """The share of held-out rows whose label the model predicts: the label of lowest energy."""
    found = ctx.spec.classifier
    if found is None:  # a run compiled before `predict` existed, or a model without a label energy
        raise GendslError(error("E312", f"model {ctx.spec.model} has no label energy to classify with",
                                hint="accuracy needs an energy F(x, y: cat[K]); retrain the run to recompile it"))
    right = total = 0
    with torch.no_grad():
        for chunk in iterate(ctx.groups, ctx.batch):
            right += int((ctx.model.predict(chunk) == chunk[found.y]).sum())
            total += len(chunk[found.y])
    return {"accuracy": right / total, "n": total}


def recon(ctx: Context) -> dict:
    """Squared and absolute error of a sample computed from held-out data against the data it
    should equal (`sample x = decode(encode(x))`, `sample b = G(a)`). For a translation, also the
    absolute error of copying each input of the same shape: the baseline a model has to beat."""
    spec, groups = ctx.spec, ctx.groups
    name, info = next(iter(spec.samples.items()))
    if not info.needs_batch:
        raise GendslError(error("E312", f"recon needs a sample computed from held-out data, but sample "
                                f"`{name}` draws from the model alone",
                                hint="recon applies to autoencoders (`sample x = decode(encode(x))`) and "
                                     "translations (`sample b = G(a)`); for samples use mmd, swd or coverage"))
    paired = next(g for g in groups if name in g.names).names
    if any(v not in paired for v in info.data):
        raise GendslError(error("E312", f"recon compares sample `{name}` with the held-out rows it is "
                                f"computed from, but {', '.join(info.data)} and {name} are unpaired "
                                "(separate `data` lines)", hint="for unpaired translation, use --metric losses"))
    per_sample = {}
    for chunk in iterate(groups, ctx.batch):
        out = draw(ctx.model, spec, name, len(chunk[name]), [Group(list(chunk), list(chunk.values()))])
        target = chunk[name].float()
        difference = out.float() - target
        errors = {"mse": difference ** 2, "l1": difference.abs()}
        errors |= {f"copy_{other}_l1": (value.float() - target).abs() for other, value in chunk.items()
                   if other != name and value.shape == target.shape}
        for key, error_ in errors.items():
            per_sample.setdefault(key, []).append(error_.reshape(len(target), -1).mean(1))
    return {key: float(torch.cat(values).mean()) for key, values in per_sample.items()}


@torch.no_grad()
def viterbi(ctx: Context) -> dict:
    """The most probable path of the chain for each held-out sequence (the model's viterbi_Z): the
    mean log p(x, z*), and beside true states declared on x's data line (`data x: ..., s: cat[K, T]
    from hmm(...)`), the share of steps decoded right under the best relabelling of the states (a
    model learns its states in any order), with the true model's own share for hmm data."""
    spec, model = ctx.spec, ctx.model
    var = spec.likelihood.log_prob
    chain = next(name for name in spec.latents if hasattr(model, f"viterbi_{name}"))
    group = next(g for g in ctx.groups if var in g.names)
    x = group.tensors[group.names.index(var)]
    paths, joints = [], []
    for start in range(0, len(x), ctx.batch):
        path, log_joint = getattr(model, f"viterbi_{chain}")(x[start:start + ctx.batch])
        paths.append(path.cpu())
        joints.append(log_joint.double().cpu())
    decoded = torch.cat(paths).numpy()
    result = {"log_joint": float(torch.cat(joints).mean()), "n": len(decoded)}
    data = spec.variable(var)
    truth = next((name for name in group.names if name != var and spec.variable(name).kind == "cat"
                  and tuple(spec.variable(name).shape) == decoded.shape[1:]), None)
    if truth is None:
        return result
    states = group.tensors[group.names.index(truth)].cpu().numpy()
    accuracy, relabelling = _relabelled_accuracy(decoded, states)
    result |= {"accuracy": accuracy, "relabelling": relabelling, "states": truth}
    if data.source == "hmm":  # the ceiling: the true model's own Viterbi paths
        from gendsl.data.synthetic import hmm_viterbi

        args = {k: v for k, v in data.args.items() if k != "n" and v is not None}
        result["true_accuracy"] = float((hmm_viterbi(x.cpu().numpy(), **args) == states).mean())
    return result


def _relabelled_accuracy(decoded: np.ndarray, truth: np.ndarray) -> tuple[float, str]:
    """The share of steps where decoded states equal the truth after the best one-to-one relabelling
    (every permutation, up to 8 states), or, with more states, each mapped to its most frequent truth."""
    size = int(max(decoded.max(), truth.max())) + 1
    counts = np.zeros((size, size))
    np.add.at(counts, (decoded.ravel(), truth.ravel()), 1)
    if size > 8:
        return float(counts.max(axis=1).sum() / decoded.size), "many-to-one"
    perms = np.array(list(itertools.permutations(range(size))))
    return float(counts[np.arange(size), perms].sum(axis=1).max() / decoded.size), "one-to-one"


@torch.no_grad()
def losses(ctx: Context) -> dict:
    """Every loss of the model, averaged over the held-out batches."""
    out = {}
    for name in ctx.spec.losses:
        values = [float(getattr(ctx.model, f"loss_{name}")(chunk)) for chunk in iterate(ctx.groups, ctx.batch, ctx.spec.pack)]
        out[name] = float(np.mean(values))
    return out


def importance_samples(metric: str, k: int | None) -> dict:
    """`--k` for the likelihood metrics that take importance samples (not coverage's k std)."""
    from gendsl.library.signature import parameters
    from gendsl.library.training import metric_needs

    entry = METRICS.get(metric)
    takes_k = entry is not None and metric_needs(metric) in ("likelihood", "encoder") \
        and any(p.name == "k" for p in parameters(entry.rule, entry.skip))
    return {"k": k} if k is not None and takes_k else {}


def sample_count(metric: str, samples: int | None) -> dict:
    """`--samples` for the metrics that draw samples (mmd, swd, coverage, fid, kid, prd)."""
    from gendsl.library.signature import parameters

    entry = METRICS.get(metric)
    takes = entry is not None and any(p.name == "samples" for p in parameters(entry.rule, entry.skip))
    return {"samples": samples} if samples is not None and takes else {}


def run_metric(ctx: Context, name: str, options: dict) -> dict:
    """One metric by name: its entry checks the options (defaults filled in) and names the
    function that computes it."""
    from gendsl.diagnostics import did_you_mean
    from gendsl.library.signature import EntryError, bind, call_rule

    if name not in METRICS:
        raise GendslError(error("E505", f"unknown metric '{name}'",
                                hint=did_you_mean(name, METRICS) or f"metrics: {', '.join(METRICS)}"))
    entry = METRICS[name]
    values, problems = bind(name, entry.rule, [], options, skip=entry.skip)
    try:
        if problems:
            raise EntryError(*problems[0])
        rule = call_rule(entry.rule, [], values, skip=entry.skip)
    except EntryError as exc:
        raise GendslError(error("E505", f"metric {name}: {exc.message}", hint=exc.hint or entry.signature)) from None
    try:
        return resolve_runtime(entry.runtime)(ctx, **rule.options)
    except DataError as exc:  # held-out data that do not fit what the metric needs
        raise GendslError(error(exc.code, f"metric {name}: {exc.message}", hint=exc.hint)) from None
