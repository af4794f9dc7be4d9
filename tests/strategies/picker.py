"""Random choices: a `Picker` draws from hypothesis or from a `random.Random`."""

from __future__ import annotations

import random
from typing import Callable

from hypothesis import strategies as st


# ---- random choices ---------------------------------------------------------------------------

class Picker:
    """The random choices a spec needs: from hypothesis (`draw`) or from a `random.Random`."""

    def __init__(self, draw: Callable | None = None, rng: random.Random | None = None):
        self.draw, self.rng = draw, rng

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi)) if self.draw else self.rng.randint(lo, hi)

    def choice(self, items):
        items = list(items)
        return items[self.integer(0, len(items) - 1)]

    def chance(self, percent: int) -> bool:
        return self.integer(1, 100) <= percent

    def weighted(self, weights: dict):
        """A key of `weights`, with probability proportional to its weight."""
        keys = [k for k, w in weights.items() if w > 0]
        roll = self.integer(1, sum(weights[k] for k in keys))
        for key in keys:
            roll -= weights[key]
            if roll <= 0:
                return key
        return keys[-1]

    def some(self, items, lo: int, hi: int) -> list:
        """Between lo and hi distinct items, in their original order."""
        items = list(items)
        count = self.integer(min(lo, len(items)), min(hi, len(items)))
        chosen = set()
        while len(chosen) < count:
            chosen.add(self.integer(0, len(items) - 1))
        return [items[i] for i in sorted(chosen)]
