"""Spec text -> the same spec in the one canonical layout (`gendsl fmt`).

The layout (docs/drafts/tooling.md has it with examples):
- the author's line breaks stay: a statement per line or several joined by ';', one-line
  `train { ... }` blocks, pipelines split over lines; at most one blank line in a row, none at the
  start or end of a block or file;
- a statement is indented two spaces per enclosing block; a continuation line lines up its `|>`
  under the first `|>` of the statement at the same bracket depth, its `+`/`*`/... under the
  statement's `=` or `~`, and after a line ending in an operator, under the value's first token;
  inside brackets it lines up after the opening bracket (or four spaces in when the bracket ends
  its line);
- one space around operators, `=`, `~`, `|`, `->`, after ',' ';' ':' and keywords; none inside
  brackets, before '(' and '[' of calls, types and indexes, around '.', after a negating '-', or
  around ':' in an index; `name=value` for keyword arguments, unless one of the call's is a sum
  or a pipeline: then all of them are spaced (`Normal(loc = h |> Linear(8), scale = 1)`);
- consecutive `step NAME:` lines align what follows the colon;
- a comment after code starts at column 49 (or three spaces after longer code); a comment on its
  own line is indented as the code line after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gendsl import ast
from gendsl.diagnostics import Diagnostic
from gendsl.source import SourceFile
from gendsl.syntax.layout import Line, Roles, Tok, continues_after, read_roles, split_lines, starts_continuation
from gendsl.syntax.parse import parse_source, too_deep

INDENT = 2            # per block
HANGING = 4           # continuation lines that no earlier token lines up
COMMENT_COLUMN = 48   # 0-based column of a comment after code (where most specs had them)
COMMENT_GAP = 3       # ... or this many spaces after code that reaches past it
_CLOSERS = {")": "(", "]": "[", "}": "{"}
_BINARY = frozenset({"+", "-", "*", "/", "^"})
_ALIGNED_HEADS = frozenset({"step"})  # `step NAME:` lines of a train block align their clauses


class FormatterBug(RuntimeError):
    """The formatted text would not parse to the same AST: a bug in fmt, never the spec's fault."""


@dataclass
class Formatted:
    """The canonical text of a file, or None and the syntax diagnostics that prevent formatting."""

    original: str
    text: str | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.text is not None and self.text != self.original


@dataclass
class _Frame:
    """An open bracket (or the file): where its lines go and what later lines line up with."""

    opener: str
    line_indent: int            # indent of the line it opened on
    after: int = 0              # output column just after the opener
    hanging: bool = False       # the opener ended its line
    first_pipe: int | None = None
    first_assign: int | None = None  # of the current statement (block frames only)


@dataclass
class _Out:
    """One output line before comments are placed: indent, code, trailing comment."""

    indent: int | None = None   # None for a comment-only line (it takes the next code line's)
    code: str = ""
    comment: str = ""
    head: str = ""              # `step NAME:` of a step line, for alignment
    first: str = ""             # first token's text
    opens_block: bool = False   # the line ends with '{'

    @property
    def blank(self) -> bool:
        return self.indent is None and not self.comment


