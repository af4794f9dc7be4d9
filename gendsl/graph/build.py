"""AST -> graph: one node per declaration, keyed by name; dependency edges come from the passes."""

from __future__ import annotations

import networkx as nx

from gendsl import ast
from gendsl.diagnostics import Diagnostic, Note, error
from gendsl.graph import nodes as N
from gendsl.graph.load import Loaded


def factor_key(density: str, variables: tuple[str, ...]) -> str:
    return f"factor:{density}({','.join(variables)})"


def _nodes_of(stmt, group: int) -> list[N.NodeData]:
    """The nodes one statement declares."""
    span = stmt.span
    if isinstance(stmt, ast.ParamDecl):
        return [N.ParamNode(name=stmt.name.name, span=stmt.name.span, decl=stmt, type_name=stmt.type_name.name)]
    if isinstance(stmt, ast.DataDecl):
        return [N.DataNode(name=v.name.name, span=v.name.span, decl=stmt, group=group, position=i)
                for i, v in enumerate(stmt.vars)]
    if isinstance(stmt, ast.LatentDecl):
        return [N.LatentNode(name=stmt.name.name, span=stmt.name.span, decl=stmt)]
    if isinstance(stmt, ast.TensorDecl):
        return [N.TensorNode(name=stmt.name.name, span=stmt.name.span, decl=stmt)]
    if isinstance(stmt, ast.NetDecl):
        return [N.NetNode(name=stmt.name.name, span=stmt.name.span, decl=stmt, role=stmt.role)]
    if isinstance(stmt, ast.DensityDecl):
        key = factor_key(stmt.name.name, tuple(v.name for v in stmt.vars))
        return [N.FactorNode(name=key, span=stmt.name.span, decl=stmt, role=stmt.role, density=stmt.name.name)]
    if isinstance(stmt, ast.ObserveDecl):
        return [N.FactorNode(name=factor_key("p", (stmt.name.name,)), span=span, decl=stmt, role="observe")]
    if isinstance(stmt, ast.FlowDecl):
        return [N.FlowNode(name=stmt.name.name, span=stmt.name.span, decl=stmt,
                           var=stmt.param.name.name, latent=stmt.latent.name,
                           given=tuple(g.name for g in stmt.given))]
    if isinstance(stmt, ast.DiffusionDecl):
        return [N.DiffusionNode(name=stmt.name.name, span=stmt.name.span, decl=stmt, var=stmt.var.name)]
    if isinstance(stmt, ast.SamplerDecl):
        return [N.SamplerNode(name=stmt.name.name, span=stmt.name.span, decl=stmt)]
    if isinstance(stmt, ast.LossDecl):
        return [N.LossNode(name=stmt.name.name, span=stmt.name.span, decl=stmt)]
    if isinstance(stmt, ast.TrainBlock):
        return [N.StepNode(name=f"step:{s.name.name}", span=s.span, decl=s) for s in stmt.steps]
    if isinstance(stmt, ast.SampleDecl):
        return [N.SampleNode(name=f"sample:{stmt.name.name}", span=stmt.name.span, decl=stmt, op=stmt.op)]
    if isinstance(stmt, ast.EvaluateBlock):
        return [N.MetricNode(name=f"metric:{(m.alias or m.name).name}", span=m.span, decl=m,
                             metric=m.name.name) for m in stmt.metrics]
    return []


def build_graph(loaded: Loaded) -> tuple[nx.DiGraph, list[Diagnostic], bool]:
    """One node per declaration; duplicate names are reported, the first one is kept. The flag
    says whether the graph is fit for typing (no declaration was dropped)."""
    graph = nx.DiGraph(model=loaded.model.name.name, blocks=loaded.blocks, sources=loaded.sources,
                       model_span=loaded.model.name.span, import_failed=loaded.import_failed)
    diagnostics: list[Diagnostic] = []
    trains = [s for s in loaded.model.body if isinstance(s, ast.TrainBlock)]
    graph.graph["train_decl"] = trains[-1] if trains else None
    for group, stmt in enumerate(loaded.model.body):
        for node in _nodes_of(stmt, group):
            if node.name in graph:
                first = graph.nodes[node.name]["data"]
                what = "step" if node.kind == "step" else "name"
                diagnostics.append(error(
                    "E101", f"{node.name.split(':')[-1]!s} is declared twice", node.span,
                    label="second declaration", notes=[Note(message="first declared here", span=first.span)],
                    hint=f"each {what} is declared once; rename one of them"))
                continue
            graph.add_node(node.name, data=node)
    return graph, diagnostics, not diagnostics
