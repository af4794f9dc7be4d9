"""Expressions in network bodies: well-typed transforms of a value, network bodies and their text."""

from __future__ import annotations

import inspect

from gendsl.library.functions import FUNCTIONS
from gendsl.library.signature import bind, call_rule, parameters
from gendsl.types import TensorType
from tests.strategies.builder import Builder, Value
from tests.strategies.entry_options import pool
from tests.strategies.gen_text import literal, real, type_text
from tests.strategies.picker import Picker
from tests.strategies.pipelines import (WIDTHS, adapt, conv, draw_pipeline, factorizations, fixed, flatten,
                                        linear, pipe, shape_keeping)


# ---- expressions in network bodies ------------------------------------------------------------

def vectorize(pick: Picker, b: Builder, v: Value) -> Value:
    """Any network input as a real vector: labels by onehot or Embedding, steps by sinusoidal."""
    t = v.type
    if t.kind == "cat":
        if pick.chance(50):
            b.tag("fn:onehot")
            return Value(f"onehot({v.text})", real(t.classes))
        dim = pick.choice([2, 4])
        return pipe(v, [fixed("Embedding", f"Embedding({dim})", t, b, dim=dim)])
    if t.kind == "step":
        dim = pick.choice([2, 4, 8])
        b.tag("fn:sinusoidal")
        return Value(f"sinusoidal({v.text}, {dim})", real(dim))
    return pipe(v, flatten(b, t))


def merge(pick: Picker, b: Builder, inputs: list[Value]) -> Value:
    """One value from a network's inputs."""
    if len(inputs) == 1:
        v = inputs[0]
        return vectorize(pick, b, v) if v.type.kind in ("cat", "step") else v
    images = [v for v in inputs if v.type.rank == 3]
    if len(images) == len(inputs) and len({v.type.shape[1:] for v in images}) == 1 and pick.chance(70):
        b.tag("fn:concat", "construct:concat_channels")
        channels = sum(v.type.shape[0] for v in images)
        return Value(f"concat({', '.join(v.text for v in inputs)}, dim=0)",
                     real(channels, *images[0].type.shape[1:]))
    vectors = [vectorize(pick, b, v) for v in inputs]
    if pick.chance(60):
        b.tag("fn:concat")
        return Value(f"concat({', '.join(v.text for v in vectors)})", real(sum(v.type.numel for v in vectors)))
    width = pick.choice(WIDTHS)
    b.tag("construct:sum_of_projections")
    return Value(" + ".join(pipe(v, [linear(b, v.type, width)]).atom for v in vectors), real(width), simple=False)


def transform(pick: Picker, b: Builder, v: Value, env: dict[str, TensorType]) -> Value:
    """A random well-typed expression built on `v` (the same or another per-sample type)."""
    t = v.type
    realish = t.kind in ("real", "bin") and t.rank >= 1
    kinds = {"pipeline": 12 if t.rank == 3 else 6, "residual": 3 if realish else 0, "gate": 2 if realish else 0,
             "arithmetic": 3 if realish else 0, "function": 3 if realish else 0,
             "concat": 2 if realish else 0, "tensor": 2 if realish and t.numel <= 64 else 0,
             "label_index": 2 if realish and any(e.kind == "cat" for e in env.values()) else 0,
             "tensor_row": 1 if realish and t.numel <= 64 else 0,
             "helper_net": 1 if realish else 0,
             "attention": 2 if t.rank == 2 and t.kind != "cat" else 0,
             "repeat": 2 if realish else 0, "block": 1 if realish else 0,
             "reshape": 1 if realish and "reshape" in FUNCTIONS else 0,
             "reduce_axis": 2 if realish and t.rank >= 2 and reduces_axes() else 0,
             "known": 2 if b.known and realish else 0}
    kind = pick.weighted(kinds)
    b.tag(f"expr:{kind}")
    return EXPRESSIONS[kind](pick, b, v, env)


def expr_pipeline(pick, b, v, env):
    return draw_pipeline(pick, b, v)


def expr_residual(pick, b, v, env):
    return Value(f"{v.atom} + ({pipe(v, shape_keeping(pick, b, v.type)).text})", v.type.as_real(), simple=False)


