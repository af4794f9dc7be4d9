"""One nn.Module class per network, density factor and flow, from its typed program."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gendsl.codegen.exprs import CALL, Writer
from gendsl.codegen.masks import mask_lines
from gendsl.codegen.names import Names, identifier
from gendsl.graph import ir
from gendsl.source import Span
from gendsl.types import TensorType


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

    def __init__(self, attrs: Names, free: list[str]):
        super().__init__()
        self.attrs = attrs
        self.free = free
        self.sequences: list[tuple[str, ir.Layers]] = []
        self.helpers: set[str] = set()
        self.hint = "out"

    def w_Ref(self, e: ir.Ref):
        if e.scope in ("tensor", "net") and e.name not in self.free:
            self.free.append(e.name)
        return identifier(e.name), 100

    def w_Layers(self, e: ir.Layers):
        source = self.code(e.input)
        attr = self.attrs.fresh(self.hint, attr=True)
        self.sequences.append((attr, e))
        for use in e.layers:
            self.helpers.update(use.helpers)
        return f"self.{attr}({source})", CALL

    def w_CallNet(self, e: ir.CallNet):
        if e.net not in self.free:
            self.free.append(e.net)
        args = ", ".join(self.code(a) for a in e.args)
        return f"{identifier(e.net)}({args})", CALL

    def w_Apply(self, e: ir.Apply):
        self.helpers.update(e.helpers)
        return super().w_Apply(e)


def class_name(prefix: str, name: str) -> str:
    return prefix + "".join(part[:1].upper() + part[1:] for part in identifier(name).split("_") if part)


def sequence_source(attr: str, layers: ir.Layers, indent: str = "        ") -> str:
    rows = [f"{indent}    {use.code},  # {use.describe()}" for use in layers.layers]
    return f"{indent}self.{attr} = nn.Sequential(  # {where(layers.span)}\n" + "\n".join(rows) + f"\n{indent})"


def network_class(key: str, node, name: str, title: str) -> ModuleClass:
    """A network or a density factor: forward() computes the output or the distribution(s)."""
    program: ir.Program = node.program
    inputs = [name for name, _ in program.inputs]
    free: list[str] = []
    writer = NetWriter(Names(set()), free)
    body: list[str] = []
    for stmt in program.stmts:
        writer.hint = stmt.name if isinstance(stmt, ir.Assign) else f"{stmt.name}_dist"
        if isinstance(stmt, ir.Assign):
            body.append(f"{identifier(stmt.name)} = {writer.code(stmt.value)}  # {where(stmt.span)}")
        else:
            parts = {}
            for pname, value in stmt.dist.params.items():
                writer.hint = f"{stmt.name}_{pname}"
                parts[pname] = writer.code(value)
            dist = stmt.dist.model_copy()
            body.append(f"{identifier(stmt.name)}_dist = {dist_code(dist, parts)}  # {where(stmt.span)}")
    draws = [s for s in program.stmts if isinstance(s, ir.Draw)]
    if program.result is not None:
        writer.hint = "out"
        result = writer.code(program.result)
        if _squeezes(node, program):
            result += ".squeeze(-1)"
        body.append(f"return {result}")
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
        *(f"        {line}" for line in writer.lines + body),
    ])
    return ModuleClass(key=key, class_name=name, source=source, inputs=inputs, free=free, helpers=writer.helpers)


def dist_code(dist: ir.Dist, parts: dict[str, str]) -> str:
    code = dist.code.format(**parts)
    event = dist.type.event
    rank = len(event.shape) if isinstance(event, TensorType) and event.kind != "cat" else 0
    return f"D.Independent({code}, {rank})" if rank else code


def _squeezes(node, program: ir.Program) -> bool:
    """A network declared to return one number per sample whose last layer gives real[1]."""
    output = getattr(getattr(node, "type", None), "output", None)
    result = program.result.type if program.result is not None else None
    return isinstance(output, TensorType) and output.shape == () and isinstance(result, TensorType) \
        and result.shape == (1,)


def flow_class(key: str, node) -> ModuleClass:
    """A flow: forward(x) -> (z, log|det dz/dx|), inverse(z) -> x."""
    layers: ir.Layers = node.program.result
    rows = [f"            {use.code},  # {use.describe()}" for use in layers.layers]
    helpers = {h for use in layers.layers for h in use.helpers} | {"FlowSequence"}
    name = class_name("Flow", key)
    x = identifier(node.var)
    source = "\n".join([
        f"class {name}(nn.Module):",
        f'    """flow {key}: {node.var} <-> {node.latent}, invertible  ({where(node.span)})"""',
        "",
        "    def __init__(self):",
        "        super().__init__()",
        f"        self.layers = FlowSequence(  # {where(layers.span)}",
        *rows,
        "        )",
        "",
        f"    def forward(self, {x}):",
        f"        return self.layers({x})",
        "",
        "    def inverse(self, z):",
        "        return self.layers.inverse(z)",
    ])
    return ModuleClass(key=key, class_name=name, source=source, inputs=[node.var], helpers=helpers)
