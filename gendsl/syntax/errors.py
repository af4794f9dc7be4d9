"""Curated syntax errors: Lark's parser state at the failure is matched against known mistakes.

Each entry is (code, message, hint, examples). `match_examples` re-parses the examples and picks
the entry whose example fails in the same parser state on the same token: the technique Lark
documents for user-facing error messages. Anything unmatched gets a generic, still precise,
"expected ..., found ..." message.
"""

from __future__ import annotations

import functools

import lark

from gendsl.diagnostics import Diagnostic, error
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


# (code, message, hint, examples). Examples are whole files that fail at the mistake.
CURATED: list[tuple[str, str, str, list[str]]] = [
    ("E001", "missing '}' at the end of a block",
     "every '{' needs a matching '}'; the block opened above is still open at the end of the file",
     ["model M {\n param a: int = 1\n", "model M {\n net f(x: real[2]) -> real[2] { x |> Linear(2)\n}\n",
      "model M {\n train { batch 1\n}\n", "model M {\n evaluate { nll\n}\n", "model M {"]),
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
     "close the bracket before the end of the expression",
     [_m("loss l = f(x"), _m("loss l = f(x\n"), _m("loss l = f(x, y\n}\n"), _m("loss l = x[1")]),
    ("E008", "missing '|>' between two pipeline stages",
     "join stages with '|>', e.g. `x |> Linear(64) |> relu`",
     [_m("net f(x: real[2]) -> real[2] { x |> Linear(2) relu }"),
      _m("net f(x: real[2]) -> real[2] { x Linear(2) }"),
      _m("net f(x: real[2]) -> real[2] { x |> Linear(2) Linear(2) }")]),
    ("E009", "a network's output type follows '->'",
     "write `generator G(z) -> real[2] { ... }`",
     [_m("generator G(z) real[2] { z }"), _m("net f(x: real[2]) : real[2] { x }")]),
    ("E010", "a train step is written `step NAME: minimize LOSS over NETS`",
     "add the ':' after the step's name",
     [_m("train { step s minimize l over G }")]),
    ("E011", "a named train step needs 'over' and the networks it updates",
     "write `step s: minimize l over G with Adam(lr=1e-3)`; 'over' is the gradient contract",
     [_m("train { step s: minimize l with Adam() }"), _m("train { step s: minimize l }")]),
    ("E012", "'minimize' needs the name of a loss",
     "write `minimize elbo`, naming a `loss` declared in the model",
     [_m("train { minimize }"), _m("train { minimize 3 }"), _m("train { step s: minimize }")]),
    ("E013", "a declaration must be inside a model",
     "wrap the declarations in `model Name { ... }`",
     [_m("") + "latent z: real[2] ~ Normal(0, 1)\n", "data x: real[2] from ring()\n",
      "loss l = x\n", "param a: int = 1\n", "train { batch 1 }\n", "x = 1\n"]),
    ("E014", "a model needs a name",
     "write `model VAE { ... }`",
     ["model {\n}\n"]),
    ("E015", "'==' is not an operator in .gen",
     "use '=' to define a name; comparisons do not exist in specs",
     [_m("loss l == x"), _m("param a: int == 1")]),
    ("E016", "missing ',' between arguments",
     "separate arguments with ',', e.g. `Normal(0, 1)`",
     [_m("loss l = f(x y)"), _m("loss l = f(x 1)"), _m("loss l = f(1 2)"),
      _m("loss l = f(a=1 b=2)")]),
    ("E017", "a keyword cannot be used as a name here",
     "pick another name; keywords such as data, latent, loss, train, model are reserved",
     [_m("param data: int = 1"), _m("param loss: int = 1"), _m("latent train: real[2] ~ Normal(0, 1)")]),
    ("E018", "import needs a quoted path",
     "write `import \"blocks/unet.gen\"`",
     ["import blocks\n", "import\n"]),
    ("E019", "an expression is missing",
     "write the value after '=', e.g. `loss elbo = -log p(x | z)`",
     [_m("loss l ="), _m("loss l =\n"), _m("param a: int =\n"), _m("loss l = x +\n}")]),
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
     [_m("x = 1"), _m("variable z: real[2]"), _m("def f(x): return x")]),
    ("E023", "'log' applies to a value or a density term, e.g. `log p(x | z)` or `log(x)`",
     "write the term after 'log'",
     [_m("loss l = log"), _m("loss l = log\n")]),
]


@functools.lru_cache(maxsize=None)
def _examples() -> dict[str, list[str]]:
    return {code: examples for code, _, _, examples in CURATED}


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
    line = getattr(exc, "line", None) or (token.line if token is not None else 1)
    col = getattr(exc, "column", None) or (token.column if token is not None else 1)
    if isinstance(line, int) and line > 0 and token is not None and token.type != "$END":
        width = max(1, len(str(token)) if token.type != "_NL" else 1)
        return Span(file=source.path, line=line, col=col, end_line=line, end_col=col + width)
    if token is None or token.type == "$END" or not isinstance(line, int) or line < 1:
        line = max(1, len(source.lines))
        col = len(source.line(line)) + 1
    return Span(file=source.path, line=line, col=col, end_line=line, end_col=col + 1)


def syntax_error(exc: lark.exceptions.UnexpectedInput, source: SourceFile) -> Diagnostic:
    """One diagnostic for a parse failure: curated when the mistake is a known one."""
    from gendsl.syntax.parse import parser

    span = _span_of(exc, source)
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        char = source.text[exc.pos_in_stream] if exc.pos_in_stream < len(source.text) else ""
        if char == '"':
            return error("E030", "unterminated string", span, label="string starts here",
                         hint="close the string with '\"' on the same line")
        return error("E031", f"unexpected character {char!r}", span, label="not part of the language",
                     hint="names use letters, digits and '_'; see docs/language.md for the operators")
    code = exc.match_examples(parser().parse, _examples(), use_accepts=True)
    found = _found(exc)
    if code is not None:
        message, hint = _BY_CODE[code]
        return error(code, message, span, label=f"found {found}", hint=hint)
    expected = _expected_words(getattr(exc, "expected", set()) or set())
    return error("E040", f"unexpected {found}", span, label=f"found {found}",
                 hint=f"expected {expected}" if expected else "")


def _found(exc: lark.exceptions.UnexpectedInput) -> str:
    token = getattr(exc, "token", None)
    if token is None or token.type == "$END":
        return "the end of the file"
    if token.type == "_NL":
        return "the end of the line"
    return f"'{token}'"
