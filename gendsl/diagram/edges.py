"""Where values flow, read off the typed losses: `D(G(z))` draws z -> G -> D -> loss."""

from __future__ import annotations

import re

import networkx as nx

from gendsl.graph import ir
from gendsl.diagram.mathtext import Formula, label as html_label
from gendsl.diagram.style import CALL
from gendsl.diagram.tables import shape_text


def node_id(graph: nx.DiGraph, key: str) -> str:
    """The diagram node standing for a graph node."""
    kind = graph.nodes[key]["data"].kind if key in graph else "var"
    prefix = {"data": "v", "latent": "v", "tensor": "t", "loss": "l", "step": "s", "sampler": "m",
              "diffusion": "d"}.get(kind, "n")
    return safe_id(prefix, key)


def safe_id(prefix: str, key: str) -> str:
    """A DOT identifier (graphviz would read ':' as a port and choke on '(')."""
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9_]', '_', key)}"


class FlowEdges:
    """Collects labelled edges (deduplicated, first label wins) while walking losses."""

    def __init__(self, graph: nx.DiGraph, math: Formula):
        self.graph, self.math = graph, math
        self.edges: dict[tuple[str, str], dict] = {}
        self.done_encoders: set[str] = set()

    def add(self, src: str, dst: str, label: str = "", **style) -> None:
        if src != dst and (src, dst) not in self.edges:
            self.edges[(src, dst)] = {"label": label, **style}

    def data(self, key: str):
        return self.graph.nodes[key]["data"]

    def produce(self, expr: ir.Expr) -> list[tuple[str, str]]:
        """Diagram nodes whose output makes up the value of `expr`, with edge labels."""
        if isinstance(expr, ir.CallNet):
            target = node_id(self.graph, expr.net)
            for arg in expr.args:
                for src, label in self.produce(arg):
                    self.add(src, target, label)
            return [(target, shape_text(expr.type))]
        if isinstance(expr, ir.Ref):
            return self.reference(expr)
        if isinstance(expr, ir.SamplerDraw):
            return [(node_id(self.graph, expr.sampler), shape_text(expr.type))]
        if isinstance(expr, ir.LogDensity):
            return self.log_density(expr)
        if isinstance(expr, ir.KL):
            return [(node_id(self.graph, expr.q_source), "KL"), (node_id(self.graph, expr.p_source), "prior")]
        if isinstance(expr, ir.Method):
            return self.method(expr)
        found = []
        for child in ir.children(expr):
            found += self.produce(child)
        return found

    def reference(self, expr: ir.Ref) -> list[tuple[str, str]]:
        if expr.scope == "latent" and expr.name in self.graph:
            self.encoder_for(expr.name)
        if expr.name not in self.graph:
            return []
        return [(node_id(self.graph, expr.name), shape_text(expr.type))]

    def encoder_for(self, latent: str) -> None:
        encoder = self.data(latent).encoder
        if not encoder or encoder in self.done_encoders:
            return
        self.done_encoders.add(encoder)
        factor = self.data(encoder)
        for given in factor.term.given:
            if given in self.graph:
                self.add(node_id(self.graph, given), node_id(self.graph, encoder),
                         shape_text(self.data(given).type))
        self.add(node_id(self.graph, encoder), node_id(self.graph, latent), "sample")

    def log_density(self, expr: ir.LogDensity) -> list[tuple[str, str]]:
        source = node_id(self.graph, expr.source)
        scored = html_label(f"log {self.math.html(expr.term.describe())}")
        if expr.how == "prior":
            return [(source, scored)]
        for given in expr.term.given:
            for src, label in self.reference(ir.Ref(span=expr.span, type=self.data(given).type, name=given,
                                                    scope="latent" if self.data(given).kind == "latent" else "data")):
                self.add(src, source, label)
        if expr.how == "marginal_enumerate":
            for latent in self.data(expr.source).term.given:
                self.add(node_id(self.graph, latent), source, "summed out")
        for var in expr.term.vars:
            self.add(node_id(self.graph, var), source, "scored", style="dashed")
        if expr.how == "flow":
            latent = self.data(expr.source).latent
            self.add(source, node_id(self.graph, latent), "f(x)")
        return [(source, scored)]

    def method(self, expr: ir.Method) -> list[tuple[str, str]]:
        obj = node_id(self.graph, expr.obj)
        if expr.kind == "diffusion":
            var = self.data(expr.obj).var
            self.add(node_id(self.graph, var), obj, shape_text(self.data(var).type))
            net = expr.args[0]
            if isinstance(net, ir.Ref):
                self.add(obj, node_id(self.graph, net.name), html_label("<I>x</I><SUB>t</SUB>, <I>t</I>"))
                for label in expr.args[1:]:  # a conditional denoiser's label (the options are constants)
                    if isinstance(label, ir.Ref) and label.name in self.graph:
                        self.add(node_id(self.graph, label.name), node_id(self.graph, net.name),
                                 f"label {shape_text(label.type)}")
                process = self.data(expr.obj).process
                learned = process is not None and process.options.get("variance") == "learned"
                return [(node_id(self.graph, net.name), "predicted noise, v" if learned else "predicted noise")]
        return [(obj, shape_text(expr.type))]


def flow_edges(graph: nx.DiGraph, math: Formula) -> dict[tuple[str, str], dict]:
    """All data-flow edges of the compute view."""
    flows = FlowEdges(graph, math)
    for key, data in graph.nodes(data=True):
        node = data["data"]
        program = getattr(node, "program", None)
        for call in (e for e in ir.walk_program(program) if isinstance(e, ir.CallNet)) if program else ():
            # a body calling another network: the callee's output flows into the caller
            flows.add(node_id(graph, call.net), node_id(graph, key), shape_text(call.type), **CALL)
        for expr in _expressions(node):
            for ref in ir.walk(expr):
                if isinstance(ref, ir.Ref) and ref.scope == "tensor":
                    flows.add(node_id(graph, ref.name), node_id(graph, key), shape_text(ref.type))
        if node.kind == "loss" and node.expr is not None:
            for src, label in flows.produce(node.expr):
                flows.add(src, node_id(graph, key), label)
        elif node.kind == "sampler" and node.target in graph:
            flows.add(node_id(graph, node.target), node_id(graph, key), "energy", style="dashed")
    return flows.edges


def _expressions(node) -> list[ir.Expr]:
    """The typed expressions inside a network, factor or prior (where shared tensors are read)."""
    program = getattr(node, "program", None)
    if program is not None:
        return [s.value if isinstance(s, ir.Assign) else s.dist for s in program.stmts] + \
            ([program.result] if program.result is not None else [])
    prior = getattr(node, "prior", None)
    return [prior] if prior is not None else []
