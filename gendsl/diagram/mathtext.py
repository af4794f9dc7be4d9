"""Names and formulas as graphviz HTML-like labels in the style of a paper: italic symbols,
subscripts (`z1` -> z<sub>1</sub>, `G_ab` -> G<sub>ab</sub>), Greek letters for Greek names, and
densities with their parameters (`q(z | x)` of an encoder -> q<sub>φ</sub>(z | x))."""

from __future__ import annotations

import re
from html import escape

GREEK = {"alpha": "\u03b1", "beta": "\u03b2", "gamma": "\u03b3", "delta": "\u03b4", "eps": "\u03b5",
         "epsilon": "\u03b5", "zeta": "\u03b6", "eta": "\u03b7", "theta": "\u03b8", "kappa": "\u03ba",
         "lambda": "\u03bb", "mu": "\u03bc", "nu": "\u03bd", "xi": "\u03be", "pi": "\u03c0", "rho": "\u03c1",
         "sigma": "\u03c3", "tau": "\u03c4", "phi": "\u03c6", "chi": "\u03c7", "psi": "\u03c8",
         "omega": "\u03c9"}
THETA, PHI = "\u03b8", "\u03c6"
MINUS, DOT, PARALLEL = "\u2212", "\u00b7", "\u2016"


def label(text: str) -> str:
    """An HTML-like graphviz label. `]` is written as an entity: graphviz moves a `]` that follows
    a closing tag (`<I>c</I>]`) to the next line of a table."""
    return "<" + text.replace("]", "&#93;") + ">"


def sym(name: str) -> str:
    """An identifier as a math symbol: one letter (or a Greek name) italic, a word upright,
    `_rest` and trailing digits as a subscript."""
    base, _, sub = name.partition("_")
    if base == "log" and sub:  # log_sigma reads log sigma
        return "log " + sym(sub)
    if len(base) > 1 and base not in GREEK and len(sub) > 1 and sub not in GREEK:
        return escape(name)  # words (`l1_weight`, `info_weight`) are not symbols: upright as written
    digits = re.search(r"\d+$", base)
    if digits and digits.start() > 0:
        base, sub = base[:digits.start()], digits.group() + ("," + sub if sub else "")
    if base in GREEK:
        head = f"<I>{GREEK[base]}</I>"
    elif len(base) == 1:
        head = f"<I>{escape(base)}</I>"
    else:
        head = escape(base)
    return head + (f"<SUB>{sym_sub(sub)}</SUB>" if sub else "")


def sym_sub(text: str) -> str:
    return ",".join(GREEK.get(part, escape(part)) for part in text.split(","))


def loss_sym(name: str) -> str:
    """`d_loss` -> L with subscript d, as papers name a loss; other loss names as symbols."""
    if name.endswith("_loss") and len(name) > 5:
        return f"\u2112<SUB>{sym_sub(name[:-5])}</SUB>"
    return sym(name)


def density(term_text: str, params: dict[str, str]) -> str:
    """`q(z | x)` with its parameter as a subscript when `params` names one for this term."""
    match = re.fullmatch(r"\s*(\w+)\s*\((.*)\)\s*", term_text)
    if match is None:
        return escape(term_text)
    name, inside = match.groups()
    var_part, bar, given_part = inside.partition("|")
    variables = ", ".join(sym(v.strip()) for v in var_part.split(",") if v.strip())
    given = ", ".join(sym(v.strip()) for v in given_part.split(",") if v.strip())
    sub = params.get(normal_term(term_text))
    head = f"<I>{escape(name)}</I>" + (f"<SUB>{sub}</SUB>" if sub else "")
    return f"{head}({variables}{' | ' + given if bar else ''})"


def normal_term(text: str) -> str:
    """`p( x|z1 )` and `p(x | z1)` name one term."""
    return re.sub(r"\s+", "", text)


TOKEN = re.compile(r"\s+|\d+\.\d*(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?|[A-Za-z_]\w*|.")


