"""Packing (`discriminator D(x) -> logit pack N { ... }`): one place for the whole feature.

PacGAN (Lin et al., NeurIPS 2018): a packed discriminator sees N samples at once. A batch of B
samples becomes B/N groups of N consecutive samples, each group's samples concatenated along
their first per-sample axis (the features of a vector, the channels of an image), and D gives
one output per group. So inside D's body an input `real[d, ...]` is `real[N * d, ...]`, and a
call `D(x)` has B/N rows, not one per sample.

This module owns the rule for the body's input types (`packed_input`, used by the type pass),
the run-time reshape (`PACK_HELPER`, in codegen/helpers/basic.py) and the checks that make the
rows of a packed call safe (`check_packing`):

- only a discriminator or a critic packs, N is a positive int constant (E241);
- a packed call takes per-sample values, and its per-group result may meet only constants,
  shared values and results of calls packed by the same N (E242): a loss made of such terms
  is their mean over the groups; anything mixing groups with samples has no meaning;
- a packed network is called in losses only, never passed as a value (a penalty's critic, a
  sampler's energy), never called from a sample or another network (E331);
- the train block's `batch` and `eval_batch` are multiples of N (E332).
"""

from __future__ import annotations

import math

import networkx as nx

from gendsl import ast
from gendsl.diagnostics import Diagnostic, error
from gendsl.graph import ir
from gendsl.graph.nodes import program_of
from gendsl.graph.constants import evaluate_or_report
from gendsl.types import UNKNOWN, Type, TensorType

PACKING_ROLES = ("discriminator", "critic")
PACK_HELPER = "pack_samples"   # codegen/helpers/basic.py: [B, d, ...] -> [B/N, N*d, ...]
SHARED = 0                     # rows of a value: SHARED, 1 (one per sample) or N (one per group of N)


def pack_size(decl: ast.NetDecl, params: dict, diagnostics: list[Diagnostic]) -> int:
    """N of `pack N` (1 without it); a bad value is reported (E241) and read as 1."""
    if decl.pack is None:
        return 1
    ok, value = evaluate_or_report(decl.pack, params, diagnostics, "the pack size")
    if not ok:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        diagnostics.append(error("E241", f"pack takes a positive int, got {value!r}", decl.pack.span,
                                 label="not a positive int", hint="write e.g. `pack 2`: D sees 2 samples at once"))
        return 1
    if decl.role not in PACKING_ROLES:
        diagnostics.append(error("E241", f"only a discriminator or a critic packs samples; {decl.name.name} is "
                                 f"a {decl.role}", decl.pack.span, label="pack on a " + decl.role,
                                 hint="remove `pack`, or declare `discriminator "
                                      f"{decl.name.name}(...) -> logit pack {value}`"))
        return 1
    return value


def packed_input(t: Type, n: int, name: str, decl: ast.NetDecl, diagnostics: list[Diagnostic]) -> Type:
    """The type the body of a network packed by n sees for an input of per-sample type t: N
    samples concatenated along the first axis (a number becomes real[N])."""
    if n == 1 or not isinstance(t, TensorType):
        return t
    if t.kind in ("cat", "step") or not t.batched:
        what = "a label" if t.kind == "cat" else "a diffusion step" if t.kind == "step" else "a shared value"
        diagnostics.append(error("E241", f"{decl.name.name} packs {n} samples, but its input '{name}' is "
                                 f"{t.describe()}: {what} cannot be concatenated", decl.pack.span,
                                 label=f"pack {n}", hint="pack networks whose inputs are per-sample numbers "
                                                         "(real or bin); give a label as onehot(y)"))
        return UNKNOWN
    shape = (n,) if t.rank == 0 else (n * t.shape[0], *t.shape[1:])
    return TensorType(kind=t.kind, shape=shape)


def check_packing(graph: nx.DiGraph) -> tuple[nx.DiGraph, list[Diagnostic]]:
    """Report every use of a packed network whose rows would not line up (see the module doc)."""
    packs = {key: data["data"].pack for key, data in graph.nodes(data=True)
             if data["data"].kind == "net" and data["data"].pack > 1}
    diagnostics: list[Diagnostic] = []
    if not packs:
        return graph, diagnostics
    rows = _Rows(packs, diagnostics)
    for key, data in graph.nodes(data=True):
        node = data["data"]
        if node.kind == "loss" and node.expr is not None:
            rows.of(node.expr)
        elif node.kind == "sampler" and node.target in packs:
            diagnostics.append(_as_value(node.target, node.span))
        else:
            for e in _expressions(node):
                for inner in ir.walk(e):
                    _refuse_outside_losses(inner, packs, node, diagnostics)
    _check_batches(graph, packs, diagnostics)
    return graph, diagnostics


