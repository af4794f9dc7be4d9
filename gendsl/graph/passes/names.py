"""Pass 1: every name refers to something declared; record who uses what as graph edges.

This pass only asks "does it exist?" and answers with did-you-mean hints; whether a thing of
that kind may be used there is the type pass's question.
"""

from __future__ import annotations

import functools
from typing import Iterable

import networkx as nx

from gendsl import ast
from gendsl.diagnostics import Diagnostic, did_you_mean, error
from gendsl.graph.constants import TRUE_FALSE
from gendsl.syntax.parse import keywords
from gendsl.library.distributions import DISTRIBUTIONS
from gendsl.library.functions import FUNCTIONS
from gendsl.library.layers import LAYERS
from gendsl.library.sources import SOURCES
from gendsl.library.training import (BETA_SCHEDULES, INITS, METRICS, OPTIMIZERS, PROCESSES, SAMPLERS,
                                     SCHEDULES, SETTINGS)

BUILTIN_CALLS = {"kl"}
GENERATIVE = "p"  # the generative model's density: p(z), p(x | z), p(x)
# names people bring from PyTorch, Keras or papers -> what gendsl calls them
def _aliases() -> dict[str, str]:
    """What other libraries call the entries of the registries (`Dense` -> `Linear`), and the
    built-in `kl`; the first entry to claim a name keeps it (`SiLU` -> silu, not swish)."""
    found = {"kl_divergence": "kl"}
    for registry in (LAYERS, FUNCTIONS, DISTRIBUTIONS):
        for entry in registry.values():
            for alias in entry.aliases:
                found.setdefault(alias, entry.name)
    return found


ALIASES = _aliases()


def _walk(expr, on_name, on_callee, on_stage) -> None:
    """Visit the references of an expression: values, callees and pipeline stages."""
    if isinstance(expr, ast.Name):
        on_name(expr)
    elif isinstance(expr, ast.Call):
        if isinstance(expr.func, ast.Name):
            on_callee(expr.func, expr)
        else:
            _walk(expr.func, on_name, on_callee, on_stage)
        for item in (*expr.args, *(k.value for k in expr.kwargs), *expr.given):
            _walk(item, on_name, on_callee, on_stage)
    elif isinstance(expr, ast.Pipe):
        _walk(expr.input, on_name, on_callee, on_stage)
        on_stage(expr.stage)
    elif isinstance(expr, ast.Unary):
        _walk(expr.operand, on_name, on_callee, on_stage)
    elif isinstance(expr, ast.Binary):
        _walk(expr.left, on_name, on_callee, on_stage)
        _walk(expr.right, on_name, on_callee, on_stage)
    elif isinstance(expr, ast.Index):
        for item in (expr.target, *expr.indices):
            _walk(item, on_name, on_callee, on_stage)
    elif isinstance(expr, ast.Attr):
        _walk(expr.target, on_name, on_callee, on_stage)
    elif isinstance(expr, (ast.TupleExpr, ast.ListExpr)):
        for item in expr.items:
            _walk(item, on_name, on_callee, on_stage)
    elif isinstance(expr, ast.Slice):
        for bound in (expr.start, expr.stop, expr.step):
            if bound is not None:
                _walk(bound, on_name, on_callee, on_stage)


@functools.lru_cache(maxsize=None)  # per layer rule, not per stage: each pipeline stage asks
def _symbolic_arguments(rule) -> frozenset:
    from gendsl.library.signature import parameters, takes_symbols

    params = parameters(rule, 1)
    literal = {p.name for p in params if takes_symbols(p.annotation)}
    return frozenset(literal | {i for i, p in enumerate(params) if p.name in literal})


