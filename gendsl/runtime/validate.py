"""Validation while training: each train step's loss on the first rows of the valid split, the
best weights so far (best.pt) and early stopping.

Cheap by default: `validate_rows` (2,000) held-out rows, the same ones every time, so that two
validations differ only by the weights; it runs once an epoch, or ten times a run that trains by
steps (`validate_every`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from gendsl.runtime import checkpoint
from gendsl.runtime.data import Group, held_out_rows, load_split, whole_groups
from gendsl.spec import RunSpec

VALIDATION_SEED = 20141220  # any fixed number: common random numbers for every validation


def default_every(total: int, per_epoch: int, by_epochs: bool) -> int:
    """Once an epoch when the run counts epochs, else ten times a run."""
    return per_epoch if by_epochs else max(1, total // 10)


@dataclass
class Validator:
    """Scores the current weights on fixed valid rows; remembers the best score and how many
    validations in a row did not improve on it."""

    spec: RunSpec
    device: torch.device
    rows: int
    batch: int
    where: object = None
    best: float = math.inf
    best_round: int = 0
    stale: int = 0
    _data: list[dict[str, torch.Tensor]] = field(default_factory=list)

    def batches(self) -> list[dict[str, torch.Tensor]]:
        if not self._data:
            groups: list[Group] = load_split(self.spec, "valid", self.device, self.where)
            # a packed discriminator sees groups of `pack` rows: every batch fills whole groups
            # (held_out_rows cycles a split shorter than one group)
            pack = self.spec.pack
            rows = held_out_rows(groups, whole_groups(min(self.rows, len(groups[0])), pack))
            n = len(next(iter(rows.values())))
            size = whole_groups(self.batch, pack)
            self._data = [{k: v[i:i + size] for k, v in rows.items()} for i in range(0, n, size)]
        return self._data

    @torch.no_grad()
    def losses(self, model: torch.nn.Module) -> dict[str, float]:
        """`valid/STEP`: each step's loss, averaged over the valid rows (weighted by batch size).
        Every validation draws the same random numbers (the losses' samples), so that two differ
        only by the weights. Validating changes nothing of the run: the random state and the
        model's buffers (a sampler's replay buffer, say) are put back afterwards."""
        batches = self.batches()
        sizes = [len(next(iter(b.values()))) for b in batches]
        rng = checkpoint.rng_state()
        buffers = {name: b.clone() for name, b in model.named_buffers()}
        torch.manual_seed(VALIDATION_SEED)
        try:
            out = {}
            for step in self.spec.steps:
                method = getattr(model, step.method)
                total = sum(float(method(b)) * n for b, n in zip(batches, sizes))
                out[f"valid/{step.name}"] = total / sum(sizes)
            return out
        finally:
            checkpoint.restore_rng(rng)
            for name, b in model.named_buffers():
                b.copy_(buffers[name])

    def improved(self, score: float, round_: int) -> bool:
        """Record a validation score (lower is better); True when it is the best so far."""
        if score < self.best:
            self.best, self.best_round, self.stale = score, round_, 0
            return True
        self.stale += 1
        return False

    def state(self) -> dict:
        return {"best": self.best, "best_round": self.best_round, "stale": self.stale}

    def restore(self, state: dict | None) -> None:
        if state:
            self.best, self.best_round, self.stale = state["best"], state["best_round"], state["stale"]
