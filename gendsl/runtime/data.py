"""Data for a run: every `data` line loaded into device tensors of its declared type, and an
index batcher (no per-sample Python, no host sync).

One rule for training and evaluation (docs/semantics.md, "Data"): variables of one `data` line
are paired row by row; separate `data` lines are independent. Training shuffles each line with
its own order; held-out data read the first line row by row and every other line in a fixed
order of its own, so that no pairing between lines appears on valid or test either. A held-out
split is loaded in a fixed shuffled order, so that its first rows are a fair sample even of a file
stored sorted (binarized MNIST's test digits are sorted by class)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gendsl.data import DataError, load
from gendsl.diagnostics import NO_SPAN, GendslError, error
from gendsl.spec import DataVar, RunSpec


@dataclass
class Group:
    """The variables of one `data` line: equal length, batched together."""

    names: list[str]
    tensors: list[torch.Tensor]

    def __len__(self) -> int:
        return len(self.tensors[0])


def convert(var: DataVar, array: np.ndarray, split: str) -> torch.Tensor:
    """One data variable's rows as a tensor of its declared kind and shape, or a DataError
    (E403) naming the split (`scored` for `gendsl score`) when they do not fit."""
    n = len(array)
    shape = tuple(var.shape)
    per_sample = int(np.prod(array.shape[1:], dtype=np.int64))
    if var.kind == "cat":
        # cat[K, T]: T labels, read in any shape of T values (the checker allows the same reshape)
        if per_sample != int(np.prod(shape, dtype=np.int64)) or not np.issubdtype(array.dtype, np.integer):
            declared = ", ".join(map(str, (var.classes, *shape)))
            raise DataError("E403", f"'{var.name}' is declared cat[{declared}] but the {split} array "
                            f"has shape {array.shape} and type {array.dtype}",
                            "labels are one integer per sample" + (f", {shape[0]} per sequence" if shape else ""))
        if n and (array.min() < 0 or array.max() >= var.classes):
            raise DataError("E403", f"'{var.name}' is cat[{var.classes}] but the labels range over "
                            f"{array.min()}..{array.max()}", f"declare cat[{int(array.max()) + 1}]")
        return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.long).reshape((n, *shape))
    wanted = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if per_sample != wanted:
        raise DataError("E403", f"'{var.name}' is declared {var.kind}[{', '.join(map(str, shape))}] "
                        f"({wanted} values per sample) but the {split} data have shape {array.shape[1:]} "
                        f"({per_sample} values)", "declare the type the file holds (a reshape must keep "
                        "the number of values)")
    if var.kind == "bin" and n and not ((array == 0) | (array == 1)).all():  # np.isin sorts: 2x slower
        raise DataError("E403", f"'{var.name}' is declared bin but the data hold values other than 0 and 1",
                        "declare it real, or binarize the data")
    if var.bounds is not None and n and (array.min() < var.bounds[0] or array.max() > var.bounds[1]):
        low, high = var.bounds
        raise DataError("E403", f"'{var.name}' is scored by {var.scored_by}, which needs values in [{low:g}, {high:g}], "
                        f"but the {split} data range over [{array.min():.3g}, {array.max():.3g}]",
                        f"model it with a family for real values (Normal, Laplace), or rescale the data to "
                        f"[{low:g}, {high:g}]")
    # C order: arrays saved or read transposed (channels-last images) crash some torch kernels
    return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32).reshape((n, *shape))


def load_split(spec: RunSpec, split: str, device: torch.device, where=None) -> list[Group]:
    """Every data group of a compiled model, for one split, on `device`; a held-out split's rows
    in a fixed shuffled order (see fair_order)."""
    groups: dict[int, list[DataVar]] = {}
    for var in spec.data:
        groups.setdefault(var.group, []).append(var)
    out = []
    for members in groups.values():
        first = members[0]
        args = {k: v for k, v in first.args.items() if v is not None}
        try:
            arrays = load(first.source, args, split)
            tensors = [convert(v, arrays[v.position], split).to(device) for v in members]
            if split != "train":  # training shuffles anyway; its stored order keeps seeds' batches as they were
                order = fair_order(len(tensors[0]), device)
                tensors = [t[order] for t in tensors]
        except DataError as exc:
            span = (where(first.name) if where else None) or NO_SPAN  # the API has no spec spans to give
            raise GendslError(error(exc.code, exc.message, span, label=f"data from {first.source}(...)",
                                    hint=exc.hint)) from None
        out.append(Group([v.name for v in members], tensors))
    return out


def fair_order(n: int, device: torch.device) -> torch.Tensor:
    """The fixed order a held-out split is read in. Metrics and sample grids read its first rows,
    and a file may be stored sorted: binarized MNIST's first 1,000 test digits are nearly all zeros."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(104_729)).to(device)


