"""Diagnostics as text (rustc-style, with carets) or JSON (LSP-style ranges), for the CLI."""

from __future__ import annotations

import json
import os
import sys
from typing import Iterable

from gendsl.diagnostics import Diagnostic
from gendsl.source import SourceFile, Span

_COLORS = {"error": "\033[1;31m", "warning": "\033[1;33m", "note": "\033[1;36m", "bold": "\033[1m",
           "blue": "\033[1;34m", "reset": "\033[0m"}


def use_color(stream=sys.stderr) -> bool:
    """Color only on a terminal, and never when NO_COLOR is set."""
    return stream.isatty() and "NO_COLOR" not in os.environ


class TextReport:
    def __init__(self, sources: dict[str, SourceFile], color: bool = False):
        self.sources = sources
        self.color = color

    def paint(self, style: str, text: str) -> str:
        return f"{_COLORS[style]}{text}{_COLORS['reset']}" if self.color else text

    def source_for(self, span: Span) -> SourceFile | None:
        source = self.sources.get(span.file)
        if source is None:
            for path, candidate in self.sources.items():
                if os.path.abspath(path) == os.path.abspath(span.file):
                    return candidate
        return source

    def snippet(self, span: Span, label: str, style: str, width: int) -> list[str]:
        source = self.source_for(span)
        if source is None or span.line < 1:
            return []
        text = source.line(span.line).expandtabs(1)
        end = span.end_col if span.end_line == span.line else len(text) + 1
        carets = "^" * max(1, end - span.col)
        gutter = " " * width
        bar = self.paint("blue", "|")
        return [f"{gutter} {bar}",
                f"{self.paint('blue', str(span.line).rjust(width))} {bar} {text}",
                f"{gutter} {bar} {' ' * (span.col - 1)}{self.paint(style, carets + (' ' + label if label else ''))}"]

    def location(self, span: Span, width: int) -> str:
        return f"{' ' * width}{self.paint('blue', '-->')} {span.file}:{span.line}:{span.col}"

    def format(self, d: Diagnostic) -> str:
        style = "error" if d.is_error else "warning"
        lines = [f"{self.paint(style, f'{d.severity}[{d.code}]')}{self.paint('bold', ': ' + d.message)}"]
        spans = [d.span] + [n.span for n in d.notes if n.span is not None]
        width = max((len(str(s.line)) for s in spans if s.line > 0), default=0)
        if d.span.line > 0:
            lines.append(self.location(d.span, width))
            lines += self.snippet(d.span, d.label, style, width)
        for note in d.notes:
            if note.span is not None and note.span.line > 0:
                lines.append(f"{' ' * width} {self.paint('blue', '=')} {self.paint('note', 'note')}: {note.message}")
                lines.append(self.location(note.span, width))
                lines += self.snippet(note.span, "", "note", width)
            else:
                lines.append(f"{' ' * width} {self.paint('blue', '=')} note: {note.message}")
        if d.hint:
            lines.append(f"{' ' * width} {self.paint('blue', '=')} {self.paint('bold', 'help')}: {d.hint}")
        return "\n".join(lines)

    def all(self, diagnostics: Iterable[Diagnostic]) -> str:
        diagnostics = list(diagnostics)
        blocks = [self.format(d) for d in diagnostics]
        errors = sum(d.is_error for d in diagnostics)
        warnings = len(diagnostics) - errors
        if errors:
            blocks.append(self.paint("error", f"{errors} error{'s' if errors != 1 else ''}")
                          + (f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""))
        return "\n\n".join(blocks[:-1]) + ("\n\n" if len(blocks) > 1 else "") + blocks[-1] if blocks else ""


def _range(span: Span) -> dict:
    """An LSP range: 0-based lines and characters, end exclusive."""
    return {"start": {"line": max(0, span.line - 1), "character": max(0, span.col - 1)},
            "end": {"line": max(0, span.end_line - 1), "character": max(0, span.end_col - 1)}}


def as_json(d: Diagnostic) -> dict:
    """One diagnostic as a JSON-ready dict (for editors)."""
    return {"code": d.code, "severity": d.severity, "message": d.message, "file": d.span.file,
            "range": _range(d.span), "label": d.label, "hint": d.hint,
            "notes": [{"message": n.message, **({"file": n.span.file, "range": _range(n.span)} if n.span else {})}
                      for n in d.notes]}


def dumps(payload: dict) -> str:
    return json.dumps(payload, indent=2, default=str)