class _Renderer:
    """Lays out the lines of one file, top to bottom."""

    def __init__(self, roles: Roles):
        self.roles = roles
        self.stack = [_Frame("", -INDENT)]   # the file: its statements sit at column 0
        self.previous: Tok | None = None      # the last code token so far, across lines
        self.out: list[_Out] = []
        self.tight_equals: set[int] = set()   # '=' of keyword arguments written name=value

    def add(self, line: Line) -> None:
        """Lay out one physical line."""
        if not line.tokens:
            self.out.append(_Out(comment=line.comment))
            return
        indent = self.indent_of(line.tokens[0])
        code, head = self.render(line.tokens, indent)
        self.out.append(_Out(indent, code, line.comment, head, line.tokens[0].text,
                             line.tokens[-1].text == "{"))

    # -- where a line starts --
    def indent_of(self, first: Tok) -> int:
        top = self.stack[-1]
        if first.text in _CLOSERS:
            frame = self.stack[-1]
            if first.text == "}" or frame.hanging:
                return frame.line_indent
            return frame.after - 1
        if top.opener in ("(", "["):
            if first.text == "|>" and top.first_pipe is not None:
                return top.first_pipe
            return top.line_indent + HANGING if top.hanging else top.after
        base = top.line_indent + INDENT
        after_operator = self.previous is not None and self.previous.text in continues_after()
        if not (after_operator or starts_continuation(first.text + " ")):
            top.first_pipe = top.first_assign = None  # a new statement
            return base
        if first.text == "|>" and top.first_pipe is not None:
            return top.first_pipe
        if first.text in _BINARY and top.first_assign is not None:
            return top.first_assign
        if after_operator and top.first_assign is not None:
            return top.first_assign + 2  # under the value's first token
        return base + HANGING

    # -- within a line --
    def render(self, tokens: list[Tok], indent: int) -> tuple[str, str]:
        parts, column, previous = [], indent, None
        for tok in tokens:
            gap = "" if previous is None else self.gap(previous, tok)
            column += len(gap)
            self.track(tok, column, indent)
            parts.append(gap + tok.text)
            column += len(tok.text)
            previous = self.previous = tok
        if tokens[-1].text in ("(", "[", "{"):
            self.stack[-1].hanging = True
        texts = [t.text for t in tokens[:3]]
        head = ""
        if len(texts) == 3 and texts[0] in _ALIGNED_HEADS and texts[2] == ":":
            head = f"{texts[0]} {texts[1]}:"
        return "".join(parts), head

    def track(self, tok: Tok, column: int, indent: int) -> None:
        """Brackets opened and closed, and the columns later lines may line up with."""
        top = self.stack[-1]
        if tok.text in ("(", "[", "{"):
            self.stack.append(_Frame(tok.text, indent, column + 1))
        elif tok.text in _CLOSERS and len(self.stack) > 1:
            self.stack.pop()
        elif tok.text == "|>" and top.first_pipe is None:
            top.first_pipe = column
        elif tok.text in ("=", "~") and top.opener in ("", "{") and top.first_assign is None:
            top.first_assign = column
        elif tok.text == ";" and top.opener in ("", "{"):
            top.first_pipe = top.first_assign = None

    def gap(self, previous: Tok, tok: Tok) -> str:
        """The space between two tokens of a line."""
        before, text = previous.text, tok.text
        if text in (",", ";", ")", "]", ".", ":") or before in ("(", "[", "."):
            return ""
        if before in (",", ";"):
            return " "
        if before == "{":
            return "" if text == "}" else " "
        if (before == "-" and previous.start in self.roles.negations) or self.tight_kwarg(previous, tok):
            return ""
        if before == ":":
            return "" if self.stack[-1].opener == "[" else " "
        if text in ("(", "[") and (previous.kind == "name" or before in (")", "]")):
            return ""
        return " "

    def tight_kwarg(self, previous: Tok, tok: Tok) -> bool:
        return (tok.text == "=" and tok.start in self.tight_equals) or \
            (previous.text == "=" and previous.start in self.tight_equals)


def layout(text: str, roles: Roles, comment_column: int = COMMENT_COLUMN) -> str:
    """The canonical text of parsed source text (no parse here: `roles` comes from its tree)."""
    lines = split_lines(text)
    renderer = _Renderer(roles)
    tokens = [tok for line in lines for tok in line.tokens]
    renderer.tight_equals = {tok.start for before, tok in zip(tokens, tokens[1:])
                             if tok.text == "=" and before.start in roles.tight_kwargs}
    for line in lines:
        renderer.add(line)
    _align_heads(renderer.out)
    return _join(renderer.out, comment_column)


def _align_heads(out: list[_Out]) -> None:
    """Runs of `step NAME:` lines pad their heads to the longest."""
    run: list[_Out] = []
    for item in out + [_Out()]:
        if item.head and (not run or item.indent == run[0].indent):
            run.append(item)
            continue
        width = max((len(r.head) for r in run), default=0)
        for r in run:
            r.code = r.head.ljust(width) + r.code[len(r.head):]
        run = [item] if item.head else []


def _join(out: list[_Out], comment_column: int) -> str:
    """Blank lines squeezed, comment-only lines indented, trailing comments placed."""
    kept: list[_Out] = []
    for index, item in enumerate(out):
        if item.blank:
            following = next((o for o in out[index + 1:] if not o.blank), None)
            if not kept or kept[-1].blank or kept[-1].opens_block or following is None \
                    or following.first == "}":
                continue
        kept.append(item)
    text_lines, next_indent = [], 0
    for item in reversed(kept):
        if item.indent is not None:
            next_indent = item.indent + (INDENT if item.first == "}" else 0)
        text_lines.append(_line_text(item, next_indent, comment_column))
    return "\n".join(reversed(text_lines)) + "\n" if text_lines else ""


