"""Which trainable parameters an expression reaches, and how: the basis of gradient checks,
of the gradient cuts in generated code (`over`), and of the diagram's edges.

A value reaches a trainable when the trainable's parameters take part in computing it. The
path says whether a gradient can come back along it: not through a sample that is not
reparameterized (Bernoulli, Categorical), and not through a stop, a function without gradient
(`detach`, `hard_attend`'s choice) or a sampler's draws (Langevin). By default stops end the
walk, as gradients do; `Reach(graph, through_stops=True)` follows them too, marking the paths
`stopped`, for the checks that ask whether something is used at all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import networkx as nx

from gendsl.graph import ir
from gendsl.graph.nodes import program_of
from gendsl.library.distributions import support_of

Found = dict[str, set["Path"]]


@dataclass(frozen=True)
class Path:
    """How a value reaches a trainable: directly, through a sample of `latent`, or past a stop."""

    latent: str = ""
    reparameterized: bool = True
    stopped: bool = False

    @property
    def differentiable(self) -> bool:
        """Can a gradient flow back along this path?"""
        return self.reparameterized and not self.stopped


DIRECT = Path()


class Reach:
    """Memoized reachability over the typed graph."""

    def __init__(self, graph: nx.DiGraph, through_stops: bool = False):
        self.graph = graph
        self.through_stops = through_stops
        self.memo: dict[str, Found] = {}

    def node(self, key: str):
        return self.graph.nodes[key]["data"] if key in self.graph else None

    def of_node(self, key: str) -> Found:
        """Trainables a whole node depends on (a network, factor, flow, loss, latent sample)."""
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = {}  # cycles are reported elsewhere; stop here
        node = self.node(key)
        found: Found = {}
        if node is None:
            return found
        if node.kind in ("net", "factor", "flow"):
            found[key] = {DIRECT}
            if node.program is not None:
                _merge(found, self.of_program(node.program))
        elif node.kind == "tensor":
            found[key] = {DIRECT}
        elif node.kind == "loss" and node.expr is not None:
            found = self.of_expr(node.expr)
        elif node.kind == "latent":
            found = self.latent_sample(key)
        self.memo[key] = found
        return found

    def of_program(self, program: ir.Program) -> Found:
        """What a block's outputs (its result and its draws) reach, following its local names.
        Inputs are values passed in, not samples: they reach nothing of their own."""
        local: dict[str, Found] = {}
        found: Found = {}
        for stmt in program.stmts:
            if isinstance(stmt, ir.Assign):
                local[stmt.name] = self.of_expr(stmt.value, local)
            else:
                _merge(found, self.of_expr(stmt.dist, local))
        if program.result is not None:
            _merge(found, self.of_expr(program.result, local))
        return found

    def direct(self, expr: ir.Expr, local: dict[str, Found] | None = None) -> Found:
        """Trainables one node of an expression contributes (without its children)."""
        if isinstance(expr, ir.CallNet):
            return self.of_node(expr.net)
        if isinstance(expr, ir.Ref) and expr.scope in ("tensor", "net", "loss"):
            return self.of_node(expr.name)
        if isinstance(expr, ir.Ref) and expr.scope == "latent":
            return {} if local is not None else self.of_node(expr.name)  # in a block: an input
        if isinstance(expr, ir.Ref) and expr.scope == "local" and local is not None:
            return local.get(expr.name, {})
        return {}

    def of_expr(self, expr: ir.Expr, local: dict[str, Found] | None = None) -> Found:
        """Trainables an expression reaches, with the paths by which it reaches them. `local`:
        inside a block, what each local name reaches (and latents are inputs there)."""
        found: Found = {}
        self._expr(expr, found, local)
        return found

    def _expr(self, expr: ir.Expr, found: Found, local: dict[str, Found] | None) -> None:
        if isinstance(expr, ir.SamplerDraw) or (isinstance(expr, ir.Apply) and not expr.differentiable):
            if self.through_stops:
                _merge(found, _stopped(self.past_stop(expr, local)))
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
        elif isinstance(expr, ir.CallNet):
            _merge(found, self.direct(expr, local))
            self.call_arguments(expr, found, local)
            return
        else:
            _merge(found, self.direct(expr, local))
        for child in ir.children(expr):
            self._expr(child, found, local)

    def call_arguments(self, call: ir.CallNet, found: Found, local: dict[str, Found] | None) -> None:
        """A network's arguments, through it: a gradient reaches an argument only when the
        network's output depends on that input along a path a gradient can take."""
        live = self.live_inputs(call.net)
        for position, arg in enumerate(call.args):
            if position in live:
                self._expr(arg, found, local)
            elif self.through_stops:
                inner: Found = {}
                self._expr(arg, inner, local)
                _merge(found, _stopped(inner))

    def live_inputs(self, net: str) -> set[int]:
        """Positions of a network's inputs that its output depends on differentiably (not only
        through `detach` or a non-differentiable function)."""
        node = self.node(net)
        program = program_of(node)
        if program is None:
            return set()
        names = [name for name, _ in program.inputs]
        local: dict[str, set[str]] = {}
        used: set[str] = set()
        for stmt in program.stmts:
            if isinstance(stmt, ir.Assign):
                local[stmt.name] = self.inputs_of(stmt.value, local)
            else:
                used |= self.inputs_of(stmt.dist, local)
        if program.result is not None:
            used |= self.inputs_of(program.result, local)
        return {i for i, name in enumerate(names) if name in used}

    def inputs_of(self, expr: ir.Expr, local: dict[str, set[str]]) -> set[str]:
        """The inputs of a block an expression depends on along differentiable paths."""
        if isinstance(expr, ir.SamplerDraw) or (isinstance(expr, ir.Apply) and not expr.differentiable):
            return set()
        if isinstance(expr, ir.Ref) and expr.scope in ("input", "latent"):
            return {expr.name}
        if isinstance(expr, ir.Ref) and expr.scope == "local":
            return local.get(expr.name, set())
        if isinstance(expr, ir.CallNet):
            live = self.live_inputs(expr.net)
            return set().union(*(self.inputs_of(a, local) for i, a in enumerate(expr.args) if i in live))
        return set().union(*(self.inputs_of(c, local) for c in ir.children(expr)))

    def past_stop(self, expr: ir.Expr, local: dict[str, Found] | None) -> Found:
        """What a stop's value is computed from: a sampler's energy, a function's arguments."""
        if isinstance(expr, ir.SamplerDraw):
            sampler = self.node(expr.sampler)
            return self.of_node(sampler.target) if sampler is not None and sampler.target else {}
        found: Found = {}
        for child in ir.children(expr):
            self._expr(child, found, local)
        return found

    def source(self, key: str) -> Found:
        """A factor's own parameters, or a latent's prior parameters."""
        node = self.node(key)
        if node is None:
            return {}
        if node.kind == "latent":
            return self.prior(key)
        return self.of_node(key)

    def prior(self, latent: str) -> Found:
        """What a latent's prior is computed from (its tensors), honouring stops such as detach."""
        node = self.node(latent)
        if node is not None and getattr(node, "prior_factor", None):  # p(z1 | z2): its factor, given z2's draw
            found = {key: set(paths) for key, paths in self.of_node(node.prior_factor).items()}
            for given in self.node(node.prior_factor).term.given:
                if self.node(given) is not None and self.node(given).kind == "latent":
                    _merge(found, self.latent_sample(given))
            return found
        if node is None or node.prior is None:
            return {}
        return self.of_expr(node.prior)

    def latent_sample(self, latent: str) -> Found:
        """A latent used as a value is sampled: from its encoder if it has one, else its prior."""
        node = self.node(latent)
        if node is None:
            return {}
        if node.encoder:
            origin, dist = self.of_node(node.encoder), self.encoder_dist(node.encoder, latent)
        else:
            origin, dist = self.prior(latent), (self.encoder_dist(node.prior_factor, latent)
                                                if getattr(node, "prior_factor", None) else node.prior)
        # a missing draw was reported where it failed; don't add a gradient error on top
        # a point mass (Nearest) is a function of its parameters, constant where it is differentiable:
        # the gradient through it is zero, as through `detach`; nothing is lost
        stopped = dist is not None and support_of(dist.family).point_mass
        reparameterized = dist is None or dist.type.reparameterized or stopped
        return {key: {replace(p, latent=latent, reparameterized=reparameterized and p.reparameterized,
                              stopped=stopped or p.stopped)
                      for p in paths} for key, paths in origin.items()
                if not stopped or self.through_stops}

    def encoder_dist(self, factor: str, latent: str):
        node = self.node(factor)
        for stmt in (node.program.stmts if node is not None and node.program else ()):
            if isinstance(stmt, ir.Draw) and stmt.name == latent:
                return stmt.dist
        return None

    def log_density(self, expr: ir.LogDensity, found: Found) -> None:
        _merge(found, self.source(expr.source))
        if expr.how == "flow":  # log p(z = f(x)) + log |det|: the latent's prior too
            _merge(found, self.prior(self.node(expr.source).latent))
        if expr.how == "marginal_enumerate":
            for latent in self.node(expr.source).term.given:
                _merge(found, self.prior(latent))  # summed exactly: no sampling on the path
            return
        if expr.how == "factor":
            for name in expr.term.given:
                if self.node(name) is not None and self.node(name).kind == "latent":
                    _merge(found, self.latent_sample(name))


def _merge(into: Found, more: Found) -> None:
    for key, paths in more.items():
        into.setdefault(key, set()).update(paths)


def _stopped(found: Found) -> Found:
    return {key: {replace(p, stopped=True) for p in paths} for key, paths in found.items()}


def differentiably(found: Found) -> set[str]:
    """The trainables a gradient can reach: along at least one differentiable path."""
    return {key for key, paths in found.items() if any(p.differentiable for p in paths)}


def trainables_of(graph: nx.DiGraph, name: str) -> list[str]:
    """What `over NAME` means: a network, flow or tensor, or every factor of a density (p, q)."""
    if name in graph:
        return [name]
    return [k for k, d in graph.nodes(data=True) if d["data"].kind == "factor" and d["data"].density == name]
