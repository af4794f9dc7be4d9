"""The two views of a checked graph, and writing them out (SVG, PNG, PDF or DOT)."""

from __future__ import annotations

import re
import shutil
from html import escape
from pathlib import Path

import graphviz
import networkx as nx

from gendsl.diagnostics import Diagnostic, error, warning
from gendsl.graph import ir
from gendsl.diagram import style
from gendsl.diagram.edges import flow_edges, node_id, safe_id
from gendsl.diagram.mathtext import PHI, THETA, Formula, label, loss_sym, normal_term, sym
from gendsl.diagram.tables import program_rows, shape_text, table

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


LOSS_WIDTH = 56  # characters of formula per line before a loss breaks at a top-level + or -


def _cluster_name(key: str) -> str:
    return "cluster_" + re.sub(r"\W", "_", key)


def with_shape(head: str, shape: str) -> str:
    return label(f'{head}<BR/><FONT POINT-SIZE="9" COLOR="#555555">{escape(shape)}</FONT>' if shape else head)


def compute_view(graph: nx.DiGraph) -> graphviz.Digraph:
    """Networks as clusters with their layers; variables, losses and data flow; the training
    steps in one schedule panel after the losses (so no edge crosses the graph to reach a network)."""
    text, math = SourceText(graph), math_for(graph)
    dot = graphviz.Digraph(graph.graph["model"], graph_attr={**style.GRAPH, "rankdir": "LR"},
                           node_attr=style.NODE, edge_attr=style.EDGE)
    for key, data in graph.nodes(data=True):
        node = data["data"]
        nid = node_id(graph, key)
        if node.kind == "data":
            dot.node(nid, with_shape(sym(key), shape_text(node.type)), **style.OBSERVED)
        elif node.kind == "latent":
            prior = f" ~ {math.html(text(node.prior.span))}" if node.prior is not None else (
                f" ~ {math.html(graph.nodes[node.prior_factor]['data'].term.describe())}"
                if node.prior_factor else "")
            dot.node(nid, with_shape(sym(key) + prior, shape_text(node.type)), **style.LATENT)
        elif node.kind == "tensor":
            dot.node(nid, with_shape(sym(key), shape_text(node.type)), **style.TENSOR)
        elif node.kind in ("net", "factor", "flow"):
            network_cluster(dot, graph, key, node, math)
        elif node.kind == "diffusion":
            process, betas = node.process, node.betas
            dot.node(nid, f"{key}: {process.entry if process else ''} diffusion\n"
                          f"{process.options.get('steps', '') if process else ''} steps, "
                          f"{betas.entry if betas else ''} betas"
                          + (", learned variances" if process and process.options.get("variance") == "learned" else ""),
                     **style.PROCESS)
        elif node.kind == "sampler":
            dot.node(nid, f"{key}\n{node.sampler}", **style.SAMPLER)
        elif node.kind == "loss":
            lines = math.lines(text(node.decl.value.span), LOSS_WIDTH)
            lines[0] = f"{loss_sym(key)} = {lines[0]}"
            rows = "".join(f'<TR><TD ALIGN="LEFT">{line}</TD></TR>' for line in lines)
            dot.node(nid, label(f'<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="1">{rows}</TABLE>'), **style.LOSS)
    shown_on_node = {node_id(graph, k): shape_text(getattr(d["data"], "type", None))
                     for k, d in graph.nodes(data=True) if d["data"].kind in ("data", "latent", "tensor")}
    for (src, dst), attrs in flow_edges(graph, math).items():
        if not attrs.get("label") or attrs["label"] == shown_on_node.get(src):
            attrs = {k: v for k, v in attrs.items() if k != "label"}  # the variable's node says its shape
        dot.edge(src, dst, **_compound(graph, src, dst), **attrs)
    schedule_panel(dot, graph, math)
    return dot


def network_cluster(dot: graphviz.Digraph, graph: nx.DiGraph, key: str, node, math: Formula) -> None:
    role = getattr(node, "role", "flow")
    if node.kind == "factor" and node.term is not None:
        name = math.html(node.term.describe())
    elif node.kind == "flow":
        name = f"{sym(key)}: {sym(node.var)} \u2194 {sym(node.latent)}"
    else:
        name = sym(key)
    fill = style.ROLE_COLORS.get(role, style.CLUSTER["fillcolor"])
    with dot.subgraph(name=_cluster_name(key)) as cluster:
        packed = f" pack {node.pack}" if getattr(node, "pack", 1) > 1 else ""  # PacGAN: N samples per output
        title = f'{role} {name}{packed}  <FONT POINT-SIZE="9">({node.params:,} params)</FONT>'
        cluster.attr(label=label(title), **{**style.CLUSTER, "fillcolor": fill})
        rows = program_rows(node.program, _call_head(key, node)) if node.program is not None else []
        cluster.node(node_id(graph, key), table(rows), shape="plaintext")


