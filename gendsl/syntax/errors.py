"""Curated syntax errors: Lark's parser state at the failure is matched against known mistakes.

Each entry is (code, message, hint, examples). `_curated_code` picks the entry whose example
fails in the same LALR state on the same kind of token, the technique Lark documents for
user-facing error messages (`match_examples`), made independent of the stack depth so that one
example covers a mistake wherever it occurs. Unclosed brackets are found by scanning the text
(the parser only notices them later), and anything unmatched gets a generic, still precise,
"expected ..., found ..." message.
"""

from __future__ import annotations

import functools
import unicodedata

import lark

from gendsl.diagnostics import Diagnostic, Note, error
from gendsl.source import SourceFile, Span

_TOKEN_WORDS = {
    "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "_NL": "a new line",
    "$END": "the end of the file", "LBRACE": "'{'", "RBRACE": "'}'", "LPAR": "'('",
    "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "COLON": "':'",
    "SEMICOLON": "';'", "EQUAL": "'='", "TILDE": "'~'", "VBAR": "'|'", "_PIPE": "'|>'",
    "_ARROW": "'->'", "_BIARROW": "'<->'", "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'",
    "SLASH": "'/'", "CIRCUMFLEX": "'^'", "DOT": "'.'",
}


def _m(body: str) -> str:
    return "model M {\n" + body + "\n}\n"


_BEFORE = ("", "param a: int = 1\n", "param a: int = 1\nparam b: int = 2\n")


def _statement(body: str) -> list[str]:
    """A mistake at the start of a statement. The parser is in a different state for the first
    statement of a model, the second, the later ones, and the first of a model that extends."""
    return [_m(before + body) for before in _BEFORE] + ["model M extends N {\n" + body + "\n}\n"]


def _unclosed_model(rest: str = "") -> list[str]:
    """A model whose '}' is missing, followed by `rest`, after zero, one or more statements."""
    return ["model M {\n" + before + rest for before in _BEFORE] + ["model M extends N {\n" + rest]


_NET = "net f(x: real[2]) -> real[2] {\n h = x |> Linear(2)\n "
_KEYWORD_STATEMENTS = ["loss l = x", "train { batch 1 }", "data y: real[2] from ring()", "model N {\n}"]


