"""Typing of layer pipelines and type annotations.

`x |> Linear(256) |> relu |> repeat 2 { MLP(64) }`: each stage is applied to the type flowing
in; blocks and `repeat` are expanded here, so the typed pipeline lists concrete layers.
"""

from __future__ import annotations

from typing import Any

from gendsl import ast
from gendsl.diagnostics import Diagnostic, Note, error
from gendsl.graph.constants import as_int_dim, evaluate_or_report
from gendsl.graph.ir import LayerUse
from gendsl.library.layers import LAYERS
from gendsl.library.signature import EntryError, bind, call_rule, format_value
from gendsl.types import UNKNOWN, TensorType, Type

TYPE_NAMES = ("real", "bin", "int", "cat", "step", "logit")
TYPE_ALIASES = {"float": "real", "double": "real", "float32": "real", "tensor": "real", "bool": "bin",
                "binary": "bin", "long": "int", "integer": "int", "label": "cat", "categorical": "cat",
                "category": "cat", "time": "step"}
MAX_BLOCK_DEPTH = 32


def resolve_type(texpr: ast.TypeExpr, params: dict[str, Any], diagnostics: list[Diagnostic],
                 batched: bool = True, overridden: set[str] = frozenset()) -> TensorType | None:
    """`real[latent]` -> TensorType(real, (50,)); None after reporting a problem."""
    from gendsl.diagnostics import did_you_mean

    name = texpr.name
    if name not in TYPE_NAMES:
        alias = TYPE_ALIASES.get(name.lower())
        hint = f"gendsl writes this '{alias}'" if alias else did_you_mean(name, TYPE_NAMES)
        diagnostics.append(error("E216", f"unknown type '{name}'", texpr.span, label="not a type",
                                 hint=(hint + "; " if hint else "") + "types: " + ", ".join(TYPE_NAMES)))
        return None
    dims = []
    for dim in texpr.dims:
        ok, value = evaluate_or_report(dim, params, diagnostics, "a dimension", symbols=False)
        if not ok:
            return None
        size = as_int_dim(value)
        if size is None:
            why = "dims are positive ints or int params"
            if isinstance(value, float):
                why = "a float is not a dimension: declare the param `int`, and note that `/` gives a " \
                      "fraction unless it divides exactly"
            diagnostics.append(error("E217", f"a dimension must be a positive integer, got {format_value(value)}",
                                     dim.span, label="bad dimension", hint=why,
                                     notes=overridden_note(dim, params, overridden)))
            return None
        dims.append(size)
    if name in ("step", "logit"):
        if dims:
            diagnostics.append(error("E217", f"'{name}' takes no dimensions", texpr.span,
                                     hint=f"write just `{name}`"))
            return None
        return TensorType(kind="step" if name == "step" else "real", shape=(), batched=batched)
    if name == "cat":
        if len(dims) not in (1, 2):  # cat[K]: one label; cat[K, T]: a sequence of T labels
            diagnostics.append(error("E217", "cat takes the number of categories, and a sequence's length: "
                                     "cat[K] or cat[K, T]", texpr.span, hint="write e.g. `cat[10]`, or `cat[6, 20]` "
                                     "for 20 labels out of 6"))
            return None
        return TensorType(kind="cat", classes=dims[0], shape=tuple(dims[1:]), batched=batched)
    return TensorType(kind=name, shape=tuple(dims), batched=batched)


def overridden_note(expr: ast.Expr, params: dict[str, Any], overridden: set[str]):
    """A note when a bad value comes from a `--set` override (the spec itself may be fine)."""
    from gendsl.diagnostics import Note

    names = sorted({n.id for n in _names(expr)} & set(overridden))
    return [Note(message=f"set on the command line: --set {n}={params[n]}") for n in names]


def _names(expr):
    if isinstance(expr, ast.Name):
        yield expr
    for field_value in expr.__dict__.values():
        items = field_value if isinstance(field_value, tuple) else (field_value,)
        for item in items:
            if isinstance(item, ast.Node) and not isinstance(item, ast.Ident):
                yield from _names(item)


