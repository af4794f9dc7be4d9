"""Pass 5: gradient flow. Every step has parameters to update, and its loss depends on them
through paths a gradient can take; every parameter a minimized loss reaches that way is trained
by some step; nothing is left unused.

Also resolves each step's `over` to concrete trainables (a `minimize` without `over` trains
everything its loss reaches, except past a stop such as `detach`), which code generation uses to
cut gradients.

Fixed tensors: a tensor that no step trains and that minimized losses reach only where no
gradient flows (past `detach(...)`, a sampler's draws, or a Bernoulli or Categorical sample) is
fixed: it keeps its initial value. That is how a fixed prior is written (InfoGAN's uniform code:
`tensor pi: real[10] = zeros; latent c: cat[10] ~ Categorical(logits = pi)`).
"""

from __future__ import annotations

import networkx as nx

from gendsl.diagnostics import Diagnostic, error, warning
from gendsl.graph.dependencies import Found, Reach, differentiably, trainables_of

TRAINABLE_KINDS = ("net", "factor", "flow", "tensor")


def _label(graph: nx.DiGraph, key: str) -> str:
    node = graph.nodes[key]["data"]
    if node.kind == "factor" and node.term is not None:
        return node.term.describe()
    return key


def _over_name(graph: nx.DiGraph, key: str) -> str:
    """How `over` names a trainable: a factor by its density (p, q)."""
    node = graph.nodes[key]["data"]
    return node.density if node.kind == "factor" else key


def _params(graph: nx.DiGraph, key: str) -> int:
    return getattr(graph.nodes[key]["data"], "params", 0)


def check_gradients(graph: nx.DiGraph, earlier_errors: bool = False) -> tuple[nx.DiGraph, list[Diagnostic]]:
    """Check each step against what its loss reaches; annotate steps with their trainables.

    After errors in earlier passes, the usage reports (E315, E317, W301, W302, W303) are
    skipped: a broken loss or network makes everything it would have used look unused, and a
    broken network looks parameter-free."""
    graph = graph.copy()
    diagnostics: list[Diagnostic] = []
    reach, full = Reach(graph), Reach(graph, through_stops=True)
    trained: set[str] = set()
    covered: set[str] = set()   # trainables an E315 hint already asks to name in `over`
    minimized: set[str] = set()
    steps = [(k, d["data"]) for k, d in graph.nodes(data=True) if d["data"].kind == "step"]
    for key, step in steps:
        loss = graph.nodes[step.loss]["data"] if step.loss in graph else None
        if loss is None or loss.kind != "loss" or loss.expr is None:
            continue  # E110 said it is not a loss
        minimized.add(step.loss)
        reached = reach.of_node(step.loss)
        if step.over:
            over = [t for name in step.over for t in trainables_of(graph, name)]
            if not earlier_errors:
                for ident in step.decl.over:
                    covered.update(parameter_free(graph, reach, ident, diagnostics))
        else:
            # declaration order, not by name: Adam then updates the first layers first, whose
            # gradients backward wrote last and still sit in cache (the VAE's decoder-first order
            # cost 0.2 to 0.9 ms of a 10 ms round on the CPU, bench/README.md)
            over = [t for t in graph.nodes if t in reached and graph.nodes[t]["data"].kind in TRAINABLE_KINDS
                    and _params(graph, t) > 0]
            if not over and not earlier_errors and not _broken(loss.expr):
                nothing_to_train(graph, step, full.of_node(step.loss), diagnostics)
        over = list(dict.fromkeys(t for t in over if graph.nodes[t]["data"].kind in TRAINABLE_KINDS))  # else E315
        for target in over:
            if not _broken(loss.expr):
                check_target(graph, step, target, reached.get(target), full.of_node(step.loss).get(target),
                             bool(step.over), diagnostics)
        trained.update(over)
        graph.nodes[key]["data"] = step.annotate(over=tuple(over))
    if not earlier_errors:
        report_untrained(graph, full, trained | covered, minimized, diagnostics)
    return graph, diagnostics


def _broken(expr) -> bool:
    """A loss that contains an expression already reported as wrong."""
    from gendsl.graph import ir
    from gendsl.types import UNKNOWN

    return expr is None or any(node.type is UNKNOWN for node in ir.walk(expr))


def _step_name(step) -> str:
    return step.name.split(":", 1)[1]


def _step_text(step) -> str:
    """`step critic`, or `minimize nll` for a train block's single `minimize`."""
    return f"minimize {step.loss}" if getattr(step.decl, "shorthand", False) else f"step {_step_name(step)}"


def parameter_free(graph: nx.DiGraph, reach: Reach, ident, diagnostics: list[Diagnostic]) -> list[str]:
    """`over NAME` where NAME has no parameters of its own: the step would update nothing of it
    (and, if nothing else is named, its optimizer would get an empty parameter list). Returns the
    trainables the hint names instead."""
    targets = trainables_of(graph, ident.name)
    if not targets or any(graph.nodes[t]["data"].kind not in TRAINABLE_KINDS for t in targets) \
            or any(_params(graph, t) for t in targets):
        return []  # unknown (E103), not trainable (E315 of the roles pass), or fine
    uses = sorted({t for target in targets for t in differentiably(reach.of_node(target))
                   if t not in targets and graph.nodes[t]["data"].kind in TRAINABLE_KINDS and _params(graph, t)})
    if uses:  # what a step over it would have meant to train
        hint = f"it computes with {', '.join(uses)}: name {'them' if len(uses) > 1 else 'it'} in `over` instead"
    else:
        hint = (f"{ident.name} is built only from layers and functions without weights; give it a layer with "
                "weights (e.g. Linear), or remove it from `over`")
    diagnostics.append(error("E315", f"'{ident.name}' has no parameters of its own: a step over it would update "
                             "nothing", ident.span, label="no parameters", hint=hint))
    return uses