# (code, message, hint, examples). Examples are whole files that fail at the mistake; see
# `_curated_code` for how a failure is matched against them.
CURATED: list[tuple[str, str, str, list[str]]] = [
    ("E001", "missing '}' at the end of a block",
     "every '{' needs a matching '}'",
     ["model M {\n net f(x: real[2]) -> real[2] { x |> Linear(2)\n}\n", "model M {",
      "model M {\n train { batch 1\n}\n", "model M {\n evaluate { nll\n}\n", *_unclosed_model(),
      # a statement of the model inside a network body or train block whose '}' is missing
      *[_m(_NET + s) for s in _KEYWORD_STATEMENTS], _m(_NET + "x |> Linear(2)\n " + _KEYWORD_STATEMENTS[0]),
      *[_m(train + "\n sample x = y") for train in
        ("train { batch 1", "train { minimize l; batch 1", "train { minimize l; batch 1; steps 1")],
      # the next model (or block) starts inside a model whose '}' is missing
      *_unclosed_model("\nmodel N {\n}\n"), *_unclosed_model("\nblock B() { relu }\n")]),
    ("E002", "a latent variable's prior is written with '~', not '='",
     "write `latent z: real[8] ~ Normal(0, 1)`: '~' reads 'is distributed as'",
     [_m("latent z: real[2] = Normal(0, 1)")]),
    ("E003", "a definition uses '=', not '~'",
     "'~' is only for random variables (latent, observe, draws inside encoders and decoders); "
     "write `=` here",
     [_m("loss l ~ x"), _m("param a: int ~ 1"), _m("tensor t: real[2] ~ zeros"),
      _m("sampler s ~ Langevin(E)")]),
    ("E004", "a data declaration needs 'from' and a source",
     "write `data x: real[2] from ring()`: the source after 'from' says where the data come from",
     [_m("data x: real[2] ring()"), _m("data x: real[2]"), _m("data x: real[2] = ring()")]),
    ("E005", "a variable needs a type after ':'",
     "write the type, e.g. `data x: real[2] from ring()` or `latent z: real[8] ~ Normal(0, 1)`",
     [_m("data x from ring()"), _m("latent z ~ Normal(0, 1)"), _m("data x: from ring()"),
      _m("tensor t = zeros")]),
    ("E006", "a param needs a type and a default value",
     "write `param hidden: int = 256`",
     [_m("param a = 1"), _m("param a: int"), _m("param a")]),
    ("E007", "unclosed '(' or '['",
     "close the bracket at the end of the expression",
     [_m("loss l = f(x"), _m("loss l = f(x\n"), _m("loss l = f(x, y\n}\n"), _m("loss l = x[1")]),
    ("E008", "missing '|>' between two pipeline stages",
     "join stages with '|>', e.g. `x |> Linear(64) |> relu`",
     [_m("net f(x: real[2]) -> real[2] { x |> Linear(2) relu }"),
      _m("net f(x: real[2]) -> real[2] { x Linear(2) }"),
      _m("net f(x: real[2]) -> real[2] { x |> Linear(2) Linear(2) }"),
      _m(_NET + "h2 = h Linear(2)\n h2"), _m(_NET + "h2 = h |> Linear(2) relu\n h2")]),
    ("E009", "a network's output type follows '->'",
     "write `generator G(z) -> real[2] { ... }`",
     [_m("generator G(z) real[2] { z }"), _m("net f(x: real[2]) : real[2] { x }")]),
    ("E010", "a train step is written `step NAME: minimize LOSS over NETS`",
     "add the ':' after the step's name",
     [_m("train { step s minimize l over G }")]),
    ("E011", "a named train step needs 'over' and the networks it updates",
     "write `step s: minimize l over G with Adam(lr=1e-3)`; 'over' is the gradient contract",
     [_m("train { step s: minimize l with Adam() }"), _m("train { step s: minimize l }"),
      _m("train { step s: minimize l; batch 1 }"), _m("train {\n step s: minimize l\n batch 1\n}")]),
    ("E012", "'minimize' needs the name of a loss",
     "write `minimize elbo`, naming a `loss` declared in the model",
     [_m("train { minimize }"), _m("train { minimize 3 }"), _m("train { step s: minimize }"),
      _m("train { minimize; batch 1 }"), _m("train {\n minimize\n batch 1\n}"),
      _m("train { step s: minimize over G }")]),
    ("E013", "a declaration must be inside a model",
     "wrap the declarations in `model Name { ... }`",
     [_m("") + "latent z: real[2] ~ Normal(0, 1)\n", "data x: real[2] from ring()\n",
      "loss l = x\n", "param a: int = 1\n", "train { batch 1 }\n", "x = 1\n",
      "# a comment\nparam a: int = 1\n", "\ndata x: real[2] from ring()\n", "import \"a.gen\"\nloss l = x\n"]),
    ("E014", "a model needs a name",
     "write `model VAE { ... }`",
     ["model {\n}\n", "model extends N {\n}\n"]),
    ("E015", "'==' is not an operator in .gen",
     "use '=' to define a name; comparisons do not exist in specs",
     [_m("loss l == x"), _m("param a: int == 1")]),
    ("E016", "missing ',' between arguments",
     "separate arguments with ',', e.g. `Normal(0, 1)`",
     [_m("loss l = f(x y)"), _m("loss l = f(x 1)"), _m("loss l = f(1 2)"),
      _m("loss l = f(a=1 b=2)")]),
    ("E017", "'log' is a keyword and cannot be used as a name",
     "rename the variable, e.g. `log_var`; `log` always starts a log term such as `log p(x | z)`",
     [_m(_NET + "log = h\n log"), _m("net f(x: real[2]) -> real[2] {\n log = x\n log\n}"),
      _m(_NET + "h2 = h\n log = h\n log"),
      _m("loss l = f(log)"), _m("loss l = f(log, x)"), _m("loss l = log * 2"),
      _m("loss l = log + 1")]),
    ("E018", "import needs a quoted path",
     "write `import \"blocks/unet.gen\"`",
     ["import blocks\n", "import\n"]),
    ("E019", "an expression is missing",
     "write the value after '=', e.g. `loss elbo = -log p(x | z)`",
     [_m("loss l ="), _m("loss l =\n"), _m("param a: int =\n"), _m("loss l = x +\n}"),
      _m("sample x ="), _m("sample x ~"), _m("loss l = f(a=)"), _m("loss l = f(a=, b=1)")]),
    ("E020", "only a layer or block can follow '|>'",
     "a pipeline stage is `Linear(64)`, `relu`, a block name or `repeat n { ... }`; "
     "to combine values use arithmetic on parenthesised pipelines: `(x |> f) + y`",
     [_m("loss l = x |> (y)"), _m("loss l = x |> 3"), _m("loss l = x |> -y")]),
    ("E021", "a statement ends here, but more follows on the same line",
     "put each statement on its own line or separate them with ';'",
     [_m("param a: int = 1 param b: int = 2"), _m("loss l = x y")]),
    ("E022", "unknown statement in a model",
     "a model holds param, data, latent, tensor, observe, networks (encoder, decoder, generator, "
     "discriminator, critic, energy, denoiser, flow, diffusion, autoregressive, net), sampler, "
     "loss, train, sample and evaluate",
     [*_statement("x = 1"), *_statement("variable z: real[2]"), *_statement("def f(x): return x")]),
    ("E023", "'log' applies to a value or a density term, e.g. `log p(x | z)` or `log(x)`",
     "write the term after 'log'",
     [_m("loss l = log"), _m("loss l = log\n"), _m("loss l = -log"), _m("loss l = x - log\n")]),
    ("E026", "'**' is not an operator in .gen; a power is written '^'",
     "write `x ^ 2` for the square of x",
     [_m("loss l = x ** 2"), _m("loss l = f(x ** 2)")]),
    ("E027", "`step` starts a named train step; the number of optimizer rounds is `steps N`",
     "write `steps 1000`, or `step NAME: minimize LOSS over NETS` for a train step",
     [_m("train { minimize l; step 100 }"), _m("train {\n minimize l\n step 100\n}"),
      _m("train { step 100 }")]),
    ("E028", "a declaration needs a name after its keyword",
     "write the name being declared, e.g. `loss elbo = ...`, `sample x = G(z)` or "
     "`latent z: real[8] ~ Normal(0, 1)`",
     [*_statement("loss = x"), *_statement("sample = x"), *_statement("sample ~ p(x)"),
      *_statement("latent : real[2] ~ Normal(0, 1)"), *_statement("data : real[2] from ring()"),
      *_statement("param : int = 1"), *_statement("tensor : real[2] = zeros"),
      *_statement("sampler = Langevin(E)"), *_statement("generator (z) -> real[2] { z }"),
      *_statement("discriminator (x) -> logit { x }"), *_statement("net (x) -> real[2] { x }")]),
    ("E029", "training statements belong inside `train { ... }`",
     "write e.g. `train { optimizer Adam(lr=1e-3); minimize elbo; batch 64; epochs 10 }`",
     [*_statement("minimize l"), *_statement("step s: minimize l over G"), *_statement("batch 64"),
      *_statement("epochs 10"), *_statement("steps 10"), *_statement("optimizer Adam()")]),
]


