"""Text -> AST. The only module that knows Lark's trees; everything after it sees `gendsl.ast`."""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import sys
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import lark
from lark import Lark, Token

from gendsl import ast
from gendsl.cache import cache_folder
from gendsl.diagnostics import Diagnostic, error
from gendsl.source import SourceFile, Span

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
    return frozenset(t.pattern.value for t in parser().terminals
                     if t.pattern.type == "str" and t.pattern.value.isidentifier())


def grammar_text() -> str:
    """The grammar shipped in the wheel, or the repository's copy in an editable install."""
    packaged = resources.files("gendsl").joinpath("grammars/gen.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parents[2] / "grammars" / "gen.lark").read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def parser(start: str = "start") -> Lark:
    """The LALR parser, built once per process and cached on disk by Lark between processes
    (loading the cache takes about a tenth of building the tables)."""
    text = grammar_text()
    return Lark(text, parser="lalr", lexer="contextual", postlex=NewlineFilter(),
                propagate_positions=True, maybe_placeholders=True, start=start, cache=cache_file(text, start))


def cache_file(grammar: str, start: str = "start") -> str | bool:
    """Where Lark keeps the built parser: the user's cache folder, not the shared temp folder
    (Lark's default, where another user could plant the pickle it loads). The name holds what
    the tables depend on, so two installed versions do not overwrite each other's file; Lark
    also checks a hash on loading and rebuilds a stale or unreadable file, and ignores a failed
    write. False (no disk cache) when there is no folder to write to."""
    folder = cache_folder()
    if folder is None:
        return False
    key = hashlib.sha256(f"{grammar}|{start}|{lark.__version__}|{sys.version_info[:2]}".encode()).hexdigest()
    return str(folder / f"parser-{key[:16]}.lark")


@dataclass
class _Args:
    args: list = field(default_factory=list)
    kwargs: list = field(default_factory=list)
    given: list = field(default_factory=list)
    has_bar: bool = False
    bad: bool = False


@functools.lru_cache(maxsize=None)
def _defaults(cls) -> dict:
    return {name: f.default for name, f in cls.model_fields.items() if name != "span" and not f.is_required()}


def _make(cls, span: Span, **fields):
    """Build a node without validation: the parser is the only producer of AST nodes (this is
    pydantic's model_construct minus its bookkeeping, which dominated parse time)."""
    return _construct(cls, {**_defaults(cls), "span": span, **fields})


def _construct(cls, values: dict):
    node = cls.__new__(cls)
    object.__setattr__(node, "__dict__", values)
    object.__setattr__(node, "__pydantic_fields_set__", set(values))
    object.__setattr__(node, "__pydantic_extra__", None)
    object.__setattr__(node, "__pydantic_private__", None)
    return node


def _span(file: str, line: int, col: int, end_line: int, end_col: int) -> Span:
    return _construct(Span, {"file": file, "line": line, "col": col, "end_line": end_line, "end_col": end_col})


class ToAst:
    """Lark tree -> gendsl.ast, collecting the few errors only visible here.

    A direct bottom-up walk: each rule's method gets (meta, children). (Lark's Transformer with
    v_args(meta=True) re-wraps the method on every call, which was most of the parse time.)
    """

    def __init__(self):
        super().__init__()
        self.file = "<none>"
        self.diagnostics: list[Diagnostic] = []

    def start_file(self, source: SourceFile) -> None:
        """Per-file state of the builder."""
        self.file = source.path
        self.diagnostics = []

    def transform(self, tree):
        """The AST of a parse tree (tokens stay tokens for the rule methods to read)."""
        if not isinstance(tree, lark.Tree):
            return tree
        children = [self.transform(c) for c in tree.children]
        return getattr(self, tree.data)(tree.meta, children)

    # -- spans --
    def span(self, meta) -> Span:
        if getattr(meta, "empty", True):
            return _span(self.file, 1, 1, 1, 1)
        return _span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def token_span(self, token: Token) -> Span:
        return _span(self.file, token.line, token.column, token.end_line, token.end_column)

    def ident(self, token: Token) -> ast.Ident:
        return _make(ast.Ident, self.token_span(token), name=str(token))

    # -- top level --
    def start(self, meta, items):
        items = [i for i in items if i is not None]
        return _make(ast.Module, self.span(meta),
                     imports=tuple(i for i in items if isinstance(i, ast.Import)),
                     blocks=tuple(i for i in items if isinstance(i, ast.BlockDef)),
                     models=tuple(i for i in items if isinstance(i, ast.ModelDef)))

    def import_stmt(self, meta, c):
        return _make(ast.Import, self.span(meta), path=self.string(meta, c))

    def block_def(self, meta, c):
        name, params, stages = c
        return _make(ast.BlockDef, self.span(meta), name=self.ident(name),
                     params=tuple(params or ()), stages=stages)

    def block_params(self, meta, c):
        return c

    def block_param(self, meta, c):
        name, type_name, default = c
        return _make(ast.BlockParam, self.span(meta), name=self.ident(name),
                     type_name=self.ident(type_name), default=default)

    def model_def(self, meta, c):
        name, extends, *body = c
        return _make(ast.ModelDef, self.span(meta), name=self.ident(name), extends=extends,
                     body=tuple(b for b in body if b is not None))

    def extends(self, meta, c):
        return self.ident(c[0])

    # -- declarations --
    def param_decl(self, meta, c):
        name, type_name, default = c
        return _make(ast.ParamDecl, self.span(meta), name=self.ident(name),
                     type_name=self.ident(type_name), default=default)

    def data_decl(self, meta, c):
        *data_vars, source = c
        return _make(ast.DataDecl, self.span(meta), vars=tuple(data_vars), source=source)

    def data_var(self, meta, c):
        return _make(ast.DataVar, self.span(meta), name=self.ident(c[0]), type=c[1])

    def latent_decl(self, meta, c):
        return _make(ast.LatentDecl, self.span(meta), name=self.ident(c[0]), type=c[1], prior=c[2])

    def tensor_decl(self, meta, c):
        return _make(ast.TensorDecl, self.span(meta), name=self.ident(c[0]), type=c[1], init=c[2])

    def observe_decl(self, meta, c):
        return _make(ast.ObserveDecl, self.span(meta), name=self.ident(c[0]), dist=c[1])

    def net_role(self, meta, c):
        return str(c[0])

    density_role = sample_op = net_role

    def net_decl(self, meta, c):
        role, name, params, returns, pack, body = c
        return _make(ast.NetDecl, self.span(meta), role=str(role), name=self.ident(name),
                     params=tuple(params or ()), returns=returns, body=body, pack=pack)

    def pack(self, meta, c):
        return c[0]

    def net_params(self, meta, c):
        return c

    def net_param(self, meta, c):
        return _make(ast.NetParam, self.span(meta), name=self.ident(c[0]), type=c[1])

    def density_decl(self, meta, c):
        role, name, *rest = c
        body, given = rest[-1], rest[-2]
        variables = rest[:-2]
        return _make(ast.DensityDecl, self.span(meta), role=str(role), name=self.ident(name),
                     vars=tuple(self.ident(v) for v in variables), given=tuple(given or ()),
                     body=body)

    def given(self, meta, c):
        return [self.ident(t) for t in c]

    def flow_decl(self, meta, c):
        name, param, given, latent, stages = c
        return _make(ast.FlowDecl, self.span(meta), name=self.ident(name), param=param, given=tuple(given or ()),
                     latent=self.ident(latent), stages=stages)

    def diffusion_decl(self, meta, c):
        return _make(ast.DiffusionDecl, self.span(meta), name=self.ident(c[0]),
                     var=self.ident(c[1]), process=c[2])

    def sampler_decl(self, meta, c):
        return _make(ast.SamplerDecl, self.span(meta), name=self.ident(c[0]), sampler=c[1])

    def loss_decl(self, meta, c):
        return _make(ast.LossDecl, self.span(meta), name=self.ident(c[0]), value=c[1])

    def sample_decl(self, meta, c):
        return _make(ast.SampleDecl, self.span(meta), name=self.ident(c[0]), op=str(c[1]), value=c[2])

    # -- train / evaluate --
    def train_block(self, meta, c):
        steps = tuple(i for i in c if isinstance(i, ast.TrainStep))
        settings = tuple(i for i in c if isinstance(i, ast.TrainSetting))
        return _make(ast.TrainBlock, self.span(meta), steps=steps, settings=settings)

    def train_step(self, meta, c):
        name, loss, over, optimizer, repeat = c
        return _make(ast.TrainStep, self.span(meta), name=self.ident(name), loss=self.ident(loss),
                     over=tuple(over), optimizer=optimizer, repeat=repeat)

    def train_minimize(self, meta, c):
        loss, over, optimizer = c
        return _make(ast.TrainStep, self.span(meta), name=self.ident(loss), loss=self.ident(loss),
                     over=tuple(over or ()), optimizer=optimizer, repeat=None, shorthand=True)

    def over_clause(self, meta, c):
        return [self.ident(t) for t in c]

    def with_clause(self, meta, c):
        return c[0]

    def repeat_clause(self, meta, c):
        return c[0]

    def train_setting(self, meta, c):
        return _make(ast.TrainSetting, self.span(meta), name=self.ident(c[0]), value=c[1])

    def evaluate_block(self, meta, c):
        return _make(ast.EvaluateBlock, self.span(meta), metrics=tuple(c))

    def metric(self, meta, c):
        alias, name, arglist = c
        arglist = arglist or _Args()
        return _make(ast.Metric, self.span(meta), alias=self.ident(alias) if alias else None,
                     name=self.ident(name), args=tuple(arglist.args), kwargs=tuple(arglist.kwargs))

    # -- network bodies and pipelines --
    def net_body(self, meta, c):
        return tuple(c)

    def assign(self, meta, c):
        return _make(ast.Assign, self.span(meta), target=self.ident(c[0]), value=c[1])

    def draw(self, meta, c):
        return _make(ast.Draw, self.span(meta), target=self.ident(c[0]), dist=c[1])

    def result(self, meta, c):
        return _make(ast.Result, self.span(meta), value=c[0])

    def stage_body(self, meta, c):
        return tuple(c)

    def stage_name(self, meta, c):
        return _make(ast.Stage, self.span(meta), name=str(c[0]))

    def stage_call(self, meta, c):
        arglist = c[1] or _Args()
        self.reject_given(arglist, str(c[0]))
        return _make(ast.Stage, self.span(meta), name=str(c[0]), args=tuple(arglist.args),
                     kwargs=tuple(arglist.kwargs), has_parens=True, bad_args=arglist.bad)

    def stage_repeat(self, meta, c):
        return _make(ast.Stage, self.span(meta), name="repeat", repeat=c[0], body=c[1])

    def type(self, meta, c):
        name, *dims = c
        return _make(ast.TypeExpr, self.span(meta), name=str(name),
                     dims=tuple(d for d in dims if d is not None))

    # -- expressions --
    def pipe(self, meta, c):
        return _make(ast.Pipe, self.span(meta), input=c[0], stage=c[1])

    def _binary(op):
        def rule(self, meta, c):
            return _make(ast.Binary, self.span(meta), op=op, left=c[0], right=c[1])
        return rule

    add, sub, mul, div, pow = _binary("+"), _binary("-"), _binary("*"), _binary("/"), _binary("^")

    def neg(self, meta, c):
        return _make(ast.Unary, self.span(meta), op="-", operand=c[0])

    def log(self, meta, c):
        return _make(ast.Unary, self.span(meta), op="log", operand=c[0])

    def call(self, meta, c):
        arglist = c[1] or _Args()
        return _make(ast.Call, self.span(meta), func=c[0], args=tuple(arglist.args),
                     kwargs=tuple(arglist.kwargs), given=tuple(arglist.given),
                     has_bar=arglist.has_bar, bad_args=arglist.bad)

    def index(self, meta, c):
        return _make(ast.Index, self.span(meta), target=c[0], indices=tuple(c[1:]))

    def slice(self, meta, c):
        start, stop, step = (list(c) + [None, None, None])[:3]
        return _make(ast.Slice, self.span(meta), start=start, stop=stop, step=step)

    def attr(self, meta, c):
        return _make(ast.Attr, self.span(meta), target=c[0], name=str(c[1]))

    def number(self, meta, c):
        text = str(c[0])
        is_int = text.isdigit()
        if is_int and len(text) > MAX_DIGITS:
            self.diagnostics.append(error("E032", f"number with {len(text)} digits is too large", self.span(meta),
                                          label="too large", hint="numbers in specs stay below 10^15"))
            return _make(ast.Number, self.span(meta), value=0, is_int=True)
        return _make(ast.Number, self.span(meta), value=int(text) if is_int else float(text),
                     is_int=is_int)

    def string(self, meta, c):
        raw = str(c[0])[1:-1]
        if "\\" not in raw:
            return _make(ast.String, self.span(meta), value=raw)
        try:
            value = raw.encode("utf-8").decode("unicode_escape")
        except UnicodeDecodeError:
            self.diagnostics.append(error("E033", "bad escape sequence in a string", self.span(meta),
                                          label="here", hint='write a backslash as "\\\\"; escapes are \\n, \\t, '
                                                             '\\", \\xHH'))
            value = raw
        return _make(ast.String, self.span(meta), value=value)

    def name(self, meta, c):
        return _make(ast.Name, self.span(meta), id=str(c[0]))

    def tuple(self, meta, c):
        return _make(ast.TupleExpr, self.span(meta), items=tuple(i for i in c if i is not None))

    def list(self, meta, c):
        return _make(ast.ListExpr, self.span(meta), items=tuple(i for i in c if i is not None))

    def args(self, meta, c):
        arglist = _Args()
        *items, given = c
        for item in items:
            if isinstance(item, ast.Kwarg):
                arglist.kwargs.append(item)
            elif arglist.kwargs:
                arglist.bad = True
                self.diagnostics.append(error(
                    "E024", "positional argument after a keyword argument", item.span,
                    label="positional argument here",
                    hint="put positional arguments first, or name this one too"))
            else:
                arglist.args.append(item)
        if given is not None:
            arglist.given, arglist.has_bar = given, True
        return arglist

    def kwarg(self, meta, c):
        return _make(ast.Kwarg, self.span(meta), name=str(c[0]), value=c[1])

    def given_args(self, meta, c):
        return list(c)

    def reject_given(self, arglist: _Args, what: str) -> None:
        if arglist.has_bar:
            self.diagnostics.append(error(
                "E025", f"'|' is only for density terms such as p(x | z), not in {what}(...)",
                arglist.given[0].span, hint="remove the '|' part"))


MAX_DIGITS = 15
_BUILDER = ToAst()
_LOCK = threading.Lock()


def parse_source(source: SourceFile) -> tuple[ast.Module | None, list[Diagnostic]]:
    """Parse one file: the module, or None and the syntax diagnostics."""
    from gendsl.syntax.errors import syntax_error

    with _LOCK, collector_paused():  # one builder holds the file being parsed
        _BUILDER.start_file(source)
        try:
            module = _BUILDER.transform(parser().parse(source.text))
        except lark.exceptions.UnexpectedInput as exc:
            return None, [syntax_error(exc, source)]
        except RecursionError:
            return None, [too_deep(source)]
        return module, list(_BUILDER.diagnostics)


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
