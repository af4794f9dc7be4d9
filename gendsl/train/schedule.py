"""Learning-rate schedules as multipliers of the base rate per round (torch's LambdaLR)."""

from __future__ import annotations

import math


def multiplier(schedule: dict, total: int):
    """round -> factor of the base learning rate for a schedule entry of the train block."""
    name = schedule.get("name", "constant")
    warmup = int(schedule.get("warmup", 0))

    def factor(r: int) -> float:
        if warmup and r < warmup:
            return (r + 1) / warmup
        progress = min(1.0, (r - warmup) / max(1, total - warmup))
        if name == "cosine":
            low = schedule.get("min_factor", 0.0)
            return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * progress))
        if name == "linear":
            return max(0.0, 1.0 - progress)
        if name == "step":
            return schedule.get("gamma", 0.1) ** (r // int(schedule["every"]))
        return 1.0
    return factor