def expr_gate(pick, b, v, env):
    t = v.type
    inner = pipe(v, [conv(pick, b, t, t.shape[0]) if t.rank == 3 else linear(b, t, t.shape[-1])])
    if pick.chance(50):
        b.tag("fn:sigmoid")
        return Value(f"{v.atom} * sigmoid({inner.text})", v.type.as_real(), simple=False)
    return Value(f"{v.atom} * ({inner.text} |> sigmoid)", v.type.as_real(), simple=False)


def expr_arithmetic(pick, b, v, env):
    a = v.atom
    form = pick.choice([f"2 * {a}", f"{a} / 2", f"{a} - 0.5", f"0.5 + {a}", f"{a} ^ 2", f"-{a}",
                        f"log ({a} ^ 2 + 1)", f"{a} * {a}", f"{a} - {b.number(0.1)} * {a}", f"1 / (1 + {a} ^ 2)"])
    b.tag("construct:arithmetic")
    return Value(form, v.type.as_real(), simple=False)


# Functions drawn by constructs of their own (joins, labels, steps, shapes, reductions, losses,
# penalties, attention); any other entry of FUNCTIONS is tried as a map of one tensor by
# `expr_function` (an entry whose rule refuses that is skipped, so a new one is drawn at once).
SPECIAL_FUNCTIONS = {"concat", "onehot", "sinusoidal", "reshape", "mean", "sum", "bce", "mse", "l1",
                     "gradient_penalty", "r1_penalty", "attend", "hard_attend", "logmeanexp", "logsumexp"}
# exp and sqrt on safe arguments (a NaN loss, E406, tests nothing)
SAFE_FORMS = {"exp": "exp(-{0} ^ 2)", "sqrt": "sqrt({0} ^ 2 + 1)"}
FUNCTION_POOLS = {"slope": [0.01, 0.2], "min": [-2.0, -1.0], "max": [1.0, 2.0], "std": [0.1, 0.3], "p": [0.1, 0.3]}


def function_call(pick: Picker, b: Builder, name: str, v: Value) -> Value | None:
    """`name(v, options)` with options drawn from the entry's signature, or None if it refuses."""
    if name in SAFE_FORMS:
        return Value(SAFE_FORMS[name].format(v.atom), v.type.as_real())
    entry = FUNCTIONS[name]
    params = parameters(entry.rule, 1)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return None
    options = {p.name: pick.choice(FUNCTION_POOLS.get(p.name) or pool(name, p) or [None])
               for p in params if p.default is inspect.Parameter.empty or pick.chance(50)}
    bound, problems = bind(name, entry.rule, [], options, 1)
    if problems:
        return None
    try:
        out = call_rule(entry.rule, [v.type], bound, 1).out
    except Exception:  # EntryError: refused; anything else is a rule's own bug, not drawn here
        return None
    if not isinstance(out, TensorType) or out.shape != v.type.shape:
        return None
    texts = [literal(value) if key == "slope" and pick.chance(50) else f"{key}={literal(value)}"
             for key, value in options.items()]
    return Value(f"{name}({', '.join([v.text, *texts])})", out.as_real())


def expr_function(pick, b, v, env):
    """An elementwise function of the registry applied to `v`."""
    names = sorted(n for n in FUNCTIONS if n not in SPECIAL_FUNCTIONS)
    for _ in range(4):
        name = pick.choice(names)
        value = function_call(pick, b, name, v)
        if value is not None:
            b.tag(f"fn:{name}")
            return value
    return Value(f"tanh({v.text})", v.type.as_real())


def expr_reshape(pick, b, v, env):
    """The `reshape` function: a new per-sample shape with as many values."""
    dims = pick.choice(factorizations(v.type.numel))
    b.tag("fn:reshape")
    return Value(f"reshape({v.text}, {', '.join(map(str, dims))})", real(*dims))


def expr_reduce_axis(pick, b, v, env):
    """`mean` or `sum` over per-sample dimensions (`dim=`): the value loses those axes."""
    t = v.type
    axes = pick.some(range(t.rank), 1, max(1, t.rank - 1))
    written = [a - t.rank if pick.chance(50) else a for a in axes]
    dim = str(written[0]) if len(written) == 1 and pick.chance(60) else literal(written)
    fn = pick.choice(["mean", "sum"])
    b.tag(f"fn:{fn}", "construct:reduce_axis")
    return Value(f"{fn}({v.text}, dim={dim})", real(*(size for axis, size in enumerate(t.shape) if axis not in axes)))


