"""LSP answers from gendsl's own data: diagnostics, hover, definition, completion, symbols, formatting.

Pure functions of (document text, Checked/Index): the server module only wires them to pygls.
"""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp

from gendsl import ast
from gendsl.diagnostics import Diagnostic
from gendsl.graph.passes.names import BUILTIN_CALLS
from gendsl.graph.nodes import decl_name
from gendsl.lsp.index import Index, word_at
from gendsl.source import SourceFile, Span
from gendsl.syntax.fmt import FormatterBug, format_source
from gendsl.syntax.parse import keywords, parse_source

_SYMBOL_KINDS = {"param": lsp.SymbolKind.Constant, "data": lsp.SymbolKind.Variable,
                 "latent": lsp.SymbolKind.Variable, "tensor": lsp.SymbolKind.Array,
                 "loss": lsp.SymbolKind.Function, "train": lsp.SymbolKind.Namespace,
                 "evaluate": lsp.SymbolKind.Namespace, "sample": lsp.SymbolKind.Event}
_COMPLETION_KINDS = {"param": lsp.CompletionItemKind.Constant, "input": lsp.CompletionItemKind.Variable,
                     "local": lsp.CompletionItemKind.Variable, "data": lsp.CompletionItemKind.Variable,
                     "latent": lsp.CompletionItemKind.Variable, "tensor": lsp.CompletionItemKind.Variable,
                     "loss": lsp.CompletionItemKind.Value}


def to_range(span: Span) -> lsp.Range:
    """A 1-based, end-exclusive span as a 0-based LSP range (a span with no place: the first line)."""
    if span.line <= 0:
        return lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))
    return lsp.Range(lsp.Position(span.line - 1, max(span.col - 1, 0)),
                     lsp.Position(max(span.end_line - 1, 0), max(span.end_col - 1, 0)))


def to_diagnostic(d: Diagnostic, uri_of) -> lsp.Diagnostic:
    """One of gendsl's diagnostics as the editor shows it: the same code, range, hint and notes."""
    message = d.message + (f" ({d.label})" if d.label else "")
    related = []
    for note in d.notes:
        if note.span is not None and note.span.line > 0:
            related.append(lsp.DiagnosticRelatedInformation(lsp.Location(uri_of(note.span.file),
                                                                         to_range(note.span)), note.message))
        else:
            message += f"\nnote: {note.message}"
    if d.hint:
        message += f"\nhelp: {d.hint}"
    severity = lsp.DiagnosticSeverity.Error if d.is_error else lsp.DiagnosticSeverity.Warning
    return lsp.Diagnostic(range=to_range(d.span), message=message, severity=severity, code=d.code,
                          source="gendsl", related_information=related or None)


def diagnostics_for(source: SourceFile, diagnostics: list[Diagnostic], uri_of) -> list[lsp.Diagnostic]:
    """The diagnostics that belong in this document: its own, and those of a file it imports, shown
    on that import (on the first line when the file comes in through another import)."""
    shown = []
    foreign = any(d.span.file != source.path and d.span.line > 0 for d in diagnostics)
    imports = _import_spans(source) if foreign else {}
    for d in diagnostics:
        if d.span.file != source.path and d.span.line > 0:
            at = imports.get(str(Path(d.span.file).resolve()), Span(file=source.path, line=1, col=1, end_line=1,
                                                                     end_col=1))
            d = d.model_copy(update={"message": f"{d.span}: {d.message}", "span": at})
        shown.append(to_diagnostic(d, uri_of))
    return shown


def _import_spans(source: SourceFile) -> dict[str, Span]:
    """resolved path -> the `import` statement of this document that names it."""
    module, _ = parse_source(source)
    if module is None or source.path.startswith("<") or not Path(source.path).is_absolute():
        return {}
    folder = Path(source.path).parent
    return {str((folder / imp.path.value).resolve()): imp.span for imp in module.imports}


def _markdown(*parts: str) -> lsp.MarkupContent:
    return lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value="\n\n".join(p for p in parts if p))


def hover(text: str, path: str, index: Index, line: int, col: int) -> lsp.Hover | None:
    """A declared name's inferred type and size, or a registry entry's signature and doc line."""
    found = word_at(text, line, col)
    if found is None:
        return None
    word, start = found
    where = lsp.Range(lsp.Position(line - 1, start - 1), lsp.Position(line - 1, start - 1 + len(word)))
    symbols = index.lookup(word, path, line, col, _after(text, line, start + len(word)))
    if symbols:
        return lsp.Hover(_markdown("```gen\n" + "\n".join(s.detail for s in symbols) + "\n```"), where)
    entries = index.library.get(word, ())
    if entries:
        return lsp.Hover(_markdown(*(f"```gen\n{e.signature}\n```\n{e.what}: {e.doc}" for e in entries)), where)
    return None