def _line_text(item: _Out, comment_indent: int, comment_column: int) -> str:
    if item.blank:
        return ""
    if item.indent is None:
        return " " * comment_indent + item.comment
    code = " " * item.indent + item.code
    if not item.comment:
        return code
    column = comment_column if len(code) <= comment_column - COMMENT_GAP else len(code) + COMMENT_GAP
    return code.ljust(column) + item.comment


def ast_shape(node) -> object:
    """An AST without its spans: two texts that parse to equal shapes mean the same."""
    if isinstance(node, ast.Node):
        return (type(node).__name__,) + tuple(
            (name, ast_shape(getattr(node, name))) for name in type(node).model_fields if name != "span")
    if isinstance(node, (tuple, list)):
        return tuple(ast_shape(item) for item in node)
    return node


def format_source(source: SourceFile, comment_column: int = COMMENT_COLUMN) -> Formatted:
    """The canonical layout of one spec; a spec that does not parse comes back with its diagnostics."""
    module, diagnostics = parse_source(source)
    if module is None:
        return Formatted(source.text, None, diagnostics)
    try:
        text = layout(source.text, read_roles(source.text), comment_column)
        again, _ = parse_source(SourceFile(source.path, text))
        same = again is not None and ast_shape(again) == ast_shape(module)
    except RecursionError:  # the parser is iterative; the walks over its AST are not
        return Formatted(source.text, None, [too_deep(source)])
    if not same:
        raise FormatterBug(f"formatting {source.path} would change what it means")
    return Formatted(source.text, text)


# ---- ```gen blocks of Markdown files ----

_FENCE = "```gen"
_TOP_LEVEL = ("model", "block", "import")
_WRAPPER = "model Doc {"


def format_markdown(source: SourceFile) -> Formatted:
    """A Markdown file with each ```gen block in the canonical layout. A block that is a
    fragment (statements, not a model) is laid out as the body of a model, as the docs read it."""
    lines = source.text.split("\n")
    out, diagnostics, index = [], [], 0
    while index < len(lines):
        out.append(lines[index])
        if lines[index].strip() != _FENCE:
            index += 1
            continue
        end = next((i for i in range(index + 1, len(lines)) if lines[i].strip() == "```"), len(lines))
        margin = lines[index][:len(lines[index]) - len(lines[index].lstrip())]  # a fence in a list item
        block = lines[index + 1:end]
        if any(line.strip() and not line.startswith(margin) for line in block):
            out += block  # not indented as its fence: leave it as written
        else:
            body = "".join(line[len(margin):] + "\n" for line in block)
            formatted = _format_block(source.path, body, first_line=index + 2)
            diagnostics += formatted.diagnostics
            laid_out = (formatted.text if formatted.text is not None else body).split("\n")[:-1]
            out += [margin + line if line else line for line in laid_out]
        index = end
    text = "\n".join(out)
    return Formatted(source.text, None if diagnostics else text, diagnostics)


def _format_block(path: str, body: str, first_line: int) -> Formatted:
    fragment = _first_word(body) not in _TOP_LEVEL
    # blank lines in front keep the diagnostics' line numbers those of the Markdown file
    padding = "\n" * (first_line - 1 - fragment)
    text = padding + (f"{_WRAPPER}\n{body}}}\n" if fragment else body)
    # a fragment's lines move left by one indent once unwrapped: so do its comments
    formatted = format_source(SourceFile(path, text), COMMENT_COLUMN + INDENT * fragment)
    if formatted.text is None or not fragment:
        return Formatted(body, formatted.text, formatted.diagnostics)
    inner = formatted.text.split("\n")[1:-2]  # drop the wrapper's first line and its '}'
    return Formatted(body, "".join(line[INDENT:] + "\n" for line in inner))


def _first_word(text: str) -> str:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped.split()[0]
    return ""


def format_path(source: SourceFile) -> Formatted:
    """Specs are formatted whole; Markdown files have their ```gen blocks formatted."""
    return format_markdown(source) if source.path.endswith(".md") else format_source(source)