def expr_concat(pick, b, v, env):
    t = v.type
    if t.rank == 3:
        other = pipe(v, [conv(pick, b, t, pick.choice([1, 2]))])
        b.tag("fn:concat", "construct:concat_channels")
        return Value(f"concat({v.text}, {other.text}, dim=0)", real(t.shape[0] + other.type.shape[0], *t.shape[1:]))
    other = pipe(v, [linear(b, t, pick.choice(WIDTHS))])
    b.tag("fn:concat")
    dim = pick.choice(["", ", dim=-1", f", dim={t.rank - 1}"])
    return Value(f"concat({v.text}, {other.text}{dim})", real(*t.shape[:-1], t.shape[-1] + other.type.shape[-1]))


def expr_tensor(pick, b, v, env):
    """Arithmetic with a learned tensor shared by the batch (same shape, or size-1 dims)."""
    shape = v.type.shape
    if pick.chance(30):
        shape = tuple(1 if pick.chance(50) else d for d in shape)
        b.tag("construct:tensor_broadcast")
    name = b.tensor(shape)
    op = pick.choice(["+", "*", "-"])
    text = f"{v.atom} {op} {name}" if op != "*" else f"{v.atom} * exp({name})"
    return Value(text, v.type.as_real(), simple=False)


def expr_label_index(pick, b, v, env):
    """A row of a learned table picked by a label input: `mu[y]`."""
    label = pick.choice([n for n, e in env.items() if e.kind == "cat"])
    classes = env[label].classes
    name = b.tensor((classes, *v.type.shape), prefix="emb")
    b.tag("construct:index_label")
    return Value(f"{v.atom} + {name}[{label}]", v.type.as_real(), simple=False)


def expr_tensor_row(pick, b, v, env):
    """A fixed row of a learned table: `table[1]` (a shared tensor indexed by an int)."""
    rows = pick.choice([2, 3])
    name = b.tensor((rows, *v.type.shape), prefix="tab")
    b.tag("construct:index_int_tensor")
    return Value(f"{v.atom} + {name}[{pick.integer(0, rows - 1)}]", v.type.as_real(), simple=False)


def expr_helper_net(pick, b, v, env):
    """A call of a helper `net` declared for this input type."""
    name = b.fresh("aux")
    out = pick.choice([v.type.as_real(), real(pick.choice(WIDTHS))])
    with b.scope(name):
        body = network_body(pick, b, [("u", v.type)], out, depth=1)
    b.nets.append(net_text("net", name, [f"u: {type_text(v.type)}"], out, body))
    b.own(name)
    b.tag("construct:net_call")
    return Value(f"{name}({v.text})", out)


def expr_attention(pick, b, v, env):
    """Soft or hard attention over the positions of a sequence value real[T, C]."""
    t = v.type
    fn = pick.choice(["attend", "hard_attend"])
    keys = pipe(v, [linear(b, t, t.shape[1])])
    values = pipe(v, [linear(b, t, pick.choice(WIDTHS))])
    query = v if pick.chance(50) else pipe(v, [linear(b, t, t.shape[1])])
    b.tag(f"fn:{fn}")
    return Value(f"{fn}({query.text}, {keys.text}, {values.text})", real(t.shape[0], values.type.shape[1]))


def expr_repeat(pick, b, v, env):
    stages = shape_keeping(pick, b, v.type.as_real())
    n = pick.choice([0, 1, 2])
    b.tag("construct:repeat")
    head = [] if v.type.kind == "real" else [fixed("identity", "identity", v.type, b)]
    inner = " |> ".join(s.text for s in stages)
    text = pipe(v, head).atom if head else v.atom
    return Value(f"{text} |> repeat {n} {{ {inner} }}", v.type.as_real(), simple=False)


def expr_block(pick, b, v, env):
    """A pipeline block defined at the top of the file, used as a stage."""
    t = v.type
    name = b.fresh("Block")
    act = pick.choice(["relu", "tanh", "silu"])
    if t.rank == 3:
        b.blocks.append(f"block {name}(ch: int, depth: int = 1) {{\n  repeat depth {{ Conv2d(ch) |> {act} }}\n}}")
        ch = pick.choice([1, 2, 4])
        out = real(ch, *t.shape[1:])
        use = f"{name}({ch})" if pick.chance(50) else f"{name}(ch={ch}, depth=2)"
    else:
        b.blocks.append(f"block {name}(width: int, depth: int = 1) {{\n  repeat depth {{ Linear(width) |> {act} }}\n}}")
        width = pick.choice(WIDTHS)
        out = real(*t.shape[:-1], width)
        use = f"{name}({width})" if pick.chance(50) else f"{name}(width={width}, depth=2)"
    b.tag("construct:block")
    return Value(f"{v.atom} |> {use}", out, simple=False)


