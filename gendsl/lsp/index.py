"""What the language server knows about one document: its declared names (with their inferred
types, shapes and sizes, read from the checked graph), and the registries' entries.

Built from the same `check_source` as `gendsl check`; nothing here checks anything itself.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import networkx as nx

from gendsl import ast
from gendsl.graph.check import Checked
from gendsl.graph.ir import Assign, Program
from gendsl.source import Span
from gendsl.summary import label as network_label, summarize

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TERM = re.compile(r"\(([A-Za-z0-9_,|\s]*)\)")  # `(x | z)` after a density's name


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


@dataclass(frozen=True)
class Symbol:
    """A declared name: where it is declared, a one-line description, where it is visible."""

    name: str
    kind: str                 # param, data, latent, tensor, net, factor, flow, loss, input, local, ...
    span: Span                # the name where it is declared
    detail: str               # e.g. `latent z: real[50] ~ Normal`
    scope: Span | None = None  # a network's inputs and locals are visible only inside it
    term: str = ""             # a density factor's term, `p(x | z)`: which `p` a use means


@dataclass(frozen=True)
class LibraryItem:
    """A registry entry as the editor shows it."""

    name: str
    what: str        # "layer", "distribution", "function", "data source", ...
    signature: str
    doc: str


@functools.lru_cache(maxsize=None)
def library() -> dict[str, tuple[LibraryItem, ...]]:
    """name -> gendsl's own registry entries of that name (a name may be a layer and a function)."""
    return library_now()


def library_now() -> dict[str, tuple[LibraryItem, ...]]:
    """The same, read from the registries as they are now (with the plugins loaded at the moment)."""
    from gendsl.plugins import registries

    items: dict[str, list[LibraryItem]] = {}
    for registry in registries():
        for name, entry in registry.items():
            items.setdefault(name, []).append(LibraryItem(name, registry.what, entry.signature, entry.doc))
    return {name: tuple(found) for name, found in items.items()}


@dataclass
class Index:
    """The names of one checked document, and the registry entries it could use."""

    symbols: list[Symbol] = field(default_factory=list)
    library: dict[str, tuple[LibraryItem, ...]] = field(default_factory=library)

    def lookup(self, name: str, file: str, line: int, col: int, written: str = "") -> list[Symbol]:
        """The declarations a name at (line, col) refers to: a network's own names first; for a
        density name, the factor whose variables follow it (`written`: the text after the name)."""
        local = [s for s in self.symbols if s.name == name and s.scope is not None
                 and contains(s.scope, file, line, col)]
        if local:
            return local
        found = [s for s in self.symbols if s.name == name and s.scope is None]
        term = _TERM.match(written)
        if len(found) > 1 and term:
            wanted = f"{name}({_squeeze(term.group(1))})"
            return [s for s in found if _squeeze(s.term) == wanted] or found
        return found

    def visible(self, file: str, line: int, col: int) -> list[Symbol]:
        """Every name usable at (line, col)."""
        return [s for s in self.symbols if s.scope is None or contains(s.scope, file, line, col)]


def contains(span: Span, file: str, line: int, col: int) -> bool:
    """Is the 1-based (line, col) inside the span?"""
    return span.file == file and (span.line, span.col) <= (line, col) <= (span.end_line, span.end_col)


def word_at(text: str, line: int, col: int) -> tuple[str, int] | None:
    """The identifier under a 1-based (line, col), with the column it starts at."""
    lines = text.split("\n")
    if not 0 < line <= len(lines):
        return None
    text_line = lines[line - 1]
    for match in _WORD.finditer(text_line):
        if match.start() < col <= match.end() + 1:
            if _is_statement_keyword(text_line, match):
                return None
            return match.group(), match.start() + 1
    return None


def _is_statement_keyword(line: str, match: re.Match) -> bool:
    """`latent` in `latent z: ...` is the keyword, in `real[latent]` a param's name."""
    from gendsl.syntax.parse import keywords

    before = line[:match.start()].rstrip()
    return match.group() in keywords() and (not before or before.endswith((";", "{")))


