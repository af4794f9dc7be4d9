"""Metrics over a held-out split. Likelihoods are per sample in nats, with bits/dim beside them:
exact where the model allows (flows, autoregressive, discrete latents summed out), else the IWAE
bound (encoder models) or the variational bound (diffusion)."""

from __future__ import annotations

import math

import numpy as np
import torch

from gendsl.diagnostics import GendslError, error
from gendsl.train.data import Group, iterate
from gendsl.train.draw import draw

ROWS_PER_CHUNK = 200_000  # k * batch rows a single IWAE forward pass may hold


def _progress(total: int, what: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=what, unit="batch", disable=quiet, leave=False)


def data_dims(spec: dict, var: str) -> int:
    shape = next(d["shape"] for d in spec["data"] if d["name"] == var)
    return int(np.prod(shape)) if shape else 1


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


def likelihood(model, spec: dict, groups, k: int, batch: int, quiet: bool, prefer: str = "nll") -> dict:
    found = spec["likelihood"]
    if "log_prob" in found and prefer == "nll":
        var, values, how = found["log_prob"], -per_sample(model.log_prob, groups, batch, quiet, "log p(x)"), "exact"
    elif "log_weights" in found and prefer in ("nll", "iwae"):
        var, values, how = found["log_weights"], -iwae_values(model, groups, k, max(1, batch // 4), quiet), \
            f"IWAE bound, k={k}"
    elif "bound" in found and prefer in ("nll", "bound"):
        var, values, how = found["bound"], per_sample(model.bound, groups, batch, quiet, "bound"), \
            "variational bound"
    elif "log_weights" in found and prefer == "elbo":
        var, values, how = found["log_weights"], -per_sample(model.elbo, groups, batch, quiet, "elbo"), \
            "negative ELBO"
    else:
        raise GendslError(error("E312", f"model {spec['model']} has no {prefer} to evaluate",
                                hint="likelihoods exist for flows, autoregressive models, discrete latents "
                                     "summed out, encoder models (IWAE) and diffusions (bound)"))
    nats = float(values.mean())
    dims = data_dims(spec, var)
    result = {"nats": nats, "bpd": nats / (dims * math.log(2)), "stderr": float(values.std() / math.sqrt(len(values))),
              "method": how, "n": len(values)}
    return {**result, **known_density(spec, var, groups, values)}


def known_density(spec: dict, var: str, groups: list[Group], values: torch.Tensor) -> dict:
    """For data with a known density (ring, grid): the true NLL of the same points and the gap.

    The gap (model NLL minus true NLL, point by point) estimates KL(data || model) without the
    sampling noise of comparing a finite test set with the population entropy."""
    from gendsl.data.synthetic import entropy, log_density

    data = next(d for d in spec["data"] if d["name"] == var)
    if data["source"] not in ("ring", "grid"):
        return {}
    args = {k: v for k, v in data["args"].items() if k != "n" and v is not None}
    x = next(g.tensors[g.names.index(var)] for g in groups if var in g.names)
    true = -torch.as_tensor(log_density(data["source"], x.double().cpu().numpy(), **args))
    gap = values.double().cpu() - true
    return {"true_nats": float(true.mean()), "gap": float(gap.mean()),
            "gap_stderr": float(gap.std() / math.sqrt(len(gap))),
            "entropy": entropy(data["source"], n=200_000, **args)}


def coverage(model, spec: dict, samples: int, k: float) -> dict:
    from gendsl.data.synthetic import coverage as measure, modes

    data = next((d for d in spec["data"] if d["source"] in ("ring", "grid")), None)
    if data is None:
        raise GendslError(error("E312", "coverage needs data from ring(...) or grid(...)",
                                hint="mode coverage is defined for mixtures with known modes"))
    name = data["name"] if data["name"] in spec["samples"] else next(iter(spec["samples"]))
    args = {a: v for a, v in data["args"].items() if a != "n" and v is not None}
    centres, std = modes(data["source"], **args)
    x = draw(model, spec, name, samples, None).float().cpu().numpy().reshape(samples, -1)
    result = measure(x, centres, std, k)
    return {"modes": int(result["modes_covered"]), "of": len(centres), "high_quality": float(result["high_quality"]),
            "samples": samples, "k": k}


def _references(model, spec: dict, groups: list[Group], samples: int):
    """Samples, and two disjoint halves of the held-out data: `a` to compare with, `b` for the
    noise floor (a second real sample) and, with its coordinates shuffled independently, a
    baseline with the right marginals and no structure."""
    name = next(iter(spec["samples"]))
    group = next(g for g in groups if name in g.names)
    real = group.tensors[group.names.index(name)].float()
    half = min(samples, len(real) // 2)
    a, b = real[:half].reshape(half, -1), real[half:2 * half].reshape(half, -1)
    x = draw(model, spec, name, half, groups).float().reshape(half, -1)
    generator = torch.Generator().manual_seed(0)
    shuffled = torch.stack([b[torch.randperm(half, generator=generator), j] for j in range(b.shape[1])], 1)
    return x, a, b, shuffled


def _mmd2(x: torch.Tensor, y: torch.Tensor, scale: float) -> float:
    both = torch.cat([x, y])
    distances = torch.cdist(both, both) ** 2
    kernel = torch.exp(-distances / (distances.median().clamp_min(1e-12) * scale))
    n = len(x)
    return float(kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean())


def mmd(model, spec, groups, samples: int) -> dict:
    """Squared MMD with a Gaussian kernel of bandwidth median/20 (the median heuristic alone is
    too wide to see thin structure), beside the noise floor and the shuffled baseline."""
    x, a, b, shuffled = _references(model, spec, groups, samples)
    return {"mmd2": _mmd2(x, a, 0.05), "floor": _mmd2(b, a, 0.05), "shuffled": _mmd2(shuffled, a, 0.05),
            "samples": len(x)}


def _swd(x: torch.Tensor, y: torch.Tensor, projections: int) -> float:
    generator = torch.Generator().manual_seed(1)
    directions = torch.randn(x.shape[1], projections, generator=generator).to(x.device)
    directions = directions / directions.norm(dim=0, keepdim=True)
    return float((torch.sort(x @ directions, 0)[0] - torch.sort(y @ directions, 0)[0]).abs().mean())


def swd(model, spec, groups, samples: int, projections: int) -> dict:
    """Sliced Wasserstein-1 distance over fixed random directions, beside the noise floor (two
    real samples) and the shuffled-coordinates baseline."""
    x, a, b, shuffled = _references(model, spec, groups, samples)
    return {"swd": _swd(x, a, projections), "floor": _swd(b, a, projections),
            "shuffled": _swd(shuffled, a, projections), "samples": len(x), "projections": projections}


def reconstruction(model, spec, groups, batch: int) -> dict:
    """Squared and absolute error of a sample computed from held-out data against the data it
    should equal (`sample x = decode(encode(x))`, `sample b = G(a)`). For a translation, also the
    absolute error of copying each input of the same shape: the baseline a model has to beat."""
    name, info = next(iter(spec["samples"].items()))
    if not info["needs_batch"]:
        raise GendslError(error("E312", f"recon needs a sample computed from held-out data, but sample "
                                f"`{name}` draws from the model alone",
                                hint="recon applies to autoencoders (`sample x = decode(encode(x))`) and "
                                     "translations (`sample b = G(a)`); for samples use mmd, swd or coverage"))
    paired = next(g for g in groups if name in g.names).names
    if any(v not in paired for v in info.get("data", [])):
        raise GendslError(error("E312", f"recon compares sample `{name}` with the held-out rows it is "
                                f"computed from, but {', '.join(info['data'])} and {name} are unpaired "
                                "(separate `data` lines)", hint="for unpaired translation, use --metric losses"))
    per_sample = {}
    for chunk in iterate(groups, batch):
        out = draw(model, spec, name, len(chunk[name]), [Group(list(chunk), list(chunk.values()))])
        target = chunk[name].float()
        difference = out.float() - target
        errors = {"mse": difference ** 2, "l1": difference.abs()}
        errors |= {f"copy_{other}_l1": (value.float() - target).abs() for other, value in chunk.items()
                   if other != name and value.shape == target.shape}
        for key, error_ in errors.items():
            per_sample.setdefault(key, []).append(error_.reshape(len(target), -1).mean(1))
    return {key: float(torch.cat(values).mean()) for key, values in per_sample.items()}


@torch.no_grad()
def losses(model, spec, groups, batch: int) -> dict:
    out = {}
    for name in spec["losses"]:
        values = [float(getattr(model, f"loss_{name}")(chunk)) for chunk in iterate(groups, batch)]
        out[name] = float(np.mean(values))
    return out


def run_metric(model, spec: dict, groups, name: str, options: dict, batch: int, quiet: bool) -> dict:
    """One metric by name with its options."""
    k = options.get("k", 5000)
    if name in ("nll", "bpd"):
        return likelihood(model, spec, groups, k, batch, quiet)
    if name == "iwae":
        return likelihood(model, spec, groups, k, batch, quiet, prefer="iwae")
    if name == "elbo":
        return likelihood(model, spec, groups, k, batch, quiet, prefer="elbo")
    if name == "bound":
        return likelihood(model, spec, groups, k, batch, quiet, prefer="bound")
    if name == "coverage":
        return coverage(model, spec, options.get("samples", 2500), options.get("k", 3.0))
    if name == "mmd":
        return mmd(model, spec, groups, options.get("samples", 2000))
    if name == "swd":
        return swd(model, spec, groups, options.get("samples", 2000), options.get("projections", 128))
    if name == "recon":
        return reconstruction(model, spec, groups, batch)
    if name == "losses":
        return losses(model, spec, groups, batch)
    raise GendslError(error("E505", f"unknown metric '{name}'"))