@functools.lru_cache(maxsize=None)
def _failures() -> tuple[tuple[str, int, frozenset, str, str], ...]:
    """Where each curated example fails: (code, LALR state, accepted tokens, token type, text)."""
    from gendsl.syntax.parse import parser

    found = []
    for code, _, _, examples in CURATED:
        for example in examples:
            try:
                parser().parse(example)
            except lark.exceptions.UnexpectedToken as exc:
                if exc.state is None:
                    continue
                found.append((code, exc.state.position, frozenset(exc.accepts or exc.expected),
                              exc.token.type, str(exc.token)))
            except lark.exceptions.UnexpectedInput:
                continue
    return tuple(found)


@functools.lru_cache(maxsize=None)
def _keywords() -> frozenset[str]:
    """Token types of the language's keywords (`loss`, `train`, `over`, ...)."""
    from gendsl.syntax.parse import parser

    return frozenset(t.name for t in parser().terminals
                     if t.pattern.type == "str" and t.pattern.value.isalpha())


# Keywords that start a statement of a file or a model: in a curated example, one stands for all.
_STATEMENT_KEYWORDS = frozenset(
    "IMPORT BLOCK MODEL PARAM DATA LATENT TENSOR OBSERVE GENERATOR DISCRIMINATOR CRITIC ENERGY "
    "DENOISER NET ENCODER DECODER AUTOREGRESSIVE FLOW DIFFUSION SAMPLER LOSS SAMPLE TRAIN "
    "EVALUATE".split())


