"""One nn.Module class per network, density factor and flow, from its typed program."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gendsl.codegen.exprs import CALL, Writer, dist_code, network_arguments, paren
from gendsl.codegen.masks import component_lines, mask_lines
from gendsl.codegen.names import LOCALS, Names, identifier
from gendsl.graph import ir
from gendsl.graph.passes.packing import PACK_HELPER
from gendsl.library.distributions import DISTRIBUTIONS
from gendsl.source import Span
from gendsl.types import NumberType, TensorType, context_width


def where(span: Span) -> str:
    """`vae.gen:11`: the spec line a piece of generated code comes from."""
    return f"{Path(span.file).name}:{span.line}"


@dataclass
class ModuleClass:
    """A generated nn.Module class and how the model calls it."""

    key: str                 # graph node
    class_name: str
    source: str
    inputs: list[str]        # positional inputs (spec variable names)
    free: list[str] = field(default_factory=list)   # model tensors and networks passed in
    helpers: set[str] = field(default_factory=set)


class NetWriter(Writer):
    """Expressions inside forward(): inputs and locals by name, pipelines as submodules."""

    def __init__(self, attrs: Names, free: list[str], taken: set[str] = frozenset(),
                 callees: dict[str, list[str]] | None = None):
        super().__init__()
        self.attrs = attrs
        self.free = free
        self.callees = callees or {}   # a called network's own tensors and networks, passed on to it
        self.locals = Names(set(LOCALS) | set(taken))
        self.sequences: list[tuple[str, ir.Layers]] = []
        self.helpers: set[str] = set()
        self.hint = "out"

    def hoist(self, code: str, base: str) -> str:
        """Name a value used twice in a statement: a line before the statement that needs it."""
        name = self.locals.fresh(base)
        self.lines.append(f"{name} = {code}")
        return name

    def flush(self) -> list[str]:
        """The hoisted lines written so far (they precede the statement being written)."""
        lines, self.lines = self.lines, []
        return lines

    def w_Ref(self, e: ir.Ref):
        if e.scope in ("tensor", "net") and e.name not in self.free:
            self.free.append(e.name)
        return identifier(e.name), 100

    def w_Layers(self, e: ir.Layers):
        source, prec = self.emit(e.input)
        attr = self.attrs.fresh(self.hint, attr=True)
        self.sequences.append((attr, e))
        for use in e.layers:
            self.helpers.update(use.helpers)
        if not e.type.batched:  # layers run on a batch: a shared value goes through as a batch of one
            return f"self.{attr}({paren(source, prec, CALL)}[None])[0]", CALL
        return f"self.{attr}({source})", CALL

    def w_CallNet(self, e: ir.CallNet):
        if e.net not in self.free:
            self.free.append(e.net)
        args, one = network_arguments(list(e.args), [self.emit(a) for a in e.args], self)
        for name in self.callees.get(e.net, []):
            if name not in self.free:
                self.free.append(name)
            args.append(identifier(name))
        return f"{identifier(e.net)}({', '.join(args)})" + ("[0]" if one else ""), CALL

    def w_Apply(self, e: ir.Apply):
        self.helpers.update(e.helpers)
        return super().w_Apply(e)


def class_name(prefix: str, name: str) -> str:
    return prefix + "".join(part[:1].upper() + part[1:] for part in identifier(name).split("_") if part)


def sequence_source(attr: str, layers: ir.Layers, indent: str = "        ") -> str:
    rows = [f"{indent}    {use.code},  # {use.describe()}" for use in layers.layers]
    return f"{indent}self.{attr} = nn.Sequential(  # {where(layers.span)}\n" + "\n".join(rows) + f"\n{indent})"


def network_class(key: str, node, name: str, title: str, callees: dict[str, list[str]] | None = None) -> ModuleClass:
    """A network or a density factor: forward() computes the output or the distribution(s).
    `callees`: the tensors and networks each network it calls takes (its ModuleClass.free)."""
    program: ir.Program = node.program
    inputs = [name for name, _ in program.inputs]
    free: list[str] = []
    writer = NetWriter(Names(set()), free, taken=names_in(program) | {identifier(n) for f in (callees or {}).values()
                                                                       for n in f}, callees=callees)
    body: list[str] = packing_lines(node, inputs, writer.helpers)
    for stmt in program.stmts:
        writer.hint = stmt.name if isinstance(stmt, ir.Assign) else f"{stmt.name}_dist"
        if isinstance(stmt, ir.Assign):
            value = writer.code(stmt.value)
            body += writer.flush() + [f"{identifier(stmt.name)} = {value}  # {where(stmt.span)}"]
        else:
            parts = {}
            for pname, value in stmt.dist.params.items():
                writer.hint = f"{stmt.name}_{pname}"
                parts[pname] = writer.emit(value)
            code = dist_code(stmt.dist, parts, batch=first_batched(program))
            writer.helpers.update(DISTRIBUTIONS[stmt.dist.family].helpers)  # Nearest's nearest_logits
            body += writer.flush() + [f"{identifier(stmt.name)}_dist = {code}  # {where(stmt.span)}"]
    draws = [s for s in program.stmts if isinstance(s, ir.Draw)]
    if program.result is not None:
        writer.hint = "out"
        result = output_code(*writer.emit(program.result), program, node)
        body += writer.flush() + [f"return {result}"]
    elif draws:
        names = ", ".join(f"{identifier(d.name)}_dist" for d in draws)
        body.append(f"return {names}")
    init = [sequence_source(attr, layers) for attr, layers in writer.sequences]
    init += [f"        {line}" for line in mask_lines(program, writer.sequences, writer.helpers)]
    args = ", ".join(["self", *(identifier(i) for i in inputs), *(identifier(f) for f in free)])
    source = "\n".join([
        f"class {name}(nn.Module):",
        f'    """{title}  ({where(node.span)})"""',
        "",
        "    def __init__(self):",
        "        super().__init__()",
        *(init or ["        pass"]),
        "",
        f"    def forward({args}):",
        *(f"        {line}" for line in component_lines(program, writer.helpers) + writer.lines + body),
    ])
    return ModuleClass(key=key, class_name=name, source=source, inputs=inputs, free=free, helpers=writer.helpers)


def packing_lines(node, inputs: list[str], helpers: set[str]) -> list[str]:
    """`pack N` (graph/passes/packing.py): the body sees each group of N samples as one."""
    n = getattr(node, "pack", 1)
    if n == 1:
        return []
    helpers.add(PACK_HELPER)
    return [f"{identifier(i)} = {PACK_HELPER}({identifier(i)}, {n})  # pack {n}: one row per group of {n} samples"
            for i in inputs]


def names_in(program: ir.Program) -> set[str]:
    """Every identifier a program's code may use: hoisted locals must not shadow one."""
    names = {identifier(n) for n, _ in program.inputs}
    names |= {identifier(s.name) + ("" if isinstance(s, ir.Assign) else "_dist") for s in program.stmts}
    for e in ir.walk_program(program):
        if isinstance(e, ir.Ref):
            names.add(identifier(e.name))
        elif isinstance(e, ir.CallNet):
            names.add(identifier(e.net))
    return names