def build_index(checked: Checked, entries: dict[str, tuple[LibraryItem, ...]] | None = None) -> Index:
    """The symbols of a checked spec (what the passes could type; '?' where they stopped), and
    the registry entries it was checked with (gendsl's own unless plugins added some)."""
    graph = checked.graph
    entries = library() if entries is None else entries
    if graph is None:
        return Index(library=entries)
    networks = {n["name"]: n for n in summarize(graph)["networks"]} if checked.ok else {}
    symbols: list[Symbol] = []
    for key, data in graph.nodes(data=True):
        node = data["data"]
        name_span = _name_span(node)
        if name_span is None:
            continue
        term = network_label(graph, key) if node.kind == "factor" else ""
        symbols.append(Symbol(_declared_name(node), node.kind, name_span,
                              _describe(graph, key, node, networks), term=term))
        program = getattr(node, "program", None)
        if isinstance(program, Program) and node.decl is not None:
            symbols += _locals(node.decl, program)
    return Index(symbols, entries)


def _declared_name(node) -> str:
    name = getattr(node.decl, "name", None)
    return name.name if isinstance(name, ast.Ident) else node.name


def _name_span(node) -> Span | None:
    if node.kind in ("step", "sample", "metric"):
        return None  # not names a spec refers to
    name = getattr(node.decl, "name", None)
    if isinstance(name, ast.Ident):
        return name.span
    if isinstance(node.decl, ast.DataDecl):
        return next((v.name.span for v in node.decl.vars if v.name.name == node.name), node.span)
    return node.span


def _type(value) -> str:
    return value.describe() if value is not None and hasattr(value, "describe") else "?"


def _describe(graph: nx.DiGraph, key: str, node, networks: dict) -> str:
    """One line: the declaration with what checking found (types, shapes, parameter counts)."""
    name = _declared_name(node)
    if node.kind == "param":
        return f"param {name}: {node.type_name} = {node.value}"
    if node.kind == "data":
        return f"data {name}: {_type(node.type)} from {node.source}()"
    if node.kind == "latent":
        prior = f" ~ {node.prior.family}" if node.prior is not None else ""
        return f"latent {name}: {_type(node.type)}{prior}"
    if node.kind == "tensor":
        return f"tensor {name}: {_type(node.type)} ({node.params:,} parameters)"
    if node.kind in ("net", "factor", "flow"):
        label = network_label(graph, key)
        found = networks.get(label)
        role = getattr(node, "role", "flow")
        if found is None:
            return f"{role} {label}"
        return f"{role} {label}({found['inputs']}) -> {found['output'] or '?'}: {found['params']:,} parameters"
    if node.kind == "loss":
        return f"loss {name}: {_type(node.expr.type if node.expr is not None else None)}"
    if node.kind == "diffusion":
        process = node.process.entry if node.process is not None else "?"
        return f"diffusion {name}({node.var}) = {process}"
    if node.kind == "sampler":
        return f"sampler {name} = {node.sampler}({node.target}): {_type(node.type)}"
    return f"{node.kind} {name}"


def _locals(decl, program: Program) -> list[Symbol]:
    """A network's inputs and the names its body assigns or draws, visible inside it only."""
    found = []
    params = {p.name.name: p.name.span for p in getattr(decl, "params", ()) if isinstance(p, ast.NetParam)}
    flow_param = getattr(decl, "param", None)
    if isinstance(flow_param, ast.NetParam):
        params[flow_param.name.name] = flow_param.name.span
    params.update({v.name: v.span for v in getattr(decl, "vars", ()) if isinstance(v, ast.Ident)})
    params.update({v.name: v.span for v in getattr(decl, "given", ()) if isinstance(v, ast.Ident)})
    for name, typ in program.inputs:
        if name in params:
            found.append(Symbol(name, "input", params[name], f"{name}: {_type(typ)} (input)", decl.span))
    for stmt in program.stmts:
        value = stmt.value if isinstance(stmt, Assign) else stmt.dist
        start = stmt.span
        span = Span(file=start.file, line=start.line, col=start.col, end_line=start.line,
                    end_col=start.col + len(stmt.name))
        found.append(Symbol(stmt.name, "local", span, f"{stmt.name}: {_type(value.type)}", decl.span))
    return found
