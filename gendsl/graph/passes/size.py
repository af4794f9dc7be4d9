"""Pass 6: parameter counts and a memory estimate; refuse sizes no machine could hold."""

from __future__ import annotations

import networkx as nx

from gendsl.diagnostics import Diagnostic, error, warning
from gendsl.graph import ir
from gendsl.graph.nodes import program_of

BYTES = 4                 # float32
STATE_COPIES = 4          # weights, gradients and Adam's two moments
REFUSE_BYTES = 256 * 2**30
WARN_BYTES = 16 * 2**30


def activation_values(program: ir.Program | None) -> int:
    """Values stored per sample for the backward pass (outputs of every layer)."""
    if program is None:
        return 0
    return sum(use.output.numel for use in program.layers())


def estimate_size(graph: nx.DiGraph) -> tuple[nx.DiGraph, list[Diagnostic]]:
    """Record per-network parameter counts and the training memory estimate in graph['size']."""
    diagnostics: list[Diagnostic] = []
    params = {k: d["data"].params for k, d in graph.nodes(data=True)
              if d["data"].kind in ("net", "factor", "flow", "tensor")}
    total = sum(params.values())
    train = graph.graph.get("train")
    batch = train.batch if train is not None else 1
    activations = sum(activation_values(program_of(d["data"])) for _, d in graph.nodes(data=True))
    memory = total * BYTES * STATE_COPIES + 2 * batch * activations * BYTES
    graph.graph["size"] = {"params": params, "total": total, "memory": memory}
    span = graph.graph["model_span"]
    if memory > REFUSE_BYTES:
        diagnostics.append(error("E320", f"this model needs about {memory / 2**30:,.0f} GiB to train "
                                 f"({total:,} parameters, batch {batch})", span,
                                 hint="reduce widths, depth or the batch size"))
    elif memory > WARN_BYTES:
        diagnostics.append(warning("W320", f"this model needs about {memory / 2**30:,.1f} GiB to train",
                                   span, hint="check that the device has that much memory"))
    return graph, diagnostics