class _Resolver:
    def __init__(self, graph: nx.DiGraph):
        self.graph = graph
        self.diagnostics: list[Diagnostic] = []
        self.model_names = {data["data"].name for _, data in graph.nodes(data=True)
                            if data["data"].kind not in ("factor", "step", "sample", "metric")}
        self.densities = {data["data"].density for _, data in graph.nodes(data=True)
                          if data["data"].kind == "factor"} | {GENERATIVE}
        self.blocks: dict[str, ast.BlockDef] = graph.graph["blocks"]
        self.params = {n for n, d in graph.nodes(data=True) if d["data"].kind == "param"}
        self.losses = {n for n, d in graph.nodes(data=True) if d["data"].kind == "loss"}  # once, not per step
        self.reported: set[int] = set()  # callees already reported (an unknown distribution)

    # -- reporting --
    def unknown(self, what: str, name: str, span, candidates: Iterable[str], extra_hint: str = "") -> None:
        if self.graph.graph.get("import_failed") and what in ("name", "layer", "function"):
            return  # the failed import is the error; what it would have defined is not
        candidates = set(candidates)
        alias = ALIASES.get(name)
        hint = (f"gendsl calls this '{alias}'" if alias in candidates else "") or did_you_mean(name, candidates) \
            or extra_hint
        self.diagnostics.append(error("E102" if what == "name" else _CODES[what],
                                      f"unknown {what} '{name}'", span, label=f"not a known {what}",
                                      hint=hint))

    def use(self, name: str, user: str) -> None:
        if user not in self.graph:
            return  # train settings and blocks use names but are not nodes
        if name in self.graph and name != user:
            self.graph.add_edge(name, user, kind="uses")
        elif name in self.densities:
            for key, data in self.graph.nodes(data=True):
                if data["data"].kind == "factor" and data["data"].density == name and key != user:
                    self.graph.add_edge(key, user, kind="uses")

    # -- expressions --
    def expr(self, expr, user: str, local: set[str] | None = None, symbols: bool = False) -> None:
        local = local or set()

        def visible() -> set[str]:  # built only to report: a union per expression made the pass quadratic
            return self.model_names | self.densities | local

        def on_name(node: ast.Name) -> None:
            if node.id in self.model_names or node.id in self.densities or node.id in local or node.id in TRUE_FALSE:
                self.use(node.id, user)
            elif not symbols:
                self.unknown("name", node.id, node.span, visible(),
                             "declare it first (param, data, latent, tensor, or a network)")

        def on_callee(node: ast.Name, call: ast.Call) -> None:
            if id(node) in self.reported:
                return
            if node.id in self.model_names or node.id in self.densities or (local and node.id in local):
                self.use(node.id, user)
            elif node.id not in FUNCTIONS and node.id not in DISTRIBUTIONS and node.id not in BUILTIN_CALLS \
                    and node.id not in LAYERS:
                candidates = set(FUNCTIONS) | set(DISTRIBUTIONS) | visible() | BUILTIN_CALLS
                suggestion = did_you_mean(node.id, candidates)
                close = ALIASES.get(node.id) or (suggestion.split("'")[1] if suggestion else "")
                what = "distribution" if close in DISTRIBUTIONS else "function"
                self.unknown(what, node.id, node.span, candidates)

        _walk(expr, on_name, on_callee, lambda stage: self.stage(stage, user, local))

    def stage(self, stage: ast.Stage, user: str, local: set[str] | None, block_params: set[str] = frozenset()) -> None:
        if stage.is_repeat:
            self.expr(stage.repeat, user, local | block_params if local else set(block_params))
            for inner in stage.body:
                self.stage(inner, user, local, block_params)
            return
        if stage.name not in LAYERS and stage.name not in self.blocks:
            self.unknown("layer", stage.name, stage.span, set(LAYERS) | set(self.blocks),
                         "see docs/language.md for the layers, or define a `block`")
        symbolic = self.symbolic_arguments(stage)
        for i, arg in enumerate(stage.args):
            self.expr(arg, user, (local or set()) | block_params, symbols=i in symbolic)
        for kw in stage.kwargs:
            self.expr(kw.value, user, (local or set()) | block_params, symbols=kw.name in symbolic)

    def symbolic_arguments(self, stage: ast.Stage) -> frozenset:
        """Positions and names of a layer's arguments that take bare words (`mask=A`)."""
        entry = LAYERS.get(stage.name)
        return _symbolic_arguments(entry.rule) if entry is not None else frozenset()

    def registry_call(self, expr, registry, what: str, user: str) -> None:
        """`Adam(lr=...)`, `ring(...)`, `Langevin(E, ...)`: the callee is looked up in one registry."""
        if isinstance(expr, ast.Name):
            expr = ast.Call.model_construct(span=expr.span, func=expr, args=(), kwargs=(), given=(), has_bar=False)
        if not (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name)):
            self.diagnostics.append(error("E207", f"expected a {what} such as "
                                          f"{next(iter(registry))}(...)", expr.span,
                                          hint=f"known: {', '.join(sorted(registry))}"))
            return
        if expr.func.id not in registry:
            self.unknown(what, expr.func.id, expr.func.span, registry,
                         f"known: {', '.join(sorted(registry))}")
        for arg in (*expr.args, *(k.value for k in expr.kwargs)):
            if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) and what == "diffusion process":
                self.registry_call(arg, BETA_SCHEDULES, "noise schedule", user)
            else:
                self.expr(arg, user, symbols=True)

    # -- statements --
    def declared_name(self, ident: ast.Ident, local: bool = False) -> None:
        """`log` is always the operator, and a network's own names start statements, where a
        keyword is read as the keyword; elsewhere (`param latent`) a keyword is a fine name."""
        if ident.name == "log" or (local and ident.name in keywords()):
            self.diagnostics.append(error("E017", f"'{ident.name}' is a keyword and cannot name a variable",
                                          ident.span, label="keyword",
                                          hint=f"rename it, e.g. '{ident.name}_'"))

    def node(self, key: str, data) -> None:
        decl = data.decl
        if data.kind not in ("factor", "step", "sample", "metric"):
            self.declared_name(decl.vars[data.position].name if data.kind == "data" else decl.name)
        if data.kind == "param":
            self.expr(decl.default, key)
        elif data.kind == "data":
            if data.position == 0:
                self.registry_call(decl.source, SOURCES, "data source", key)
            for var in decl.vars:
                self.type_dims(var.type, key)
        elif data.kind == "latent":
            self.type_dims(decl.type, key)
            self.distribution(decl.prior)
            self.expr(decl.prior, key)
        elif data.kind == "tensor":
            self.type_dims(decl.type, key)
            self.registry_call(decl.init, INITS, "initializer", key)
        elif data.kind in ("net", "factor"):
            self.network(key, data)
        elif data.kind == "flow":
            self.flow(key, decl)
        elif data.kind == "diffusion":
            self.variable(decl.var, key)
            self.registry_call(decl.process, PROCESSES, "diffusion process", key)
        elif data.kind == "sampler":
            self.registry_call(decl.sampler, SAMPLERS, "sampler", key)
        elif data.kind in ("loss", "sample"):
            self.expr(decl.value, key)
            if data.kind == "sample":
                self.variable(decl.name, key)
        elif data.kind == "step":
            self.step(key, decl)
        elif data.kind == "metric":
            if decl.name.name not in METRICS:
                self.unknown("metric", decl.name.name, decl.name.span, METRICS,
                             f"known: {', '.join(sorted(METRICS))}")

    def distribution(self, expr) -> None:
        """After '~' comes a distribution: an unknown one is reported as such (and not again)."""
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id not in DISTRIBUTIONS \
                and expr.func.id not in self.densities and expr.func.id not in self.model_names:
            self.unknown("distribution", expr.func.id, expr.func.span, DISTRIBUTIONS,
                         f"distributions: {', '.join(DISTRIBUTIONS)}")
            self.reported.add(id(expr.func))

    def variable(self, ident: ast.Ident, user: str) -> None:
        if ident.name not in self.model_names:
            self.unknown("name", ident.name, ident.span, self.model_names, "declare it with `data` or `latent`")
        else:
            self.use(ident.name, user)

    def type_dims(self, type_expr: ast.TypeExpr | None, user: str) -> None:
        for dim in (type_expr.dims if type_expr else ()):
            self.expr(dim, user)

    def network(self, key: str, data) -> None:
        decl = data.decl
        if data.kind == "factor" and isinstance(decl, ast.ObserveDecl):
            self.variable(decl.name, key)
            self.distribution(decl.dist)
            self.expr(decl.dist, key)
            return
        if data.kind == "factor":
            local = {v.name for v in (*decl.vars, *decl.given)}
            for ident in (*decl.vars, *decl.given):
                self.variable(ident, key)
        else:
            local = {p.name.name for p in decl.params}
            for p in decl.params:
                self.declared_name(p.name, local=True)
                self.type_dims(p.type, key)
            self.type_dims(decl.returns, key)
        for stmt in decl.body:
            value = stmt.value if isinstance(stmt, (ast.Assign, ast.Result)) else stmt.dist
            if isinstance(stmt, ast.Draw):
                self.distribution(value)
            self.expr(value, key, local)
            if isinstance(stmt, ast.Assign):
                self.declared_name(stmt.target, local=True)
                local = local | {stmt.target.name}

    def flow(self, key: str, decl: ast.FlowDecl) -> None:
        self.variable(decl.latent, key)
        for given in decl.given:
            self.variable(given, key)
        if decl.param.type is None:
            self.variable(decl.param.name, key)
        for stage in decl.stages:
            self.stage(stage, key, set())

    def step(self, key: str, decl: ast.TrainStep) -> None:
        losses = self.losses
        if decl.loss.name not in losses:
            self.unknown("loss", decl.loss.name, decl.loss.span, losses,
                         "declare it with `loss NAME = ...`")
        else:
            self.graph.add_edge(decl.loss.name, key, kind="minimizes")
        for target in decl.over:
            if target.name in self.model_names or target.name in self.densities:
                self.graph.add_edge(key, target.name, kind="updates") if target.name in self.graph else None
            else:
                trainable = sorted(k for k, d in self.graph.nodes(data=True)
                                   if d["data"].kind in ("net", "flow", "tensor")) + sorted(self.densities)
                self.unknown("network", target.name, target.span, trainable,
                             f"`over` names what the step updates: {', '.join(trainable)}")
        if decl.optimizer is not None:
            self.registry_call(decl.optimizer, OPTIMIZERS, "optimizer", key)

    def train_settings(self, train: ast.TrainBlock | None) -> None:
        for setting in (train.settings if train else ()):
            name = setting.name.name
            if name not in SETTINGS:
                self.unknown("setting", name, setting.name.span, SETTINGS,
                             f"train settings: {', '.join(SETTINGS)}")
            elif SETTINGS[name].kind == "optimizer":
                self.registry_call(setting.value, OPTIMIZERS, "optimizer", "train")
            elif SETTINGS[name].kind == "schedule":
                self.registry_call(setting.value, SCHEDULES, "schedule", "train")
            else:
                self.expr(setting.value, "train")

    def blocks_body(self) -> None:
        for block in self.blocks.values():
            params = {p.name.name for p in block.params}
            for stage in block.stages:
                self.stage(stage, f"block:{block.name.name}", set(), params)


_CODES = {"layer": "E103", "function": "E104", "distribution": "E105", "data source": "E106", "optimizer": "E107",
          "setting": "E108", "metric": "E109", "loss": "E110", "network": "E111",
          "initializer": "E105", "sampler": "E105", "diffusion process": "E105",
          "noise schedule": "E105", "schedule": "E107"}


def resolve_names(graph: nx.DiGraph) -> tuple[nx.DiGraph, list[Diagnostic]]:
    """Report unknown names with suggestions; add a `uses` edge for every reference."""
    graph = graph.copy()
    resolver = _Resolver(graph)
    for key, data in list(graph.nodes(data=True)):
        resolver.node(key, data["data"])
    resolver.train_settings(graph.graph.get("train_decl"))
    resolver.blocks_body()
    return graph, resolver.diagnostics
