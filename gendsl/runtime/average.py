"""The exponential moving average of a model's weights that the `ema` setting keeps: torch's
AveragedModel with get_ema_multi_avg_fn, the same values and state dict (so checkpoints keep
their format), with an update that costs one foreach lerp and no host sync."""

from __future__ import annotations

from itertools import chain

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class WeightAverage(AveragedModel):
    """The EMA, decay `decay`, of every parameter and buffer of a model. AveragedModel's own
    update reads `n_averaged` back to the host each round (a device sync on a GPU) and detaches,
    moves and groups each tensor in Python; here whether the first update (a copy) has happened is
    a Python flag, restored from `n_averaged` when a state dict is loaded."""

    def __init__(self, model: torch.nn.Module, decay: float):
        super().__init__(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self.started = False
        self.groups: tuple | None = None  # (model, floating-point pairs, other pairs): see groups_of
        self.register_load_state_dict_post_hook(WeightAverage._read_started)

    @staticmethod
    def _read_started(module, incompatible_keys) -> None:
        module.started = bool(module.n_averaged > 0)

    @torch.no_grad()
    def update_parameters(self, model: torch.nn.Module) -> None:
        """Average in `model`'s current weights with get_ema_multi_avg_fn's function: one call for
        the floating-point tensors (a foreach lerp), one for the others (ActNorm's `initialized`,
        BatchNorm's batch count); the first update copies them."""
        if not self.started:
            super().update_parameters(model)
            self.started = True
            return
        for averaged, current in self.groups_of(model):
            if averaged:
                self.multi_avg_fn(averaged, current, self.n_averaged)
        self.n_averaged += 1

    def groups_of(self, model: torch.nn.Module) -> tuple:
        """The averaged and current tensors, floating-point ones and the others, listed once per
        model (walking the modules cost more than the lerp): the trainer updates its tensors in
        place and never moves the model once the average exists."""
        if self.groups is None or self.groups[0] is not model:
            floats: tuple[list, list] = ([], [])
            others: tuple[list, list] = ([], [])
            for mine, theirs in zip(chain(self.module.parameters(), self.module.buffers()),
                                    chain(model.parameters(), model.buffers()), strict=True):
                kind = floats if torch.is_floating_point(mine) or torch.is_complex(mine) else others
                kind[0].append(mine)
                kind[1].append(theirs)
            self.groups = (model, floats, others)
        return self.groups[1:]
