"""The per-sample meaning of expressions (docs/semantics.md), as an oracle for the generated code.

An interpreter of gendsl's typed IR on the tensors of ONE sample: every value here is unbatched
(a per-sample real[3] is a tensor of shape (3,)), so each operator, function and index is written
as the documentation defines it, with no batch dimension to get wrong. It shares no code with
gendsl/codegen. `torch.func.vmap` of `run` over the batched inputs (shared tensors passed with
in_dims=None) is what the generated module must compute on a batch.

The IR does not keep a function call's options (`dim=`, `slope=`): they are read from the spec's
own call at the same span, evaluated as constants, with the entry's defaults.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
import torch.nn.functional as F

from gendsl import ast
from gendsl.graph import ir
from gendsl.graph.constants import evaluate
from gendsl.library.functions import FUNCTIONS
from gendsl.library.signature import is_operand, parameters
from gendsl.types import TensorType

ELEMENTWISE = {
    "relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "softplus": F.softplus,
    "silu": F.silu, "swish": F.silu, "gelu": F.gelu, "elu": F.elu, "exp": torch.exp, "abs": torch.abs,
    "sqrt": torch.sqrt, "sin": torch.sin, "cos": torch.cos, "identity": lambda x: x,
}


def calls_by_span(node: ast.Node) -> dict:
    """Every call of an AST, by its span (the IR keeps the span of the call it came from)."""
    found = {}
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Call):
            found[item.span] = item
        if isinstance(item, ast.Node):
            stack += [v for v in item.__dict__.values() if isinstance(v, (ast.Node, tuple))]
        elif isinstance(item, tuple):
            stack += [v for v in item if isinstance(v, (ast.Node, tuple))]
    return found


class PerSample:
    """Evaluates a typed program on one sample. `programs` holds the networks it may call (name ->
    typed program), `calls` the spec's calls by span, `params` the model's params."""

    def __init__(self, programs: dict[str, ir.Program], calls: dict, params: dict[str, Any]):
        self.programs = programs
        self.calls = calls
        self.params = params

    def run(self, program: ir.Program, env: dict[str, Any]) -> torch.Tensor:
        """The result of a network body for one sample's inputs (and the shared tensors) in `env`."""
        env = dict(env)
        for stmt in program.stmts:
            env[stmt.name] = self.value(stmt.value, env)
        return self.value(program.result, env)

    def value(self, e: ir.Expr, env: dict[str, Any]):
        return getattr(self, "v_" + type(e).__name__)(e, env)

    def v_Const(self, e: ir.Const, env):
        return e.value

    def v_Ref(self, e: ir.Ref, env):
        return env[e.name]

    def v_Unary(self, e: ir.Unary, env):
        x = self.value(e.operand, env)
        if e.op == "-":
            return -x
        return torch.log(x) if torch.is_tensor(x) else math.log(x)

    def v_Binary(self, e: ir.Binary, env):
        a, b = self.value(e.left, env), self.value(e.right, env)
        # one sample's values broadcast as numpy arrays do: shapes aligned from the right
        return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
                "^": lambda: a ** b}[e.op]()

    def v_Index(self, e: ir.Index, env):
        x = self.value(e.target, env)
        items = []
        for item in e.indices:
            if isinstance(item, ir.Slice):
                items.append(slice(item.start, item.stop, item.step))
            elif isinstance(item.type, TensorType):  # a label: this sample's category
                items.append(self.value(item, env))
            else:
                items.append(item.value)
        return x[tuple(items)]

    def v_CallNet(self, e: ir.CallNet, env):
        program = self.programs[e.net]
        inner = {k: v for k, v in env.items() if k not in dict(program.inputs)}
        inner.update({name: self.value(a, env) for (name, _), a in zip(program.inputs, e.args)})
        return self.run(program, inner)

    def options(self, e: ir.Apply) -> dict[str, Any]:
        """The constant options the spec gave the call (defaults filled in)."""
        call = self.calls[e.span]
        assert isinstance(call.func, ast.Name) and call.func.id == e.fn, (call, e.fn)
        params = parameters(FUNCTIONS[e.fn].rule, 0)
        found: dict[str, Any] = {p.name: p.default for p in params
                                 if not is_operand(p.annotation) and p.default is not inspect.Parameter.empty}
        positional = list(call.args)
        for p in params:
            if p.kind is inspect.Parameter.VAR_POSITIONAL:
                rest = positional
                positional = []
                if not is_operand(p.annotation):
                    found[p.name] = [evaluate(a, self.params) for a in rest]
            elif positional:
                arg = positional.pop(0)
                if not is_operand(p.annotation):
                    found[p.name] = evaluate(arg, self.params)
        found.update({k.name: evaluate(k.value, self.params) for k in call.kwargs})
        return found

    def v_Apply(self, e: ir.Apply, env):
        if e.args and e.args[0].span == e.span:  # put in by the checker, not written in the spec
            inner = self.value(e.args[0], env)
            # real <-> real[1] at a network input; an operand no gradient flows back to (hard_attend)
            return inner.reshape(e.type.shape) if e.fn == "reshape" else inner.detach()
        args = [self.value(a, env) for a in e.args]
        return getattr(self, "f_" + e.fn, None)(e, args, self.options(e)) if hasattr(self, "f_" + e.fn) \
            else ELEMENTWISE[e.fn](args[0])

    # ---- functions, one sample at a time ----
    def f_leaky_relu(self, e, args, options):
        (x,) = args
        return torch.where(x >= 0, x, options["slope"] * x)

    def f_softmax(self, e, args, options):
        return torch.softmax(args[0], dim=-1)

    def f_clamp(self, e, args, options):
        return torch.clamp(args[0], options["min"], options["max"])

    def f_detach(self, e, args, options):
        return args[0].detach()

    def f_concat(self, e, args, options):
        return torch.cat(args, dim=options["dim"])

    def f_reshape(self, e, args, options):
        return args[0].reshape(tuple(options["dims"]))

    def f_onehot(self, e, args, options):
        classes = e.args[0].type.classes
        return (torch.arange(classes) == args[0]).float()

    def f_sinusoidal(self, e, args, options):
        half = options["dim"] // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        angles = args[0].float() * freqs
        return torch.cat([torch.sin(angles), torch.cos(angles)])

    def reduce(self, name, e, args, options):
        dim = options.get("dim")
        assert dim is not None, f"{name} without dim reduces the batch: not a per-sample value"
        fn = torch.mean if name == "mean" else torch.sum
        return fn(args[0], dim=tuple(dim) if isinstance(dim, list) else dim)

    def f_mean(self, e, args, options):
        return self.reduce("mean", e, args, options)

    def f_sum(self, e, args, options):
        return self.reduce("sum", e, args, options)

    def pair(self, args):
        a, b = args
        b = torch.as_tensor(b, dtype=torch.float32)
        return torch.broadcast_tensors(a, b)

    def f_mse(self, e, args, options):
        a, b = self.pair(args)
        return ((a - b) ** 2).mean()

    def f_l1(self, e, args, options):
        a, b = self.pair(args)
        return (a - b).abs().mean()

    def f_bce(self, e, args, options):
        logits, target = self.pair(args)
        return -(target * F.logsigmoid(logits) + (1 - target) * F.logsigmoid(-logits)).mean()

    def f_attend(self, e, args, options):
        query, keys, values = args
        scores = query @ keys.T / math.sqrt(keys.shape[-1])
        return torch.softmax(scores, dim=-1) @ values

    def f_hard_attend(self, e, args, options):
        query, keys, values = args
        best = (query @ keys.T).argmax(-1)
        return values[best]
