"""Text -> AST: Lark's LALR parser, with the AST builder (build.py) as its callbacks. Only this
module and build.py know Lark; everything after them sees `gendsl.ast`."""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import sys
import threading
from importlib import resources
from pathlib import Path

import lark
from lark import Lark

from gendsl import ast
from gendsl.cache import cache_folder
from gendsl.diagnostics import Diagnostic, error
from gendsl.source import SourceFile, Span
from gendsl.syntax.build import Callbacks, ToAst

_OPENERS = {"LPAR": "(", "LSQB": "[", "LBRACE": "{"}
_CLOSERS = {"RPAR", "RSQB", "RBRACE"}
# A newline after one of these continues the statement on the next line. (Lines that start
# with an operator are handled by the grammar's CONTINUATION terminal: this filter must not
# look ahead, or Lark's contextual lexer would lex the next token in a stale parser state.)
_CONTINUES_AFTER = {"PLUS", "MINUS", "STAR", "SLASH", "CIRCUMFLEX", "COMMA", "EQUAL", "TILDE",
                    "_PIPE", "VBAR", "COLON", "_ARROW", "_BIARROW", "LPAR", "LSQB"}


class NewlineFilter:
    """Post-lexer: keeps a newline only where it can end a statement."""

    always_accept = ("_NL",)

    def process(self, stream):
        brackets: list[str] = []
        previous_type = ""
        for token in stream:
            kind = token.type
            if kind == "_NL":
                if (brackets and brackets[-1] != "LBRACE") or previous_type in _CONTINUES_AFTER:
                    continue
            elif kind in _OPENERS:
                brackets.append(kind)
            elif kind in _CLOSERS and brackets:
                brackets.pop()
            yield token
            previous_type = kind


@functools.lru_cache(maxsize=None)
def keywords() -> frozenset[str]:
    """The words the grammar reserves (`data`, `loss`, `log`, ...): one source of truth."""
    return frozenset(t.pattern.value for t in ast_parser().terminals
                     if t.pattern.type == "str" and t.pattern.value.isidentifier())


def grammar_text() -> str:
    """The grammar shipped in the wheel, or the repository's copy in an editable install."""
    packaged = resources.files("gendsl").joinpath("grammars/gen.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parents[2] / "grammars" / "gen.lark").read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def parser(start: str = "start") -> Lark:
    """The LALR parser that builds Lark trees (with positions), for the formatter's layout and
    the curated syntax errors; built once per process and cached on disk by Lark between
    processes (loading the cache takes about a tenth of building the tables)."""
    text = grammar_text()
    return Lark(text, parser="lalr", lexer="contextual", postlex=NewlineFilter(),
                propagate_positions=True, maybe_placeholders=True, start=start, cache=cache_file(text, start))


@functools.lru_cache(maxsize=None)
def ast_parser() -> Lark:
    """The same grammar calling the AST builder on each shift and reduction instead of building
    a tree: what `parse_source` uses (tables of its own, so its state numbers are not parser()'s)."""
    text = grammar_text()
    return Lark(text, parser="lalr", lexer="contextual", postlex=NewlineFilter(), transformer=_CALLBACKS,
                maybe_placeholders=True, cache=cache_file(text, variant="|ast"))


def cache_file(grammar: str, start: str = "start", variant: str = "") -> str | bool:
    """Where Lark keeps the built parser: the user's cache folder, not the shared temp folder
    (Lark's default, where another user could plant the pickle it loads). The name holds what
    the tables depend on, so two installed versions do not overwrite each other's file; Lark
    also checks a hash on loading and rebuilds a stale or unreadable file, and ignores a failed
    write. Each `variant` of the parser (Lark's options differ) needs a file of its own: Lark's
    hash covers the options, so two variants sharing a file would rebuild it in turn. False
    (no disk cache) when there is no folder to write to."""
    folder = cache_folder()
    if folder is None:
        return False
    key = hashlib.sha256(f"{grammar}|{start}|{lark.__version__}|{sys.version_info[:2]}{variant}".encode()).hexdigest()
    return str(folder / f"parser-{key[:16]}.lark")


_CALLBACKS = Callbacks(ToAst())
_LOCK = threading.Lock()


def parse_source(source: SourceFile) -> tuple[ast.Module | None, list[Diagnostic]]:
    """Parse one file: the module, or None and the syntax diagnostics."""
    with _LOCK, collector_paused():  # one builder holds the file being parsed
        builder = _CALLBACKS.builder
        builder.start_file(source.path)
        try:
            session = ast_parser().parse_interactive(source.text)
            _CALLBACKS.begin(session.parser_state.state_stack)
            module = session.resume_parse()
        except lark.exceptions.UnexpectedInput as exc:
            from gendsl.syntax.errors import syntax_error  # only files that fail pay for the curated errors

            return None, [syntax_error(_tree_parser_error(source.text, exc), source)]
        except RecursionError:
            return None, [too_deep(source)]
        return module, list(builder.diagnostics)


def _tree_parser_error(text: str, exc: lark.exceptions.UnexpectedInput) -> lark.exceptions.UnexpectedInput:
    """The same failure from `parser()`, whose states the curated examples were matched in
    (errors.py): a syntax error never depends on which of the two parsers met it."""
    try:
        parser().parse(text)
    except lark.exceptions.UnexpectedInput as again:
        return again
    return exc


@contextlib.contextmanager
def collector_paused():
    """Parsing and checking allocate many objects and keep most of them: the cycle collector's
    passes over the growing heap found little to free and made the time per line grow with the
    length of the spec. What the passes drop in cycles (graph copies) waits for the first
    collection after the check (peak memory at 8,000 lines: 117 MB either way). Nests."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def too_deep(source: SourceFile) -> Diagnostic:
    """Expressions nested hundreds of levels deep exceed Python's recursion limit."""
    return error("E034", "an expression is nested too deeply to check", Span(file=source.path, line=1, col=1,
                 end_line=1, end_col=1), hint="split it into named parts (h = ...) of reasonable depth")
