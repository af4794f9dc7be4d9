"""Pass 5: gradient flow. Every step's loss depends on the parameters the step moves, through
differentiable paths; every trained parameter is trained by some step; nothing is left unused.

Also resolves each step's `over` to concrete trainables (a `minimize` without `over` trains
everything its loss reaches), which code generation uses to cut gradients.
"""

from __future__ import annotations

import networkx as nx

from gendsl.diagnostics import Diagnostic, error, warning
from gendsl.graph.dependencies import Reach, trainables_of

TRAINABLE_KINDS = ("net", "factor", "flow", "tensor")


def _label(graph: nx.DiGraph, key: str) -> str:
    node = graph.nodes[key]["data"]
    if node.kind == "factor" and node.term is not None:
        return node.term.describe()
    return key


def check_gradients(graph: nx.DiGraph, earlier_errors: bool = False) -> tuple[nx.DiGraph, list[Diagnostic]]:
    """Check each step against what its loss reaches; annotate steps with their trainables.

    After errors in earlier passes, the usage reports (E317, W301, W302) are skipped: a broken
    loss makes everything it would have used look unused."""
    graph = graph.copy()
    diagnostics: list[Diagnostic] = []
    reach = Reach(graph)
    trained: set[str] = set()
    minimized: set[str] = set()
    steps = [(k, d["data"]) for k, d in graph.nodes(data=True) if d["data"].kind == "step"]
    for key, step in steps:
        loss = graph.nodes[step.loss]["data"] if step.loss in graph else None
        if loss is None or loss.kind != "loss" or loss.expr is None:
            continue  # E110 said it is not a loss
        minimized.add(step.loss)
        reached = reach.of_node(step.loss)
        over = [t for name in step.over for t in trainables_of(graph, name)] if step.over else \
            sorted(t for t in reached if graph.nodes[t]["data"].kind in TRAINABLE_KINDS
                   and graph.nodes[t]["data"].params > 0)
        over = [t for t in over if graph.nodes[t]["data"].kind in TRAINABLE_KINDS]  # else E315 said so
        for target in over:
            if not _broken(loss.expr):
                check_target(graph, step, target, reached.get(target), diagnostics)
        trained.update(over)
        graph.nodes[key]["data"] = step.annotate(over=tuple(over))
    if not earlier_errors:
        report_untrained(graph, reach, trained, minimized, diagnostics)
    return graph, diagnostics


def _broken(expr) -> bool:
    """A loss that contains an expression already reported as wrong."""
    from gendsl.graph import ir
    from gendsl.types import UNKNOWN

    return expr is None or any(node.type is UNKNOWN for node in ir.walk(expr))


def check_target(graph: nx.DiGraph, step, target: str, paths, diagnostics: list[Diagnostic]) -> None:
    name = step.name.split(":", 1)[1]
    if not paths:
        diagnostics.append(error(
            "E316", f"step {name} minimizes {step.loss} over {_label(graph, target)}, but {step.loss} does not "
            f"depend on {_label(graph, target)}'s parameters", step.span, label="nothing to update",
            hint=f"use {_label(graph, target)} in {step.loss}, or remove it from `over`"))
        return
    blocked = sorted({p.latent for p in paths if not p.differentiable})
    if blocked:
        diagnostics.append(error(
            "E318", f"the gradient of {step.loss} cannot pass through the sample of '{blocked[0]}' to "
            f"{_label(graph, target)}: it is not reparameterizable", step.span,
            label=f"{step.loss} reaches {_label(graph, target)} through a sample of '{blocked[0]}'",
            hint=f"give '{blocked[0]}' a reparameterizable distribution (Normal, Laplace, Uniform), or a "
                 "discrete latent summed out exactly with log p(x)"))


def report_untrained(graph: nx.DiGraph, reach: Reach, trained: set[str], minimized: set[str],
                     diagnostics: list[Diagnostic]) -> None:
    used_by_losses: dict[str, str] = {}
    for key, data in graph.nodes(data=True):
        node = data["data"]
        if node.kind == "loss" and node.expr is not None:
            for target in reach.of_node(key):
                used_by_losses.setdefault(target, key)
            referenced = any(graph.nodes[s]["data"].kind == "loss" for s in graph.successors(key))
            if key not in minimized and not referenced and graph.graph.get("train_decl") is not None:
                diagnostics.append(warning("W302", f"loss {key} is not minimized by any step", node.span,
                                           hint=f"add `minimize {key}` (or a step) to the train block"))
    has_steps = any(d["data"].kind == "step" for _, d in graph.nodes(data=True))
    for key, data in graph.nodes(data=True):
        node = data["data"]
        if node.kind not in TRAINABLE_KINDS or key in trained or not has_steps:
            continue
        if node.kind == "tensor" and not node.params:
            continue
        if key in used_by_losses and node.kind in ("net", "factor", "flow", "tensor") and _has_params(node):
            diagnostics.append(error(
                "E317", f"{used_by_losses[key]} reaches {_label(graph, key)}, but no step trains it", node.span,
                label="never updated", hint=f"add {key if node.kind != 'factor' else node.density} to a step's `over`, "
                                            "or stop the gradient with detach(...)"))
        elif key not in used_by_losses and not _used_by_sampler(graph, key) and _has_params(node):
            diagnostics.append(warning("W301", f"{_label(graph, key)} is not used by any loss", node.span,
                                       hint="use it in a loss, or remove it"))


def _has_params(node) -> bool:
    return getattr(node, "params", 0) > 0


def _used_by_sampler(graph: nx.DiGraph, key: str) -> bool:
    return any(d["data"].kind == "sampler" and d["data"].target == key for _, d in graph.nodes(data=True))
