"""Which trainable parameters an expression reaches, and how: the basis of gradient checks,
of the gradient cuts in generated code (`over`), and of the diagram's edges."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from gendsl.graph import ir


@dataclass(frozen=True)
class Path:
    """How a value reaches a trainable: directly, or through a sample of `latent`."""

    latent: str = ""
    reparameterized: bool = True

    @property
    def differentiable(self) -> bool:
        return self.reparameterized


DIRECT = Path()


class Reach:
    """Memoized reachability over the typed graph."""

    def __init__(self, graph: nx.DiGraph):
        self.graph = graph
        self.memo: dict[str, dict[str, set[Path]]] = {}

    def node(self, key: str):
        return self.graph.nodes[key]["data"] if key in self.graph else None

    def of_node(self, key: str) -> dict[str, set[Path]]:
        """Trainables a whole node depends on (a network, factor, flow, loss, latent sample)."""
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = {}  # cycles are reported elsewhere; stop here
        node = self.node(key)
        found: dict[str, set[Path]] = {}
        if node is None:
            return found
        if node.kind in ("net", "factor", "flow"):
            found[key] = {DIRECT}
            if node.program is not None:
                for expr in ir.walk_program(node.program):
                    if not (isinstance(expr, ir.Ref) and expr.scope == "latent"):  # inputs, not samples
                        _merge(found, self.direct(expr))
        elif node.kind == "tensor":
            found[key] = {DIRECT}
        elif node.kind == "loss" and node.expr is not None:
            found = self.of_expr(node.expr)
        elif node.kind == "latent":
            found = self.latent_sample(key)
        self.memo[key] = found
        return found

    def direct(self, expr: ir.Expr) -> dict[str, set[Path]]:
        """Trainables one node of an expression contributes (without its children)."""
        if isinstance(expr, ir.CallNet):
            return self.of_node(expr.net)
        if isinstance(expr, ir.Ref) and expr.scope in ("tensor", "net", "loss"):
            return self.of_node(expr.name)
        if isinstance(expr, ir.Ref) and expr.scope == "latent":
            return self.of_node(expr.name)
        return {}

    def of_expr(self, expr: ir.Expr) -> dict[str, set[Path]]:
        """Trainables an expression reaches, with the paths by which it reaches them."""
        found: dict[str, set[Path]] = {}
        self._expr(expr, found)
        return found

    def _expr(self, expr: ir.Expr, found: dict[str, set[Path]]) -> None:
        if isinstance(expr, ir.SamplerDraw) or (isinstance(expr, ir.Apply) and not expr.differentiable):
            return
        if isinstance(expr, ir.LogDensity):
            self.log_density(expr, found)
        elif isinstance(expr, ir.KL):
            for source in (expr.q_source, expr.p_source):
                _merge(found, self.source(source))
        elif isinstance(expr, ir.Method):
            _merge(found, self.of_node(expr.obj) if expr.kind == "flow" else {})
        elif isinstance(expr, ir.DrawDensity):
            return
        else:
            _merge(found, self.direct(expr))
        for child in ir.children(expr):
            self._expr(child, found)

    def source(self, key: str) -> dict[str, set[Path]]:
        """A factor's own parameters, or a latent's prior parameters."""
        node = self.node(key)
        if node is None:
            return {}
        if node.kind == "latent":
            return self.prior(key)
        return self.of_node(key)

    def prior(self, latent: str) -> dict[str, set[Path]]:
        node = self.node(latent)
        found: dict[str, set[Path]] = {}
        if node is not None and node.prior is not None:
            for expr in ir.walk(node.prior):
                _merge(found, self.direct(expr))
        return found

    def latent_sample(self, latent: str) -> dict[str, set[Path]]:
        """A latent used as a value is sampled: from its encoder if it has one, else its prior."""
        node = self.node(latent)
        if node is None:
            return {}
        if node.encoder:
            origin, dist = self.of_node(node.encoder), self.encoder_dist(node.encoder, latent)
        else:
            origin, dist = self.prior(latent), node.prior
        # a missing draw was reported where it failed; don't add a gradient error on top
        path = Path(latent=latent, reparameterized=dist is None or dist.type.reparameterized)
        return {key: {path} for key in origin}

    def encoder_dist(self, factor: str, latent: str):
        node = self.node(factor)
        for stmt in (node.program.stmts if node is not None and node.program else ()):
            if isinstance(stmt, ir.Draw) and stmt.name == latent:
                return stmt.dist
        return None

    def log_density(self, expr: ir.LogDensity, found: dict[str, set[Path]]) -> None:
        _merge(found, self.source(expr.source))
        if expr.how == "marginal_enumerate":
            for latent in self.node(expr.source).term.given:
                _merge(found, self.prior(latent))  # summed exactly: no sampling on the path
            return
        if expr.how == "factor":
            for name in expr.term.given:
                if self.node(name) is not None and self.node(name).kind == "latent":
                    _merge(found, self.latent_sample(name))


def _merge(into: dict[str, set[Path]], more: dict[str, set[Path]]) -> None:
    for key, paths in more.items():
        into.setdefault(key, set()).update(paths)


def trainables_of(graph: nx.DiGraph, name: str) -> list[str]:
    """What `over NAME` means: a network, flow or tensor, or every factor of a density (p, q)."""
    if name in graph:
        return [name]
    return [k for k, d in graph.nodes(data=True) if d["data"].kind == "factor" and d["data"].density == name]
