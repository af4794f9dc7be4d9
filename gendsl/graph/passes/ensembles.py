"""MADE ensembles: `MaskedLinear(n, masks=K, order=random)` (Germain et al. 2015, order- and
connectivity-agnostic training).

The block's density is the uniform mixture of K autoregressive models, each with its own masks (its
own hidden degrees) and, with `order=random`, its own order of the positions. The registry entry
(library/layers.py) owns the options and the layer's code; this pass owns what makes them one
setting of the block, which the code generator reads with `ensemble_of`:

- every MaskedLinear of the block gives the same `masks` and `order`, since the K components are
  K assignments of masks to all of them at once (E335);
- only an autoregressive block has a density to mix: elsewhere a MaskedLinear has one natural mask
  (E335);
- with `order=random`, nothing on a path from the data may have a fixed order of its own (`shift`,
  masked convolutions, causal attention, recurrent layers): only MADE's degrees follow a permuted
  order (E335).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from gendsl.diagnostics import Diagnostic, error
from gendsl.graph import ir
from gendsl.graph.nodes import program_of
from gendsl.graph.passes.order import analyze


@dataclass(frozen=True)
class Ensemble:
    """K components; the order of each: `natural` (all the same) or `random` (a permutation each)."""

    masks: int = 1
    order: str = "natural"

    @property
    def single(self) -> bool:
        """One component in the natural order: a plain MADE."""
        return self.masks == 1 and self.order == "natural"


SINGLE = Ensemble()


def masked_layers(program: ir.Program) -> list[ir.LayerUse]:
    """The MaskedLinear layers of a block, in the order of the source."""
    return [use for e in ir.walk_program(program) if isinstance(e, ir.Layers)
            for use in e.layers if use.entry == "MaskedLinear"]


def _setting(use: ir.LayerUse) -> Ensemble:
    return Ensemble(use.args.get("masks", 1), use.args.get("order", "natural"))


def ensemble_of(program: ir.Program) -> Ensemble:
    """The ensemble a (checked) block's MaskedLinear layers declare; SINGLE when none does."""
    return next((s for s in map(_setting, masked_layers(program)) if not s.single), SINGLE)


def check_ensembles(graph: nx.DiGraph, diagnostics: list[Diagnostic]) -> None:
    """A mask ensemble is one setting of an autoregressive block that every MaskedLinear shares."""
    for _, data in graph.nodes(data=True):
        node = data["data"]
        program = program_of(node)
        if program is None:
            continue
        uses = masked_layers(program)
        declared = [u for u in uses if not _setting(u).single]
        if not declared:
            continue
        first = declared[0]
        setting = _setting(first)
        if not (node.kind == "factor" and node.role == "autoregressive"):
            diagnostics.append(error(
                "E335", f"{first.describe()} declares a mask ensemble outside an autoregressive block", first.span,
                label="not a density", hint="an ensemble is a mixture of K autoregressive densities: write it in "
                "`autoregressive p(x) { ... }`, or drop `masks` and `order` here"))
            continue
        other = next((u for u in uses if _setting(u) != setting), None)
        if other is not None:
            diagnostics.append(error(
                "E335", f"{other.describe()} and {first.describe()} declare different mask ensembles in one block",
                other.span, label="differs", hint=f"the K components mask every MaskedLinear of the block at once: "
                f"give each the same `masks={setting.masks}, order={setting.order}`"))
            continue
        if setting.order == "random":
            check_random_order(program, diagnostics)


def check_random_order(program: ir.Program, diagnostics: list[Diagnostic]) -> None:
    """With `order=random` only MADE's degrees may carry the order of the data."""
    analysis = analyze(program)
    if analysis is None or analysis.diagnostics:
        return  # reported by the order analysis
    for value, state in zip(analysis.values, analysis.states):
        if value.order.kind in ("causal", "stacks") and state.kind != "free":
            diagnostics.append(error(
                "E335", f"{value.what} follows the natural order of {analysis.var}, but order=random draws the "
                "order of each component at random", value.span, label="fixed order",
                hint="with order=random mix positions with MaskedLinear only; or keep order=natural "
                "(connectivity-agnostic masks in the natural order)"))
            return