def _call_head(key: str, node) -> str:
    """`G(z, c)`: how the body's result is named in its table."""
    inputs = ", ".join(sym(name) for name, _ in node.program.inputs)
    return f"{sym(key)}({inputs})" if node.kind == "net" else "out"


def _compound(graph: nx.DiGraph, src: str, dst: str) -> dict:
    attrs = {}
    clusters = {node_id(graph, k): k for k, d in graph.nodes(data=True)
                if d["data"].kind in ("net", "factor", "flow")}
    for end, nid in (("ltail", src), ("lhead", dst)):
        if nid in clusters:
            attrs[end] = _cluster_name(clusters[nid])
    return attrs


SCHEDULE = "schedule"


def schedule_panel(dot: graphviz.Digraph, graph: nx.DiGraph, math: Formula) -> None:
    """One table of the training steps, in order: which loss each minimizes over which networks,
    with what optimizer. Each loss points at its step's row; nothing points back into the graph."""
    train = graph.graph.get("train")
    steps = [(k, d["data"]) for k, d in graph.nodes(data=True) if d["data"].kind == "step"]
    if not steps:
        return
    rows = ['<TR><TD ALIGN="LEFT" COLSPAN="2"><B>training schedule</B></TD></TR>']
    for number, (key, node) in enumerate(steps, 1):
        optimizer = node.optimizer or (train.optimizer if train else None)
        repeat = f" \u00d7{node.repeat}" if node.repeat != 1 else ""
        over = ", ".join(dict.fromkeys(_trainable(graph, target) for target in node.over))
        opt = (f'<FONT COLOR="#666666" POINT-SIZE="9">{escape(optimizer.entry)}, lr = '
               f'{escape(str(optimizer.options.get("lr", "")))}</FONT>') if optimizer else " "
        what = f"{number}. {escape(key.split(':', 1)[1])}{repeat}: min {loss_sym(node.loss)} over {over}"
        rows.append(f'<TR><TD ALIGN="LEFT" PORT="{safe_id("p", key)}">{what}</TD>'
                    f'<TD ALIGN="LEFT">{opt}</TD></TR>')
    dot.node(SCHEDULE, label('<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3">'
                            + "".join(rows) + "</TABLE>"), **style.SCHEDULE)
    for key, node in steps:
        if node.loss in graph:
            dot.edge(node_id(graph, node.loss), f"{SCHEDULE}:{safe_id('p', key)}:w", **style.MINIMIZE)
    stack_in_schedule_order(dot, graph, [node.loss for _, node in steps if node.loss in graph])


def stack_in_schedule_order(dot: graphviz.Digraph, graph: nx.DiGraph, losses: list[str]) -> None:
    """The minimized losses one above the other in the order of their steps, so that their edges
    to the schedule's rows do not cross; unless one is computed from another (then they cannot
    share a column)."""
    losses = list(dict.fromkeys(losses))
    among = graph.subgraph(k for k, d in graph.nodes(data=True) if d["data"].kind == "loss")
    if len(losses) < 2 or any(nx.has_path(among, a, b) for a in losses for b in losses if a != b):
        return
    with dot.subgraph() as column:
        column.attr(rank="same")
        for above, below in zip(losses, losses[1:]):
            column.edge(node_id(graph, above), node_id(graph, below), style="invis")


def _trainable(graph: nx.DiGraph, key: str) -> str:
    """A step's target as the paper names it: the density blocks by their parameters (theta, phi),
    networks and tensors by their names."""
    node = graph.nodes[key]["data"] if key in graph else None
    if node is not None and node.kind in ("factor", "flow"):
        return f"<I>{PHI if getattr(node, 'role', '') == 'encoder' else THETA}</I>"
    return sym(key.split(":", 1)[-1])


def math_for(graph: nx.DiGraph) -> Formula:
    """The formula writer of this model: which density terms carry theta or phi, which names are
    networks (symbols) and which are losses."""
    densities: dict[str, str] = {}
    for key, data in graph.nodes(data=True):
        node = data["data"]
        if node.kind == "factor" and node.term is not None:
            densities[normal_term(node.term.describe())] = PHI if node.role == "encoder" else THETA
        elif node.kind == "flow":
            densities[normal_term(f"p({node.var}{' | ' + ', '.join(node.given) if node.given else ''})")] = THETA
        elif node.kind == "latent" and node.prior is not None and _tensors_expr(node.prior):
            densities[normal_term(f"p({key})")] = THETA  # a prior with trained tensors
    for key, data in graph.nodes(data=True):
        node = data["data"]
        if node.kind == "loss" and node.expr is not None:
            for e in ir.walk(node.expr):
                if isinstance(e, ir.LogDensity) and e.how == "marginal_enumerate":
                    densities.setdefault(normal_term(e.term.describe()), THETA)
    networks = {k for k, d in graph.nodes(data=True) if d["data"].kind in ("net", "tensor")}
    names = {n.term.density for _, d in graph.nodes(data=True) if (n := d["data"]).kind == "factor" and n.term}
    losses = {k for k, d in graph.nodes(data=True) if d["data"].kind == "loss"}
    return Formula(densities, networks, names | {"p", "q"}, losses)


