"""The front end's one entry point: spec -> checked graph + diagnostics (never raises on bad input)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from gendsl.diagnostics import Diagnostic, error, has_errors
from gendsl.graph.build import build_graph
from gendsl.graph.load import load_source
from gendsl.graph.passes.gradients import check_gradients
from gendsl.graph.passes.names import resolve_names
from gendsl.graph.passes.packing import check_packing
from gendsl.graph.passes.params import resolve_params
from gendsl.graph.passes.roles import check_roles
from gendsl.graph.passes.size import estimate_size
from gendsl.graph.passes.types import infer_types
from gendsl.source import SourceFile
from gendsl.syntax.parse import collector_paused


@dataclass
class Checked:
    """What `gendsl check` knows about a spec."""

    graph: nx.DiGraph | None
    diagnostics: list[Diagnostic]
    sources: dict[str, SourceFile] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.graph is not None and not has_errors(self.diagnostics)


def check_source(source: SourceFile, overrides: list[str] = (), model: str | None = None) -> Checked:
    """Parse, build and run every pass; passes still run after errors so all of them are reported."""
    try:
        with collector_paused():
            return _check(source, overrides, model)
    except RecursionError:
        from gendsl.syntax.parse import too_deep

        return Checked(None, [too_deep(source)], {source.path: source})


def _check(source: SourceFile, overrides, model) -> Checked:
    loaded, diagnostics = load_source(source, model)
    sources = {source.path: source}
    if loaded is None:
        return Checked(None, diagnostics, sources)
    sources.update(loaded.sources)
    graph, found, declarations_ok = build_graph(loaded)
    diagnostics += found
    graph, found = resolve_names(graph)
    diagnostics += found
    graph, found, params_ok = resolve_params(graph, list(overrides))
    diagnostics += found
    if loaded.dropped or not (declarations_ok and params_ok):
        # types would follow from wrong values, or from the declaration that was dropped
        return Checked(graph, _dedupe(diagnostics), sources)
    for run in (infer_types, check_roles, check_packing):
        graph, found = run(graph)
        diagnostics += found
    graph, found = check_gradients(graph, earlier_errors=has_errors(diagnostics))
    diagnostics += found
    graph, found = estimate_size(graph)
    diagnostics += found
    return Checked(graph, _dedupe(diagnostics), sources)


def check_file(path: str | Path, overrides: list[str] = (), model: str | None = None) -> Checked:
    """Read and check a spec file; an unreadable file is a diagnostic too."""
    try:
        source = SourceFile.read(path)
    except FileNotFoundError:
        return Checked(None, [error("E501", f"no such file: {path}", hint="check the path")])
    except (OSError, UnicodeDecodeError) as exc:
        return Checked(None, [error("E501", f"cannot read {path}: {exc}",
                                    hint="a spec is a UTF-8 text file")])
    return check_source(source, overrides, model)


def _dedupe(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Drop exact repeats, keep order (several passes may meet one broken line)."""
    seen, out = set(), []
    for d in diagnostics:
        key = (d.code, d.message, d.span)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out
