"""Per-sample anomaly scores: how unlikely each row of a data file is under a trained model
(negative log-likelihood in nats and bits/dim; exact, IWAE bound or diffusion bound)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from gendsl.data import DataError
from gendsl.diagnostics import GendslError, error
from gendsl.evaluation.metrics import data_dims, iwae_values, per_sample
from gendsl.spec import DataVar, RunSpec
from gendsl.runtime.data import Group, convert


def read_rows(spec: RunSpec, var: DataVar, path: str) -> list[Group]:
    """The rows of data variable `var` to score: a .npy/.npz file (the array named like the
    variable, else its first one) or `split:valid` / `split:test`."""
    from gendsl.runtime.draw import held_out

    if path.startswith("split:"):
        split = path.split(":", 1)[1]
        if split not in ("train", "valid", "test"):
            raise GendslError(error("E505", f"unknown split '{split}'", hint="use split:valid or split:test"))
        return held_out(spec, torch.device("cpu"), split)
    try:
        if path.endswith(".npy"):
            array = np.load(_existing(path), allow_pickle=False)
        else:
            with np.load(_existing(path), allow_pickle=False) as archive:
                key = var.name if var.name in archive.files else archive.files[0]
                array = archive[key]
        tensor = convert(var, np.asarray(array), "scored")
    except DataError as exc:
        raise GendslError(error(exc.code, exc.message, hint=exc.hint)) from None
    except (OSError, ValueError) as exc:
        raise GendslError(error("E402", f"cannot read {path}: {exc}", hint="score .npy or .npz files")) from None
    return [Group([var.name], [tensor])]


def _existing(path: str) -> str:
    if not Path(path).exists():
        raise DataError("E401", f"no such file: {path}", "give the path of a .npy or .npz file")
    return path


def _scored_var(spec: RunSpec) -> DataVar:
    name = spec.likelihood.scored()
    if name is None:
        raise GendslError(error("E312", f"model {spec.model} has no likelihood to score with",
                                hint="anomaly scores need a flow, an autoregressive model, discrete latents "
                                     "summed out, an encoder (IWAE) or a diffusion (bound)"))
    return spec.variable(name)


def scores(model, spec: RunSpec, groups: list[Group], k: int, batch: int, quiet: bool) -> np.ndarray:
    """Negative log-likelihood per row, in nats."""
    found = spec.likelihood
    if found.log_prob:
        values = -per_sample(model.log_prob, groups, batch, quiet, "log p(x)")
    elif found.log_weights:
        values = -iwae_values(model, groups, k, max(1, batch // 4), quiet)
    else:
        values = per_sample(model.bound, groups, batch, quiet, "bound")
    return values.double().cpu().numpy()


def write_csv(path: Path, nats: np.ndarray, dims: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        handle.write("index,nll_nats,bits_per_dim\n")
        for i, value in enumerate(nats):
            handle.write(f"{i},{value:.6f},{value / (dims * math.log(2)):.6f}\n")


def score_file(model, spec: RunSpec, data: str, out: Path, k: int, batch: int, quiet: bool) -> tuple[int, float]:
    var = _scored_var(spec)
    nats = scores(model, spec, read_rows(spec, var, data), k, batch, quiet)
    write_csv(out, nats, data_dims(spec, var.name))
    return len(nats), float(nats.mean())