def expr_known(pick, b, v, env):
    """Constructs of the bugs issue 10 started from (see KNOWN_BUGS)."""
    t = v.type
    kind = pick.choice(["index", "reduce", "scalar_times", "shared_attend"])
    if kind == "shared_attend" and t.rank == 2:
        b.tag("known:shared_attend")
        keys, values = b.tensor((3, t.shape[1]), "keys"), b.tensor((3, t.shape[1]), "values")
        return Value(f"{pick.choice(['attend', 'hard_attend'])}({v.text}, {keys}, {values})", t.as_real())
    labels = [(n, e.classes) for n, e in env.items() if e.kind == "cat" and t.numel % e.classes == 0]
    if kind == "index" and labels and pick.chance(50):  # a per-sample row picked by a label
        label, k = pick.choice(labels)
        b.tag("known:index_batch", "construct:index_label_value")
        return Value(f"reshape({v.text}, {k}, {t.numel // k})[{label}]", real(t.numel // k))
    if kind == "index" and t.rank >= 2:
        b.tag("known:index_batch")
        return Value(f"{v.atom}[{pick.integer(0, t.shape[0] - 1)}]", real(*t.shape[1:]))
    if kind == "reduce":
        b.tag("known:reduce_in_net")
        return Value(f"{v.atom} - mean({v.text})", t.as_real(), simple=False)
    b.tag("known:scalar_times_vector")
    scalar = pipe(v, flatten(b, t) + [linear(b, real(t.numel), 1)])
    return Value(f"({scalar.text} |> reshape(1)) * {v.atom}", t.as_real(), simple=False)


def reduces_axes() -> bool:
    """Do `mean`/`sum` take per-sample axes (`dim=`)?"""
    return any(p.name == "dim" for p in parameters(FUNCTIONS["mean"].rule, 0))


EXPRESSIONS = {"reshape": expr_reshape, "reduce_axis": expr_reduce_axis, "pipeline": expr_pipeline,
               "residual": expr_residual, "gate": expr_gate,
               "arithmetic": expr_arithmetic, "function": expr_function, "concat": expr_concat,
               "tensor": expr_tensor, "label_index": expr_label_index, "tensor_row": expr_tensor_row,
               "helper_net": expr_helper_net, "attention": expr_attention, "repeat": expr_repeat,
               "block": expr_block, "known": expr_known}


def network_body(pick: Picker, b: Builder, inputs: list[tuple[str, TensorType]], target: TensorType,
                 final: str | None = None, depth: int = 2) -> list[str]:
    """Locals and a result that maps the inputs to `target`."""
    env = dict(inputs)
    current = merge(pick, b, [Value(n, t) for n, t in inputs])
    lines = []
    for _ in range(pick.integer(0, depth)):
        value = transform(pick, b, current, env)
        name = b.fresh("h")
        lines.append(f"{name} = {value.text}")
        current = Value(name, value.type)
    if pick.chance(50) and current.type.kind != "cat":
        current = draw_pipeline(pick, b, current, 0, 2)
    result = adapt(pick, b, current, target)
    if final:
        result = Value(f"{result.text} |> {final}", result.type, simple=False)
    lines.append(result.text)
    return lines


def local_lines(pick: Picker, b: Builder, inputs: list[tuple[str, TensorType]], depth: int = 2
                ) -> tuple[list[str], Value]:
    """The locals of a density block: lines and the value its draws read."""
    env = dict(inputs)
    current = merge(pick, b, [Value(n, t) for n, t in inputs])
    lines = []
    for _ in range(pick.integer(0, depth)):
        value = transform(pick, b, current, env)
        name = b.fresh("h")
        lines.append(f"{name} = {value.text}")
        current = Value(name, value.type)
    if not current.simple:
        name = b.fresh("h")
        lines.append(f"{name} = {current.text}")
        current = Value(name, current.type)
    return lines, current


def net_text(role: str, name: str, inputs: list[str], out: TensorType | str | None, body: list[str]) -> str:
    arrow = "" if out is None else f" -> {out if isinstance(out, str) else type_text(out)}"
    inner = "\n".join("  " + line for line in body)
    return f"{role} {name}({', '.join(inputs)}){arrow} {{\n{inner}\n}}"
