"""Typing of expressions: AST -> typed IR, with shape checks and compiler-grade messages.

A `Scope` says what names mean where the expression sits: inside a network only its inputs,
locals, params and shared tensors are visible; losses and samples see the whole model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from gendsl import ast
from gendsl.ast import hint_text
from gendsl.diagnostics import Diagnostic, Note, error
from gendsl.graph import ir
from gendsl.graph.constants import NotConstant, _binary, evaluate
from gendsl.graph.passes.indexing import IndexTyper
from gendsl.graph.passes.pipelines import PipelineTyper
from gendsl.library.distributions import DISTRIBUTIONS
from gendsl.library.functions import FUNCTIONS
from gendsl.library.layers import LAYERS
from gendsl.library.signature import EntryError, arguments_by_name, bind, call_rule, is_operand, parameters
from gendsl.types import (UNKNOWN, DistType, ListType, NetType, NumberType, ObjectType,
                          TensorType, Type, broadcast_shapes, compatible)

Context = Literal["net", "loss", "sample", "prior", "observe"]


@dataclass(frozen=True)
class Binding:
    kind: str     # param data latent tensor input local net density flow diffusion sampler loss
    type: Type
    key: str = ""


@dataclass
class Scope:
    context: Context
    owner: str
    local: dict[str, Binding] = field(default_factory=dict)


def is_scalar(t: Type) -> bool:
    return isinstance(t, TensorType) and t.shape == () and t.kind != "cat"


class ExprTyper(IndexTyper):
    """Types expressions against the model's bindings (filled in by the statement pass)."""

    def __init__(self, params: dict[str, Any], pipelines: PipelineTyper, diagnostics: list[Diagnostic]):
        self.params = params
        self.pipelines = pipelines
        self.diagnostics = diagnostics
        self.model: dict[str, Binding] = {}
        self.densities: Any = None  # set by the statement pass: resolves p(x | z) terms
        self.net_origin: dict[str, Any] = {}

    def report(self, code: str, message: str, span, **kw) -> ir.Const:
        self.diagnostics.append(error(code, message, span, **kw))
        return ir.Const(span=span, type=UNKNOWN, value=None)

    def lookup(self, name: str, scope: Scope) -> Binding | None:
        return scope.local.get(name) or self.model.get(name)

    # ---- entry point ----
    def expr(self, e: ast.Expr, scope: Scope) -> ir.Expr:
        method = getattr(self, "t_" + type(e).__name__)
        return method(e, scope)

    def t_Number(self, e: ast.Number, scope: Scope) -> ir.Expr:
        return ir.Const(span=e.span, type=NumberType(kind="int" if e.is_int else "float", value=e.value),
                        value=e.value)

    def t_String(self, e: ast.String, scope: Scope) -> ir.Expr:
        return ir.Const(span=e.span, type=NumberType(kind="str", value=e.value), value=e.value)

    def t_Name(self, e: ast.Name, scope: Scope) -> ir.Expr:
        if e.id in ("true", "false"):
            return ir.Const(span=e.span, type=NumberType(kind="bool", value=e.id == "true"), value=e.id == "true")
        binding = self.lookup(e.id, scope)
        if binding is None:
            return ir.Const(span=e.span, type=UNKNOWN, value=None)  # reported by the names pass
        if binding.kind == "param":
            return ir.Const(span=e.span, type=binding.type, value=binding.type.value)
        if scope.context in ("net", "prior", "observe") and binding.kind in ("data", "latent") \
                and e.id not in scope.local:
            if scope.context == "observe" and binding.kind == "latent":
                return ir.Ref(span=e.span, type=binding.type, name=e.id, scope="latent")
            where = {"net": f"network {scope.owner}", "prior": "a prior", "observe": "an observation"}[scope.context]
            return self.report("E208", f"{where} cannot use the {binding.kind} variable '{e.id}'", e.span,
                               label="not an input here",
                               hint=f"networks see only their inputs: add `{e.id}` to the inputs of "
                                    f"{scope.owner}" if scope.context == "net" else
                                    "priors may use params and tensors only")
        if binding.kind in ("data", "latent", "tensor", "input", "local", "loss"):
            if binding.kind == "loss" and scope.context != "loss":
                return self.report("E208", f"the loss '{e.id}' can only be used inside another loss", e.span)
            return ir.Ref(span=e.span, type=binding.type, name=e.id, scope=binding.kind)
        if binding.kind == "sampler":
            if scope.context not in ("loss", "sample"):
                return self.report("E208", f"sampler '{e.id}' can only be used in losses and samples", e.span)
            return ir.SamplerDraw(span=e.span, type=binding.type.value or UNKNOWN, sampler=e.id)
        if binding.kind == "net":
            return ir.Ref(span=e.span, type=binding.type, name=e.id, scope="net")
        return ir.Const(span=e.span, type=binding.type, value=e.id)

    def t_Unary(self, e: ast.Unary, scope: Scope) -> ir.Expr:
        if e.op == "log" and self.is_density_call(e.operand, scope):
            if self.densities is None:  # a density term in a prior, typed before the model's densities
                return self.report("E209", f"log {e.operand.func.id}(...) can only be used in losses", e.span)
            return self.densities.log_density(e, e.operand, scope)
        operand = self.expr(e.operand, scope)
        t = operand.type
        if t is UNKNOWN:
            return operand
        if isinstance(operand, ir.Const) and isinstance(t, NumberType):
            try:
                value = -operand.value if e.op == "-" else math.log(operand.value)
            except (TypeError, ValueError):
                return self.report("E218", f"cannot apply {e.op} to {operand.value!r}", e.span)
            return ir.Const(span=e.span, type=NumberType(kind="float" if e.op == "log" else t.kind, value=value),
                            value=value)
        if not isinstance(t, TensorType) or t.kind == "cat":
            return self.report("E218", f"cannot apply '{e.op}' to {t.describe()}", e.span,
                               hint="arithmetic works on tensors and numbers")
        return ir.Unary(span=e.span, type=t.as_real(), op=e.op, operand=operand)

    def t_Binary(self, e: ast.Binary, scope: Scope) -> ir.Expr:
        left, right = self.expr(e.left, scope), self.expr(e.right, scope)
        a, b = left.type, right.type
        if a is UNKNOWN or b is UNKNOWN:
            return ir.Const(span=e.span, type=UNKNOWN, value=None)
        if isinstance(a, NumberType) and isinstance(b, NumberType):
            try:
                value = _binary(e, left.value, right.value)
            except NotConstant as exc:
                return self.report("E218", exc.why, e.span)
            kind = "int" if isinstance(value, int) and not isinstance(value, bool) else "float"
            return ir.Const(span=e.span, type=NumberType(kind=kind, value=value), value=value)
        for side, t in ((e.left, a), (e.right, b)):
            if not isinstance(t, (TensorType, NumberType)) or (isinstance(t, TensorType) and t.kind == "cat") \
                    or (isinstance(t, NumberType) and t.kind == "str"):
                return self.report("E218", f"cannot use {t.describe()} in arithmetic ('{e.op}')", side.span,
                                   label=t.describe(),
                                   hint="labels need onehot(y); densities need log, e.g. log p(x | z)"
                                   if isinstance(t, (TensorType, ObjectType)) else "")
        return ir.Binary(span=e.span, type=self.broadcast(e, a, b), op=e.op, left=left, right=right)

    def broadcast(self, e: ast.Binary, a: Type, b: Type) -> Type:
        """Per-sample broadcasting: the shapes of one sample are aligned from the right (sizes of 1
        stretch); the result is batched when either side is."""
        if isinstance(a, NumberType):
            return b.as_real()
        if isinstance(b, NumberType):
            return a.as_real()
        shape = broadcast_shapes(a.shape, b.shape)
        if shape is None:
            self.diagnostics.append(error("E219", f"'{e.op}' between {a.describe()} and {b.describe()}: "
                                          "the shapes do not match", e.span,
                                          label=f"{a.describe()} {e.op} {b.describe()}",
                                          hint="per-sample shapes must be equal or broadcast (sizes 1 stretch)"))
            return UNKNOWN
        return TensorType(shape=shape, batched=a.batched or b.batched)

    # ---- calls ----
    def is_density_call(self, e: ast.Expr, scope: Scope) -> bool:
        if not (isinstance(e, ast.Call) and isinstance(e.func, ast.Name)):
            return False
        binding = self.lookup(e.func.id, scope)
        return binding is not None and binding.kind == "density"

    def t_Call(self, e: ast.Call, scope: Scope) -> ir.Expr:
        if e.bad_args:
            return ir.Const(span=e.span, type=UNKNOWN, value=None)  # reported by the parser (E024)
        if isinstance(e.func, ast.Attr):
            return self.densities.method(e, scope)
        if not isinstance(e.func, ast.Name):
            return self.report("E212", "only names can be called", e.func.span)
        name = e.func.id
        binding = self.lookup(name, scope)
        if binding is not None and binding.kind == "density":
            return self.report("E209", f"{name}(...) is a density, not a value", e.span,
                               hint=f"write `log {hint_text(e)}` for its log-density, or `sample x ~ {hint_text(e)}`")
        if name == "kl" and binding is None:
            if scope.context not in ("loss",):
                return self.report("E209", "kl(...) can only be used in losses", e.span)
            return self.densities.kl(e, scope)
        if binding is not None and binding.kind == "net":
            return self.call_net(e, binding, scope)
        if binding is not None:
            return self.report("E212", f"'{name}' is a {binding.kind}, it cannot be called", e.func.span,
                               hint="call networks and functions; use variables by name")
        if name in FUNCTIONS:
            return self.call_function(e, scope)
        if name in DISTRIBUTIONS:
            if scope.context not in ("prior", "observe", "net"):
                return self.report("E210", f"{name}(...) is a distribution; it can only follow '~'", e.span,
                                   hint=f"draw from it (`z ~ {name}(...)`) or score data with log p(x | z)")
            return self.distribution(e, scope)
        if name in LAYERS:
            source = hint_text(e.args[0]) if e.args else "x"
            rest = [hint_text(a) for a in e.args[1:]] + [f"{k.name}={hint_text(k.value)}" for k in e.kwargs]
            return self.report("E211", f"{name} is a layer: use it in a pipeline", e.span,
                               hint=f"write `{source} |> {name}({', '.join(rest)})`; the input comes from "
                                    "the left of `|>`")
        return ir.Const(span=e.span, type=UNKNOWN, value=None)  # reported by the names pass

    def call_net(self, e: ast.Call, binding: Binding, scope: Scope) -> ir.Expr:
        net: NetType = binding.type
        if e.kwargs or e.given:
            return self.report("E204", f"network {net.name} takes positional inputs only", e.span,
                               hint=f"call it as {net.name}({', '.join('...' for _ in net.inputs)})")
        args = [self.expr(a, scope) for a in e.args]
        if len(args) != len(net.inputs):
            return self.report("E204", f"{net.name} takes {len(net.inputs)} input"
                               f"{'s' if len(net.inputs) != 1 else ''}, got {len(args)}", e.span,
                               label=f"{len(args)} given", hint=f"{net.name}: {net.describe()}")
        for i, (arg, expected) in enumerate(zip(args, net.inputs)):
            if isinstance(arg.type, NumberType):
                return self.report("E203", f"{net.name} takes tensors, got the number {arg.value!r}", arg.span,
                                   hint=f"a constant is the same for every sample: use it inside {net.name}")
            if self.check_input(arg, expected, net):
                args[i] = as_input(arg, expected)
        # even after a reported mismatch the call keeps its declared output: no cascade of errors.
        # Called on shared values only, a network computes one shared value.
        output = net.output
        if isinstance(output, TensorType) and not any(_batched(a.type) for a in args):
            output = output.as_batched(False)
        return ir.CallNet(span=e.span, type=output, net=net.name, args=tuple(args))

    def check_input(self, arg: ir.Expr, expected: Type, net: NetType) -> bool:
        found = arg.type
        if found is UNKNOWN or expected is UNKNOWN:
            return True
        if compatible(found, expected):
            return True
        notes = []
        origin = self.net_origin.get(arg.net) if isinstance(arg, ir.CallNet) else None
        if origin is not None:
            notes.append(Note(message=f"{arg.net}'s output {found.describe()} comes from "
                                      f"{origin.describe()} at line {origin.span.line}", span=origin.span))
        described = found.describe() if isinstance(found, (TensorType, NumberType)) else found.describe()
        source = f"{arg.net} returns" if isinstance(arg, ir.CallNet) else "the argument is"
        self.diagnostics.append(error("E203", f"shape mismatch in call to {net.name}", arg.span,
                                      label=f"{source} {described}, {net.name} expects {expected.describe()}",
                                      notes=notes, hint=f"{net.name}: {net.describe()}"))
        return False

    def arguments(self, e: ast.Call, scope: Scope) -> tuple[list[ir.Expr], dict[str, ir.Expr]]:
        args = [self.argument(a, scope) for a in e.args]
        kwargs = {k.name: self.argument(k.value, scope) for k in e.kwargs}
        return args, kwargs

    def argument(self, a: ast.Expr, scope: Scope) -> ir.Expr:
        """A call's argument: a value, or a list or tuple of constants (an option such as dim=[0, 1])."""
        if not isinstance(a, (ast.ListExpr, ast.TupleExpr)):
            return self.expr(a, scope)
        try:
            value = evaluate(a, self.params, symbols=False)
        except NotConstant as exc:
            return self.report("E206", f"an option must be known before training: {exc.why}", exc.node.span,
                               label="not a constant", hint="use numbers, params and arithmetic on them here")
        items = tuple(NumberType(kind=type(v).__name__, value=v) if isinstance(v, (bool, int, float, str))
                      else ListType() for v in value)
        return ir.Const(span=a.span, type=ListType(items=items), value=value)

    def entry_call(self, e: ast.Call, entry, scope: Scope):
        """Type a call's arguments, bind them to a library entry and run its rule:
        (rule result, typed arguments by parameter name), or None after reporting."""
        args, kwargs = self.arguments(e, scope)
        if any(a.type is UNKNOWN for a in (*args, *kwargs.values())):
            return None
        values, problems = bind(entry.name, entry.rule, [_bound(a) for a in args],
                                {k: _bound(v) for k, v in kwargs.items()}, skip=0)
        for message, hint in problems:
            self.report("E221", message, option_span(e, message), hint=hint)
        if problems:
            return None
        try:
            result = call_rule(entry.rule, [], values, skip=0)
        except EntryError as exc:
            self.report("E220", exc.message, e.span, hint=exc.hint)
            return None
        return result, arguments_by_name(entry.rule, args, kwargs, skip=0)

    def call_function(self, e: ast.Call, scope: Scope) -> ir.Expr:
        entry = FUNCTIONS[e.func.id]
        done = self.entry_call(e, entry, scope)
        if done is None:
            return ir.Const(span=e.span, type=UNKNOWN, value=None)
        fn, by_name = done
        if fn.reduces_batch and scope.context != "loss":
            return self.report("E236", f"{entry.name}(...) gives one number for the whole batch, which only a loss "
                               "can use", e.span, label="over the batch", hint=per_sample_hint(e, entry.name, by_name))
        args = tuple(detached(a) if i in fn.no_gradient else a for i, a in enumerate(operands(entry.rule, by_name)))
        if fn.draws and not self.over_draws_allowed(e, entry.name, args, scope):
            return ir.Const(span=e.span, type=UNKNOWN, value=None)
        return ir.Apply(span=e.span, type=fn.out, fn=entry.name, args=args, code=fn.code, helpers=fn.helpers,
                        differentiable=fn.differentiable, order=fn.order, draws=fn.draws)

    def over_draws_allowed(self, e: ast.Call, name: str, args: tuple[ir.Expr, ...], scope: Scope) -> bool:
        """`logmeanexp(w, k)` draws the latents of `w` k times: only in a loss (E240), with no
        loss named inside (a loss is already averaged over the batch) and no second level of draws."""
        if scope.context != "loss":
            self.report("E240", f"{name}(..., k) draws latents k times, which only a loss does", e.span,
                        hint=f"use {name} in a loss, e.g. `loss iwae = -{name}(log p(x | z) + log p(z) "
                             "- log q(z | x), k=5)`")
            return False
        for inner in ir.walk(args[0]):
            if isinstance(inner, ir.Ref) and inner.scope == "loss":
                self.report("E240", f"{name} cannot take the loss '{inner.name}': a loss is one number for "
                            "the batch, not one per draw", inner.span,
                            hint="write the loss's expression inside instead")
                return False
            if isinstance(inner, ir.Apply) and inner.draws:
                self.report("E240", f"{inner.fn} inside {name}: draws of draws are not defined", inner.span,
                            hint="use one logmeanexp around the whole log-weight")
                return False
        return True

    def distribution(self, e: ast.Call, scope: Scope) -> ir.Expr:
        entry = DISTRIBUTIONS[e.func.id]
        done = self.entry_call(e, entry, scope)
        if done is None:
            return ir.Const(span=e.span, type=UNKNOWN, value=None)
        family, by_name = done
        return ir.Dist(span=e.span, type=DistType(family=entry.name, event=family.event,
                                                   reparameterized=family.reparameterized),
                       family=entry.name, params=by_name, code=family.code, position=family.position)

    # ---- the rest ----
    def t_Attr(self, e: ast.Attr, scope: Scope) -> ir.Expr:
        return self.report("E212", f"'{hint_text(e)}' is not a value", e.span,
                           hint="methods are called: f.inverse(z), q.loss(eps), q.reverse(eps)")

    def t_TupleExpr(self, e, scope: Scope) -> ir.Expr:
        return self.report("E213", "lists and tuples are only for options of layers and functions", e.span)

    t_ListExpr = t_TupleExpr

    def t_Pipe(self, e: ast.Pipe, scope: Scope) -> ir.Expr:
        stages = []
        node = e
        while isinstance(node, ast.Pipe):
            stages.append(node.stage)
            node = node.input
        source = self.expr(node, scope)
        if source.type is UNKNOWN:
            return source
        if scope.context not in ("net",):
            return self.report("E211", "layer pipelines belong inside networks", e.span,
                               hint="declare a `net` (or generator, encoder, ...) and call it here")
        out, layers = self.pipelines.apply(source.type, tuple(reversed(stages)))
        if out is UNKNOWN:
            return ir.Const(span=e.span, type=UNKNOWN, value=None)
        shared = isinstance(source.type, TensorType) and not source.type.batched
        mixing = next((use for use in layers if use.batch_statistics), None)
        if shared and mixing is not None:
            return self.report("E220", f"{mixing.describe()} normalizes over the batch, but its input is shared "
                               f"({source.type.describe()}): one value for the whole batch", mixing.span,
                               hint="normalize a shared tensor per sample instead, e.g. LayerNorm")
        # a layer acts on each sample: on a shared value it gives one shared value
        return ir.Layers(span=e.span, type=out.as_batched(not shared), input=source, layers=tuple(layers))