class _Rows:
    """How many rows a loss's sub-expressions have: SHARED, 1 per sample or 1 per group of N."""

    def __init__(self, packs: dict[str, int], diagnostics: list[Diagnostic]):
        self.packs, self.diagnostics = packs, diagnostics

    def of(self, e: ir.IR) -> int:
        if isinstance(e, ir.Ref) and e.scope == "net" and e.name in self.packs:
            self.diagnostics.append(_as_value(e.name, e.span))
            return SHARED
        if isinstance(e, ir.Apply) and e.draws:
            inner = self.of(e.args[0])
            if inner > 1:
                self.diagnostics.append(error("E242", f"{e.fn} draws the latents of one sample k times, but "
                                              "its argument has one row per group of packed samples", e.span,
                                              hint="keep packed discriminators out of logmeanexp/logsumexp"))
            return self.combine(e, [self.of(a) for a in e.args[1:]] + [min(inner, 1)])
        found = [self.of(c) for c in ir.children(e)]
        if isinstance(e, ir.CallNet) and e.net in self.packs:
            return self.packed_call(e, found)
        return self.combine(e, found)

    def packed_call(self, e: ir.CallNet, found: list[int]) -> int:
        n = self.packs[e.net]
        if any(r > 1 for r in found):
            self.diagnostics.append(error("E242", f"{e.net} packs samples, but an argument already has one row "
                                          "per group of packed samples", e.span,
                                          hint=f"call {e.net} on per-sample values"))
        elif not any(found):
            self.diagnostics.append(error("E242", f"{e.net} packs {n} samples of the batch, but its arguments "
                                          "are shared: there is no batch to pack", e.span,
                                          hint=f"call {e.net} on per-sample values (data, G(z), ...)"))
        return n

    def combine(self, e: ir.IR, found: list[int]) -> int:
        kinds = {r for r in found if r != SHARED}
        if len(kinds) > 1:
            sizes = sorted(r for r in kinds if r > 1)
            self.diagnostics.append(error(
                "E242", f"a value with one row per group of {sizes[0]} packed samples meets one with one row per "
                        + ("sample" if 1 in kinds else f"group of {sizes[-1]}"), e.span,
                label="groups and samples", hint="a packed discriminator's output has one row per group: "
                "make each per-group term its own mean-reduced term, e.g. `bce(D(x), 1) + mean(mse(G(z), x))`, "
                "or wrap the per-sample term in mean(...)"))
            return max(kinds)
        if isinstance(e.type, TensorType) and not e.type.batched:
            return SHARED
        if kinds:
            return kinds.pop()
        return 1 if isinstance(e.type, TensorType) and e.type.batched else SHARED


def _refuse_outside_losses(e: ir.IR, packs: dict[str, int], node, diagnostics: list[Diagnostic]) -> None:
    if isinstance(e, ir.CallNet) and e.net in packs:
        where = {"net": f"network {node.name}", "sample": "a sample", "factor": "a density block",
                 "flow": "a flow"}.get(node.kind, node.kind)
        diagnostics.append(error("E331", f"{e.net} packs {packs[e.net]} samples into one output; it can only be "
                                 f"called in a loss, not in {where}", e.span, label="packed call",
                                 hint=f"call {e.net} in losses (`bce({e.net}(x), 1)`), or remove `pack`"))
    elif isinstance(e, ir.Ref) and e.scope == "net" and e.name in packs:
        diagnostics.append(_as_value(e.name, e.span))


def _as_value(net: str, span) -> Diagnostic:
    return error("E331", f"{net} packs samples into groups; it cannot be passed as a network value "
                 "(a penalty's critic, a sampler's energy)", span, label="packed network",
                 hint=f"gradient_penalty and r1_penalty are per sample: use them with a network without "
                      f"`pack`, or train {net} without the penalty as PacGAN does")


def _expressions(node) -> list[ir.IR]:
    """The typed expressions of a node other than a loss (bodies, samples, samplers' options)."""
    program = program_of(node)
    found = list(_program_exprs(program)) if program is not None else []
    for attr in ("expr", "prior"):
        value = getattr(node, attr, None)
        if isinstance(value, ir.IR):
            found.append(value)
    return found


def _program_exprs(program: ir.Program):
    for stmt in program.stmts:
        yield stmt.value if isinstance(stmt, ir.Assign) else stmt.dist
    if program.result is not None:
        yield program.result


def _check_batches(graph: nx.DiGraph, packs: dict[str, int], diagnostics: list[Diagnostic]) -> None:
    train = graph.graph.get("train")
    if train is None:
        return
    n = math.lcm(*packs.values())
    for setting in ("batch", "eval_batch"):
        size = getattr(train, setting)
        if size % n:
            names = ", ".join(sorted(packs))
            diagnostics.append(error("E332", f"{names} pack{'s' if len(packs) == 1 else ''} samples in groups of {n}, "
                                     f"but {setting} is {size}", train.span or graph.graph.get("model_span"),
                                     label=f"{setting} {size}", hint=f"make {setting} a multiple of {n}, e.g. "
                                                                     f"{setting} {max(n, size - size % n)}"))