def pgm_view(graph: nx.DiGraph) -> graphviz.Digraph:
    """Random variables in a plate over the N examples, as Kingma & Welling (2014) draw the VAE:
    generative dependencies solid, inference (encoders) dashed; the parameters theta (generative
    networks) and phi (encoders) outside the plate, pointing at the variables they parametrize."""
    dot = graphviz.Digraph(graph.graph["model"], graph_attr={**style.GRAPH, "rankdir": "TB"},
                           node_attr=style.NODE, edge_attr=style.EDGE)
    nodes = [(k, d["data"]) for k, d in graph.nodes(data=True)]
    edges = pgm_edges(graph)
    used = {src for src, _, _ in edges}
    theta, phi = safe_id("w", "theta"), safe_id("w", "phi")
    if phi in used:  # declared before the plate so that phi sits left of it and theta right
        dot.node(phi, label(f"<I>{PHI}</I>"), **style.PARAMETER)
    with dot.subgraph(name="cluster_plate") as plate:
        plate.attr(label=label("<I>N</I>"), labeljust="r", labelloc="b", style="rounded", color="#555555")
        for key, node in nodes:
            if node.kind == "data":
                plate.node(safe_id("v", key), label(sym(key)), **style.OBSERVED)
            elif node.kind == "latent":
                plate.node(safe_id("v", key), label(sym(key)), **style.LATENT)
        for key, node in nodes:
            if node.kind == "diffusion":
                plate.node(safe_id("c", key), label(f"{sym(node.var)}<SUB>1:<I>T</I></SUB>"), **style.LATENT)
    if theta in used:
        dot.node(theta, label(f"<I>{THETA}</I>"), **style.PARAMETER)
    for key, node in nodes:
        if node.kind == "tensor":
            dot.node(safe_id("t", key), label(sym(key)), shape="plaintext", fontsize="10", fontcolor="#444444")
    variables = [safe_id("v", k) for k, n in nodes if n.kind in ("latent", "data")]
    top = _top_variable(edges, variables + [safe_id("c", k) for k, n in nodes if n.kind == "diffusion"])
    if top and used & {theta, phi}:  # the parameters level with the top of the plate, as in the paper
        with dot.subgraph() as level:
            level.attr(rank="same")
            for nid in (phi, top, theta):
                if nid == top or nid in used:
                    level.node(nid)
    for src, dst, attrs in edges:
        dot.edge(src, dst, **attrs)
    return dot


def _top_variable(edges: list[tuple[str, str, dict]], variables: list[str]) -> str | None:
    """The first variable that no generative edge from another variable points at."""
    generated = {dst for src, dst, attrs in edges if src in variables and attrs.get("style") != "dashed"}
    return next((v for v in variables if v not in generated), None)


def pgm_edges(graph: nx.DiGraph) -> list[tuple[str, str, dict]]:
    theta, phi = safe_id("w", "theta"), safe_id("w", "phi")
    edges: list[tuple[str, str, dict]] = []
    for key, data in graph.nodes(data=True):
        node = data["data"]
        if node.kind == "factor" and node.term is not None:
            encoder = node.role == "encoder"
            for given in node.term.given:
                for var in node.term.vars:
                    edges.append((safe_id("v", given), safe_id("v", var), style.INFERENCE if encoder else {}))
            if node.params:
                edges += [(phi if encoder else theta, safe_id("v", var), style.INFERENCE if encoder else {})
                          for var in node.term.vars]
            for tensor in sorted(_tensors(node.program)):
                edges += [(safe_id("t", tensor), safe_id("v", var), {}) for var in node.term.vars]
        elif node.kind == "latent" and node.prior is not None:
            edges += [(safe_id("t", t), safe_id("v", key), {}) for t in sorted(_tensors_expr(node.prior))]
        elif node.kind == "flow":
            edges.append((safe_id("v", node.latent), safe_id("v", node.var), {"label": key}))
            edges += [(safe_id("v", given), safe_id("v", node.var), {}) for given in node.given]
            edges.append((theta, safe_id("v", node.var), {}))
        elif node.kind == "diffusion":
            edges.append((safe_id("v", node.var), safe_id("c", key),
                          {**style.INFERENCE, "label": label(sym(key))}))
            edges.append((safe_id("c", key), safe_id("v", node.var), {}))
            edges.append((theta, safe_id("c", key), {}))
        elif node.kind == "sample" and node.expr is not None and not isinstance(node.expr, ir.DrawDensity):
            target = key.split(":", 1)[1]
            for ref in ir.walk(node.expr):
                if isinstance(ref, ir.Ref) and ref.scope in ("latent", "data") and ref.name != target:
                    edges.append((safe_id("v", ref.name), safe_id("v", target), {}))
                if isinstance(ref, (ir.CallNet, ir.Method)):  # a generator's weights parametrize its output
                    edges.append((theta, safe_id("v", target), {}))
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