def _curated_code(exc: lark.exceptions.UnexpectedToken) -> str | None:
    """The code of the curated mistake that fails like `exc`, or None.

    Like Lark's `match_examples`, but an example must fail in the same LALR state (whatever the
    depth of the stack, so that a mistake in the third statement of a model matches an example
    written as the first), with the same accepted tokens, on the same kind of token: the same
    text first, then the same token type, then any statement keyword for a statement keyword.
    """
    if exc.state is None or exc.token is None:
        return None
    position, token = exc.state.position, exc.token
    accepts = frozenset(exc.accepts or exc.expected)
    keywords = _STATEMENT_KEYWORDS
    best: tuple[int, str] | None = None
    for code, state, example_accepts, token_type, text in _failures():
        if state != position or example_accepts != accepts:
            continue
        if token_type == token.type and text == str(token):
            return code
        if token_type == token.type:
            rank = 1
        elif token_type in keywords and token.type in keywords:
            rank = 2
        else:
            continue
        if best is None or rank < best[0]:
            best = (rank, code)
    return best[1] if best else None


_BY_CODE = {code: (message, hint) for code, message, hint, _ in CURATED}


def _describe(token_type: str, value: str = "") -> str:
    if token_type in _TOKEN_WORDS:
        return _TOKEN_WORDS[token_type]
    if token_type.startswith("__ANON") or token_type.isupper():
        return f"'{value}'" if value else token_type.lower()
    return f"'{token_type.lower()}'"


def _expected_words(expected: set[str]) -> str:
    names = sorted({_describe(t, t.lower()) for t in expected if not t.startswith("__")})
    keywords = sorted({f"'{t.lower()}'" for t in expected if t.isupper() and t not in _TOKEN_WORDS
                       and not t.startswith("_")})
    words = sorted(set(names) | set(keywords))
    if len(words) > 8:
        words = words[:8] + ["..."]
    return ", ".join(words)


def _span_of(exc: lark.exceptions.UnexpectedInput, source: SourceFile) -> Span:
    token = getattr(exc, "token", None)
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        return _span_at(source, exc.pos_in_stream, 1)
    line = getattr(exc, "line", None) or (token.line if token is not None else 1)
    col = getattr(exc, "column", None) or (token.column if token is not None else 1)
    if isinstance(line, int) and line > 0 and token is not None and token.type != "$END":
        width = max(1, len(str(token)) if token.type != "_NL" else 1)
        return Span(file=source.path, line=line, col=col, end_line=line, end_col=col + width)
    if token is None or token.type == "$END" or not isinstance(line, int) or line < 1:
        line = max(1, len(source.lines))
        col = len(source.line(line)) + 1
    return Span(file=source.path, line=line, col=col, end_line=line, end_col=col + 1)


def _span_at(source: SourceFile, offset: int, width: int) -> Span:
    """The span of `width` characters at a 0-based offset into the text (kept on one line)."""
    line = source.text.count("\n", 0, offset) + 1
    col = offset - (source.text.rfind("\n", 0, offset) + 1) + 1
    width = max(1, min(width, len(source.line(line)) - col + 1))
    return Span(file=source.path, line=line, col=col, end_line=line, end_col=col + width)


def _open_brackets(text: str, end: int) -> list[tuple[str, int]]:
    """The brackets still open at offset `end`, outermost first, as (bracket, offset)."""
    stack: list[tuple[str, int]] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    i = 0
    while i < end:
        char = text[i]
        if char == "#":
            i = text.find("\n", i)
            i = end if i < 0 else i
        elif char == '"':
            close = text.find('"', i + 1)
            i = end if close < 0 else close
        elif char in "([{":
            stack.append((char, i))
        elif char in pairs and stack and stack[-1][0] == pairs[char]:
            stack.pop()
        i += 1
    return stack


