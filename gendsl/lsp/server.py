"""The language server: pygls wiring of gendsl.lsp.features to LSP requests, over stdio.

Every change re-runs `check_source` (the function behind `gendsl check`) on the editor's text
and publishes its diagnostics; the index of the last version that got as far as a graph
answers hover, definition and completion, so they keep working while a line is half typed.
"""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from gendsl.diagnostics import Diagnostic, GendslError, error
from gendsl.graph.check import check_source
from gendsl.lsp import features
from gendsl.lsp.index import Index, build_index, library_now
from gendsl.plugins import plugins_loaded, requested_plugins
from gendsl.source import SourceFile


class GenServer(LanguageServer):
    """A pygls server that remembers each open document's last index."""

    def __init__(self):
        super().__init__("gendsl", "0.1.0", text_document_sync_kind=lsp.TextDocumentSyncKind.Full)
        self.indexes: dict[str, Index] = {}

    def source(self, uri: str) -> SourceFile:
        """The editor's current text, named by its file path (imports resolve next to it)."""
        document = self.workspace.get_text_document(uri)
        return SourceFile(path_of(uri), document.source)

    def refresh(self, uri: str) -> None:
        """Check the document, keep its index, publish its diagnostics."""
        source = self.source(uri)
        try:
            found, index = check_document(source)
        except Exception as exc:  # a bug in gendsl: say so in the editor, as the CLI would, and carry on
            found, index = [error("E999", f"internal error: {type(exc).__name__}: {exc}",
                                  hint="this is a bug in gendsl, not in your spec; please report it with "
                                       "the spec")], None
        if index is not None:
            self.indexes[uri] = index
        shown = features.diagnostics_for(source, found, uri_of)
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=shown))


def check_document(source: SourceFile) -> tuple[list[Diagnostic], Index | None]:
    """What `gendsl check` says of the editor's text, with the plugins its project configures
    (`[tool.gendsl] plugins` of the nearest pyproject.toml); the index when a graph was built."""
    spec = source.path if Path(source.path).is_absolute() else None
    try:
        with plugins_loaded(requested_plugins(None, spec)) as plugins:
            checked = check_source(source)
            entries = library_now() if plugins else None
            index = build_index(checked, entries) if checked.graph is not None else None
    except GendslError as exc:  # a plugin that does not load, a bad [tool.gendsl] table
        return list(exc.diagnostics), None
    return checked.diagnostics, index


def path_of(uri: str) -> str:
    """The file path of a document URI (an unsaved buffer keeps its URI as its name)."""
    path = to_fs_path(uri) if uri.startswith("file:") else None
    return str(Path(path).resolve()) if path else uri


def uri_of(path: str) -> str:
    """The URI of a span's file (a name that is no file path is already a URI)."""
    if not Path(path).is_absolute():
        return path
    return from_fs_path(path) or path


server = GenServer()


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: GenServer, params: lsp.DidOpenTextDocumentParams) -> None:
    ls.refresh(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: GenServer, params: lsp.DidChangeTextDocumentParams) -> None:
    ls.refresh(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: GenServer, params: lsp.DidSaveTextDocumentParams) -> None:
    ls.refresh(params.text_document.uri)  # an imported file may have changed on disk


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: GenServer, params: lsp.DidCloseTextDocumentParams) -> None:
    ls.indexes.pop(params.text_document.uri, None)
    ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))


def _where(ls: GenServer, params) -> tuple[SourceFile, Index, int, int]:
    uri = params.text_document.uri
    return ls.source(uri), ls.indexes.get(uri, Index()), params.position.line + 1, params.position.character + 1


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
def hover(ls: GenServer, params: lsp.HoverParams) -> lsp.Hover | None:
    source, index, line, col = _where(ls, params)
    return features.hover(source.text, source.path, index, line, col)


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
def definition(ls: GenServer, params: lsp.DefinitionParams) -> list[lsp.Location]:
    source, index, line, col = _where(ls, params)
    return features.definition(source.text, source.path, index, line, col, uri_of)


@server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=["|", "~", "("]))
def completion(ls: GenServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    source, index, line, col = _where(ls, params)
    return lsp.CompletionList(is_incomplete=False, items=features.completion(source.path, index, line, col))


@server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def document_symbol(ls: GenServer, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
    return features.document_symbols(ls.source(params.text_document.uri))


@server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
def formatting(ls: GenServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit]:
    return features.formatting(ls.source(params.text_document.uri))


def serve() -> None:
    """Serve on stdin/stdout until the client sends `exit`."""
    server.start_io()