class Formula:
    """Spec text of an expression (a loss, a prior) as HTML, one token at a time.

    `densities` maps each density term (spaces removed) to its parameter subscript, `networks`
    are the callable names drawn as symbols; other called names are functions, drawn upright."""

    def __init__(self, densities: dict[str, str], networks: set[str], density_names: set[str],
                 losses: set[str] = frozenset()):
        self.densities, self.networks, self.density_names = densities, networks, density_names
        self.losses = losses

    def pieces(self, text: str) -> list[tuple[str, int, bool]]:
        """(html, visible width, may break before) for each piece of `text`."""
        tokens = [t for t in TOKEN.findall(text) if not t.isspace()]
        out: list[tuple[str, int, bool]] = []
        depth, kl_depths, i = 0, [], 0
        while i < len(tokens):
            tok = tokens[i]
            nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
            prev = tokens[i - 1] if i > 0 else ""
            if re.match(r"[A-Za-z_]", tok) and nxt == "(" and tok in self.density_names and prev != ".":
                end = _closing(tokens, i + 1)
                term = tok + "(" + " ".join(tokens[i + 2:end]) + ")"
                shown = density(term, self.densities)
                out.append((shown, len(normal_term(term)) + 3, False))
                i = end + 1
                continue
            if tok == "kl" and nxt == "(":
                out.append(("KL", 2, False))
            elif re.match(r"[A-Za-z_]", tok):
                called = nxt == "(" and tok not in self.networks
                shown = escape(tok) if called or tok == "log" or prev == "." else (
                    loss_sym(tok) if tok in self.losses else sym(tok))
                out.append((shown, len(tok), False))
                if tok == "log":
                    out.append((" ", 1, False))
            elif tok == "(":
                depth += 1
                if prev == "kl":
                    kl_depths.append(depth)
                out.append(("(", 1, False))
            elif tok == ")":
                if kl_depths and kl_depths[-1] == depth:
                    kl_depths.pop()
                depth -= 1
                out.append((")", 1, False))
            elif tok == "," and kl_depths and kl_depths[-1] == depth:
                out.append((f" {PARALLEL} ", 3, False))
            elif tok == ",":
                out.append((", ", 2, False))
            elif tok in "+-" and prev and prev not in "(,=*/^" and depth == 0:
                out.append((f" {MINUS if tok == '-' else '+'} ", 3, True))
            elif tok in "+-" and prev and prev not in "(,=*/^":
                out.append((f" {MINUS if tok == '-' else '+'} ", 3, False))
            elif tok == "-":
                out.append((MINUS, 1, False))
            elif tok == "^" and nxt:  # a power: `E(x) ^ 2`
                out.append((f"<SUP>{escape(nxt)}</SUP>", len(nxt), False))
                i += 2
                continue
            elif tok == "*":
                out.append((f" {DOT} ", 3, False))
            elif tok in "/=":
                out.append((f" {tok} " if tok == "=" and depth == 0 else tok, 1, False))
            else:
                out.append((escape(tok), len(tok), False))
            i += 1
        return out

    def html(self, text: str) -> str:
        """`text` as math on one line."""
        return "".join(piece for piece, _, _ in self.pieces(text))

    def lines(self, text: str, width: int) -> list[str]:
        """`text` as math, broken before top-level + and - so that each line keeps within
        `width` characters where it can; later lines are indented."""
        segments: list[tuple[str, int]] = []
        for piece, length, breakable in self.pieces(text):
            if breakable or not segments:
                segments.append(("", 0))
            html_so_far, size = segments[-1]
            segments[-1] = (html_so_far + piece, size + length)
        lines: list[tuple[str, int]] = []
        for piece, size in segments:
            if lines and lines[-1][1] + size <= width:
                lines[-1] = (lines[-1][0] + piece, lines[-1][1] + size)
            else:
                lines.append((("\u2003\u2003" + piece.lstrip()) if lines else piece, size))
        return [line for line, _ in lines]


def _closing(tokens: list[str], open_at: int) -> int:
    depth = 0
    for j in range(open_at, len(tokens)):
        depth += (tokens[j] == "(") - (tokens[j] == ")")
        if depth == 0:
            return j
    return len(tokens) - 1
