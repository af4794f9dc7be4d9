"""The two views of a checked graph, and writing them out (SVG, PNG, PDF or DOT)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import graphviz
import networkx as nx

from gendsl.diagnostics import Diagnostic, error, warning
from gendsl.graph import ir
from gendsl.diagram import style
from gendsl.diagram.edges import flow_edges, node_id, safe_id
from gendsl.diagram.tables import program_rows, shape_text, table
from gendsl.summary import label as node_label

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
PNG_DPI = "160"


class SourceText:
    """Spec text for a span (losses are drawn as their formulas)."""

    def __init__(self, graph: nx.DiGraph):
        self.sources = graph.graph.get("sources", {})

    def __call__(self, span) -> str:
        source = self.sources.get(span.file)
        if source is None:
            return ""
        lines = source.lines[span.line - 1: span.end_line]
        if not lines:
            return ""
        if len(lines) == 1:
            return lines[0][span.col - 1: span.end_col - 1]
        lines[0], lines[-1] = lines[0][span.col - 1:], lines[-1][: span.end_col - 1]
        return re.sub(r"\s+", " ", " ".join(lines)).strip()

    def expr(self, node: ir.Expr) -> str:
        text = self(node.span)
        if "|>" in text:  # the layers are listed below: keep what leads into the first pipeline
            head = text.split("|>")[0].strip()
            text = head + " |> ..." + ")" * (head.count("(") - head.count(")"))
        return text


def wrap_formula(formula: str, width: int = 56) -> str:
    """Break a long loss at top-level ' + ' / ' - ' so the node stays compact (graphviz \\l lines)."""
    if len(formula) <= width:
        return formula
    lines, line, depth, i = [], "", 0, 0
    while i < len(formula):
        ch = formula[i]
        depth += (ch in "([") - (ch in ")]")
        if depth == 0 and formula[i:i + 3] in (" + ", " - ") and len(line) > width // 3:
            lines.append(line)
            line = "    " + formula[i + 1]
            i += 2
            continue
        line += ch
        i += 1
    lines.append(line)
    return "\\l".join(lines) + "\\l"


def _cluster_name(key: str) -> str:
    return "cluster_" + re.sub(r"\W", "_", key)


def compute_view(graph: nx.DiGraph) -> graphviz.Digraph:
    """Networks as clusters with their layers; variables, losses, steps and data flow."""
    text = SourceText(graph)
    dot = graphviz.Digraph(graph.graph["model"], graph_attr={**style.GRAPH, "rankdir": "LR"},
                           node_attr=style.NODE, edge_attr=style.EDGE)
    for key, data in graph.nodes(data=True):
        node = data["data"]
        nid = node_id(graph, key)
        if node.kind == "data":
            dot.node(nid, f"{key}\n{shape_text(node.type)}", **style.OBSERVED)
        elif node.kind == "latent":
            prior = f" ~ {node.prior.family}" if node.prior is not None else (
                f" ~ {graph.nodes[node.prior_factor]['data'].term.describe()}" if node.prior_factor else "")
            dot.node(nid, f"{key}{prior}\n{shape_text(node.type)}", **style.LATENT)
        elif node.kind == "tensor":
            dot.node(nid, f"{key}\n{shape_text(node.type)}", **style.TENSOR)
        elif node.kind in ("net", "factor", "flow"):
            network_cluster(dot, graph, key, node, text)
        elif node.kind == "diffusion":
            process, betas = node.process, node.betas
            dot.node(nid, f"{key}: {process.entry if process else ''} diffusion\n"
                          f"{process.options.get('steps', '') if process else ''} steps, "
                          f"{betas.entry if betas else ''} betas", **style.PROCESS)
        elif node.kind == "sampler":
            dot.node(nid, f"{key}\n{node.sampler}", **style.SAMPLER)
        elif node.kind == "loss":
            dot.node(nid, wrap_formula(f"{key} = {text(node.decl.value.span)}"), **style.LOSS)
    for (src, dst), attrs in flow_edges(graph).items():
        dot.edge(src, dst, **_compound(graph, src, dst), **attrs)
    steps_row(dot, graph)
    return dot


def network_cluster(dot: graphviz.Digraph, graph: nx.DiGraph, key: str, node, text: SourceText) -> None:
    role = getattr(node, "role", "flow")
    title = f"{role} {node_label(graph, key)}" if node.kind != "flow" else \
        f"flow {key}: {node.var} \u2194 {node.latent}"
    fill = style.ROLE_COLORS.get(role, style.CLUSTER["fillcolor"])
    with dot.subgraph(name=_cluster_name(key)) as cluster:
        cluster.attr(label=f"{title}  ({node.params:,} params)", **{**style.CLUSTER, "fillcolor": fill})
        rows = program_rows(node.program, text.expr) if node.program is not None else []
        cluster.node(node_id(graph, key), table(rows), shape="plaintext")


def _compound(graph: nx.DiGraph, src: str, dst: str) -> dict:
    attrs = {}
    clusters = {node_id(graph, k): k for k, d in graph.nodes(data=True)
                if d["data"].kind in ("net", "factor", "flow")}
    for end, nid in (("ltail", src), ("lhead", dst)):
        if nid in clusters:
            attrs[end] = _cluster_name(clusters[nid])
    return attrs


def steps_row(dot: graphviz.Digraph, graph: nx.DiGraph) -> None:
    train = graph.graph.get("train")
    for key, data in graph.nodes(data=True):
        node = data["data"]
        if node.kind != "step":
            continue
        optimizer = node.optimizer or (train.optimizer if train else None)
        repeat = f" \u00d7{node.repeat}" if node.repeat != 1 else ""
        lr = f"\n{optimizer.entry} lr={optimizer.options.get('lr', '')}" if optimizer else ""
        sid = node_id(graph, key)
        dot.node(sid, f"step {key.split(':', 1)[1]}{repeat}{lr}", **style.STEP)
        if node.loss in graph:
            dot.edge(node_id(graph, node.loss), sid, label="minimize", color="#a33a3a", style="dashed",
                     arrowsize="0.6")
        for target in node.over:
            dot.edge(sid, node_id(graph, target), label="updates", **style.UPDATES,
                     **_compound(graph, sid, node_id(graph, target)))


def pgm_view(graph: nx.DiGraph) -> graphviz.Digraph:
    """Random variables only: generative dependencies solid, inference (encoders) dashed."""
    dot = graphviz.Digraph(graph.graph["model"], graph_attr={**style.GRAPH, "rankdir": "TB"},
                           node_attr=style.NODE, edge_attr=style.EDGE)
    nodes = [(k, d["data"]) for k, d in graph.nodes(data=True)]
    with dot.subgraph(name="cluster_plate") as plate:
        plate.attr(label="N", labeljust="r", labelloc="b", style="rounded", color="#555555")
        for key, node in nodes:
            if node.kind == "data":
                plate.node(safe_id("v", key), key, **style.OBSERVED)
            elif node.kind == "latent":
                plate.node(safe_id("v", key), key, **style.LATENT)
        for key, node in nodes:
            if node.kind == "diffusion":
                plate.node(safe_id("c", key), f"{node.var}\u2081:\u209c", **style.LATENT)
    for key, node in nodes:
        if node.kind == "tensor":
            dot.node(safe_id("t", key), key, shape="plaintext", fontsize="10", fontcolor="#444444")
    for src, dst, attrs in pgm_edges(graph):
        dot.edge(src, dst, **attrs)
    return dot


def pgm_edges(graph: nx.DiGraph) -> list[tuple[str, str, dict]]:
    edges: list[tuple[str, str, dict]] = []
    for key, data in graph.nodes(data=True):
        node = data["data"]
        if node.kind == "factor" and node.term is not None:
            dashed = node.role == "encoder"
            for given in node.term.given:
                for var in node.term.vars:
                    edges.append((safe_id("v", given), safe_id("v", var), style.INFERENCE if dashed else {}))
            for tensor in sorted(_tensors(node.program)):
                edges += [(safe_id("t", tensor), safe_id("v", var), {}) for var in node.term.vars]
        elif node.kind == "latent" and node.prior is not None:
            edges += [(safe_id("t", t), safe_id("v", key), {}) for t in sorted(_tensors_expr(node.prior))]
        elif node.kind == "flow":
            edges.append((safe_id("v", node.latent), safe_id("v", node.var), {"label": key}))
        elif node.kind == "diffusion":
            edges.append((safe_id("v", node.var), safe_id("c", key), {**style.INFERENCE, "label": key}))
            edges.append((safe_id("c", key), safe_id("v", node.var), {}))
        elif node.kind == "sample" and node.expr is not None and not isinstance(node.expr, ir.DrawDensity):
            target = key.split(":", 1)[1]
            for ref in ir.walk(node.expr):
                if isinstance(ref, ir.Ref) and ref.scope in ("latent", "data") and ref.name != target:
                    edges.append((safe_id("v", ref.name), safe_id("v", target), {}))
    unique: dict[tuple[str, str], dict] = {}
    for src, dst, attrs in edges:
        unique.setdefault((src, dst), attrs)
    return [(s, d, a) for (s, d), a in unique.items() if s != d]


def _tensors(program: ir.Program | None) -> set[str]:
    if program is None:
        return set()
    return {r.name for r in ir.walk_program(program) if isinstance(r, ir.Ref) and r.scope == "tensor"}


def _tensors_expr(expr: ir.Expr) -> set[str]:
    return {r.name for r in ir.walk(expr) if isinstance(r, ir.Ref) and r.scope == "tensor"}


def render_file(graph: nx.DiGraph, out: Path, view: str = "compute") -> tuple[list[Path], list[Diagnostic]]:
    """Write the chosen view; without graphviz's `dot`, write the DOT file and say how to get dot."""
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        return [], [error("E502", f"cannot tell the format of '{out}'",
                          hint=f"use one of {', '.join(FORMATS)} as the extension")]
    dot = compute_view(graph) if view == "compute" else pgm_view(graph)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return [], [error("E502", f"cannot create {out.parent}: {exc}", hint="choose a writable folder")]
    if fmt == "dot":
        out.write_text(dot.source, encoding="utf-8")
        return [out], []
    if shutil.which("dot") is None:
        fallback = out.with_suffix(".dot")
        fallback.write_text(dot.source, encoding="utf-8")
        return [fallback], [warning("W503", f"graphviz's `dot` program is not installed, so {out.name} was not "
                                    f"drawn; wrote the DOT source to {fallback}",
                                    hint="install graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: "
                                         "brew install graphviz), then run this again")]
    if fmt == "png":
        dot.graph_attr["dpi"] = PNG_DPI
    try:
        out.write_bytes(dot.pipe(format=fmt))
    except (graphviz.ExecutableNotFound, graphviz.CalledProcessError, OSError) as exc:
        return [], [error("E502", f"graphviz failed to draw {out.name}: {exc}",
                          hint="write a .dot file instead and run `dot` yourself to see the problem")]
    return [out], []