def _frozen(value: Any) -> Any:
    """A hashable form of constant arguments (lists and dicts inside)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


class PipelineTyper:
    """Applies stages to types, collecting layers and diagnostics."""

    def __init__(self, params: dict[str, Any], blocks: dict[str, ast.BlockDef], diagnostics: list[Diagnostic],
                 overridden: set[str] = frozenset()):
        self.params = params
        self.overridden = overridden
        self.built: dict[tuple, LayerUse] = {}
        self.blocks = blocks
        self.diagnostics = diagnostics

    def apply(self, current: Type, stages: tuple[ast.Stage, ...], env: dict[str, Any] | None = None,
              depth: int = 0) -> tuple[Type, list[LayerUse]]:
        """Run `current` through the stages: (output type, concrete layers)."""
        env = env if env is not None else self.params
        layers: list[LayerUse] = []
        for stage in stages:
            if current is UNKNOWN:
                return UNKNOWN, layers
            current, used = self.stage(current, stage, env, depth)
            layers += used
        return current, layers

    def stage(self, current: Type, stage: ast.Stage, env: dict[str, Any], depth: int) -> tuple[Type, list[LayerUse]]:
        if not isinstance(current, TensorType):
            self.diagnostics.append(error("E220", f"cannot pipe a {current.describe()} into {stage.name}",
                                          stage.span, hint="pipelines carry tensors"))
            return UNKNOWN, []
        if stage.is_repeat:
            return self.repeat(current, stage, env, depth)
        if stage.name in self.blocks:
            return self.block(current, stage, env, depth)
        if stage.name not in LAYERS:
            return UNKNOWN, []  # reported by the names pass
        return self.layer(current, stage, env)

    def constant_args(self, stage: ast.Stage, env: dict[str, Any]) -> tuple[bool, list, dict]:
        args, kwargs, ok = [], {}, True
        for arg in stage.args:
            good, value = evaluate_or_report(arg, env, self.diagnostics, f"an argument of {stage.name}")
            ok &= good
            args.append(value)
        for kw in stage.kwargs:
            good, value = evaluate_or_report(kw.value, env, self.diagnostics, f"'{kw.name}' of {stage.name}")
            ok &= good
            kwargs[kw.name] = value
        return ok, args, kwargs

    def layer(self, current: TensorType, stage: ast.Stage, env: dict[str, Any]) -> tuple[Type, list[LayerUse]]:
        entry = LAYERS[stage.name]
        if stage.bad_args:
            return UNKNOWN, []  # reported by the parser (E024)
        ok, args, kwargs = self.constant_args(stage, env)
        if not ok:
            return UNKNOWN, []
        key = (stage.name, _frozen(args), _frozen(kwargs), current)
        if key in self.built:  # the same layer on the same input: bind and build once
            return self.built[key].output, [self.built[key].model_copy(update={"span": stage.span})]
        values, problems = bind(stage.name, entry.rule, args, kwargs, skip=1)
        for message, hint in problems:
            self.diagnostics.append(error("E221", message, stage.span, label="here", hint=hint))
        if problems:
            return UNKNOWN, []
        try:
            built = call_rule(entry.rule, [current], values, skip=1)
        except EntryError as exc:
            self.diagnostics.append(error("E220", exc.message, stage.span,
                                          label=f"input is {current.describe()}", hint=exc.hint))
            return UNKNOWN, []
        use = LayerUse(span=stage.span, entry=stage.name, args=values, input=current, output=built.out,
                       params=built.params, code=built.code, helpers=built.helpers, order=built.order,
                       batch_statistics=built.batch_statistics, invertible=built.invertible,
                       context_units=built.context_units)
        self.built[key] = use
        return built.out, [use]

    def repeat(self, current: TensorType, stage: ast.Stage, env: dict[str, Any], depth: int):
        ok, count = evaluate_or_report(stage.repeat, env, self.diagnostics, "a repeat count", symbols=False)
        if not ok:
            return UNKNOWN, []
        if not isinstance(count, int) or isinstance(count, bool) or count < 0 or count > 10_000:
            self.diagnostics.append(error("E229", f"repeat needs a count between 0 and 10000, got "
                                          f"{format_value(count)}", stage.repeat.span, label="bad count",
                                          hint="the count is a whole number of repetitions",
                                          notes=overridden_note(stage.repeat, env, self.overridden)))
            return UNKNOWN, []
        layers: list[LayerUse] = []
        for _ in range(count):
            current, used = self.apply(current, stage.body, env, depth)
            layers += used
            if current is UNKNOWN:
                break
        return current, layers

    def block(self, current: TensorType, stage: ast.Stage, env: dict[str, Any], depth: int):
        block = self.blocks[stage.name]
        if depth >= MAX_BLOCK_DEPTH:
            self.diagnostics.append(error("E230", f"block '{stage.name}' uses itself", stage.span,
                                          notes=[Note(message="defined here", span=block.name.span)],
                                          hint="blocks cannot be recursive; use `repeat`"))
            return UNKNOWN, []
        ok, args, kwargs = self.constant_args(stage, env)
        if not ok:
            return UNKNOWN, []
        bound = self.bind_block(block, stage, args, kwargs, env)
        if bound is None:
            return UNKNOWN, []
        return self.apply(current, block.stages, {**self.params, **bound}, depth + 1)

    def bind_block(self, block: ast.BlockDef, stage: ast.Stage, args: list, kwargs: dict,
                   env: dict[str, Any]) -> dict[str, Any] | None:
        from gendsl.graph.passes.params import check_value

        names = [p.name.name for p in block.params]
        signature = f"{block.name.name}({', '.join(f'{p.name.name}: {p.type_name.name}' for p in block.params)})"
        if len(args) > len(names):
            self.diagnostics.append(error("E230", f"block {block.name.name} takes {len(names)} arguments, "
                                          f"got {len(args)}", stage.span, hint=signature))
            return None
        bound = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names:
                self.diagnostics.append(error("E230", f"block {block.name.name} has no parameter '{key}'",
                                              stage.span, hint=signature))
                return None
            bound[key] = value
        for p in block.params:
            if p.name.name not in bound:
                if p.default is None:
                    self.diagnostics.append(error("E230", f"block {block.name.name} needs '{p.name.name}'",
                                                  stage.span, hint=signature))
                    return None
                ok, bound[p.name.name] = evaluate_or_report(p.default, env, self.diagnostics, "a block default")
            type_name = p.type_name.name
            if type_name in ("int", "float", "bool", "str"):
                ok, bound[p.name.name] = check_value(bound[p.name.name], type_name)
                if not ok:
                    self.diagnostics.append(error("E230", f"block {block.name.name}: '{p.name.name}' is "
                                                  f"{type_name}, got {format_value(bound[p.name.name])}",
                                                  stage.span, hint=signature))
                    return None
        return bound
