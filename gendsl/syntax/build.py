"""Lark's reductions -> gendsl.ast: the LALR parser calls these rule methods as it reduces, so no
parse tree is built and walked a second time.

Spans are read off the parser's stack, not from a parse tree's positions (Lark's
propagate_positions, most of the parse time): a rule reduced onto stack depth d starts at the
first token shifted at depth d and ends at the last token shifted, exactly the positions Lark
propagates, anonymous tokens ("loss", "(", ")") included.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lark import Token
from pydantic import BaseModel

from gendsl import ast
from gendsl.diagnostics import Diagnostic, error
from gendsl.source import Span

MAX_DIGITS = 15


@dataclass
class _Args:
    args: list = field(default_factory=list)
    kwargs: list = field(default_factory=list)
    given: list = field(default_factory=list)
    has_bar: bool = False
    bad: bool = False


_FIELDS: dict[type, tuple[dict, set]] = {}  # node class -> (its optional fields' defaults, all its field names)


def _fields(cls) -> tuple[dict, set]:
    found = _FIELDS.get(cls)
    if found is None:
        found = _FIELDS[cls] = ({name: f.default for name, f in cls.model_fields.items()
                                 if name != "span" and not f.is_required()}, set(cls.model_fields))
    return found


def _make(cls, span: Span, **fields):
    """Build a node without validation: the parser is the only producer of AST nodes (this is
    pydantic's model_construct minus its bookkeeping, which dominated parse time)."""
    defaults, names = _fields(cls)
    return _construct(cls, {**defaults, "span": span, **fields}, names)


# BaseModel's slots, set through their descriptors (BaseModel.__setattr__ refuses frozen models)
_set_dict = object.__setattr__
_set_fields_set, _set_extra, _set_private = (BaseModel.__dict__[name].__set__ for name in (
    "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"))
_new = object.__new__


def _construct(cls, values: dict, fields: set):
    node = _new(cls)
    _set_dict(node, "__dict__", values)
    # A node with every field set shares its class's set of names: nodes are frozen, and pydantic
    # copies the set before changing it (model_copy), so no node changes it in place. A set fewer
    # per node is less to allocate, and less for the cycle collector to walk after a parse.
    _set_fields_set(node, fields if len(values) == len(fields) else set(values))
    _set_extra(node, None)
    _set_private(node, None)
    return node


def _span(file: str, line: int, col: int, end_line: int, end_col: int) -> Span:
    return _construct(Span, {"file": file, "line": line, "col": col, "end_line": end_line, "end_col": end_col},
                      _SPAN_FIELDS)


_SPAN_FIELDS = set(Span.model_fields)


class ToAst:
    """The rule methods of the AST builder: each gets the span of its rule and its children
    (tokens, None for an absent optional part, or what the methods built for sub-rules)."""

    def __init__(self):
        self.file = "<none>"
        self.diagnostics: list[Diagnostic] = []

    def start_file(self, path: str) -> None:
        """Per-file state of the builder."""
        self.file = path
        self.diagnostics = []

    def token_span(self, token: Token) -> Span:
        return _span(self.file, token.line, token.column, token.end_line, token.end_column)

    def ident(self, token: Token) -> ast.Ident:
        return _make(ast.Ident, self.token_span(token), name=str(token))

    # -- top level --
    def start(self, span, items):
        items = [i for i in items if i is not None]
        return _make(ast.Module, span,
                     imports=tuple(i for i in items if isinstance(i, ast.Import)),
                     blocks=tuple(i for i in items if isinstance(i, ast.BlockDef)),
                     models=tuple(i for i in items if isinstance(i, ast.ModelDef)))

    def import_stmt(self, span, c):
        return _make(ast.Import, span, path=self.string(span, c))

    def block_def(self, span, c):
        name, params, stages = c
        return _make(ast.BlockDef, span, name=self.ident(name),
                     params=tuple(params or ()), stages=stages)

    def block_params(self, span, c):
        return c

    def block_param(self, span, c):
        name, type_name, default = c
        return _make(ast.BlockParam, span, name=self.ident(name),
                     type_name=self.ident(type_name), default=default)

    def model_def(self, span, c):
        name, extends, *body = c
        return _make(ast.ModelDef, span, name=self.ident(name), extends=extends,
                     body=tuple(b for b in body if b is not None))

    def extends(self, span, c):
        return self.ident(c[0])

    # -- declarations --
    def param_decl(self, span, c):
        name, type_name, default = c
        return _make(ast.ParamDecl, span, name=self.ident(name),
                     type_name=self.ident(type_name), default=default)

    def data_decl(self, span, c):
        *data_vars, source = c
        return _make(ast.DataDecl, span, vars=tuple(data_vars), source=source)

    def data_var(self, span, c):
        return _make(ast.DataVar, span, name=self.ident(c[0]), type=c[1])

    def latent_decl(self, span, c):
        return _make(ast.LatentDecl, span, name=self.ident(c[0]), type=c[1], prior=c[2])

    def tensor_decl(self, span, c):
        return _make(ast.TensorDecl, span, name=self.ident(c[0]), type=c[1], init=c[2])

    def observe_decl(self, span, c):
        return _make(ast.ObserveDecl, span, name=self.ident(c[0]), dist=c[1])

    def net_role(self, span, c):
        return str(c[0])

    density_role = sample_op = net_role

    def net_decl(self, span, c):
        role, name, params, returns, pack, body = c
        return _make(ast.NetDecl, span, role=str(role), name=self.ident(name),
                     params=tuple(params or ()), returns=returns, body=body, pack=pack)

    def pack(self, span, c):
        return c[0]

    def net_params(self, span, c):
        return c

    def net_param(self, span, c):
        return _make(ast.NetParam, span, name=self.ident(c[0]), type=c[1])

    def density_decl(self, span, c):
        role, name, *rest = c
        body, given = rest[-1], rest[-2]
        variables = rest[:-2]
        return _make(ast.DensityDecl, span, role=str(role), name=self.ident(name),
                     vars=tuple(self.ident(v) for v in variables), given=tuple(given or ()),
                     body=body)

    def given(self, span, c):
        return [self.ident(t) for t in c]

    def flow_decl(self, span, c):
        name, param, given, latent, stages = c
        return _make(ast.FlowDecl, span, name=self.ident(name), param=param, given=tuple(given or ()),
                     latent=self.ident(latent), stages=stages)

    def diffusion_decl(self, span, c):
        return _make(ast.DiffusionDecl, span, name=self.ident(c[0]),
                     var=self.ident(c[1]), process=c[2])

    def sampler_decl(self, span, c):
        return _make(ast.SamplerDecl, span, name=self.ident(c[0]), sampler=c[1])

    def loss_decl(self, span, c):
        return _make(ast.LossDecl, span, name=self.ident(c[0]), value=c[1])

    def sample_decl(self, span, c):
        return _make(ast.SampleDecl, span, name=self.ident(c[0]), op=str(c[1]), value=c[2])

    # -- train / evaluate --
    def train_block(self, span, c):
        steps = tuple(i for i in c if isinstance(i, ast.TrainStep))
        settings = tuple(i for i in c if isinstance(i, ast.TrainSetting))
        return _make(ast.TrainBlock, span, steps=steps, settings=settings)

    def train_step(self, span, c):
        name, loss, over, optimizer, repeat = c
        return _make(ast.TrainStep, span, name=self.ident(name), loss=self.ident(loss),
                     over=tuple(over), optimizer=optimizer, repeat=repeat)

    def train_minimize(self, span, c):
        loss, over, optimizer = c
        return _make(ast.TrainStep, span, name=self.ident(loss), loss=self.ident(loss),
                     over=tuple(over or ()), optimizer=optimizer, repeat=None, shorthand=True)

    def over_clause(self, span, c):
        return [self.ident(t) for t in c]

    def with_clause(self, span, c):
        return c[0]

    def repeat_clause(self, span, c):
        return c[0]

    def train_setting(self, span, c):
        return _make(ast.TrainSetting, span, name=self.ident(c[0]), value=c[1])

    def evaluate_block(self, span, c):
        return _make(ast.EvaluateBlock, span, metrics=tuple(c))

    def metric(self, span, c):
        alias, name, arglist = c
        arglist = arglist or _Args()
        return _make(ast.Metric, span, alias=self.ident(alias) if alias else None,
                     name=self.ident(name), args=tuple(arglist.args), kwargs=tuple(arglist.kwargs))

    # -- network bodies and pipelines --
    def net_body(self, span, c):
        return tuple(c)

    def assign(self, span, c):
        return _make(ast.Assign, span, target=self.ident(c[0]), value=c[1])

    def draw(self, span, c):
        return _make(ast.Draw, span, target=self.ident(c[0]), dist=c[1])

    def result(self, span, c):
        return _make(ast.Result, span, value=c[0])

    def stage_body(self, span, c):
        return tuple(c)

    def stage_name(self, span, c):
        return _make(ast.Stage, span, name=str(c[0]))

    def stage_call(self, span, c):
        arglist = c[1] or _Args()
        self.reject_given(arglist, str(c[0]))
        return _make(ast.Stage, span, name=str(c[0]), args=tuple(arglist.args),
                     kwargs=tuple(arglist.kwargs), has_parens=True, bad_args=arglist.bad)

    def stage_repeat(self, span, c):
        return _make(ast.Stage, span, name="repeat", repeat=c[0], body=c[1])

    def type(self, span, c):
        name, *dims = c
        return _make(ast.TypeExpr, span, name=str(name),
                     dims=tuple(d for d in dims if d is not None))

    # -- expressions --
    def pipe(self, span, c):
        return _make(ast.Pipe, span, input=c[0], stage=c[1])

    def _binary(op):
        def rule(self, span, c):
            return _make(ast.Binary, span, op=op, left=c[0], right=c[1])
        return rule

    add, sub, mul, div, pow = _binary("+"), _binary("-"), _binary("*"), _binary("/"), _binary("^")

    def neg(self, span, c):
        return _make(ast.Unary, span, op="-", operand=c[0])

    def log(self, span, c):
        return _make(ast.Unary, span, op="log", operand=c[0])

    def call(self, span, c):
        arglist = c[1] or _Args()
        return _make(ast.Call, span, func=c[0], args=tuple(arglist.args),
                     kwargs=tuple(arglist.kwargs), given=tuple(arglist.given),
                     has_bar=arglist.has_bar, bad_args=arglist.bad)

    def index(self, span, c):
        return _make(ast.Index, span, target=c[0], indices=tuple(c[1:]))

    def slice(self, span, c):
        start, stop, step = (list(c) + [None, None, None])[:3]
        return _make(ast.Slice, span, start=start, stop=stop, step=step)

    def attr(self, span, c):
        return _make(ast.Attr, span, target=c[0], name=str(c[1]))

    def number(self, span, c):
        text = str(c[0])
        is_int = text.isdigit()
        if is_int and len(text) > MAX_DIGITS:
            self.diagnostics.append(error("E032", f"number with {len(text)} digits is too large", span,
                                          label="too large", hint="numbers in specs stay below 10^15"))
            return _make(ast.Number, span, value=0, is_int=True)
        return _make(ast.Number, span, value=int(text) if is_int else float(text),
                     is_int=is_int)

    def string(self, span, c):
        raw = str(c[0])[1:-1]
        if "\\" not in raw:
            return _make(ast.String, span, value=raw)
        try:
            value = raw.encode("utf-8").decode("unicode_escape")
        except UnicodeDecodeError:
            self.diagnostics.append(error("E033", "bad escape sequence in a string", span,
                                          label="here", hint='write a backslash as "\\\\"; escapes are \\n, \\t, '
                                                             '\\", \\xHH'))
            value = raw
        return _make(ast.String, span, value=value)

    def name(self, span, c):
        return _make(ast.Name, span, id=str(c[0]))

    def tuple(self, span, c):
        return _make(ast.TupleExpr, span, items=tuple(i for i in c if i is not None))

    def list(self, span, c):
        return _make(ast.ListExpr, span, items=tuple(i for i in c if i is not None))

    def args(self, span, c):
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

    def kwarg(self, span, c):
        return _make(ast.Kwarg, span, name=str(c[0]), value=c[1])

    def given_args(self, span, c):
        return list(c)

    def reject_given(self, arglist: _Args, what: str) -> None:
        if arglist.has_bar:
            self.diagnostics.append(error(
                "E025", f"'|' is only for density terms such as p(x | z), not in {what}(...)",
                arglist.given[0].span, hint="remove the '|' part"))


class Callbacks:
    """What the LALR parser calls (given to Lark as its transformer): `shifted` on each token it
    shifts, and per rule a function of the rule's children that builds its node with its span.
    One parse at a time: `begin` hands it the parser's state stack."""

    def __init__(self, builder: ToAst):
        self.builder = builder
        self.first: dict[int, Token] = {}  # stack depth -> first token of the entry there
        self.last: Token | None = None  # the last token shifted: where a reduced rule ends
        self.states: list = []

    def begin(self, states: list) -> None:
        """Start a parse whose LALR state stack is `states` (one state more than values)."""
        self.first, self.last, self.states = {}, None, states

    def shifted(self, token: Token) -> Token:
        # called after the state is pushed: the token's entry is at depth len(states) - 2
        self.first[len(self.states) - 2] = token
        self.last = token
        return token

    def __getattr__(self, name: str):
        """Lark asks for a callback per terminal (upper case) and per rule; rules without a
        method (inlined `_rules`) get Lark's default, a Tree the parent rule unpacks."""
        if name.isupper():
            return self.shifted
        method = getattr(self.builder, name, None) if not name.startswith("_") else None
        if method is None:
            raise AttributeError(name)
        return self.rule(method)

    def rule(self, method):
        """The callback of one rule, given the span of the rule being reduced (its entries are
        popped: it lands at len(states) - 1). Computed here, not in a method, as it runs on every
        reduction."""
        builder = self.builder

        def reduced(children):
            last = self.last
            if last is None:  # an empty file
                return method(_span(builder.file, 1, 1, 1, 1), children)
            first = self.first[len(self.states) - 1]
            return method(_span(builder.file, first.line, first.column, last.end_line, last.end_column), children)
        return reduced