# Lookalikes pasted from papers and word processors, with what to type instead.
_LOOKALIKES = {"\u2212": "-", "\u2013": "-", "\u2014": "-", "\u00d7": "*", "\u00b7": "*",
               "\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u2192": "->",
               "\u2194": "<->", "\u00a0": "a space"}


def _unexpected_character(char: str, span: Span) -> Diagnostic:
    if char == "'":
        return error("E031", "unexpected character \"'\"", span, label="strings use double quotes",
                     hint="write strings with double quotes, e.g. `import \"blocks/unet.gen\"`")
    described = repr(char)
    if char and not char.isascii():
        described += f" (U+{ord(char):04X} {unicodedata.name(char, 'unknown character')})"
    if char in _LOOKALIKES:
        hint = f"this is not ASCII: type {_LOOKALIKES[char]!r} instead"
        hint = hint if _LOOKALIKES[char] != "a space" else "this is not ASCII: type a plain space instead"
    else:
        hint = ("names use ASCII letters, digits and '_'; the operators are + - * / ^ |> ~ = "
                "and a comment starts with '#'")
    return error("E031", f"unexpected character {described}", span, label="not part of the language",
                 hint=hint)


def syntax_error(exc: lark.exceptions.UnexpectedInput, source: SourceFile) -> Diagnostic:
    """One diagnostic for a parse failure: curated when the mistake is a known one."""
    span = _span_of(exc, source)
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        char = source.text[exc.pos_in_stream] if exc.pos_in_stream < len(source.text) else ""
        if char == '"':
            line_end = source.text.find("\n", exc.pos_in_stream)
            width = (len(source.text) if line_end < 0 else line_end) - exc.pos_in_stream
            return error("E030", "unterminated string", _span_at(source, exc.pos_in_stream, width),
                         label="this string has no closing '\"'",
                         hint="close the string with '\"' on the same line")
        return _unexpected_character(char, span)
    token = getattr(exc, "token", None)
    end = len(source.text) if token is None or token.type == "$END" else exc.pos_in_stream
    end = end if isinstance(end, int) else len(source.text)
    open_brackets = _open_brackets(source.text, end)
    found = _found(exc)
    unclosed = _unclosed(exc, open_brackets, source, found)
    if unclosed is not None:
        return unclosed
    code = _curated_code(exc) if isinstance(exc, lark.exceptions.UnexpectedToken) else None
    if code is not None:
        return _curated(code, source, span, found, end, open_brackets)
    expected = _expected_words(getattr(exc, "expected", set()) or set())
    return error("E040", f"unexpected {found.replace('the end', 'end')}", span, label=f"found {found}",
                 hint=f"expected {expected}" if expected else "")


def _curated(code: str, source: SourceFile, span: Span, found: str, end: int,
             open_brackets: list[tuple[str, int]]) -> Diagnostic:
    """The curated diagnostic, pointing at what the mistake is rather than where Lark stopped."""
    message, hint = _BY_CODE[code]
    label, notes = f"found {found}", []
    previous = _previous_token(source, end)
    if code in ("E008", "E021") and previous is not None:
        return _two_values(source, span, found, previous, open_brackets)
    if code == "E001" and open_brackets and open_brackets[-1][0] == "{":
        notes = [Note(message="this '{' is still open", span=_span_at(source, open_brackets[-1][1], 1))]
    doubled = {"E015": "=", "E026": "*"}.get(code)  # the parser stops at the second character
    if doubled and span.col > 1 and source.line(span.line)[span.col - 2] == doubled:
        span, label = span.model_copy(update={"col": span.col - 1}), f"found '{doubled * 2}'"
    if code in ("E017", "E027") and previous is not None:  # the culprit is the word before
        span, label = _span_at(source, previous[0], previous[1] - previous[0]), f"followed by {found}"
    if code == "E019" and previous is not None and "\n" in source.text[previous[1]:end]:
        span, label = _span_at(source, previous[1], 1), f"expected a value here, found {found} on a later line"
    return error(code, message, span, label=label, hint=hint, notes=notes)