def as_input(arg: ir.Expr, expected: Type) -> ir.Expr:
    """An argument with the per-sample shape of the input it is passed to: `real` and `real[1]` are
    accepted for each other, and the callee's code expects its own declared shape."""
    found = arg.type
    if not (isinstance(found, TensorType) and isinstance(expected, TensorType)) or found.shape == expected.shape \
            or "cat" in (found.kind, expected.kind):
        return arg
    fn = FUNCTIONS["reshape"].rule(found, *expected.shape)
    return ir.Apply(span=arg.span, type=fn.out, fn="reshape", args=(arg,), code=fn.code, order=fn.order)


def detached(arg: ir.Expr) -> ir.Expr:
    """An operand that no gradient flows back to: detach(arg), so the gradient pass sees the cut."""
    if not isinstance(arg.type, TensorType):
        return arg
    fn = FUNCTIONS["detach"].rule(arg.type)
    return ir.Apply(span=arg.span, type=fn.out, fn="detach", args=(arg,), code=fn.code, differentiable=False,
                    order=fn.order)


def operands(rule, by_name: dict[str, ir.Expr]) -> tuple[ir.Expr, ...]:
    """The run-time arguments of a function call, in the order its code template numbers them."""
    out: list[ir.Expr] = []
    for p in parameters(rule, 0):
        if is_operand(p.annotation) and p.name in by_name:
            value = by_name[p.name]
            out += value if isinstance(value, list) else [value]
    return tuple(out)


def per_sample_hint(e: ast.Call, name: str, by_name: dict[str, ir.Expr]) -> str:
    """How to say it per sample: `sum(h, dim=[0, 1])` gives one number per sample."""
    x = by_name.get("x")
    if name not in ("sum", "mean") or x is None or not isinstance(x.type, TensorType) or x.type.rank == 0:
        return f"use {name}(...) in a loss"
    axes = list(range(x.type.rank))
    dim = str(axes[0]) if len(axes) == 1 else str(axes)
    return (f"{name} over one sample's dimensions is {name}({hint_text(e.args[0])}, dim={dim}): one number per "
            "sample; without dim, the batch is reduced too")


def _bound(arg: ir.Expr):
    """What a call's argument binds to an entry's parameter: its type, or a constant list's value."""
    return arg.value if isinstance(arg.type, ListType) else arg.type


def _batched(t: Type) -> bool:
    return isinstance(t, TensorType) and t.batched


def option_span(e: ast.Call, message: str):
    """The option a binding problem names (`has no argument 'k'`), else the whole call."""
    return next((k.span for k in e.kwargs if f"'{k.name}'" in message), e.span)