def first_batched(program: ir.Program) -> str | None:
    """The identifier of the program's first per-sample input: what gives a shared value a batch."""
    return next((identifier(name) for name, t in program.inputs if isinstance(t, TensorType) and t.batched), None)


def output_code(result: str, prec: int, program: ir.Program, node) -> str:
    """The returned value with the network's declared output: one per sample (a shared result is
    repeated over the batch of the first input), `real` and `real[1]` given as declared."""
    output = getattr(getattr(node, "type", None), "output", None)
    found = program.result.type
    batch = first_batched(program)
    if isinstance(output, TensorType) and isinstance(found, NumberType) and batch is not None:
        shape = ", ".join([f"len({batch})", *map(str, output.shape)]) + ("," if not output.shape else "")
        return f"torch.full(({shape}), {float(found.value)!r}, device={batch}.device)"
    if not (isinstance(output, TensorType) and isinstance(found, TensorType)):
        return result
    if output.shape == () and found.shape == (1,):
        result, prec = f"{paren(result, prec, CALL)}.squeeze(-1)", CALL
    elif output.shape == (1,) and found.shape == ():
        result, prec = f"{paren(result, prec, CALL)}[..., None]", CALL
    if not found.batched and batch is not None:
        dims = "".join(", -1" for _ in output.shape)
        result = f"{paren(result, prec, CALL)}.expand(len({batch}){dims})"
    return result


def flow_class(key: str, node) -> ModuleClass:
    """A flow: forward(x) -> (z, log|det dz/dx|), inverse(z) -> x."""
    layers: ir.Layers = node.program.result
    rows = [f"            {use.code},  # {use.describe()}" for use in layers.layers]
    helpers = {h for use in layers.layers for h in use.helpers} | {"FlowSequence"}
    name = class_name("Flow", key)
    x = identifier(node.var)
    given = [identifier(g) for g in node.given]
    context_types = [t for _, t in node.program.inputs[1:]]
    width = sum(context_width(t) for t in context_types)
    args = "".join(f", {g}" for g in given)
    context = _flow_context(given, context_types)
    source = "\n".join([
        f"class {name}(nn.Module):",
        f'    """flow {key}: {node.var} <-> {node.latent}, invertible'
        + (f", given {', '.join(node.given)}" if given else "") + f'  ({where(node.span)})"""',
        "",
        "    def __init__(self):",
        "        super().__init__()",
        f"        self.layers = FlowSequence(  # {where(layers.span)}",
        *rows,
        *([f"            context={width},  # the couplings' conditioners also read {', '.join(node.given)}"]
          if given else []),
        "        )",
        "",
        f"    def forward(self, {x}{args}):",
        f"        return self.layers({x}{context})",
        "",
        f"    def inverse(self, z{args}):",
        f"        return self.layers.inverse(z{context})",
    ])
    return ModuleClass(key=key, class_name=name, source=source, inputs=[node.var, *node.given], helpers=helpers)


def _flow_context(given: list[str], types: list[TensorType]) -> str:
    """`, context` for a conditional flow's calls: a category one-hot, other values flattened."""
    if not given:
        return ""
    g, t = given[0], types[0]
    return f", F.one_hot({g}, {t.classes}).flatten(1).float()" if t.kind == "cat" else f", {g}.flatten(1).float()"