def definition(text: str, path: str, index: Index, line: int, col: int, uri_of) -> list[lsp.Location]:
    """Where the name under the cursor is declared (a name such as `p` may have several factors)."""
    found = word_at(text, line, col)
    if found is None:
        return []
    word, start = found
    symbols = index.lookup(word, path, line, col, _after(text, line, start + len(word)))
    return [lsp.Location(uri_of(s.span.file), to_range(s.span)) for s in symbols]


def _after(text: str, line: int, col: int) -> str:
    """The rest of a line from a 1-based column."""
    lines = text.split("\n")
    return lines[line - 1][col - 1:] if 0 < line <= len(lines) else ""


def completion(path: str, index: Index, line: int, col: int) -> list[lsp.CompletionItem]:
    """Names in scope, every registry entry and the keywords, each with its signature."""
    items, seen = [], set()
    for symbol in index.visible(path, line, col):
        if (symbol.name, symbol.detail) not in seen:
            seen.add((symbol.name, symbol.detail))
            items.append(lsp.CompletionItem(symbol.name, kind=_COMPLETION_KINDS.get(symbol.kind,
                                            lsp.CompletionItemKind.Function), detail=symbol.detail))
    for name, entries in sorted(index.library.items()):
        first = entries[0]
        items.append(lsp.CompletionItem(name, kind=lsp.CompletionItemKind.Function, detail=first.signature,
                                        documentation="\n".join(f"{e.what}: {e.doc}" for e in entries)))
    items += [lsp.CompletionItem(name, kind=lsp.CompletionItemKind.Function, detail=f"{name}(q(...), p(...))",
                                 documentation="built-in: the KL divergence of two density terms")
              for name in sorted(BUILTIN_CALLS)]
    items += [lsp.CompletionItem(word, kind=lsp.CompletionItemKind.Keyword) for word in sorted(keywords())]
    return items


def document_symbols(source: SourceFile) -> list[lsp.DocumentSymbol]:
    """Models and blocks with their statements (nothing while the file does not parse)."""
    module, _ = parse_source(source)
    if module is None:
        return []
    out = []
    for model in module.models:
        children = [_statement_symbol(stmt) for stmt in model.body]
        out.append(lsp.DocumentSymbol(model.name.name, lsp.SymbolKind.Class, to_range(model.span),
                                      to_range(model.name.span), children=children))
    for block in module.blocks:
        out.append(lsp.DocumentSymbol(block.name.name, lsp.SymbolKind.Function, to_range(block.span),
                                      to_range(block.name.span)))
    return out


def _statement_symbol(stmt) -> lsp.DocumentSymbol:
    kind_word = type(stmt).__name__.removesuffix("Decl").removesuffix("Block").lower()
    name = decl_name(stmt)
    selection = stmt.name.span if isinstance(getattr(stmt, "name", None), ast.Ident) else stmt.span
    if isinstance(stmt, ast.DataDecl):
        name, selection = ", ".join(v.name.name for v in stmt.vars), stmt.vars[0].name.span
    elif isinstance(stmt, ast.DensityDecl):
        given = f" | {', '.join(g.name for g in stmt.given)}" if stmt.given else ""
        name = f"{stmt.name.name}({', '.join(v.name for v in stmt.vars)}{given})"
    kind = _SYMBOL_KINDS.get(kind_word, lsp.SymbolKind.Function if kind_word in ("net", "density", "flow")
                             else lsp.SymbolKind.Object)
    role = getattr(stmt, "role", kind_word)
    return lsp.DocumentSymbol(name or kind_word, kind, to_range(stmt.span), to_range(selection), detail=role)


def formatting(source: SourceFile) -> list[lsp.TextEdit]:
    """One edit that replaces the document by its `gendsl fmt` layout (none if it is already
    canonical, or does not parse)."""
    try:
        result = format_source(source)
    except FormatterBug:
        return []
    if not result.changed:
        return []
    lines = source.text.split("\n")
    end = lsp.Position(len(lines) - 1, len(lines[-1]))
    return [lsp.TextEdit(lsp.Range(lsp.Position(0, 0), end), result.text)]

