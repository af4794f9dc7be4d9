"""Spec text through the whole pipeline, as the conformance test needs it: check, render (DOT),
generate and build the model."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gendsl.codegen import generate, load_generated
from gendsl.graph.check import Checked, check_source
from gendsl.diagram import render_file
from gendsl.source import SourceFile


@dataclass
class Compiled:
    checked: Checked
    module: object      # the generated module (build(), SPEC)
    model: torch.nn.Module

    def node(self, key: str):
        return self.checked.graph.nodes[key]["data"]


def checks(text: str) -> Checked:
    """The checker's verdict on a spec text."""
    return check_source(SourceFile("conformance.gen", text))


def compile_text(text: str, tmp_path) -> Compiled:
    """Check (must pass), draw, generate and build a spec text."""
    checked = checks(text)
    assert checked.ok, "\n".join(f"{d.code} {d.message} ({d.hint})" for d in checked.diagnostics) + "\n" + text
    written, notes = render_file(checked.graph, tmp_path / "diagram.dot", "compute")
    assert written and not [n for n in notes if n.is_error], notes
    source = generate(checked.graph, "conformance.gen", text).source
    module = load_generated(source, "conformance")
    return Compiled(checked, module, module.build())


def sample_input(kind: str, shape: tuple[int, ...], classes: int, n: int = 3) -> torch.Tensor:
    """A batch of n values of a per-sample type."""
    if kind == "cat":
        return torch.randint(classes, (n,))
    if kind == "bin":
        return torch.bernoulli(torch.full((n, *shape), 0.5))
    if kind == "step":
        return torch.randint(10, (n,))
    return torch.randn(n, *shape)
