"""Tokens of a spec with their layout facts: the formatter's view of the text.

The formatter works on tokens, not on the AST: the AST forgets comments and parentheses, the
tokens keep both. What tokens cannot tell (is this '-' a negation? is this '=' a keyword
argument's?) is read from Lark's parse tree, and every terminal and keyword comes from the
grammar, so a construct added to the grammar formats with the default rules.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from lark import Token, Tree

from gendsl.syntax import parse

# rules whose operator is spaced: an argument `name = value` with one of these values is spaced too
_OPERATOR_RULES = frozenset({"pipe", "add", "sub", "mul", "div", "pow"})


@dataclass(frozen=True)
class Tok:
    """One token: its kind ('name', 'number', 'string', 'op'), text and offset in the source."""

    kind: str
    text: str
    start: int


@dataclass
class Line:
    """One physical line: its code tokens and its comment (either may be missing)."""

    tokens: list[Tok] = field(default_factory=list)
    comment: str = ""

    @property
    def blank(self) -> bool:
        return not self.tokens and not self.comment


@dataclass(frozen=True)
class Roles:
    """What the parse tree says about single tokens, by their offsets."""

    negations: frozenset[int]     # '-' tokens that negate (no space after them)
    tight_kwargs: frozenset[int]  # names of keyword arguments written `name=value`


@functools.lru_cache(maxsize=None)
def _terminals() -> dict[str, object]:
    return {t.name: t.pattern for t in parse.parser().terminals}


@functools.lru_cache(maxsize=None)
def token_pattern() -> re.Pattern:
    """Comments, newlines, spaces and the grammar's own terminals, in one regex."""
    terms = _terminals()
    symbols = sorted((p.value for p in terms.values() if p.type == "str" and not p.value.isidentifier()),
                     key=len, reverse=True)
    parts = [r"(?P<comment>#[^\n]*)", r"(?P<newline>\r?\n)", r"(?P<space>[ \t\f\r]+)",
             f"(?P<string>{terms['STRING'].to_regexp()})", f"(?P<number>{terms['NUMBER'].to_regexp()})",
             f"(?P<name>{terms['NAME'].to_regexp()})",
             "(?P<op>" + "|".join(re.escape(s) for s in symbols) + ")"]
    return re.compile("|".join(parts))


@functools.lru_cache(maxsize=None)
def continues_after() -> frozenset[str]:
    """Texts of the tokens after which the parser drops a newline (parse._CONTINUES_AFTER)."""
    terms = _terminals()
    return frozenset(terms[name].value for name in parse._CONTINUES_AFTER if name in terms)


@functools.lru_cache(maxsize=None)
def _continuation_start() -> re.Pattern:
    return re.compile(_terminals()["CONTINUATION"].to_regexp())


def starts_continuation(line_text: str) -> bool:
    """Does a line starting with this text continue the line before (the grammar's CONTINUATION)?"""
    return _continuation_start().match("\n" + line_text) is not None


def split_lines(text: str) -> list[Line]:
    """The text as physical lines of tokens; raises ValueError on a character no token starts with."""
    lines, current, pos = [], Line(), 0
    pattern = token_pattern()
    while pos < len(text):
        match = pattern.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"unexpected character {text[pos]!r} at offset {pos}")
        kind, value = match.lastgroup, match.group()
        if kind == "newline":
            lines.append(current)
            current = Line()
        elif kind == "comment":
            current.comment = value.rstrip()
        elif kind != "space":
            current.tokens.append(Tok(kind, value, pos))
        pos = match.end()
    lines.append(current)
    return lines


def read_roles(text: str) -> Roles:
    """Negations and tight keyword arguments, from Lark's parse tree of the text."""
    tree = parse.parser().parse(text)
    negations, tight = set(), set()
    for node in tree.iter_subtrees():
        if node.data == "neg":
            negations.add(node.meta.start_pos)
        elif node.data == "args":
            kwargs = [c for c in node.children if isinstance(c, Tree) and c.data == "kwarg"]
            # one call spaces all its keyword arguments or none
            if not any(isinstance(k.children[1], Tree) and k.children[1].data in _OPERATOR_RULES for k in kwargs):
                tight.update(k.children[0].start_pos for k in kwargs if isinstance(k.children[0], Token))
    return Roles(frozenset(negations), frozenset(tight))