def _two_values(source: SourceFile, span: Span, found: str, previous: tuple[int, int],
                open_brackets: list[tuple[str, int]]) -> Diagnostic:
    """A value followed by another outside brackets: the parser state is the same for a missing
    '|>' in a network body, two statements on one line, and a line ending in an operator."""
    operator = _operator_above(source, previous)
    if operator is not None:  # `param a: int =` then a newline: the next line became the value
        message, hint = _BY_CODE["E019"]
        where = _span_at(source, operator + 1, 1)
        read = Note(message=f"line {where.line} ends with '{source.text[operator]}', so this line was "
                            "read as its value", span=_span_at(source, previous[0], previous[1] - previous[0]))
        return error("E019", message, where, label="expected a value here", hint=hint, notes=[read])
    code = "E008" if _in_network_body(source, open_brackets) else "E021"
    message, hint = _BY_CODE[code]
    return error(code, message, span, label=f"found {found}", hint=hint)


def _previous_token(source: SourceFile, offset: int) -> tuple[int, int] | None:
    """(start, end) offsets of the word or symbol before `offset`, skipping blanks and comments."""
    text = source.text
    line_start = text.rfind("\n", 0, offset) + 1
    upto = offset
    while True:
        code = text[line_start:upto]
        if "#" in code:
            code = code[:code.index("#")]
        stripped = code.rstrip()
        if stripped:
            end = line_start + len(stripped)
            start = end - 1
            while start > line_start and (text[start - 1].isalnum() or text[start - 1] == "_") \
                    and (text[end - 1].isalnum() or text[end - 1] == "_"):
                start -= 1
            return start, end
        if line_start == 0:
            return None
        upto = line_start - 1
        line_start = text.rfind("\n", 0, upto) + 1


_NETWORK_KEYWORDS = ("net", "generator", "discriminator", "critic", "energy", "denoiser", "encoder",
                     "decoder", "autoregressive", "flow", "block")


def _in_network_body(source: SourceFile, open_brackets: list[tuple[str, int]]) -> bool:
    """Whether the innermost open '{' starts the body of a network or block."""
    braces = [offset for bracket, offset in open_brackets if bracket == "{"]
    if not braces:
        return False
    line_start = source.text.rfind("\n", 0, braces[-1]) + 1
    words = source.text[line_start:braces[-1]].split()
    return bool(words) and words[0] in _NETWORK_KEYWORDS


def _operator_above(source: SourceFile, word: tuple[int, int]) -> int | None:
    """The offset of the operator that ends the line above `word`, if `word` starts its line:
    the newline after an operator does not end a statement, so `word` was taken as an operand."""
    before = _previous_token(source, word[0])
    if before is None or "\n" not in source.text[before[1]:word[0]]:
        return None
    operator = before[1] - 1
    return operator if source.text[operator] in "=~+-*/^,:|>([" else None


def _unclosed(exc: lark.exceptions.UnexpectedInput, open_brackets: list[tuple[str, int]],
              source: SourceFile, found: str) -> Diagnostic | None:
    """E007 when the parser meets a statement keyword, '}' or the end of the file inside (...)
    or [...]: none of those can appear there, so the bracket was never closed."""
    token = getattr(exc, "token", None)
    if not open_brackets or open_brackets[-1][0] == "{" or token is None:
        return None
    ends_statement = token.type in ("$END", "RBRACE") or (
        token.type in _keywords() and token.type not in ("LOG", "REPEAT"))
    if not ends_statement:
        return None
    bracket, offset = open_brackets[-1]
    closer = ")" if bracket == "(" else "]"
    where = _span_of(exc, source)
    return error("E007", f"unclosed '{bracket}'", _span_at(source, offset, 1),
                 label=f"this '{bracket}' is never closed",
                 hint=f"add the missing '{closer}' at the end of the expression",
                 notes=[Note(message=f"the parser expected '{closer}' or more of the expression "
                                     f"before {found}", span=where)])


def _found(exc: lark.exceptions.UnexpectedInput) -> str:
    token = getattr(exc, "token", None)
    if token is None or token.type == "$END":
        return "the end of the file"
    if token.type == "_NL":
        return "the end of the line"
    return f"'{token}'"