def nothing_to_train(graph: nx.DiGraph, step, reached: Found, diagnostics: list[Diagnostic]) -> None:
    """A `minimize` without `over` whose loss reaches no parameters a gradient can update: the
    step's optimizer would get an empty parameter list."""
    stopped = sorted(t for t in reached if graph.nodes[t]["data"].kind in TRAINABLE_KINDS and _params(graph, t) > 0)
    if stopped:
        hint = (f"{step.loss} uses {', '.join(_label(graph, t) for t in stopped)} only past detach(...) or a "
                "sampler's draws, where no gradient flows; use them where it flows")
    else:
        hint = (f"use a network with weights (e.g. a Linear layer) or a tensor in {step.loss}, or remove the step")
    diagnostics.append(error(
        "E315", f"{_step_text(step)} has nothing to train: {step.loss} reaches no parameters that a "
        "gradient can update", step.span, label="no parameters", hint=hint))


def check_target(graph: nx.DiGraph, step, target: str, paths, all_paths, explicit: bool,
                 diagnostics: list[Diagnostic]) -> None:
    """The step's loss reaches `target` (named in `over`, or found without one) along paths a
    gradient can take, and along no path it cannot (a sample that is not reparameterized)."""
    name, label = _step_name(step), _label(graph, target)
    if not paths:
        past_stop = bool(all_paths)
        diagnostics.append(error(
            "E316", f"step {name} minimizes {step.loss} over {label}, but {step.loss} does not "
            f"depend on {label}'s parameters" + (" through any path a gradient can take" if past_stop else ""),
            step.span, label="nothing to update",
            hint=(f"{step.loss} uses {label} only past detach(...) or a sampler's draws, where no gradient flows; "
                  f"use it where the gradient flows, or remove it from `over`") if past_stop else
                 f"use {label} in {step.loss}, or remove it from `over`"))
        return
    blocked = sorted({p.latent for p in paths if not p.reparameterized})
    if not blocked:
        return
    keep = ""
    if not any(p.differentiable for p in paths):  # only through the sample: it may stay as it is
        keep = (f"; or, to keep {label} as initialized, leave it out of `over`" if explicit else
                f"; or, to keep {label} as initialized, give the step an `over` without it")
    diagnostics.append(error(
        "E318", f"the gradient of {step.loss} cannot pass through the sample of '{blocked[0]}' to "
        f"{label}: it is not reparameterizable", step.span,
        label=f"{step.loss} reaches {label} through a sample of '{blocked[0]}'",
        hint=f"give '{blocked[0]}' a reparameterizable distribution (Normal, Laplace, Uniform), or sum it out "
             f"exactly (an `observe x ~ ...` that uses '{blocked[0]}', and `log p(x)` in the loss){keep}"))


def report_untrained(graph: nx.DiGraph, full: Reach, trained: set[str], minimized: set[str],
                     diagnostics: list[Diagnostic]) -> None:
    """E317 for parameters a gradient from a minimized loss would reach but no step trains;
    W303 for networks that no step trains and that are used only where no gradient flows;
    W301 for trainables no loss uses, W302 for losses no step minimizes. Tensors used only where
    no gradient flows are fixed: no report."""
    reaching: dict[str, list[str]] = {}   # trainable -> the minimized losses whose gradient reaches it
    used: set[str] = set()
    for key, data in graph.nodes(data=True):
        node = data["data"]
        if node.kind != "loss" or node.expr is None:
            continue
        reached = full.of_node(key)
        used.update(reached)
        if key in minimized:
            for target in differentiably(reached):
                reaching.setdefault(target, []).append(key)
        referenced = any(graph.nodes[s]["data"].kind == "loss" for s in graph.successors(key))
        if key not in minimized and not referenced and graph.graph.get("train_decl") is not None:
            diagnostics.append(warning("W302", f"loss {key} is not minimized by any step", node.span,
                                       hint=f"add `minimize {key}` (or a step) to the train block"))
    steps = {d["data"].loss: _step_name(d["data"]) for _, d in graph.nodes(data=True) if d["data"].kind == "step"}
    if not steps:
        return
    for key, data in graph.nodes(data=True):
        node = data["data"]
        if node.kind not in TRAINABLE_KINDS or key in trained or not _params(graph, key):
            continue
        if key in reaching:
            losses = reaching[key]
            by = ", ".join(f"{steps[loss]} ({loss})" if steps[loss] != loss else loss for loss in losses)
            keep = f"detach({key})" if node.kind == "tensor" else "detach(...)"
            diagnostics.append(error(
                "E317", f"{losses[0]} reaches {_label(graph, key)}, but no step trains it", node.span,
                label="never updated",
                hint=f"add {_over_name(graph, key)} to the `over` of the step that should train it (steps whose "
                     f"loss reaches it: {by}); or, to keep it as initialized, cut the gradient where the loss "
                     f"uses it: {keep}"))
        elif key in used and node.kind != "tensor":
            diagnostics.append(warning(
                "W303", f"no step trains {_label(graph, key)}, and losses use it only where no gradient flows: "
                "it keeps its initial (random) weights", node.span, label="never updated",
                hint=f"add {_over_name(graph, key)} to a step's `over` and use it where the gradient flows, "
                     "or remove it"))
        elif key not in used and not _used_by_sampler(graph, key):
            diagnostics.append(warning("W301", f"{_label(graph, key)} is not used by any loss", node.span,
                                       hint="use it in a loss, or remove it"))


def _used_by_sampler(graph: nx.DiGraph, key: str) -> bool:
    return any(d["data"].kind == "sampler" and d["data"].target == key for _, d in graph.nodes(data=True))