class Batcher:
    """Endless batches by index; each group reshuffles when it runs out (deterministic per seed,
    group and pass, so a resumed run draws the same batches)."""

    def __init__(self, groups: list[Group], batch: int, seed: int, rank: int = 0, world: int = 1):
        self.groups, self.batch, self.seed, self.rank, self.world = groups, batch, seed, rank, world
        self.passes = [0] * len(groups)
        self.positions = [0] * len(groups)
        self.orders: list[torch.Tensor | None] = [None] * len(groups)

    def per_epoch(self) -> int:
        """Full batches in one pass over the first group (the epoch's length)."""
        return max(1, len(self.groups[0]) // (self.batch * self.world))

    def _order(self, g: int) -> torch.Tensor:
        if self.orders[g] is None:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + g * 7919 + self.passes[g])
            order = torch.randperm(len(self.groups[g]), generator=generator)
            self.orders[g] = order[self.rank::self.world].to(self.groups[g].tensors[0].device)
        return self.orders[g]

    def next(self) -> dict[str, torch.Tensor]:
        batch = {}
        for g, group in enumerate(self.groups):
            order = self._order(g)
            if self.positions[g] + self.batch > len(order):
                self.passes[g] += 1
                self.positions[g] = 0
                self.orders[g] = None
                order = self._order(g)
            index = order[self.positions[g]: self.positions[g] + self.batch]
            self.positions[g] += self.batch
            for name, tensor in zip(group.names, group.tensors):
                batch[name] = tensor[index]
        return batch

    def state(self) -> dict:
        return {"passes": list(self.passes), "positions": list(self.positions)}

    def restore(self, state: dict) -> None:
        self.passes, self.positions = list(state["passes"]), list(state["positions"])
        self.orders = [None] * len(self.groups)


def held_out_order(groups: list[Group], g: int, n: int) -> torch.Tensor:
    """Which rows of group `g` the first `n` held-out samples read: the first group row by row,
    every other group in a fixed permutation of its own (cycled when shorter), so that separate
    `data` lines are as independent here as in training."""
    device = groups[g].tensors[0].device
    if g == 0:
        return torch.arange(n, device=device) % len(groups[0])
    order = torch.randperm(len(groups[g]), generator=torch.Generator().manual_seed(7919 * g))
    return order.to(device)[torch.arange(n, device=device) % len(groups[g])]


def held_out_rows(groups: list[Group], n: int) -> dict[str, torch.Tensor]:
    """The first `n` held-out samples of every variable, as one batch."""
    out = {}
    for g, group in enumerate(groups):
        index = held_out_order(groups, g, n)
        for name, tensor in zip(group.names, group.tensors):
            out[name] = tensor[index]
    return out


def whole_groups(n: int, pack: int) -> int:
    """n rows rounded down to whole groups of a packed discriminator's `pack` rows (at least one)."""
    return n if pack == 1 else max(pack, n - n % pack)


def iterate(groups: list[Group], batch: int, pack: int = 1):
    """Every held-out sample of the first group, batch by batch (for evaluation). With `pack`
    (a packed discriminator's group size), every batch is a multiple of it and the last
    len % pack rows are left out (a split shorter than one group is cycled to fill it)."""
    n, batch = whole_groups(len(groups[0]), pack), whole_groups(batch, pack)
    orders = [held_out_order(groups, g, n) for g in range(len(groups))]
    for start in range(0, n, batch):
        out = {}
        for group, order in zip(groups, orders):
            index = order[start:start + batch]
            for name, tensor in zip(group.names, group.tensors):
                out[name] = tensor[index]
        yield out


def batches_per_epoch(n: int, batch: int) -> int:
    return max(1, math.floor(n / batch))
